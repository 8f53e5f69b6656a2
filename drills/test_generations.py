"""The backup against the one before it: nothing fell past [generations] max_drop_percent, nothing
is gone, and no named timestamp went back in time or lags too far behind the backup's own time.

A backup can be whole and restorable and still hold a fraction of yesterday's data (a dump of the
wrong database, a collection dropped by a bad migration, an old dump copied under a new name).
Only a comparison with the previous generation sees that. The previous generation is the last
full drill of an older backup in history.jsonl, else the older archive beside this one (its tar
headers and metadata only: then sizes are in bytes). The comparison itself is
``grimoire_drill.generations`` (pure, shared with the report).
"""

from __future__ import annotations

import pytest

from grimoire_drill.check_outcome import check_off
from grimoire_drill.generations import (
    Generation,
    changes,
    comparable_parts,
    field_id,
    gone,
    knows,
    lag_hours,
    newest_value,
    time_text,
    went_back,
)
from grimoire_drill.text import quote

WHAT = {"documents": "documents per collection", "rows": "rows per table", "uploads": "upload files",
        "archive_size": "archive size"}


def _previous(drill) -> Generation:
    found = drill.previous_generation()
    if found.generation is None:
        if found.unreadable:
            pytest.skip(found.reason)  # there was one, and it could not be read: nothing proven
        check_off(found.reason)   # the first backup ever: nothing to compare with
    return found.generation


def _off(thresholds, name: str) -> None:
    if thresholds.is_off(name):
        check_off(f"{name} is off in expectations.toml ([generations] {name})")


def _both(previous: Generation, current: Generation) -> dict:
    return {"previous": {"backup_id": previous.backup_id, "name": previous.name, "source": previous.source},
            "current": {"backup_id": current.backup_id, "name": current.name}}


def _drop_check(kind: str, drill, thresholds, evidence) -> None:
    _off(thresholds, "max_drop_percent")
    previous = _previous(drill)
    current = drill.this_generation()
    limit = thresholds.max_drop_percent
    compared = changes(previous, current, kind)
    evidence.data.update(_both(previous, current), max_drop_percent=limit,
                         changes=[change.as_dict() for change in compared])
    if not compared:
        side = previous.name if not knows(previous, kind) else current.name if not knows(current, kind) else None
        check_off(f"no {WHAT[kind]} to compare: {side} does not record them" if side
                       else f"no {WHAT[kind]} both {previous.name} and {current.name} have")
    fell = [change for change in compared if change.fell_past(limit)]
    assert not fell, "; ".join(change.line(previous.name) for change in fell) + (
        f" — more than [generations] max_drop_percent ({limit:g} %): check the backup job's dump of the right "
        "database, or raise max_drop_percent if the data was deleted on purpose")
    shown = min(compared, key=lambda change: change.percent if change.percent is not None else 0.0)
    evidence.message = (f"{WHAT[kind]}: none of {len(compared)} fell more than {limit:g} %; "
                        f"the least growth: {shown.line(previous.name)}")


@pytest.mark.check("generations.documents")
def test_documents_kept(drill, thresholds, evidence):
    _drop_check("documents", drill, thresholds, evidence)


@pytest.mark.check("generations.rows")
def test_rows_kept(drill, thresholds, evidence):
    _drop_check("rows", drill, thresholds, evidence)


@pytest.mark.check("generations.uploads")
def test_uploads_kept(drill, thresholds, evidence):
    _drop_check("uploads", drill, thresholds, evidence)


@pytest.mark.check("generations.archive_size")
def test_whole_size_kept(drill, thresholds, evidence):
    _drop_check("archive_size", drill, thresholds, evidence)


@pytest.mark.check("generations.gone")
def test_nothing_gone(drill, evidence):
    previous = _previous(drill)
    current = drill.this_generation()
    parts = comparable_parts(previous, current)
    lost = gone(previous, current)
    evidence.data.update(_both(previous, current), compared=parts,
                         gone=[{"kind": item.kind, "name": item.name} for item in lost])
    if not parts:
        check_off(f"{previous.name} records no collections, tables or indexes to compare with")
    if previous.truncated or current.truncated:
        pytest.skip("a generation record was cut at limits.max_generation_entries: absence proves nothing")
    assert not lost, (
        f"gone since {previous.name}: " + ", ".join(f"{item.kind} {quote(item.name)}" for item in lost[:20])
        + (f" and {len(lost) - 20} more" if len(lost) > 20 else "")
        + " — check the backup job's dump options, or a migration that dropped them")
    evidence.message = f"none of {previous.name}'s {', '.join(parts)} is gone"


@pytest.mark.check("generations.freshness")
def test_data_not_older(drill, freshness_field, evidence):
    ident = field_id(*freshness_field)
    previous = _previous(drill)
    measured = drill.newest_values()[ident]
    current = drill.this_generation()
    known, before = newest_value(previous, ident)
    evidence.data.update(_both(previous, current), field=ident, previous_newest=time_text(before) if known else None,
                         current_newest=time_text(measured.value), ignored=measured.ignored, problem=measured.problem)
    if measured.problem is not None:
        pytest.skip(f"{ident}: {measured.problem}")
    if not known:
        check_off(f"{ident}: {previous.name} does not record its newest value"
                    + (" (PostgreSQL is not read from an archive without a restore)"
                       if previous.source == "archive" and ident.startswith("postgresql.") else ""))
    ignored = f" ({measured.ignored:,} values of another type left out)" if measured.ignored else ""
    if before is None:
        evidence.message = f"{ident}: newest {time_text(measured.value)}; {previous.name} had no value{ignored}"
        return
    assert measured.value is not None, (
        f"{ident}: no value any more, {previous.name}'s newest was {time_text(before)}{ignored}")
    assert not went_back(before, measured.value), (
        f"{ident}: newest value {time_text(measured.value)} is older than {previous.name}'s {time_text(before)} "
        f"— the data went back in time (an old dump under a new name?){ignored}")
    evidence.message = f"{ident}: newest {time_text(measured.value)}, not older than {previous.name}'s {time_text(before)}{ignored}"


@pytest.mark.check("generations.data_lag")
def test_data_recent(drill, thresholds, freshness_field, evidence):
    _off(thresholds, "max_data_lag_hours")
    ident = field_id(*freshness_field)
    measured = drill.newest_values()[ident]
    taken_at = drill.located().taken_at
    limit = thresholds.max_data_lag_hours
    evidence.data.update(field=ident, newest=time_text(measured.value), taken_at=taken_at.isoformat(),
                         max_data_lag_hours=limit, ignored=measured.ignored, problem=measured.problem)
    if measured.problem is not None:
        pytest.skip(f"{ident}: {measured.problem}")
    assert measured.value is not None, f"{ident}: no value at all, so nothing is recent"
    lag = lag_hours(measured.value, taken_at)
    evidence.data.update(lag_hours=round(lag, 2))
    assert lag <= limit, (
        f"{ident}: the newest value {time_text(measured.value)} is {lag:,.1f} h older than the backup "
        f"({taken_at.isoformat()}), more than [generations] max_data_lag_hours ({limit:g} h)")
    evidence.message = f"{ident}: the newest value is {lag:,.1f} h before the backup (limit {limit:g} h)"
