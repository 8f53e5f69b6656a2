"""One way to write report files: whole or not at all.

Readers (node_exporter's textfile collector, a CI artifact upload, a person opening the report)
may look at any moment; a half-written file would be read as truth. So we write a temporary
file in the same directory, fsync it, and ``os.replace`` it over the target, which is atomic on
POSIX file systems.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from grimoire_drill.errors import HarnessError

DEFAULT_MODE = 0o644


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (str is written as UTF-8) in one step; return the path.

    The parent directory must exist: creating directories is the caller's decision about where
    output goes. An existing file's permissions are kept; a new file is world-readable (0644)
    because metric scrapers and web servers usually run as other users.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if not target.parent.is_dir():
        raise HarnessError(
            "cannot write report file: its folder does not exist",
            where=str(target),
            fix="create the report folder first or pass an existing --report-dir",
        )
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = DEFAULT_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise HarnessError(
                f"cannot write report file: {exc.strerror or exc}",
                where=str(target),
                fix="check free space and permissions of the report folder",
            ) from exc
        raise
    _fsync_directory(target.parent)
    return target


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some file systems refuse, which is harmless."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
