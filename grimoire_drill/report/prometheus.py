"""The drill's verdict as a Prometheus textfile (node_exporter ``--collector.textfile``).

Alerting wants a handful of numbers: did the last drill pass, when did it run, how old was the
backup, how long did a restore take. Everything comes from the summary; nothing is measured here.

Labels and cardinality — why ``backup_id`` is NOT a label on every metric:
every night brings a new backup id, so a ``backup_id`` label would start a new time series for
every metric every night. Graphs break into one-point fragments (``grimoire_drill_rto_seconds``
could no longer be drawn as one line), ``rate()``/``changes()`` and alert ``for:`` clauses reset,
and the TSDB accumulates dead series. A simulated run adds ``simulated="true"`` to every
series (names unchanged), so a graph or alert never mixes it with real restores. Labels here are
bounded, fixed sets: ``phase`` (7 names),
``status`` (4), ``outcome`` (3), ``collection``/``table`` (the application's schema, ~15),
``database`` (2). The backup's identity is exposed once, on the conventional info metric
``grimoire_drill_backup_info{backup_id=...} 1`` — one new series a night, which is the
accepted cost of being able to join a failing drill to its backup in a query. The sha256 and
paths stay out of labels; they are in summary.json and the manifest.

Label values that come from the backup (collection names, table names) pass through
``_label``: valid UTF-8 (a non-UTF-8 byte would make the file unencodable), clipped, and then
escaped by prometheus_client (backslash, quote, newline), so no name can break the textfile
or forge a sample line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from grimoire_drill.limits import Limits
from grimoire_drill.report.atomic import write_atomic
from grimoire_drill.report.facts import epoch_seconds, is_simulated
from grimoire_drill.report.scope import is_full_pass, is_partial
from grimoire_drill.text import clip

PREFIX = "grimoire_drill"
OUTCOMES = ("passed", "failed", "error", "migration_failed")
CHECK_STATUSES = ("passed", "failed", "skipped", "error", "off")


def render_prom(summary: dict[str, Any]) -> str:
    """The textfile content for ``summary`` (exposition format 0.0.4, HELP/TYPE on each family)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SummaryCollector(summary))
    return generate_latest(registry).decode("utf-8")


def write_prom(summary: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the textfile atomically, so the collector never scrapes half a file."""
    write_atomic(path, render_prom(summary))


class _SummaryCollector:
    """Adapts one summary dict to the prometheus_client collector protocol."""

    def __init__(self, summary: dict[str, Any]):
        self._summary = summary

    def collect(self) -> Iterator[Metric]:
        simulated = is_simulated(self._summary)
        for family in _families(self._summary):
            if simulated:  # every series says it, so no graph or alert mistakes it for a real restore
                family.samples = [s._replace(labels={**s.labels, "simulated": "true"}) for s in family.samples]
            yield family


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))


def _families(summary: dict[str, Any]) -> Iterator[Metric]:
    archive = summary.get("archive", {})
    outcome = summary["outcome"]

    success = _gauge("success", "1 if the last restore drill passed in full (every check ran), else 0.")
    success.add_metric([], 1.0 if is_full_pass(summary) else 0.0)
    yield success

    partial = _gauge("scope_partial", "1 if the last drill ran only some checks (-k, deselected, skipped): "
                     "its outcome proves only those.")
    partial.add_metric([], 1.0 if is_partial(summary) else 0.0)
    yield partial

    outcomes = _gauge(
        "outcome",
        "1 for the last drill's outcome: failed = the backup is bad, error = the harness could not test.",
        ["outcome"],
    )
    for name in OUTCOMES:
        outcomes.add_metric([name], 1.0 if outcome == name else 0.0)
    yield outcomes

    last_run = _gauge("last_run_timestamp_seconds", "Unix time the last drill finished.")
    last_run.add_metric([], epoch_seconds(summary["finished_at"]))
    yield last_run

    yield _optional(
        "backup_age_seconds",
        "Age of the drilled backup when the drill ran, in seconds.",
        None if archive.get("age_hours") is None else float(archive["age_hours"]) * 3600.0,
    )
    yield _optional(
        "backup_timestamp_seconds",
        "Unix time the drilled backup was taken (alert on time() - this between drills).",
        None if archive.get("created_at") is None else epoch_seconds(archive["created_at"]),
    )
    yield _optional("backup_size_bytes", "Size of the drilled backup archive in bytes.", archive.get("size_bytes"))

    info = _gauge("backup_info", "Identity of the drilled backup (the only per-backup label).", ["backup_id"])
    if archive.get("backup_id"):
        info.add_metric([_label(archive["backup_id"])], 1.0)
    yield info

    yield _optional(
        "rto_seconds",
        "Wall time from start to restored and checked (recovery time objective evidence).",
        summary.get("rto_seconds"),
    )

    phases = _gauge("phase_seconds", "Seconds spent in each drill phase.", ["phase"])
    for name, seconds in _summed(summary.get("phases", []), "name", "seconds").items():
        phases.add_metric([_label(name)], seconds)
    yield phases

    checks = _gauge("checks", "Number of drill checks by status.", ["status"])
    totals = summary.get("totals", {})
    for status in CHECK_STATUSES:
        checks.add_metric([status], float(totals.get(status, 0)))
    yield checks

    counts = summary.get("counts", {})
    documents = _gauge("restored_documents", "Documents restored per MongoDB collection (db.collection).", ["collection"])
    for namespace, count in _by_label(counts.get("mongodb", {})).items():
        documents.add_metric([namespace], count)
    yield documents

    rows = _gauge("restored_rows", "Rows restored per PostgreSQL table.", ["table"])
    for table, count in _by_label(counts.get("postgresql", {})).items():
        rows.add_metric([table], count)
    yield rows

    yield _optional("restored_upload_files", "Regular files under uploads/ in the backup.", counts.get("uploads_files"))

    simulated = _gauge("simulated", "1 if any engine was simulated: the run is not audit evidence.")
    simulated.add_metric([], 1.0 if is_simulated(summary) else 0.0)
    yield simulated

    engines = _gauge("engine_info", "Engine that ran each database restore.", ["database", "kind", "version"])
    for database, engine in sorted(summary.get("engines", {}).items()):
        engines.add_metric([_label(database), _label(engine["kind"]), _label(engine.get("version") or "unknown")],
                           1.0)
    yield engines


def _label(value: object) -> str:
    """A label value the textfile can hold: valid UTF-8 (a non-UTF-8 byte shown as ``\\xff``), clipped.

    Backslash, quote and newline stay as they are: prometheus_client escapes those three, which
    is all the exposition format asks, and a scrape then reads the name back unchanged.
    """
    limit = Limits().max_quoted_chars
    text = str(value)[: limit + 1]
    try:
        raw = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:                   # a lone surrogate that no byte stands for
        raw = text.encode("utf-8", errors="backslashreplace")
    return clip(raw.decode("utf-8", errors="backslashreplace"), limit)


def _by_label(counts: dict[str, Any]) -> dict[str, float]:
    """Counts keyed by label value, in order; names that clip to one label are summed, never two samples."""
    totals: dict[str, float] = {}
    for name, count in sorted(counts.items()):
        label = _label(name)
        totals[label] = totals.get(label, 0.0) + float(count)
    return totals


def _optional(name: str, documentation: str, value: float | int | None) -> GaugeMetricFamily:
    """A family whose sample is left out when unknown: absent, not a misleading 0."""
    family = _gauge(name, documentation)
    if value is not None:
        family.add_metric([], float(value))
    return family


def _summed(items: Iterable[dict[str, Any]], key: str, value: str) -> dict[str, float]:
    """Phases may repeat (pre-migration runs checks twice); one series per phase, summed."""
    totals: dict[str, float] = {}
    for item in items:
        totals[item[key]] = totals.get(item[key], 0.0) + float(item[value])
    return totals
