"""``grimoire-drill verify REPORT_DIR``: is this report what the drill wrote, about that archive?

An auditor gets a report folder months later. Three questions, each answered from the folder
alone: do the files still hash as ``MANIFEST.sha256`` says; is the manifest signed by a key
gpg trusts (``MANIFEST.sha256.asc``, required with ``--require-signature``); and, given the
archive, is it the one drilled (its sha256 against the manifest's ``# archive:`` header, a
folder by the same tree digest the drill computes). Problems are returned, one line each;
only "could not check at all" (no such folder, gpg missing) raises HarnessError (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from .errors import GrimoireDrillError, HarnessError
from .report.manifest import (MANIFEST_NAME, SIGNATURE_NAME, file_sha256, listed_files, recorded_archive,
                              run_gpg, verify_manifest)

REQUIRED_LISTED = ("summary.json",)


def verify_report(report_dir: Path, *, archive: Path | None = None,
                  require_signature: bool = False) -> tuple[list[str], list[str]]:
    """(problems, notes): an empty problem list means the report is intact; notes say what was checked."""
    if not report_dir.is_dir():
        raise HarnessError("not a report folder", where=str(report_dir), fix="give the folder holding MANIFEST.sha256")
    if archive is not None and not archive.exists():
        raise HarnessError("no such archive", where=str(archive), fix="give the backup file (or folder) that was drilled")
    problems = verify_manifest(report_dir)
    listed = listed_files(report_dir)
    notes = [f"{len(listed)} file(s) match {MANIFEST_NAME}"] if not problems else []
    problems += [f"{name}: not listed in {MANIFEST_NAME}" for name in REQUIRED_LISTED
                 if listed and name not in listed]
    problems_sig, note_sig = _signature(report_dir, require_signature)
    problems += problems_sig
    notes += note_sig
    if archive is not None:
        problems_arc, note_arc = _archive(report_dir, archive)
        problems += problems_arc
        notes += note_arc
    return problems, notes


def _signature(report_dir: Path, required: bool) -> tuple[list[str], list[str]]:
    if not (report_dir / SIGNATURE_NAME).is_file():
        if required:
            return [f"{SIGNATURE_NAME}: missing (--require-signature)"], []
        return [], ["not signed"]
    done = run_gpg(["--status-fd", "1", "--verify", SIGNATURE_NAME, MANIFEST_NAME], report_dir)
    status = {}
    for line in done.stdout.splitlines():
        if line.startswith("[GNUPG:] "):
            word, _, rest = line[len("[GNUPG:] "):].partition(" ")
            status.setdefault(word, rest)
    if done.returncode == 0 and "VALIDSIG" in status:
        return [], [f"signature good (key {status['VALIDSIG'].split()[0]})"]
    if "BADSIG" in status:
        return [f"{SIGNATURE_NAME}: does not match {MANIFEST_NAME} (BADSIG {status['BADSIG'][:80]})"], []
    if "NO_PUBKEY" in status or "ERRSIG" in status:
        key = (status.get("NO_PUBKEY") or status.get("ERRSIG", "")).split(" ")[0]
        return [f"{SIGNATURE_NAME}: cannot be checked: no public key {key} in the keyring (GNUPGHOME)"], []
    why = (done.stderr.strip().splitlines() or [f"gpg exit {done.returncode}"])[-1]
    return [f"{SIGNATURE_NAME}: not a valid signature of {MANIFEST_NAME} ({why[:200]})"], []


def _archive(report_dir: Path, archive: Path) -> tuple[list[str], list[str]]:
    recorded, recorded_path = recorded_archive(report_dir)
    if recorded is None:
        return [f"{MANIFEST_NAME}: records no archive sha256, so {archive} cannot be matched"], []
    try:
        if archive.is_dir():
            from .archive import tree_digest

            actual = tree_digest(archive)[0]
        else:
            actual = file_sha256(archive)
    except (OSError, GrimoireDrillError) as exc:
        raise HarnessError(f"cannot read the archive: {exc}", where=str(archive), fix="check the path") from None
    if actual != recorded:
        return [f"{archive}: sha256 {actual[:12]}… is not the drilled archive's {recorded[:12]}… "
                f"({recorded_path or 'path not recorded'})"], []
    return [], [f"archive {archive.name} is the one drilled"]
