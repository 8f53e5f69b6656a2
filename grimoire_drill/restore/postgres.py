"""Restore ``postgresql/`` into a fresh database: the custom dump with pg_restore, else the plain SQL.

The dump is untrusted, so it is loaded in a sandbox: the engine creates an unprivileged role
owning only the scratch database (extensions installed first, by the admin), and the tool
connects as that role (``pg_restore --no-owner --no-privileges``: every object belongs to it).
A plain file goes through psql in restricted mode (plain_sql.py), so no meta-command runs.

The restore counts every error the tool reports instead of stopping at the first, so the
report shows the whole damage; any error at all fails the drill. Each error says what it
concerns (the statement pg_restore ran, the line of database.sql), so a person can find it.

A server that dies during the restore is not the backup's fault: the tool's errors then say
nothing about the dump, so the restore raises a HarnessError (exit 2) instead of failing checks.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import psycopg

from ..dump import pg_dump_format
from ..engines.base import ToolResult
from ..engines.contract import PostgresEngine, RestoreRole
from ..errors import DrillFailure, GrimoireDrillError, HarnessError
from ..limits import Limits
from ..text import quote
from . import plain_sql
from .growth import GrowthGuard, restored_size_limit

TOOL_TIMEOUT_S = 6 * 3600
SERVER_PROBE_TIMEOUT_S = 5
PSQL_PROBE_TIMEOUT_S = 60
STATEMENT_CHARS = 160

# pg_restore: "pg_restore: error: <msg>"; psql: "psql:<file>:<line>: ERROR:  <msg>" or "psql: error: <msg>".
PG_RESTORE_ERROR = re.compile(r"^pg_restore: error:\s*(?P<msg>.*)$")
# psql's own refusals (meta-commands under \restrict) say "error:" in lower case.
PSQL_ERROR = re.compile(r"^psql:(?P<file>.*?):(?P<line>\d+):\s*(?:ERROR|FATAL|PANIC|error):\s*(?P<msg>.*)$")
PSQL_TOOL_ERROR = re.compile(r"^psql: error:\s*(?P<msg>.*)$")
TOC_ENTRY = re.compile(r"^pg_restore: (?:error: )?from TOC entry \d+; [\d ]+ (?P<what>(?:.*\S)?)\s*$")  # linear: no lazy group before \s*$
COMMAND_WAS = re.compile(r"^Command was:\s*(?P<sql>.*)$")
IGNORED_ERRORS = re.compile(r"^pg_restore: warning: errors ignored on restore: (\d+)$", re.MULTILINE)
# What the server and psql say when the sandbox refuses what a dump asked for.
SANDBOX_REFUSAL = re.compile(
    r"permission denied|must be superuser|must be owner|pg_execute_server_program|pg_read_server_files"
    r"|pg_write_server_files|psql meta-command refused")
# What libpq and the server say when the server, not the dump, is the problem.
SERVER_LOST = re.compile(
    r"server closed the connection unexpectedly|terminating connection because of crash"
    r"|terminating connection due to (?:unexpected postmaster exit|administrator command)"
    r"|connection to server was lost|could not connect to server"
    r"|no connection to the server"
    r"|the database system is (?:shutting down|in recovery mode|starting up)|SSL SYSCALL error: EOF",
    re.IGNORECASE,
)
# libpq's "connection to server at ... failed": found per line with str.find, since a
# "connection to server .* failed" regex rescans the line from every occurrence (quadratic on
# stderr that quotes dump content).
CONNECTION_TO = "connection to server "
CONNECTION_FAILED = " failed"
# Lines (or the text after a tool's prefix) that quote the dump rather than report on the connection.
# A server message at these levels came from a live server, and its text may be the dump's (RAISE NOTICE).
SERVER_SAID = ("ERROR:", "WARNING:", "NOTICE:", "INFO:", "LOG:", "DEBUG:")
QUOTING_PREFIXES = ("Command was:", "LINE ", "DETAIL:", "HINT:", "CONTEXT:", "QUERY:", "STATEMENT:")


def _own_lines(stderr: str) -> list[str]:
    """The lines in which the tool or libpq speaks for itself, without the dump's own text.

    pg_restore echoes each failed statement (``Command was: …``) and psql quotes the statement around
    an error (``LINE 3: …``, ``DETAIL``, ``CONTEXT``, ``QUERY``); a server ``ERROR`` or ``NOTICE`` line
    quotes names or text from the dump and proves the server was there to answer. A dump could spell "server closed the
    connection unexpectedly" in any of those to pass a bad backup off as a harness failure (exit 2),
    so none of them is read for it.
    """
    own = []
    for line in stderr.splitlines():
        if line.startswith(QUOTING_PREFIXES) or any(level in line for level in SERVER_SAID):
            continue
        text = line.split(": ", 2)[-1] if line.startswith(("pg_restore:", "psql:")) else line
        if text.lstrip().startswith(QUOTING_PREFIXES):
            continue
        own.append(line)
    return own


def _says_server_lost(stderr: str) -> bool:
    for line in _own_lines(stderr):
        if SERVER_LOST.search(line) is not None:
            return True
        lowered = line.lower()
        start = lowered.find(CONNECTION_TO)
        if start >= 0 and lowered.find(CONNECTION_FAILED, start + len(CONNECTION_TO)) >= 0:
            return True
    return False


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
        """No error; and a clean exit, or one whose every cause was a refusal judged harmless."""
        return not self.errors and (self.returncode == 0 or bool(self.detail.get("exit_explained")))

    @property
    def refused_by_sandbox(self) -> int:
        """Errors that are the sandbox saying no (server programs or files, superuser, meta-commands)."""
        return sum(1 for error in self.errors if SANDBOX_REFUSAL.search(error))


def pick_dump(postgres_dir: Path) -> Path:
    """``database.backup`` when present (what ops restores), else ``database.sql``."""
    for name in ("database.backup", "database.sql"):
        candidate = postgres_dir / name
        if candidate.is_file():
            return candidate
    raise DrillFailure("no PostgreSQL dump (database.backup or database.sql): PostgreSQL was down or pg_dump "
                       "failed at backup time", where=str(postgres_dir),
                       fix="check the backup job's pg_dump step (it logs 'PostgreSQL backup failed' and goes on)")


def restore_postgres(server: PostgresEngine, postgres_dir: Path, base_name: str, *, jobs: int, owner: str,
                     extensions: Iterable[str] = (), work_dir: Path | None = None,
                     limits: Limits = Limits()) -> PostgresRestore:
    """Create the sandbox (role + scratch database) on ``server`` and load the dump in ``postgres_dir`` as the role.

    ``owner`` is the app's user (expectations' ``[postgresql] user``): the role's name on a
    server the drill started, the stem of a per-run name on an external one.
    """
    dump = pick_dump(postgres_dir)
    dump_format = pg_dump_format(dump)
    name = server.database_name(base_name)
    started = time.perf_counter()
    role = server.create_sandbox(name, owner=owner, extensions=tuple(extensions))
    dump_bytes = dump.stat().st_size
    detail: dict[str, Any] = {"dump_bytes": dump_bytes, "role": role.name}
    ceiling = restored_size_limit(dump_bytes, limits.max_restored_ratio, limits.restored_floor_bytes)
    with GrowthGuard(server.conninfo("postgres"), name, role.name, ceiling) as guard:
        if dump_format == "custom":
            args = ["-d", name, "--no-password", f"--jobs={max(1, jobs)}", "--no-owner", "--no-privileges", "{dump}"]
            result = server.run_tool("pg_restore", args, {"dump": dump}, timeout=TOOL_TIMEOUT_S, role=role)
            tool = "pg_restore"
        else:
            tool = "psql"
            result = _restricted_psql(server, name, role, dump, work_dir)
    if guard.tripped is not None:
        raise DrillFailure(
            f"the restored database grew to {guard.tripped:,} bytes, past {ceiling:,} "
            f"({limits.name('max_restored_ratio')} × the {dump_bytes:,}-byte dump, at least "
            f"{limits.name('restored_floor_bytes')}): {tool} was stopped",
            where=f"postgresql/{dump.name}",
            fix="a dump that makes data out of nothing is refused; if the data really is this large, "
                "raise limits.max_restored_ratio in expectations.toml")
    detail["restored_bytes_seen"] = guard.largest
    if dump_format == "custom":
        errors = tuple(tool_errors(result.stderr, dump.name, limits.max_quoted_chars))
    else:
        found, tolerated = psql_errors(result.stderr, dump, limits.max_quoted_chars)
        errors = tuple(found)
        if tolerated:
            detail["own_restrict_lines"] = tolerated
    errors, skipped = _without_admin_extension_comments(errors, role.admin_extensions)
    if skipped:
        detail["extension_comments_skipped"] = skipped
        ignored = IGNORED_ERRORS.findall(result.stderr)  # the last: pg_restore's own summary line
        if not errors and ignored and int(ignored[-1]) == len(skipped):
            detail["exit_explained"] = True   # pg_restore exits 1 for exactly those refused comments
    if result.returncode != 0 or errors:
        _raise_if_server_lost(server, tool, dump, result.stderr, errors)
    return PostgresRestore(
        database=name, source=dump.name, dump_format=dump_format, tool=tool,
        returncode=result.returncode, errors=errors, seconds=time.perf_counter() - started,
        output_tail="\n".join(result.stderr.strip().splitlines()[-8:]),
        detail=detail,
    )


def _restricted_psql(server: PostgresEngine, name: str, role: RestoreRole, dump: Path,
                     work_dir: Path | None) -> ToolResult:
    """psql as the role, in restricted mode from before the dump's first line (after a probe that it has one)."""
    with tempfile.TemporaryDirectory(prefix="psql-", dir=work_dir) as scratch:
        restrict = plain_sql.write_restrict_file(Path(scratch))
        probe = server.run_tool("psql", plain_sql.probe_args(name, "{restrict}"), {"restrict": restrict},
                                timeout=PSQL_PROBE_TIMEOUT_S, role=role)
        plain_sql.require_restricted_mode(probe.stdout, probe.stderr, probe.returncode)
        return server.run_tool("psql", plain_sql.psql_args(name, "{restrict}", "{dump}"),
                               {"restrict": restrict, "dump": dump}, timeout=TOOL_TIMEOUT_S, role=role)


def _without_admin_extension_comments(errors: tuple[str, ...],
                                      admin_extensions: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """Drop "must be owner of extension X" for an X the admin installed beforehand (not trusted, so
    not the role's): the dump's ``COMMENT ON EXTENSION X`` was refused and nothing changed."""
    if not admin_extensions:
        return errors, []
    refused = re.compile(r"must be owner of extension (?:%s)\b" % "|".join(map(re.escape, admin_extensions)))
    kept = tuple(error for error in errors if not refused.search(error))
    return kept, [error for error in errors if refused.search(error)]


def psql_errors(stderr: str, dump: Path, max_chars: int) -> tuple[list[str], list[int]]:
    """(errors, lines of the dump's own \\restrict pair) from psql's stderr, in the order psql met them.

    A refused meta-command is an error showing the line it was on, except pg_dump's own
    ``\\restrict``/``\\unrestrict`` pair (see plain_sql).
    """
    entries: list[tuple[int | None, str]] = []
    for line in stderr.splitlines():
        if (psql := PSQL_ERROR.match(line)) is not None:
            entries.append((int(psql.group("line")), _clean(psql.group("msg"), max_chars)))
        elif (tool := PSQL_TOOL_ERROR.match(line)) is not None:
            entries.append((None, _clean(tool.group("msg"), max_chars)))
    refusals = [(number, message) for number, message in entries
                if number is not None and plain_sql.is_meta_refusal(message)]
    judged = iter(plain_sql.judge_refusals(refusals, dump, max_chars))
    errors: list[str] = []
    tolerated: list[int] = []
    for number, message in entries:
        if number is not None and plain_sql.is_meta_refusal(message):
            verdict = next(judged)
            if verdict is None:
                tolerated.append(number)
            else:
                errors.append(verdict)
        elif number is not None:
            errors.append(f"{dump.name} line {number}: {message}")
        else:
            errors.append(message)
    return errors, tolerated


def tool_errors(stderr: str, dump_name: str, max_chars: int = Limits().max_quoted_chars) -> list[str]:
    """One line per error pg_restore reported (or psql, without judging its meta-command refusals).

    pg_restore follows a failed query with ``Command was: <sql>`` (and, serially, precedes it with
    ``from TOC entry …; <type> <name>``); psql prefixes each error with the dump's line number.
    """
    errors: list[str] = []
    context: str | None = None      # the TOC entry announced before the next error
    attachable = False              # the last error may still get its "Command was"
    for line in stderr.splitlines():
        if (toc := TOC_ENTRY.match(line)) is not None:
            context = quote(toc.group("what"), max_chars)
            continue
        if (command := COMMAND_WAS.match(line)) is not None:
            if attachable and errors and "(in: " not in errors[-1]:
                errors[-1] += f" (in: {_shorten(command.group('sql'))})"
            attachable = False
            continue
        if (psql := PSQL_ERROR.match(line)) is not None:
            errors.append(f"{dump_name} line {psql.group('line')}: {_clean(psql.group('msg'), max_chars)}")
            attachable = False
            continue
        if (found := PG_RESTORE_ERROR.match(line) or PSQL_TOOL_ERROR.match(line)) is not None:
            message = _clean(found.group("msg"), max_chars)
            if message.startswith(("while PROCESSING TOC", "from TOC entry")):
                continue
            errors.append(f"{context}: {message}" if context else message)
            context = None
            attachable = True
    return errors


def _clean(message: str, max_chars: int) -> str:
    """``could not execute query: ERROR:  x`` -> ``could not execute query: x``, quoted (it may carry dump text)."""
    return quote(re.sub(r"\b(?:ERROR|FATAL):\s+", "", message).strip(), max_chars)


def _shorten(sql: str) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= STATEMENT_CHARS else sql[: STATEMENT_CHARS - 1] + "…"


def _raise_if_server_lost(server: PostgresEngine, tool: str, dump: Path, stderr: str, errors: tuple[str, ...]) -> None:
    """The tool failed: if the server is gone (or says it crashed), that is the harness's problem."""
    answered, why = _server_answers(server)
    if answered and not _says_server_lost(stderr):
        return
    first = errors[0] if errors else (stderr.strip().splitlines() or ["no output"])[-1]
    state = f"stopped answering ({why})" if not answered else "lost connections (it crashed or restarted)"
    raise HarnessError(
        f"the PostgreSQL server {state} while {tool} restored postgresql/{dump.name}; "
        f"{tool} said: {first[:300]}",
        fix="the backup was not judged: check the server's log, memory (OOM killer) and disk space, "
            "then re-run the drill",
    )


def _server_answers(server: PostgresEngine) -> tuple[bool, str]:
    """(True, "") when a new connection gets an answer, else (False, the reason)."""
    try:
        with psycopg.connect(server.conninfo("postgres"), connect_timeout=SERVER_PROBE_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return True, ""
    except (psycopg.Error, GrimoireDrillError, OSError) as exc:
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        return False, first.rsplit(" failed: ", 1)[-1][:200]  # libpq: 'connection to server on socket "…" failed: why'
