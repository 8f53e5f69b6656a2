"""The pure comparison of two generations (grimoire_drill.generations): plain records in, judgements out."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from grimoire_drill.generations import (
    Generation,
    all_changes,
    changes,
    from_history,
    from_record,
    gone,
    lag_hours,
    newest_value,
    sanitized,
    went_back,
)
from grimoire_drill.report.history import history_record

YESTERDAY = Generation(
    backup_id="20261130_020000", name="backup_20261130_020000", source="history",
    documents={"legrimoire.recipes": 14_200, "legrimoire.ingredients": 900}, rows={"users": 50, "recipes": 14_200},
    uploads=400, archive_bytes=12_400_000,
    dump_bytes={"mongodb/legrimoire/recipes.bson": 9_000_000, "postgresql/database.backup": 2_000_000},
    indexes={"legrimoire.recipes": ("_id_", "created_at_-1", "title_1")}, tables=("recipes", "users"),
    newest={"mongodb.recipes.updated_at": "2026-11-30T01:00:00+00:00"})


def today(**changed) -> Generation:
    values = dict(backup_id="20261201_020000", name="backup_20261201_020000",
                  documents={"legrimoire.recipes": 284, "legrimoire.ingredients": 910}, rows={"users": 51, "recipes": 284},
                  uploads=401, archive_bytes=294_000,
                  dump_bytes={"mongodb/legrimoire/recipes.bson": 180_000, "postgresql/database.backup": 1_990_000},
                  indexes={"legrimoire.recipes": ("_id_", "created_at_-1", "title_1")}, tables=("recipes", "users"),
                  newest={"mongodb.recipes.updated_at": "2026-12-01T01:00:00+00:00"})
    values.update(changed)
    return Generation(**values)


def test_a_drop_past_the_limit_names_both_backups_and_both_values():
    fell = [c for c in changes(YESTERDAY, today(), "documents") if c.fell_past(20.0)]
    assert [c.what for c in fell] == ["legrimoire.recipes"]
    assert fell[0].line(YESTERDAY.name) == (
        "legrimoire.recipes fell from 14,200 to 284 documents (\u221298 %) since backup_20261130_020000")
    assert not [c for c in changes(YESTERDAY, today(), "uploads") if c.fell_past(20.0)]
    (size,) = changes(YESTERDAY, today(), "archive_size")
    assert size.fell_past(20.0) and "bytes" in size.line(YESTERDAY.name)


def test_without_counts_on_one_side_the_dump_sizes_are_compared_in_bytes():
    from_archive = Generation(backup_id=YESTERDAY.backup_id, name=YESTERDAY.name, source="archive",
                              dump_bytes=YESTERDAY.dump_bytes, uploads=400, archive_bytes=12_400_000)
    (recipes,) = changes(from_archive, today(), "documents")
    assert recipes.unit == "bytes" and recipes.fell_past(20.0)
    assert "fell from 9,000,000 to 180,000 bytes" in recipes.line(from_archive.name)
    (pg,) = changes(from_archive, today(), "rows")
    assert pg.unit == "bytes" and not pg.fell_past(20.0)


def test_gone_collections_tables_and_indexes():
    lost = gone(YESTERDAY, today(documents={"legrimoire.recipes": 284}, tables=("recipes",),
                                 dump_bytes={}, indexes={"legrimoire.recipes": ("_id_", "title_1")}))
    assert {(g.kind, g.name) for g in lost} == {("collection", "legrimoire.ingredients"), ("table", "users"),
                                                ("index", "legrimoire.recipes.created_at_-1")}
    assert gone(YESTERDAY, today()) == []
    assert gone(YESTERDAY, today(truncated=True, tables=())) == [], "a truncated record proves no absence"


def test_newest_values_going_back_in_time():
    known, before = newest_value(YESTERDAY, "mongodb.recipes.updated_at")
    assert known
    _, after = newest_value(today(newest={"mongodb.recipes.updated_at": "2026-11-27T01:00:00"}), "mongodb.recipes.updated_at")
    assert went_back(before, after)
    _, later = newest_value(today(), "mongodb.recipes.updated_at")
    assert not went_back(before, later)
    assert newest_value(YESTERDAY, "postgresql.users.created_at") == (False, None)
    assert lag_hours(later, datetime(2026, 12, 1, 2, tzinfo=timezone.utc)) == 1.0


def test_an_old_or_garbled_history_record_is_read_as_not_known():
    old = {"backup_id": "20261129_020000", "archive": "backup_20261129_020000", "outcome": "passed"}
    previous = from_history(old)
    assert previous.documents is None and previous.indexes is None and previous.newest is None
    assert all_changes(previous, today()) == [] and gone(previous, today()) == []
    garbled = from_record({"documents": {"a.b": "many", "a.c": -1, "a.d": 5}, "uploads": True, "tables": "x",
                           "indexes": [1], "newest": {"f": 3}}, backup_id="x", name="y", source="history")
    assert garbled.documents == {"a.d": 5} and garbled.uploads is None and garbled.tables is None
    assert garbled.indexes is None and garbled.newest == {}


def test_a_generation_survives_summary_and_history_with_hostile_names():
    hostile = today(indexes={"legrimoire.recipes": ("ok_1", "\udc80bad", "x" * 5000)})
    clean = sanitized(hostile, 2000)
    summary = {"finished_at": "2026-12-01T02:10:00+00:00", "outcome": "passed", "generation": clean.as_record(),
               "archive": {"backup_id": clean.backup_id, "name": clean.name}}
    line = json.dumps(history_record(summary), ensure_ascii=False).encode("utf-8")  # no lone surrogate left
    back = from_history(json.loads(line))
    assert back.indexes == clean.indexes and max(len(n) for n in back.indexes["legrimoire.recipes"]) <= 2000
    assert gone(back, sanitized(hostile, 2000)) == [], "both sides are cleaned alike: nothing reads as gone"
