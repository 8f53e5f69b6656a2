"""Pre-migration: restore once, check, run the user's command against the copy, check again.

Both rounds share one restore (one DrillSession); the command sees the restored databases in
its environment and nothing else of ours. The second round's report shows both rounds side by
side and what the command changed (tables, row counts, Alembic revision).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from .errors import GrimoireDrillError
from .report.html_parts import redact
from .report.summary import CheckResult
from .session import DrillSession

OUTPUT_TAIL_CHARS = 4000


def database_environment(session: DrillSession) -> dict[str, str]:
    """DATABASE_URL / MONGODB_URL (what Le Grimoire's backend reads) and GRIMOIRE_DRILL_* twins."""
    env: dict[str, str] = {}
    if session.postgres.engine is not None and session.postgres.restore.error is None:
        url = session.postgres.engine.url(session.postgres.restore.value.database)
        env.update(DATABASE_URL=url, GRIMOIRE_DRILL_DATABASE_URL=url,
                   GRIMOIRE_DRILL_POSTGRES_DATABASE=session.postgres.restore.value.database)
    if session.mongo.engine is not None and session.mongo.restore.error is None:
        db = session.mongo.engine.database_name(session.expectations.mongo_database)
        url = session.mongo.engine.url(db)
        if url is not None:
            env.update(MONGODB_URL=url, GRIMOIRE_DRILL_MONGODB_URL=url)
        env.update(MONGODB_DB_NAME=db, GRIMOIRE_DRILL_MONGODB_DATABASE=db)
    return env


def alembic_revision(session: DrillSession) -> str | None:
    try:
        with session.postgres_connect() as conn:
            if not conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()[0]:
                return None
            rows = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version ORDER BY 1")]
    except (GrimoireDrillError, psycopg.Error):
        return None
    return ",".join(rows) if rows else None


def round_record(label: str, summary: dict[str, Any], session: DrillSession) -> dict[str, Any]:
    return {"label": label, "outcome": summary["outcome"], "totals": summary["totals"],
            "counts": summary["counts"], "alembic_version": alembic_revision(session)}


def run_command(command: str, session: DrillSession, cwd: Path) -> dict[str, Any]:
    """Run CMD through the shell with the restored databases in its environment; keep its output tail."""
    env = dict(os.environ)
    added = database_environment(session)
    env.update(added)
    started = time.perf_counter()
    done = subprocess.run(command, shell=True, env=env, cwd=cwd, capture_output=True, text=True,
                          errors="replace", check=False)
    output = (done.stdout + done.stderr)[-OUTPUT_TAIL_CHARS:]
    for secret in added.values():
        output = output.replace(secret, redact(secret))
    return {"command": command, "exit_code": done.returncode, "seconds": round(time.perf_counter() - started, 3),
            "output_tail": redact(output), "environment": sorted(added)}


def command_check(result: dict[str, Any]) -> CheckResult:
    ok = result["exit_code"] == 0
    message = (f"--then command exited 0 against the restored copy in {result['seconds']:.1f}s" if ok else
               f"--then command exited {result['exit_code']}: {(result['output_tail'].strip().splitlines() or [''])[-1][:200]}")
    return CheckResult("premigration.command", "passed" if ok else "failed", message,
                       {"command": result["command"], "exit_code": result["exit_code"],
                        "output_tail": result["output_tail"][-1500:]})


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the command changed: tables added/removed, row counts, Alembic revision."""
    b, a = before["counts"].get("postgresql", {}), after["counts"].get("postgresql", {})
    return {
        "tables_added": sorted(set(a) - set(b)),
        "tables_removed": sorted(set(b) - set(a)),
        "row_counts_changed": {t: [b[t], a[t]] for t in sorted(set(a) & set(b)) if a[t] != b[t]},
        "alembic_version": [before.get("alembic_version"), after.get("alembic_version")],
    }
