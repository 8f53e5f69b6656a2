"""``grimoire-drill list``: the backups of a folder with their last drill, as a table or as ``list@1`` JSON.

Why a document first and the table drawn from it: a script (a dashboard, a cron wrapper) reads
the same facts a person reads, in a shape the JSON Schema ``schemas/list.schema.json`` pins,
like ``pgbackrest info --output=json``.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from .archive import BackupRef, find_backups, is_remote, shown_source
from .errors import HarnessError
from .report.history import last_runs, last_verdicts, read_history
from .text import quote

LIST_SCHEMA = "grimoire-drill/list@1"
HISTORY_READ = 10_000  # history lines `list` reads back, newest kept
RUN_FIELDS = ("run_id", "finished_at", "verdict", "outcome", "simulated")


def backups_in(folder: Path | str, tz: tzinfo) -> list[BackupRef]:
    """The readable backups of ``folder``; a folder that is not there is a usage error (exit 2), not a bad backup.

    An ``s3://`` or ``sftp://`` URL is listed by ``archive.remote`` (its errors are its own one-liners).
    """
    if is_remote(folder):
        return find_backups(folder, tz)
    if not folder.is_dir():
        what = "no such folder" if not folder.exists() else "not a folder"
        raise HarnessError(what, where=str(folder),
                           fix="grimoire-drill list /path/to/backups (the folder the backup job writes into)")
    try:
        return find_backups(folder, tz)
    except OSError as exc:
        raise HarnessError(f"cannot list the folder: {exc.strerror or exc}", where=str(folder),
                           fix="run with a user that can read the backups") from None


def listing(folder: Path | str, history: Path, tz: tzinfo, now: datetime) -> dict[str, Any]:
    """The ``list@1`` document: every backup, newest first, with its last full drill and any partial one since."""
    refs = backups_in(folder, tz)
    records = read_history(history, limit=HISTORY_READ) if history.is_file() else []
    runs, shown = last_runs(records), last_verdicts(records)
    backups = []
    for ref in refs:
        full, partial = runs.get(ref.backup_id, (None, None))
        backups.append({
            "name": ref.path.name,
            "backup_id": ref.backup_id,
            "path": ref.where if ref.remote is not None else str(ref.path.resolve()),
            "kind": ref.kind,
            "taken_at": ref.taken_at.isoformat(),
            "age_hours": round((now - ref.taken_at).total_seconds() / 3600, 2),
            "size_bytes": ref.size_bytes,
            "last_full_drill": _run(full),
            "later_partial_drill": _run(partial),
            "last_drill_text": shown.get(ref.backup_id, "never drilled"),
        })
    shown = shown_source(folder) if is_remote(folder) else str(Path(folder).resolve())
    return {"schema": LIST_SCHEMA, "folder": shown, "history": str(history),
            "generated_at": now.isoformat(), "backups": backups}


def _run(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fields of a history record ``list`` shows; a torn or hand-edited record keeps only what is well typed."""
    if record is None:
        return None
    kept: dict[str, Any] = {}
    for name in RUN_FIELDS:
        value = record.get(name)
        wanted = bool if name == "simulated" else str
        kept[name] = value if isinstance(value, wanted) else None
    return kept


def listing_lines(document: dict[str, Any]) -> list[str]:
    """The table a person reads (history text is quoted: a hand-edited history.jsonl is text from anywhere)."""
    lines = [f"{'backup':32} {'taken (UTC)':20} {'age':>8} {'size':>12}  last full drill"]
    for backup in document["backups"]:
        taken = datetime.fromisoformat(backup["taken_at"]).astimezone(timezone.utc)
        lines.append(f"{backup['name']:32} {taken:%Y-%m-%d %H:%M:%S} {backup['age_hours']:7.1f}h "
                     f"{backup['size_bytes']:12,}  {quote(backup['last_drill_text'])}")
    return lines
