"""Restore ``postgresql/`` into a fresh database: the custom dump with pg_restore, else the plain SQL.

The restore counts every error the tool reports instead of stopping at the first, so the
report shows the whole damage; any error at all fails the drill.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dump import pg_dump_format
from ..errors import DrillFailure

ERROR_LINE = re.compile(r"(pg_restore: error:|ERROR:)\s*(.*)")
TOOL_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class PostgresRestore:
    """What happened when the dump was loaded."""

    database: str
    source: str               # "database.backup" | "database.sql"
    dump_format: str          # "custom" | "plain"
    tool: str                 # "pg_restore" | "psql"
    returncode: int
    errors: tuple[str, ...]
    seconds: float
    output_tail: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.errors


def pick_dump(postgres_dir: Path) -> Path:
    """``database.backup`` when present (what ops restores), else ``database.sql``."""
    for name in ("database.backup", "database.sql"):
        candidate = postgres_dir / name
        if candidate.is_file():
            return candidate
    raise DrillFailure("no PostgreSQL dump (database.backup or database.sql)", where=str(postgres_dir),
                       fix="check the backup job's pg_dump step (it logs 'PostgreSQL backup failed' and goes on)")


def restore_postgres(server, postgres_dir: Path, base_name: str, *, jobs: int, keep_owner: bool) -> PostgresRestore:
    """Create the scratch database on ``server`` and load the dump found in ``postgres_dir``."""
    dump = pick_dump(postgres_dir)
    dump_format = pg_dump_format(dump)
    name = server.database_name(base_name)
    started = time.perf_counter()
    server.create_database(name)
    if dump_format == "custom":
        args = ["-d", name, "--no-password", f"--jobs={max(1, jobs)}"]
        if not keep_owner:
            args += ["--no-owner", "--no-privileges"]
        result = server.run_tool("pg_restore", args + ["{dump}"], {"dump": dump}, timeout=TOOL_TIMEOUT_S)
        tool = "pg_restore"
    else:
        args = ["-d", name, "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "{dump}"]
        result = server.run_tool("psql", args, {"dump": dump}, timeout=TOOL_TIMEOUT_S)
        tool = "psql"
    errors = tuple(match.group(2).strip() for match in map(ERROR_LINE.search, result.stderr.splitlines()) if match)
    return PostgresRestore(
        database=name, source=dump.name, dump_format=dump_format, tool=tool,
        returncode=result.returncode, errors=errors, seconds=time.perf_counter() - started,
        output_tail="\n".join(result.stderr.strip().splitlines()[-8:]),
        detail={"dump_bytes": dump.stat().st_size},
    )
