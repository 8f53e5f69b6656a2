"""The index of a ``--generations`` run: ``generations.json`` and ``index.html``, from plain values only.

Why a writer of its own: the index is read back from the generations' own ``summary.json``
files (what each drill found), so it can be rebuilt from disk and never reaches into a drill.
It is a pure function of plain values, like every writer in ``report/``.

``generations.json`` (schema ``grimoire-drill/generations@1``)::

    {"schema": "grimoire-drill/generations@1", "run_id": "…", "backups": "<folder>",
     "selection": {"mode": "all|newest|random", "count": 3 | null, "seed": 42 | null,
                   "seed_source": "flag|env|run id" | null, "found": 7},
     "started_at": "ISO-8601", "finished_at": "ISO-8601",
     "partial": false, "interrupted": false,          # partial: not every chosen backup was drilled
     "outcome": "passed|failed|error|interrupted", "exit_code": 0,
     "totals": {"PASSED": 3, "FAILED": 0, "ERROR": 0, "INTERRUPTED": 0}, "simulated": true,
     "generations": [                                 # oldest first: the order they were drilled
       {"backup": "backup_20261124_020000", "backup_id": "20261124_020000", "taken_at": "ISO-8601",
        "age_hours": 49.5, "judged_as_of": "ISO-8601" | null, "run_id": "…", "exit_code": 0,
        "verdict": "PASSED|FAILED|ERROR|INTERRUPTED", "simulated": true,
        "failed_checks": 0 | null, "error_checks": 0 | null, "rto_seconds": 4.2 | null,
        "scope": "partial (5 of 46 checks)" | null,  # null: the whole drill ran
        "report": "<path of its report.html, relative to the index>" | null,
        "summary": "<path of its summary.json, relative to the index>" | null, "note": "…" | null,
        "counts": {"mongodb": {"legrimoire.recipes": 120}, "postgresql": {"users": 40}} | null,
        "drift": {"previous": "backup_…" | null,     # the generation drilled just before this one
                  "mongodb": [{"name": "legrimoire.recipes", "previous": 118, "current": 120,
                               "delta": 2, "delta_percent": 1.69 | null}],
                  "postgresql": [...], "omitted": 0}}],
     "not_drilled": ["backup_…"]}                     # chosen, not drilled (the run was interrupted)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..limits import Limits
from ..text import quote
from .atomic import write_atomic

SCHEMA = "grimoire-drill/generations@1"
INDEX_HTML = "index.html"
INDEX_JSON = "generations.json"
VERDICTS = ("PASSED", "FAILED", "ERROR", "INTERRUPTED")
DATABASES = ("mongodb", "postgresql")


def plain_counts(counts: Any, limits: Limits) -> dict[str, dict[str, int]] | None:
    """A summary's ``counts`` as {database: {name: int}}: names quoted, at most max_evidence_items each."""
    if not isinstance(counts, Mapping):
        return None
    plain: dict[str, dict[str, int]] = {}
    for database in DATABASES:
        table = counts.get(database)
        kept: dict[str, int] = {}
        if isinstance(table, Mapping):
            for name, value in table.items():
                if len(kept) >= limits.max_evidence_items:
                    break
                if isinstance(name, str) and isinstance(value, int) and not isinstance(value, bool):
                    kept[quote(name, limits.max_quoted_chars)] = value
        plain[database] = kept
    return plain


def drift(previous: Mapping[str, Mapping[str, int]] | None, current: Mapping[str, Mapping[str, int]] | None,
          limits: Limits) -> dict[str, Any]:
    """Per collection and per table: previous → current, the change and its percent of previous.

    A name in only one of the two has None on the other side; the percent is None when the
    previous count is 0 or unknown. At most ``max_evidence_items`` rows per database (``omitted``
    counts the rest), names sorted so two indexes of one series compare line by line.
    """
    shown: dict[str, Any] = {"omitted": 0}
    for database in DATABASES:
        before = (previous or {}).get(database) or {}
        after = (current or {}).get(database) or {}
        names = sorted(set(before) | set(after))
        rows = []
        for name in names[: limits.max_evidence_items]:
            old, new = before.get(name), after.get(name)
            delta = new - old if old is not None and new is not None else None
            percent = round(delta * 100.0 / old, 2) if delta is not None and old else None
            rows.append({"name": name, "previous": old, "current": new, "delta": delta, "delta_percent": percent})
        shown[database] = rows
        shown["omitted"] += max(0, len(names) - limits.max_evidence_items)
    return shown


def build_index(*, run_id: str, backups: str, selection: Mapping[str, Any], started_at: datetime,
                finished_at: datetime, now: datetime, entries: Sequence[Mapping[str, Any]],
                not_drilled: Sequence[str], interrupted: bool, exit_code: int, outcome: str,
                index_dir: Path, limits: Limits) -> dict[str, Any]:
    """The whole ``generations.json`` document from each drilled generation's plain entry, oldest first.

    Each entry carries ``taken_at`` (an aware datetime), ``report_path``/``summary_path`` (Paths
    or None) and the plain fields of the schema above; ages are from ``now``, links relative to
    ``index_dir``, drift against the entry before it.
    """
    generations = []
    previous: Mapping[str, Any] | None = None
    for entry in entries:
        taken_at: datetime = entry["taken_at"]
        counts = entry.get("counts")
        shown = {key: value for key, value in entry.items() if key not in ("taken_at", "report_path", "summary_path")}
        shown.update(
            taken_at=taken_at.isoformat(),
            age_hours=round((now - taken_at).total_seconds() / 3600, 2),
            report=_relative(entry.get("report_path"), index_dir),
            summary=_relative(entry.get("summary_path"), index_dir),
            drift={"previous": previous["backup"] if previous is not None else None,
                   **drift(previous.get("counts") if previous is not None else None, counts, limits)},
        )
        generations.append(shown)
        previous = entry
    totals = {verdict: sum(1 for g in generations if g["verdict"] == verdict) for verdict in VERDICTS}
    return {
        "schema": SCHEMA, "run_id": run_id, "backups": backups, "selection": dict(selection),
        "started_at": started_at.isoformat(), "finished_at": finished_at.isoformat(),
        "partial": interrupted or bool(not_drilled), "interrupted": interrupted,
        "outcome": outcome, "exit_code": exit_code, "totals": totals,
        "simulated": any(g.get("simulated") is True for g in generations),
        "generations": generations, "not_drilled": list(not_drilled),
    }


def totals_line(index: Mapping[str, Any]) -> str:
    """``7 generations: 6 PASSED, 1 FAILED (backup_20261128_020000)``, and ``(partial: …)`` when cut short."""
    generations = index["generations"]
    parts = []
    for verdict in VERDICTS:
        names = [g["backup"] for g in generations if g["verdict"] == verdict]
        if names:
            parts.append(f"{len(names)} {verdict}" + ("" if verdict == "PASSED" else f" ({', '.join(names)})"))
    line = f"{len(generations)} generation{'s' if len(generations) != 1 else ''}: " + (", ".join(parts) or "none drilled")
    if index["partial"]:
        line += f" — partial: interrupted, {len(index['not_drilled'])} not drilled"
    return line


def write_index(index: Mapping[str, Any], index_dir: Path) -> tuple[Path, Path]:
    """``generations.json`` then ``index.html`` in ``index_dir``, each replaced atomically."""
    from .html.generations import index_page

    json_path = write_atomic(index_dir / INDEX_JSON, json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    html_path = write_atomic(index_dir / INDEX_HTML, index_page(index))
    return html_path, json_path


def _relative(path: Path | None, index_dir: Path) -> str | None:
    return None if path is None else os.path.relpath(path, index_dir)
