"""``tar -czf`` as the backup job runs it, but parallel; and ``gpg --symmetric`` as an operator encrypts.

gzip level 6 in 1 MiB blocks deflated on worker threads (pigz's method: each block primed with
its predecessor's tail, so the stream is one ordinary gzip member any gunzip reads).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO

from ..child_env import child_env
from ..errors import HarnessError
from .job import ARCHIVE_OWNER

MAX_PASSPHRASE_BYTES = 4096          # written to gpg's pipe in one go: must fit any pipe buffer


def check_passphrase(passphrase: str | None, as_archive: bool) -> None:
    if passphrase is None:
        return
    if not passphrase:
        raise ValueError("an empty passphrase encrypts nothing; give a real one")
    if "\n" in passphrase or "\r" in passphrase or len(passphrase.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise ValueError(f"a passphrase is one line of at most {MAX_PASSPHRASE_BYTES} bytes (gpg reads one line)")
    if not as_archive:
        raise ValueError("only an archive can be encrypted: passphrase needs as_archive=True")


def encrypt(archive: Path, passphrase: str) -> Path:
    """``gpg --symmetric --cipher-algo AES256`` next to ``archive``; return the ``.gpg`` file.

    The passphrase goes through a pipe (``--passphrase-fd``), never argv or the environment.
    gpg 2.2 needs an agent even for symmetric encryption, so one starts in a throwaway home
    (short path: its socket lives there) and is stopped before the home is removed.
    """
    gpg = shutil.which("gpg")
    if gpg is None:
        raise HarnessError("gpg is not installed, so the sample cannot be encrypted",
                           fix="install GnuPG (apt-get install gnupg) or drop --encrypt")
    target = archive.with_name(archive.name + ".gpg")
    home = Path(tempfile.mkdtemp(prefix="gd-gnupg-"))
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(write_fd, "wb") as secret:  # a passphrase fits the pipe buffer: no deadlock
            secret.write(passphrase.encode("utf-8") + b"\n")
        done = subprocess.run(
            [gpg, "--batch", "--quiet", "--no-tty", "--homedir", str(home), "--pinentry-mode", "loopback",
             "--passphrase-fd", str(read_fd), "--symmetric", "--cipher-algo", "AES256",
             "--output", str(target), str(archive)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, pass_fds=(read_fd,),
            env=child_env())
    finally:
        os.close(read_fd)
        subprocess.run([shutil.which("gpgconf") or "gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False, env=child_env())
        shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        reason = done.stderr.replace(passphrase, "***").strip().splitlines()
        raise HarnessError(f"gpg could not encrypt the sample: {reason[-1] if reason else done.returncode}",
                           where=str(archive), fix="check the GnuPG installation")
    archive.unlink()
    return target


def stamp_times(root: Path, moment: datetime) -> None:
    """Dump files and folders carry the backup's time; uploaded files keep their own (docker cp keeps them)."""
    stamp = moment.timestamp()
    uploads = root / "uploads"
    for path in [root, *root.rglob("*")]:
        if path.is_dir() or uploads not in path.parents:
            os.utime(path, (stamp, stamp))


def pack(root: Path, archive: Path, mtime: datetime) -> None:
    """``tar -czf backup_<id>.tar.gz backup_<id>``: one top folder, owned by the backup account.

    GNU tar format and gzip level 6 as ``tar -z`` gives; the gzip member carries the backup's time."""
    uid, user = ARCHIVE_OWNER

    with open(archive, "wb") as raw, _BlockGzipWriter(raw, mtime=int(mtime.timestamp())) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = uid
            info.uname = info.gname = user
            tar.members.clear()  # a writer never reads them back: memory stays flat at any file count
            return info

        tar.copybufsize = _GZIP_BLOCK
        tar.add(root, arcname=root.name, recursive=True, filter=owned)


_GZIP_BLOCK = 1 << 20       # bytes of tar stream per deflate block
_DEFLATE_WINDOW = 1 << 15   # deflate looks back this far: each block is primed with its predecessor's tail
_GZIP_MAX_WORKERS = 8       # past this the disk, not deflate, is the limit; keeps blocks in flight few


class _BlockGzipWriter:
    """``gzip -6`` output made the way pigz makes it, so every core compresses.

    The stream is cut into 1 MiB blocks; each is deflated on a worker thread (zlib releases the GIL),
    primed with the previous block's last 32 KiB and ended with a sync flush, so the blocks join into
    one ordinary deflate stream any gunzip reads. Only a few blocks are in flight: memory stays flat.
    """

    def __init__(self, raw: IO[bytes], *, mtime: int, level: int = 6):
        self._raw = raw
        self._level = level
        cores = os.cpu_count()
        self._workers = min(cores if cores is not None else 1, _GZIP_MAX_WORKERS)
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="gzip-block")
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._previous_tail = b""
        self._crc = 0
        self._size = 0
        # gzip header: deflate, no name, the archive's mtime, XFL 0 (level 6), OS 3 (Unix).
        raw.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + b"\x00\x03")

    def __enter__(self) -> "_BlockGzipWriter":
        return self

    def tell(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._size += len(data)
        while len(self._buffer) >= _GZIP_BLOCK:
            self._submit(bytes(self._buffer[:_GZIP_BLOCK]))
            del self._buffer[:_GZIP_BLOCK]
        return len(data)

    def _submit(self, block: bytes) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._pending.append(self._pool.submit(_deflate_block, block, self._previous_tail, self._level))
        self._previous_tail = block[-_DEFLATE_WINDOW:]
        while len(self._pending) > 2 * self._workers:
            self._raw.write(self._pending.popleft().result())

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                if self._buffer:
                    self._submit(bytes(self._buffer))
                    self._buffer.clear()
                while self._pending:
                    self._raw.write(self._pending.popleft().result())
                self._raw.write(zlib.compressobj(self._level, zlib.DEFLATED, -15).flush())  # the final block
                self._raw.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            for pending in self._pending:
                pending.cancel()
            self._pool.shutdown(wait=True)


def _deflate_block(block: bytes, primer: bytes, level: int) -> bytes:
    """One block of the raw deflate stream: not final, byte-aligned by the sync flush."""
    if primer:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=primer)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)
