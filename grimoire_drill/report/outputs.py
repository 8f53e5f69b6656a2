"""Write one run's outputs in order: summary.json, drill.prom, history line; then seal them.

pytest-html and junitxml write report.html and junit.xml in between (at session finish);
the manifest is written last, once every file is final, so it stamps what an auditor gets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..evidence import plain, plain_mapping
from ..limits import Limits
from ..run_facts import Phase
from .atomic import write_atomic
from .history import append_history, read_history
from .manifest import SIGNATURE_NAME, sign_manifest, write_manifest
from .prometheus import write_prom
from .schema import validate_summary

OUTPUT_FILES = ("report.html", "junit.xml", "summary.json", "drill.prom")
HISTORY_SHOWN = 30


def write_run_outputs(summary: dict[str, Any], report_dir: Path, history_path: Path | None, *,
                      report_seconds_from: float, clock_start: float, prom_file: Path | None = None) -> list[Path]:
    """summary.json (schema-checked), drill.prom (atomic; again at ``prom_file`` if given), one history
    line (unless None); the report phase timed."""
    report_dir.mkdir(parents=True, exist_ok=True)
    _plain_content(summary)
    validate_summary(summary)
    write_prom(summary, report_dir / "drill.prom")
    if prom_file is not None:
        write_prom(summary, prom_file)
    if history_path is not None:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        append_history(summary, history_path)
    summary["phases"].append(Phase.timed("report", began=report_seconds_from, ended=time.perf_counter(),
                                         clock_start=clock_start, status="ok").as_dict())
    write_atomic(report_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return [report_dir / name for name in OUTPUT_FILES]


def _plain_content(summary: dict[str, Any]) -> None:
    """What came from the backup (check messages and evidence, backup_info, the names counts are
    keyed by) as plain bounded values.

    The plugin already made each check plain with the run's limits; this is the writers' own
    guard, so a summary built elsewhere with bytes, surrogates or 1000-deep evidence still
    writes every file instead of raising (idempotent on plain data).
    """
    limits = Limits()
    for check in summary.get("checks", []):
        check["message"] = plain(check.get("message", ""), limits)
        check["evidence"] = plain_mapping(check.get("evidence") or {}, limits)
    archive = summary.get("archive")
    if isinstance(archive, dict) and isinstance(archive.get("backup_info"), dict):
        archive["backup_info"] = plain_mapping(archive["backup_info"], limits)
    for key in ("error", "problems"):          # failure lines quote paths and names from the backup
        if key in summary:
            summary[key] = plain(summary[key], limits)
    for section in ("counts", "source_counts"):
        counts = summary.get(section)
        for database in ("mongodb", "postgresql"):
            if isinstance(counts, dict) and isinstance(counts.get(database), dict):
                counts[database] = plain_mapping(counts[database], limits)


def seal_outputs(summary: dict[str, Any], report_dir: Path, sign_key: str | None = None) -> Path:
    """MANIFEST.sha256 over every output present, with the archive's own hash in its header;
    then, with ``sign_key``, its detached signature MANIFEST.sha256.asc (a stale one is removed first)."""
    present = [report_dir / name for name in OUTPUT_FILES if (report_dir / name).is_file()]
    archive = summary.get("archive", {})
    (report_dir / SIGNATURE_NAME).unlink(missing_ok=True)  # it would vouch for an earlier run's manifest
    manifest = write_manifest(report_dir, present, archive.get("path"), archive.get("sha256"), summary=summary)
    if sign_key:
        sign_manifest(report_dir, sign_key)
    return manifest


def html_sections(summary: dict[str, Any], history_path: Path) -> list[str]:
    """The report's own sections, placed above pytest-html's results table."""
    from . import html_parts, html_run

    history = read_history(history_path, limit=HISTORY_SHOWN)
    return [
        html_parts.styles(),
        html_parts.verdict_banner(summary),
        html_parts.simulated_banner(summary),
        html_parts.archive_identity(summary),
        html_parts.engines_table(summary),
        html_parts.phase_timeline(summary),
        html_parts.counts_table(summary),
        html_parts.growth_table(summary),
        html_parts.checks_table(summary),
        html_parts.rounds_table(summary),
        html_run.attribution_table(summary),
        html_parts.trend_svg(history),
        html_parts.count_trends(history),
    ]
