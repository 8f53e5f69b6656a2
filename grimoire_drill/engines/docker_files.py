"""Files into and out of a container as tar streams, never held in memory nor copied to disk.

Why its own module: dumps are gigabytes, so ``put_archive`` reads a tar written on the fly by a
thread, and ``get_archive``'s chunks are untarred as they arrive; none of that is about which
database runs in the container.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path
from typing import Iterator

CHUNK_BYTES = 1 << 20


def tar_stream(entries: list[tuple[Path, str]], dirs: list[str], extra: dict[str, bytes]) -> Iterator[bytes]:
    """A tar of host paths (and small in-memory files) produced on the fly, for put_archive.

    A thread writes into a pipe while the HTTP request reads the other end: big dumps are
    never held in memory nor copied to disk. Owners are reset to root; files stay readable.
    """
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o777 if info.isdir() else (0o755 if info.mode & 0o100 else 0o644)
        return info

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                for name in dirs:
                    info = tarfile.TarInfo(name.lstrip("/"))
                    info.type, info.mode = tarfile.DIRTYPE, 0o777
                    tar.addfile(info)
                for name, data in extra.items():
                    info = tarfile.TarInfo(name.lstrip("/"))
                    info.size, info.mode = len(data), 0o600
                    tar.addfile(info, io.BytesIO(data))
                for source, dest in entries:
                    tar.add(str(source), arcname=dest.lstrip("/"), filter=normalise)
        except BaseException as exc:  # reported by the reader once the stream ends
            failure.append(exc)

    producer = threading.Thread(target=produce, name="grimoire-drill-put-archive", daemon=True)
    producer.start()
    with os.fdopen(read_fd, "rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk
    producer.join()
    if failure:
        raise failure[0]


class ChunkReader(io.RawIOBase):
    """File-like view of get_archive's chunk iterator, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size], self._buffer = self._buffer[:size], self._buffer[size:]
        return size


def extract_chunks(chunks: Iterator[bytes], dest_dir: Path) -> None:
    """Untar ``get_archive``'s chunks into ``dest_dir`` as they arrive (the ``data`` filter: no
    absolute paths, links out or devices)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks), CHUNK_BYTES), mode="r|") as tar:
        for member in tar:
            tar.extract(member, dest_dir, filter="data")
