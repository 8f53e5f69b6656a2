"""A realistic, valid ``grimoire-drill/summary@2`` instance and matching history.

It is the reference example of the schema: tests of every writer start from it, and
``python -m grimoire_drill.report.example OUT.html`` previews the standalone page without
running a drill. Each call builds fresh dicts, so callers may mutate what they get.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from grimoire_drill import __version__

EXAMPLE_SHA256 = "5b1f0c6e2d9a4c7e8f3a1b2c4d6e8f0a1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b"
MONGO_COUNTS = {"legrimoire.recipes": 1284, "legrimoire.ingredients": 5912, "legrimoire.categories": 312}
PG_COUNTS = {
    "users": 57, "recipes": 118, "recipe_tags": 340, "grocery_stores": 6, "grocery_specials": 1420,
    "shopping_lists": 23, "shopping_list_items": 311, "favorites": 95, "ocr_jobs": 12, "alembic_version": 1,
}


def example_summary() -> dict[str, Any]:
    """A passed nightly drill on real engines (docker), with every optional extra filled in."""
    checks = [
        _check("archive.found", "Latest backup is backup_20261124_020000.tar.gz",
               {"candidates": 7, "chosen": "backup_20261124_020000.tar.gz"}),
        _check("archive.fresh", "Backup is 1.5 h old (limit 26 h)", {"age_hours": 1.5, "max_age_hours": 26}),
        _check("archive.size", "Archive is 18.4 MiB (minimum 100 KB)", {"size_bytes": 19293184, "min_bytes": 102400}),
        _check("archive.reads_whole", "tar reads all 4,213 members", {"members": 4213}),
        _check("archive.backup_info", "backup_info.txt matches the archive name",
               {"Backup ID": "20261124_020000", "name": "backup_20261124_020000"}),
        _check("mongodb.index.ingredients.off_id_1", "ingredients has unique index off_id_1",
               {"key": {"off_id": 1}, "unique": True}),
        _check("mongodb.index.categories.off_id_1", "categories has unique index off_id_1",
               {"key": {"off_id": 1}, "unique": True}),
        _check("mongodb.index.recipes.created_at_-1", "recipes has index created_at_-1",
               {"key": {"created_at": -1}, "unique": False}),
        _check("mongodb.counts", "Restored document counts match the dump",
               {"collections": [{"collection": ns, "dump": n, "restored": n} for ns, n in MONGO_COUNTS.items()]}),
        _check("postgresql.tables", "All 10 expected tables exist", {"tables": sorted(PG_COUNTS)}),
        _check("postgresql.alembic_head", "alembic_version is at head 82d65ab11e92",
               {"alembic_version": "82d65ab11e92", "expected": "82d65ab11e92"}),
        _check("postgresql.sequences", "Every id sequence is at or above max(id)",
               {"sequences": [{"table": "users", "last_value": 57, "max_id": 57},
                              {"table": "recipes", "last_value": 121, "max_id": 118}]}),
        _check("consistency.export_counts", "recipes_export.json has as many recipes as the dump",
               {"dump": 1284, "export": 1284}),
        _check("consistency.uploads", "Every image_url points to a file in uploads/",
               {"referenced": 1190, "present": 1190, "missing": []}),
    ]
    return {
        "schema": "grimoire-drill/summary@2",
        "tool": {"name": "grimoire-drill", "version": __version__},
        "run_id": "20261124033000a1b2c3",
        "outcome": "passed",
        "started_at": "2026-11-24T03:30:00+00:00",
        "finished_at": "2026-11-24T03:31:47.250000+00:00",
        "simulated": False,
        "archive": {
            "path": "/srv/legrimoire/backups/backup_20261124_020000.tar.gz",
            "name": "backup_20261124_020000",
            "backup_id": "20261124_020000",
            "created_at": "2026-11-24T02:00:00+00:00",
            "age_hours": 1.5,
            "size_bytes": 19293184,
            "sha256": EXAMPLE_SHA256,
            "kind": "tar.gz",
            "backup_info": {
                "Backup Date": "2026-11-24 02:00:00 UTC",
                "Backup ID": "20261124_020000",
                "Environment": "production",
                "Host": "legrimoire-prod-1",
            },
        },
        "engines": {
            "mongodb": {
                "kind": "docker", "version": "7.0.15", "simulated": False, "image": "mongo:7.0",
                "image_id": "sha256:3f1c9a0e5d7b2a4c6e8f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d",
                "tools": {"mongorestore": "100.10.0"},
            },
            "postgresql": {
                "kind": "docker", "version": "15.10", "simulated": False, "image": "postgres:15-alpine",
                "image_id": "sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
                "tools": {"pg_restore": "15.10"},
            },
        },
        "phases": [
            {"name": "locate", "seconds": 0.04, "status": "ok", "detail": {"candidates": 7}},
            {"name": "archive", "seconds": 2.81, "status": "ok",
             "detail": {"bytes": 19293184, "members": 4213, "bytes_per_s": 6865901.4}},
            {"name": "start", "seconds": 11.62, "status": "ok"},
            {"name": "restore_mongodb", "seconds": 6.35, "status": "ok",
             "detail": {"documents": 7508, "bytes": 14811136, "documents_per_s": 1182.4}},
            {"name": "restore_postgresql", "seconds": 3.12, "status": "ok",
             "detail": {"rows": 2383, "rows_per_s": 763.8}},
            {"name": "checks", "seconds": 4.90, "status": "ok"},
            {"name": "report", "seconds": 0.31, "status": "ok"},
        ],
        "rto_seconds": 28.84,
        "counts": {"mongodb": dict(MONGO_COUNTS), "postgresql": dict(PG_COUNTS), "uploads_files": 1190},
        "source_counts": {
            "mongodb": {
                "legrimoire.recipes": {"dump": 1284, "export": 1284},
                "legrimoire.ingredients": {"dump": 5912, "export": 5912},
                "legrimoire.categories": {"dump": 312, "export": None},
            },
            "postgresql": dict(PG_COUNTS),
        },
        "checks": checks,
        "totals": {"passed": len(checks), "failed": 0, "skipped": 0, "error": 0},
        "scope": {"kind": "full", "ran": len(checks), "of": len(checks), "selection": "",
                  "deselected": 0, "skipped": 0, "not_reached": 0},
        "thresholds": {"max_age_hours": {"value": 26.0, "source": "expectations"},
                       "min_size_kb": {"value": 100.0, "source": "expectations"},
                       "future_tolerance_hours": {"value": 0.1, "source": "default"},
                       "backup_date_max_lag_hours": {"value": 12.0, "source": "default"},
                       "backup_date_early_minutes": {"value": 1.0, "source": "default"}},
    }


def example_history(runs: int = 8) -> list[dict[str, Any]]:
    """``runs`` history records (oldest first) ending with one failure and one simulated run."""
    records = []
    for day in range(runs):
        backup_id = f"202611{10 + day:02d}_020000"
        failed = day == runs - 3
        records.append({
            "run_id": f"202611{10 + day:02d}033000{day:06x}",
            "finished_at": f"2026-11-{10 + day:02d}T03:31:{10 + day:02d}+00:00",
            "backup_id": backup_id,
            "archive": f"backup_{backup_id}",
            "sha256": f"{day:064x}",
            "outcome": "failed" if failed else "passed",
            "rto_seconds": 27.5 + (day % 3) * 1.7 + (9.0 if failed else 0.0),
            "simulated": day == runs - 2,
            "totals": {"passed": 13 if failed else 14, "failed": 1 if failed else 0, "skipped": 0, "error": 0},
            "scope": {"kind": "full", "ran": 14, "of": 14, "selection": ""},
            "verdict": "FAILED" if failed else "PASSED",
        })
    return records


def main(argv: list[str]) -> int:
    """Write the example as a standalone page: ``python -m grimoire_drill.report.example OUT.html``."""
    from grimoire_drill.report.atomic import write_atomic
    from grimoire_drill.report.html_parts import full_page

    if len(argv) != 1:
        print("usage: python -m grimoire_drill.report.example OUT.html", file=sys.stderr)
        return 2
    target = write_atomic(Path(argv[0]), full_page(example_summary(), example_history()))
    print(target)
    return 0


def _check(check_id: str, message: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"id": check_id, "status": "passed", "message": message, "evidence": evidence}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
