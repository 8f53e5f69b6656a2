"""Off-site backups: ``s3://bucket/prefix/`` and ``sftp://user@host[:port]/path/``, listed and streamed.

Why streamed: the copy restored after a disaster is the off-site one, and downloading it first
means a second full copy on disk and the hash of the download instead of the stored object. So
the object is opened with fsspec (s3fs, sshfs) and read once by the pass in
:mod:`~grimoire_drill.archive.extraction`, like a local file: the sha256 in the report is that of
the stored bytes, and the store's own checksum (a single-part ETag's md5, ``x-amz-checksum-sha256``)
is compared in the same pass.

Why a reader of our own on top: a network read can break where a disk read does not. A broken
read is resumed with a ranged read at the offset reached, a bounded number of times
(``limits.remote_retries``), and a transfer that stays broken is this machine's problem (exit 2,
:class:`TransferError`), never a verdict on the backup.

Credentials come only from the standard chains (botocore's: environment, profile, instance role,
``AWS_ENDPOINT_URL``; asyncssh's: the agent, ``~/.ssh/config``, ``~/.ssh/id_*``), and host keys
are verified against ``known_hosts``. Nothing here takes a key or a password as an argument, and
URLs are shown without userinfo or query.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import time
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import PurePosixPath
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from grimoire_drill.archive.locate import (FIX_NEWEST, FIX_PERMISSION, FIX_RECOPY, BackupName, BackupRef,
                                           candidate_from_name)
from grimoire_drill.archive.stream import TransferError
from grimoire_drill.errors import DrillFailure, GrimoireDrillError, HarnessError
from grimoire_drill.limits import Limits
from grimoire_drill.text import quote

SCHEMES = ("s3", "sftp")
# scheme -> (the module its fsspec implementation needs, the extra that installs it)
EXTRAS = {"s3": ("s3fs", "s3"), "sftp": ("sshfs", "sftp")}
MAX_RETRY_WAIT_S = 30.0
CHECKSUM_RETRIES = 1     # a checksum the client library finds wrong is read once more: then the store's bytes are bad
FIX_DAMAGED = "the off-site copy is damaged: copy the backup there again"
READ_BLOCK = 8 * 1024**2  # one ranged GET: what s3fs holds ahead of the pass, at most
FIX_TRANSFER = "check the network and the store, then drill again (nothing of this run was kept)"


def is_remote(target: object) -> bool:
    """True for an ``s3://`` or ``sftp://`` URL given as BACKUPS (a string, never a local Path)."""
    return isinstance(target, str) and target.partition("://")[0].lower() in SCHEMES and "://" in target


@dataclass(frozen=True)
class RemoteURL:
    """A parsed source URL: where it is and what may be shown of it (never userinfo or a query)."""

    scheme: str
    host: str                 # the bucket for s3://
    path: str                 # s3: the key (prefix), no leading slash; sftp: the path on the server
    user: str | None = None
    port: int | None = None

    @property
    def shown(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        path = self.path if self.path.startswith("/") else "/" + self.path
        return f"{self.scheme}://{self.host}{port}{path}"

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name if self.path.strip("/") else ""

    @property
    def fs_path(self) -> str:
        """The path fsspec's implementation takes: ``bucket/key`` for s3, the server path for sftp."""
        return f"{self.host}/{self.path}".rstrip("/") if self.scheme == "s3" else (self.path.rstrip("/") or "/")

    def child(self, name: str) -> RemoteURL:
        base = self.path.rstrip("/")
        return RemoteURL(self.scheme, self.host, f"{base}/{name}" if base else name, self.user, self.port)


def parse_url(text: str) -> RemoteURL:
    """``s3://bucket/prefix/`` or ``sftp://user@host:port/path`` -> RemoteURL; a password in it is refused."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    shown = f"{scheme}://{quote(parts.hostname or '', 100)}{quote(parts.path, 200)}"
    if parts.password is not None:
        raise HarnessError("the URL holds a password, which would show in ps and in logs", where=shown,
                           fix="remove it: use the ssh agent or a key (~/.ssh/config), or the AWS credential chain")
    try:
        port = parts.port
    except ValueError as exc:
        raise HarnessError("the URL's port is not a number from 1 to 65535", where=shown,
                           fix="write it as sftp://user@host:2222/path") from exc
    if not parts.hostname:
        what = "bucket" if scheme == "s3" else "host"
        raise HarnessError(f"the URL names no {what}", where=shown,
                           fix="write it as s3://bucket/prefix/ or sftp://user@host/path/")
    if scheme == "s3" and (port is not None or parts.username is not None):
        raise HarnessError("an s3:// URL is s3://bucket/key: no user or port", where=shown,
                           fix="set AWS_ENDPOINT_URL for an S3-compatible store, AWS_PROFILE for credentials")
    host = parts.hostname if scheme == "sftp" else parts.netloc
    path = unquote(parts.path)
    if scheme == "s3":
        path = path.lstrip("/")
    return RemoteURL(scheme, host, path or ("" if scheme == "s3" else "/"),
                     unquote(parts.username) if parts.username else None, port)


def shown_source(target: object) -> str:
    """BACKUPS as outputs show it: a URL without its userinfo or query, a local path as it is."""
    if is_remote(target):
        try:
            return parse_url(str(target)).shown
        except HarnessError:
            return f"{str(target).partition('://')[0]}://(an invalid URL)"
    return str(target)


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class RemoteObject:
    """One stored archive: how to open it at an offset, its size and the store's own checksums."""

    url: RemoteURL
    size: int
    fs: Any = field(compare=False, repr=False)
    md5: str | None = None        # a single-part ETag: the md5 of the stored bytes
    sha256: str | None = None     # x-amz-checksum-sha256, as hex

    def open_reader(self, limits: Limits) -> RemoteReader:
        return RemoteReader(self, limits)

    def open_at(self, fs, offset: int):
        """A file-like object reading the stored bytes from ``offset`` on (a ranged read)."""
        if self.url.scheme == "s3":
            handle = fs.open(self.url.fs_path, "rb", block_size=READ_BLOCK, cache_type="readahead", size=self.size)
        else:
            handle = fs.open(self.url.fs_path, "rb")
        if offset:
            handle.seek(offset)
        return handle


def connect(url: RemoteURL, limits: Limits):
    """The fsspec filesystem for ``url``, from the standard credential chains; one line when it cannot be."""
    module, extra = EXTRAS[url.scheme]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise HarnessError(f"{url.scheme}:// needs the {extra} extra: pip install 'grimoire-drill[{extra}]'") from exc
    if url.scheme == "s3":
        from s3fs import S3FileSystem

        # No key arguments: botocore reads AWS_* (AWS_ENDPOINT_URL too), the profile and the instance role.
        return S3FileSystem(skip_instance_cache=True, config_kwargs={
            "connect_timeout": limits.remote_timeout_s, "read_timeout": limits.remote_timeout_s})
    from sshfs import SSHFileSystem

    options: dict[str, Any] = {
        "known_hosts": (),            # asyncssh's default: ~/.ssh/known_hosts (and UserKnownHostsFile): verified
        "connect_timeout": limits.remote_timeout_s,
        "keepalive_interval": max(1.0, limits.remote_timeout_s / 4), "keepalive_count_max": 4,
        "skip_instance_cache": True,
    }
    if url.user is not None:
        options["username"] = url.user
    if url.port is not None:
        options["port"] = url.port
    try:
        return SSHFileSystem(url.host, **options)
    except Exception as exc:  # noqa: BLE001 - asyncssh, OSError, timeouts: each said in one line
        raise _connect_failure(url, exc) from None


def _connect_failure(url: RemoteURL, exc: BaseException) -> HarnessError:
    """Why an SFTP connection failed, as one line saying what to do."""
    kinds = _chain_names(exc)  # sshfs re-raises asyncssh's errors as OSError subclasses
    text = quote(str(exc) or type(exc).__name__, 200)
    where = url.shown
    if "HostKeyNotVerifiable" in kinds:
        port = f" -p {url.port}" if url.port is not None else ""
        return HarnessError(f"the server's host key is not in known_hosts ({text})", where=where,
                            fix=f"check its fingerprint, then add it: ssh-keyscan{port} {url.host} >> ~/.ssh/known_hosts")
    if "PermissionDenied" in kinds or isinstance(exc, PermissionError):
        return HarnessError(f"the server refused our credentials ({text})", where=where,
                            fix="load the key into ssh-agent, or name it (IdentityFile) in ~/.ssh/config")
    return HarnessError(f"cannot connect: {text}", where=where,
                        fix="check the host, the port and the network")


def _listing_failure(url: RemoteURL, exc: BaseException) -> HarnessError:
    text = quote(str(exc) or type(exc).__name__, 200)
    if type(exc).__name__ == "NoCredentialsError":
        return HarnessError("no AWS credentials found", where=url.shown,
                            fix="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an instance role")
    if isinstance(exc, PermissionError) or any(code in str(exc) for code in CREDENTIAL_CODES):
        return HarnessError(f"the store refused to list: {text}", where=url.shown,
                            fix="check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and their right to list")
    if isinstance(exc, FileNotFoundError):
        return HarnessError(f"no such bucket or folder: {text}", where=url.shown,
                            fix="check the URL (s3://bucket/prefix/, sftp://user@host/path/)")
    return HarnessError(f"cannot list: {text}", where=url.shown, fix="check the URL, the network and the store")


CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
                    "InvalidToken", "Forbidden")


# --------------------------------------------------------------------------- listing


def _entries(fs, url: RemoteURL, limits: Limits) -> list[tuple[str, bool, int]]:
    """(name, is a folder, size) of what ``url`` lists, read page by page, at most max_listing_entries."""
    from fsspec.asyn import sync

    most = limits.max_listing_entries

    async def collect(entries) -> list[tuple[str, bool, int]]:
        found: list[tuple[str, bool, int]] = []
        async for name, is_dir, size in entries:
            found.append((name, is_dir, size))
            if len(found) > most:
                raise DrillFailure(f"the listing holds more than {limits.name('max_listing_entries')} entries",
                                   where=url.shown, fix="point at the folder of backups itself, or raise the limit "
                                                        "in [limits] of expectations.toml")
        return found

    async def s3_entries():
        prefix = url.path.rstrip("/") + "/" if url.path.strip("/") else ""
        async for info in fs._iterdir(url.host, prefix=prefix, delimiter="/"):
            name = info["Key"].rstrip("/").rpartition("/")[2]
            yield name, info.get("type") == "directory", int(info.get("size", 0) or 0)

    async def sftp_entries():
        import stat

        async with fs._pool.get() as channel:
            async for entry in channel.scandir(url.fs_path):
                if entry.filename in (".", ".."):
                    continue
                attrs = entry.attrs
                is_dir = attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)
                yield entry.filename, is_dir, int(attrs.size or 0)

    return sync(fs.loop, collect, s3_entries() if url.scheme == "s3" else sftp_entries())


def locate_remote(text: str, tz: tzinfo = UTC, limits: Limits = Limits()) -> BackupRef:
    """The backup a URL names: the newest ``backup_*`` archive of its listing, or the one object it names.

    The same name rules as a local folder (:func:`~grimoire_drill.archive.locate.candidate_from_name`):
    names, not mtimes; hostile names ignored; the newest decides, never an older one in its place.
    """
    url = parse_url(text)
    fs = connect(url, limits)
    direct = candidate_from_name(url.name, tz) if url.name else None
    if direct is not None and direct.kind != "dir":
        info = _info(fs, url)
        if info is None:
            raise DrillFailure("no such object", where=url.shown,
                               fix="check the URL; `grimoire-drill list` on its folder shows the backups there")
        return _checked(fs, url, direct, info, newest=False)
    named = _named(fs, url, tz, limits)
    if not named:
        raise DrillFailure(f"no backup_YYYYMMDD_HHMMSS archive in {url.shown}",
                           fix="check that the off-site copy ran and wrote here")
    newest, is_dir = named[0]
    object_url = url.child(newest.path.name)
    if is_dir:
        raise _refuse(object_url, "a folder on the store: only archives are streamed", True)
    info = _info(fs, object_url)
    if info is None:
        raise _refuse(object_url, "it cannot be found any more (a dangling link, or it vanished while the "
                                  "folder was listed)", True)
    return _checked(fs, object_url, newest, info, newest=True)


def find_remote_backups(text: str, tz: tzinfo = UTC, limits: Limits = Limits()) -> list[BackupRef]:
    """Every archive the URL lists, newest first (``list``): named like a backup, a file, not empty."""
    url = parse_url(text)
    fs = connect(url, limits)
    refs = []
    for candidate, is_dir in _named(fs, url, tz, limits):
        if is_dir:
            continue
        object_url = url.child(candidate.path.name)
        info = _info(fs, object_url)
        if info is None:
            continue
        try:
            refs.append(_checked(fs, object_url, candidate, info, newest=False))
        except DrillFailure:
            continue
    return refs


def remote_series_ids(text: str, max_backups: int, limit_name: str, tz: tzinfo = UTC,
                      limits: Limits = Limits()) -> tuple[str, ...] | None:
    """The backup ids the URL lists, oldest first; None when it names one object (as :func:`series_ids`)."""
    url = parse_url(text)
    direct = candidate_from_name(url.name, tz) if url.name else None
    if direct is not None and direct.kind != "dir":
        return None
    fs = connect(url, limits)
    ids = {candidate.backup_id for candidate, _ in _named(fs, url, tz, limits, max_backups, limit_name)}
    return tuple(sorted(ids))


def _named(fs, url: RemoteURL, tz: tzinfo, limits: Limits, max_names: int | None = None,
           limit_name: str | None = None) -> list[tuple[BackupName, bool]]:
    """(candidate, is a folder) for the listing's backup names, newest first, at most max_series_backups."""
    max_names = limits.max_series_backups if max_names is None else max_names
    limit_name = limits.name("max_series_backups") if limit_name is None else limit_name
    try:
        entries = _entries(fs, url, limits)
    except DrillFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore, asyncssh, OSError: said in one line
        raise _listing_failure(url, exc) from None
    named: list[tuple[BackupName, bool]] = []
    for name, is_dir, _size in entries:
        candidate = candidate_from_name(name, tz)
        if candidate is None:
            continue
        named.append((candidate, is_dir))
        if len(named) > max_names:
            raise DrillFailure(f"more than {limit_name} backups named in the folder", where=url.shown,
                               fix="prune the folder or raise the limit in [limits] of expectations.toml")
    return sorted(named, key=lambda item: item[0].order())


def _info(fs, url: RemoteURL) -> dict[str, Any] | None:
    """The object's size and checksums (S3: HEAD with checksums asked for); None when it does not exist."""
    try:
        if url.scheme == "s3":
            head = fs.call_s3("head_object", Bucket=url.host, Key=url.path, ChecksumMode="ENABLED")
            return {"size": int(head.get("ContentLength", 0)), "type": "file", "ETag": head.get("ETag"),
                    "ChecksumSHA256": head.get("ChecksumSHA256"),
                    "encrypted": head.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse")
                    or "SSECustomerAlgorithm" in head}
        return fs.info(url.fs_path)
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise _refuse(url, f"the store refuses to read it ({quote(str(exc), 200)})", False, FIX_PERMISSION) from None
    except Exception as exc:  # noqa: BLE001
        if type(exc).__name__ == "NoCredentialsError":
            raise _listing_failure(url, exc) from None
        raise HarnessError(f"cannot read the object's details: {quote(str(exc) or type(exc).__name__, 200)}",
                           where=url.shown, fix=FIX_TRANSFER) from None


def _refuse(url: RemoteURL, reason: str, newest: bool, fix: str | None = None) -> DrillFailure:
    which = "the newest backup " if newest else ""
    return DrillFailure(f"{which}cannot be drilled: {reason}", where=url.shown,
                        fix=fix if fix is not None else FIX_NEWEST if newest else FIX_RECOPY)


def _checked(fs, url: RemoteURL, candidate: BackupName, info: dict[str, Any], newest: bool) -> BackupRef:
    """The object as a BackupRef (its store checksums kept), or a DrillFailure naming it."""
    if info.get("type") == "directory":
        raise _refuse(url, "a folder named like an archive, not an archive file", newest)
    if info.get("type") != "file":  # a fifo or device on an SFTP server would make the read hang or never end
        raise _refuse(url, "not a regular file (a fifo, socket or device)", newest)
    size = int(info.get("size") or 0)
    if size <= 0:
        raise _refuse(url, "zero bytes: the backup job wrote nothing", newest)
    obj = RemoteObject(url, size, fs, md5=store_md5(info), sha256=store_sha256(info))
    return BackupRef(PurePosixPath(url.path), candidate.name, candidate.backup_id, candidate.taken_at,  # type: ignore[arg-type]
                     candidate.kind, size, remote=obj)


def store_md5(info: dict[str, Any]) -> str | None:
    """A single-part upload's ETag is the md5 of the bytes; multipart (``-N``) and KMS/SSE-C ETags are not."""
    etag = str(info.get("ETag") or "").strip('"').lower()
    if info.get("encrypted") or len(etag) != 32 or any(c not in "0123456789abcdef" for c in etag):
        return None
    return etag


def store_sha256(info: dict[str, Any]) -> str | None:
    """``x-amz-checksum-sha256`` (base64 of the digest) as hex; a composite (``-N``) checksum is not one."""
    value = info.get("ChecksumSHA256")
    if not value or "-" in str(value):
        return None
    try:
        digest = base64.b64decode(str(value), validate=True)
    except ValueError:
        return None
    return digest.hex() if len(digest) == 32 else None


# --------------------------------------------------------------------------- reading


class RemoteReader:
    """``read(n)`` over the stored object: resumes at the offset reached after a transfer error.

    At most ``limits.remote_retries`` re-reads in all, waiting ``remote_retry_wait_s`` doubled
    each time; reads stop at the size the store gave, so a store cannot feed more than it said.
    """

    def __init__(self, obj: RemoteObject, limits: Limits, sleep: Callable[[float], None] = time.sleep):
        self._obj = obj
        self._limits = limits
        self._sleep = sleep
        self._fs = obj.fs  # an SFTP connection that broke is not reused: connect() again on the next try
        self._handle = None
        self._offset = 0
        self._retries = 0
        self._checksum_failures = 0
        self._md5 = hashlib.md5(usedforsecurity=False) if obj.md5 is not None else None

    @property
    def where(self) -> str:
        return self._obj.url.shown

    def read(self, size: int = -1) -> bytes:
        remaining = self._obj.size - self._offset
        if remaining <= 0:
            return b""
        size = remaining if size is None or size < 0 else min(size, remaining)
        while True:
            try:
                if self._fs is None:
                    self._fs = connect(self._obj.url, self._limits)
                if self._handle is None:
                    self._handle = self._obj.open_at(self._fs, self._offset)
                data = self._handle.read(size)
                if not data:
                    raise TransferError(f"the stream ended at byte {self._offset:,} of {self._obj.size:,}")
                break
            except Exception as exc:  # noqa: BLE001 - any failure of the transfer: retried, then TransferError
                self._drop_handle()
                if self._offset == 0 and isinstance(exc, PermissionError):  # as for a local file: unreadable
                    raise DrillFailure(f"cannot open the archive: the store refuses to read it "
                                       f"({quote(str(exc), 200)})", where=self.where, fix=FIX_PERMISSION) from exc
                if _checksum_error(exc):
                    self._checksum_failures += 1
                    if self._checksum_failures > CHECKSUM_RETRIES:
                        raise DrillFailure(f"the store's checksum of the object does not match its bytes, read "
                                           f"{self._checksum_failures} times ({quote(str(exc), 200)})",
                                           where=self.where, fix=FIX_DAMAGED) from exc
                if self._obj.url.scheme == "sftp":
                    self._fs = None  # s3fs opens new HTTP connections itself; one SSH connection is all sshfs has
                self._retries += 1
                if self._retries > self._limits.remote_retries:
                    why = exc.what if isinstance(exc, GrimoireDrillError) else str(exc) or type(exc).__name__
                    raise TransferError(
                        f"the transfer broke at byte {self._offset:,} of {self._obj.size:,} and "
                        f"{self._limits.name('remote_retries')} re-reads did not get past it ({quote(why, 200)})") from exc
                self._sleep(min(MAX_RETRY_WAIT_S, self._limits.remote_retry_wait_s * 2 ** (self._retries - 1)))
        data = bytes(data)
        self._offset += len(data)
        if self._md5 is not None:
            self._md5.update(data)
        return data

    def verify(self, sha256_hex: str) -> None:
        """After the whole object was read: the store's checksum must be that of the bytes we read."""
        obj = self._obj
        if obj.sha256 is not None and obj.sha256 != sha256_hex:
            raise DrillFailure(f"the stored object's sha256 is {sha256_hex}, not the {obj.sha256} the store "
                               "recorded (x-amz-checksum-sha256)", where=obj.url.shown, fix=FIX_DAMAGED)
        if self._md5 is not None and obj.md5 != self._md5.hexdigest():
            raise DrillFailure(f"the stored object's md5 is {self._md5.hexdigest()}, not its ETag {obj.md5}",
                               where=obj.url.shown, fix=FIX_DAMAGED)

    def close(self) -> None:
        self._drop_handle()

    def _drop_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
                pass


def _chain_names(exc: BaseException | None) -> set[str]:
    """The class names of an exception and of its causes (a few deep): libraries wrap each other's errors."""
    names: set[str] = set()
    for _depth in range(10):
        if exc is None:
            break
        names.add(type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    return names


def _checksum_error(exc: BaseException) -> bool:
    """botocore's check of a response's checksum (CRC32, SHA256...) failed, here or down the exception's causes."""
    return "FlexibleChecksumError" in _chain_names(exc)
