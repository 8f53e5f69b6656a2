"""``history.jsonl``: one line per drill, so the report can show a trend and ``list`` a verdict.

Several drills may finish at once (CI matrix, a manual run during the nightly one), all
appending to the same file. Each record is therefore written with a single ``write(2)`` on an
``O_APPEND`` descriptor: the kernel places it at the end in one piece, so lines never
interleave. A run killed mid-write can still leave a torn last line; readers skip any line
that is not a JSON object instead of failing the next drill over it.
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from grimoire_drill.errors import HarnessError
from grimoire_drill.report.facts import is_simulated
from grimoire_drill.report.scope import is_whole_drill_verdict, scope_of, verdict_label

DEFAULT_LIMIT = 30


def history_record(summary: dict[str, Any]) -> dict[str, Any]:
    """The few fields a trend needs, and this backup as a generation (``generation``: documents per
    collection, rows per table, uploads, archive and dump sizes, index and table names, the newest
    timestamps), what the next drill compares with; the full evidence stays in each run's summary.json."""
    archive = summary.get("archive", {})
    record = {
        "run_id": summary.get("run_id"),
        "finished_at": summary["finished_at"],
        "backup_id": archive.get("backup_id"),
        "archive": archive.get("name"),
        "sha256": archive.get("sha256"),
        "outcome": summary["outcome"],
        "rto_seconds": summary.get("rto_seconds"),
        "simulated": is_simulated(summary),
        "totals": dict(summary.get("totals", {})),
        "scope": {key: scope_of(summary)[key] for key in ("kind", "ran", "of", "selection")},
        "verdict": verdict_label(summary),
    }
    if isinstance(summary.get("generation"), dict):
        record["generation"] = summary["generation"]
    return record


def last_runs(records: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Per backup id: (its last *full* drill's record, a partial run's record made after it), each maybe None.

    A failure of the whole drill counts as full (see ``is_whole_drill_verdict``). A record
    without a scope predates it (summary@1) and is read as full, as it was claimed then.
    """
    full: dict[str, dict[str, Any]] = {}
    later_partial: dict[str, dict[str, Any]] = {}
    for record in records:
        backup_id = record.get("backup_id")
        if is_whole_drill_verdict(record):
            full[backup_id] = record
            later_partial.pop(backup_id, None)
        else:
            later_partial[backup_id] = record
    return {backup_id: (full.get(backup_id), later_partial.get(backup_id)) for backup_id in set(full) | set(later_partial)}


def last_verdicts(records: list[dict[str, Any]]) -> dict[str, str]:
    """Per backup id, the last *full* drill's verdict as ``list`` shows it (a later partial run is noted)."""
    shown: dict[str, str] = {}
    for backup_id, (full, later_partial) in last_runs(records).items():
        parts = [_verdict_words(full) if full is not None else "no full drill"]
        if later_partial is not None:
            parts.append(f"(since then: {_verdict_words(later_partial)})")
        shown[backup_id] = " ".join(parts)
    return shown


def _verdict_words(record: dict[str, Any]) -> str:
    words = str(record.get("verdict") or str(record.get("outcome", "unknown")).upper())
    if record.get("simulated") is True:
        words += " SIMULATED"
    return f"{words} {record.get('finished_at', '')}".strip()


def append_history(summary: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """Append this run's record as one JSON line; return the record written.

    If the file ends in a torn line (no final newline), the record starts with a newline so it
    lands on a line of its own rather than being glued to the debris. (Seeing another run's
    write in flight can add a spare blank line; readers skip blank lines.)
    """
    target = Path(path)
    line = json.dumps(history_record(summary), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    payload = (line + "\n").encode("utf-8")
    if _ends_torn(target):
        payload = b"\n" + payload
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HarnessError(
            f"cannot open run history: {exc.strerror or exc}",
            where=str(target),
            fix="create its folder or point --history at a writable file",
        ) from exc
    try:
        written = os.write(fd, payload)
        os.fsync(fd)
    except OSError as exc:
        raise HarnessError(
            f"cannot append to run history: {exc.strerror or exc}",
            where=str(target),
            fix="check free space and permissions",
        ) from exc
    finally:
        os.close(fd)
    if written != len(payload):
        raise HarnessError(
            f"run history append was cut short ({written} of {len(payload)} bytes)",
            where=str(target),
            fix="check free space; the torn line will be skipped by readers",
        )
    return json.loads(line)


def read_history(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """The last ``limit`` records, oldest first; [] when there is no history yet.

    Torn or garbage lines (a killed run, a hand edit) are skipped, not fatal: a broken trend
    chart must never fail a drill.
    """
    if limit <= 0:
        return []
    target = Path(path)
    records: deque[dict[str, Any]] = deque(maxlen=limit)
    try:
        with target.open("r", encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                record = _parse(raw)
                if record is not None:
                    records.append(record)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise HarnessError(
            f"cannot read run history: {exc.strerror or exc}",
            where=str(target),
            fix="check its permissions or point --history elsewhere",
        ) from exc
    return list(records)


def _parse(raw: str) -> dict[str, Any] | None:
    text = raw.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or "outcome" not in record:
        return None
    return record


def _ends_torn(target: Path) -> bool:
    """True when the file exists, is not empty, and its last byte is not a newline."""
    try:
        with target.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:
        return False  # missing, or unreadable: os.open will report the real problem
