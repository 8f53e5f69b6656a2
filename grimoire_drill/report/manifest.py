"""``MANIFEST.sha256``: hash-stamps a report folder so an auditor can tell it was not edited.

The format is exactly ``sha256sum``'s (``<hex>  <relative path>``), so ``cd <report dir> &&
sha256sum -c MANIFEST.sha256`` checks it with no grimoire-drill installed. The archive that was
drilled is named in a ``#`` comment line, which ``sha256sum -c`` ignores: the archive usually
lives elsewhere (or is rotated away), and the manifest vouches for the outputs, while the
comment still ties them to one exact backup.

``--sign-key`` adds ``MANIFEST.sha256.asc``, gpg's detached armored signature of the sealed
manifest (``gpg --verify MANIFEST.sha256.asc MANIFEST.sha256``): hashes alone show a report was
not edited by accident, the signature that whoever edits it cannot re-seal it unnoticed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from grimoire_drill.child_env import child_env
from grimoire_drill.errors import HarnessError
from grimoire_drill.report.atomic import write_atomic
from grimoire_drill.report.facts import is_simulated, simulated_databases
from grimoire_drill.report.scope import scope_of, verdict_label

MANIFEST_NAME = "MANIFEST.sha256"
SIGNATURE_NAME = MANIFEST_NAME + ".asc"
GPG_TIMEOUT_S = 120  # an agent waiting for a passphrase nobody types must not hang the drill
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
    *,
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``MANIFEST.sha256`` in ``report_dir`` listing ``files``; return its path.

    ``files`` may be absolute or relative to ``report_dir`` but must lie inside it (the manifest
    is checked from there). The manifest itself is never listed. Call it last, after every
    other output is final. Given the run's ``summary``, the header also names the run, its
    verdict with its scope, and SIMULATED: a manifest vouches for one run and says what it proved.
    """
    directory = Path(report_dir)
    names = sorted({_relative_name(directory, Path(item)) for item in files} - {MANIFEST_NAME})
    lines = [
        "# grimoire-drill report manifest; check with: sha256sum -c " + MANIFEST_NAME,
        f"{ARCHIVE_COMMENT}{archive_sha256 or 'unknown'}  {_one_line(archive_path) if archive_path else 'unknown'}",
    ]
    if summary is not None:
        lines.extend(_run_comments(summary))
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


def gpg_env() -> dict[str, str]:
    """gpg's whole environment: the allow-listed basics, HOME and GNUPGHOME (its keyring), nothing else."""
    keyring = {"GNUPGHOME": os.environ["GNUPGHOME"]} if "GNUPGHOME" in os.environ else {}
    return child_env({**keyring, "LC_ALL": "C"}, home=True)


def run_gpg(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``gpg --batch ARGS`` in ``cwd`` with ``gpg_env()``; HarnessError when gpg is absent or hangs."""
    gpg = shutil.which("gpg")
    if gpg is None:
        raise HarnessError("gpg not found", fix="install gnupg (apt-get install gnupg)")
    try:
        return subprocess.run([gpg, "--batch", "--no-tty", *args], cwd=cwd, env=gpg_env(), capture_output=True,
                              text=True, errors="replace", timeout=GPG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"gpg did not finish within {GPG_TIMEOUT_S}s", where=str(cwd),
                           fix="check the key's passphrase is cached in gpg-agent (gpg runs in batch mode)") from None


def sign_manifest(report_dir: str | os.PathLike[str], key_id: str) -> Path:
    """``MANIFEST.sha256.asc``: ``gpg --detach-sign --armor`` by ``key_id`` of the sealed manifest."""
    directory = Path(report_dir)
    target = directory / SIGNATURE_NAME
    partial = directory / (SIGNATURE_NAME + ".partial")
    partial.unlink(missing_ok=True)
    done = run_gpg(["--yes", "--local-user", key_id, "--armor", "--output", partial.name,
                    "--detach-sign", MANIFEST_NAME], directory)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise HarnessError(f"gpg could not sign {MANIFEST_NAME} with key {key_id!r}: {why[:300]}",
                           where=str(directory), fix="check --sign-key names a secret key in GNUPGHOME")
    os.replace(partial, target)
    return target


def recorded_archive(report_dir: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """(sha256, path) of the archive the manifest's header names; None for what it does not record."""
    try:
        text = (Path(report_dir) / MANIFEST_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, None
    for line in text.splitlines():
        if line.startswith(ARCHIVE_COMMENT):
            digest, _, path = line[len(ARCHIVE_COMMENT):].partition("  ")
            return (digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None), (path if path != "unknown" else None)
    return None, None


def listed_files(report_dir: str | os.PathLike[str]) -> list[str]:
    """The file names the manifest lists (empty when it is missing or unreadable)."""
    try:
        text = (Path(report_dir) / MANIFEST_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [m["name"] for m in map(_LINE.match, text.splitlines()) if m is not None]


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


def _run_comments(summary: Mapping[str, Any]) -> list[str]:
    scope = scope_of(summary)
    lines = [f"# run: {_one_line(str(summary.get('run_id') or 'unknown'))}",
             f"# verdict: {verdict_label(summary)}",
             f"# scope: {scope['kind']}, {scope['ran']} of {scope['of']} checks"
             + (f", selection: {_one_line(scope['selection'])}" if scope.get("selection") else "")]
    if is_simulated(summary):
        databases = ", ".join(simulated_databases(summary)) or "an engine"
        lines.append(f"# SIMULATED: {databases} ran on the simulated engine; these outputs are not audit evidence")
    return lines


def _one_line(value: str | os.PathLike[str]) -> str:
    return str(value).replace("\r", " ").replace("\n", " ")
