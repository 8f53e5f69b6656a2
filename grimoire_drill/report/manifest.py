"""``MANIFEST.sha256``: hash-stamps a report folder so an auditor can tell it was not edited.

The format is exactly ``sha256sum``'s (``<hex>  <relative path>``), so ``cd <report dir> &&
sha256sum -c MANIFEST.sha256`` checks it with no grimoire-drill installed. The archive that was
drilled is named in a ``#`` comment line, which ``sha256sum -c`` ignores: the archive usually
lives elsewhere (or is rotated away), and the manifest vouches for the outputs, while the
comment still ties them to one exact backup.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from grimoire_drill.errors import HarnessError
from grimoire_drill.report.atomic import write_atomic

MANIFEST_NAME = "MANIFEST.sha256"
ARCHIVE_COMMENT = "# archive: "
_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64}) [ *](?P<name>.+)$")
_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed so large outputs do not sit in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(
    report_dir: str | os.PathLike[str],
    files: Iterable[str | os.PathLike[str]],
    archive_path: str | os.PathLike[str] | None,
    archive_sha256: str | None,
) -> Path:
    """Write ``MANIFEST.sha256`` in ``report_dir`` listing ``files``; return its path.

    ``files`` may be absolute or relative to ``report_dir`` but must lie inside it (the manifest
    is checked from there). The manifest itself is never listed. Call it last, after every
    other output is final.
    """
    directory = Path(report_dir)
    names = sorted({_relative_name(directory, Path(item)) for item in files} - {MANIFEST_NAME})
    lines = [
        "# grimoire-drill report manifest; check with: sha256sum -c " + MANIFEST_NAME,
        f"{ARCHIVE_COMMENT}{archive_sha256 or 'unknown'}  {_one_line(archive_path) if archive_path else 'unknown'}",
    ]
    for name in names:
        target = directory / name
        if not target.is_file():
            raise HarnessError(
                "report file to stamp is missing",
                where=str(target),
                fix="write every output before the manifest",
            )
        lines.append(f"{file_sha256(target)}  {name}")
    return write_atomic(directory / MANIFEST_NAME, "\n".join(lines) + "\n")


def verify_manifest(report_dir: str | os.PathLike[str]) -> list[str]:
    """Problems found re-hashing the listed files; an empty list means the report is intact."""
    directory = Path(report_dir)
    manifest = directory / MANIFEST_NAME
    try:
        text = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"{MANIFEST_NAME}: missing"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{MANIFEST_NAME}: unreadable ({exc})"]
    problems: list[str] = []
    listed = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(f"{MANIFEST_NAME} line {number}: not '<sha256>  <file>'")
            continue
        listed += 1
        name = match["name"]
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"{name}: points outside the report folder")
            continue
        target = directory / name
        if not target.is_file():
            problems.append(f"{name}: missing")
            continue
        actual = file_sha256(target)
        if actual != match["digest"]:
            problems.append(f"{name}: modified (sha256 {actual[:12]}…, manifest says {match['digest'][:12]}…)")
    if listed == 0:
        problems.append(f"{MANIFEST_NAME}: lists no files")
    return problems


def _relative_name(directory: Path, item: Path) -> str:
    """The path ``sha256sum -c`` will open from ``directory``, refusing anything outside it."""
    candidate = item if item.is_absolute() else directory / item
    try:
        relative = candidate.resolve().relative_to(directory.resolve())
    except ValueError:
        raise HarnessError(
            "report file is outside the report folder, so the manifest cannot stamp it",
            where=str(item),
            fix="write outputs inside --report-dir",
        ) from None
    name = relative.as_posix()
    if "\n" in name or "\\" in name:
        raise HarnessError(
            "file name has a newline or backslash, which sha256sum would escape",
            where=repr(name),
            fix="use plain file names for report outputs",
        )
    return name


def _one_line(value: str | os.PathLike[str]) -> str:
    return str(value).replace("\r", " ").replace("\n", " ")
