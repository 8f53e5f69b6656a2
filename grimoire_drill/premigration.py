"""Pre-migration: restore once, check, run the user's command against the copy, check again.

Both rounds share one restore (one DrillSession). The command is the user's, so it keeps the
caller's environment (PATH, HOME, a virtualenv: ``alembic`` must run) minus every variable that
could point it elsewhere (``CALLER_ENV_DENIED``); the only databases it is told about are the
restored copies. It runs in its own session, and its whole process group is ended when it
overruns ``--then-timeout`` (and when it exits, so nothing it started outlives it). A failing
command is its own verdict (``migration_failed``, exit 3), not a bad backup. ``run_rounds`` is
the whole pre-migration run, as ``grimoire-drill run --then`` calls it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote as url_quote
from urllib.parse import unquote, urlsplit

import psycopg

from .archive import shown_source
from .config import DrillConfig
from .errors import GrimoireDrillError, HarnessError
from .limits import Limits
from .report.html_parts import MASK, redact
from .pipeline.session import DrillSession
from .report.summary import CheckResult
from .text import clip, printable

# What the caller's environment must not hand the command: where databases are (libpq's PG*,
# MongoDB's and the app's URL/DSN/URI settings), our own settings (passphrase, --mongo-uri,
# --postgres-dsn), passwords and cloud credentials. Shell patterns, matched on the upper-cased name.
CALLER_ENV_DENIED: tuple[str, ...] = (
    "PG*", "MONGO*", "POSTGRES*", "DATABASE_URL", "MONGODB_URL", "GRIMOIRE_DRILL_*",
    "*_DSN", "*_URI", "*DATABASE_URL", "*_DB_URL", "*_CONNECTION_STRING", "REDIS_URL", "SQLALCHEMY_*",
    "*PASSWORD*", "*PASSPHRASE*", "*_PASSWD",
    "AWS_*", "AZURE_*", "ARM_*", "GOOGLE_*", "GCLOUD_*", "CLOUDSDK_*", "GCP_*", "DIGITALOCEAN_*",
    "OS_AUTH_*", "OS_TOKEN", "OS_APPLICATION_CREDENTIAL_*", "SCW_*", "OVH_*", "HCLOUD_*",
    "CLOUDFLARE_*", "B2_*", "RCLONE_CONFIG_*", "VAULT_*", "SSH_*", "SSHPASS",
)
KILL_GRACE_S = 5.0      # SIGTERM to the group, then SIGKILL after this long
POLL_S = 0.2


def denied(name: str) -> bool:
    """True when the caller's variable ``name`` must not reach the --then command."""
    upper = name.upper()
    return any(fnmatchcase(upper, pattern) for pattern in CALLER_ENV_DENIED)


def command_environment(caller: Mapping[str, str], databases: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without ``CALLER_ENV_DENIED``, plus the restored copies' variables."""
    env = {name: value for name, value in caller.items() if not denied(name)}
    env.update(databases)
    return env


def database_environment(session: DrillSession) -> dict[str, str]:
    """DATABASE_URL / MONGODB_URL (what Le Grimoire's backend reads) and GRIMOIRE_DRILL_* twins.

    A database that was not restored, or is simulated (no server, no URL), gets no URL at all:
    absent, the command cannot fall back to anything of the caller's.
    """
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


def refuse_simulated(config: DrillConfig, mongo_kind: str) -> None:
    """Before anything is restored: a simulated MongoDB cannot be migrated, so say so (exit 2)."""
    if mongo_kind == "simulated" and not config.then_allow_simulated:
        raise HarnessError("--then needs a real MongoDB, but MongoDB would be simulated: the command could not "
                           "reach it (and must never reach the caller's MONGODB_URL instead)",
                           fix="give a real engine (Docker, mongod, --mongo-uri) or pass --then-allow-simulated "
                               "to run it against PostgreSQL only")


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


# -- running the command ------------------------------------------------------------------------
def run_command(command: str, session: DrillSession, cwd: Path) -> dict[str, Any]:
    """Run CMD through the shell against the restored databases only; keep its output tail."""
    config = session.config
    added = database_environment(session)
    # the engine chosen for the restore, which refuse_simulated() could only foresee
    refuse_simulated(config, session.mongo.choice.kind if session.mongo.choice is not None else "none")
    base = {"command": redact(command), "exit_code": None, "timed_out": False, "timeout_s": config.then_timeout,
            "seconds": 0.0, "output_tail": "", "environment": sorted(added)}
    unrestored = unreachable_copies(session, added)
    if unrestored:
        return {**base, "skipped": f"not run: {' and '.join(unrestored)} not restored, so the command could only "
                                   "reach whatever its own configuration defaults to (alembic.ini, settings)"}
    env = command_environment(os.environ, added)
    limits = session.expectations.limits
    started = time.perf_counter()
    code, timed_out, raw = run_in_own_group(command, env, cwd, config.then_timeout, limits.then_output_tail_bytes)
    if len(raw) >= limits.then_output_tail_bytes:  # cut: its first line is a fragment (maybe of a secret)
        raw = f"[earlier output cut at {limits.name('then_output_tail_bytes')} bytes]\n".encode() + raw.partition(b"\n")[2]
    output = mask_secrets(raw.decode("utf-8", errors="replace"), added.values())
    return {**base, "exit_code": code, "timed_out": timed_out, "seconds": round(time.perf_counter() - started, 3),
            "output_tail": output}


def unreachable_copies(session: DrillSession, added: Mapping[str, str]) -> list[str]:
    """Databases the command would get no URL for although they are real: their restore failed.

    Without its variable a migration falls back to its own default (``alembic.ini``'s
    ``sqlalchemy.url``, the app's settings), which may well be production: never run it then.
    """
    missing = []
    if "DATABASE_URL" not in added:
        missing.append("PostgreSQL")
    simulated = session.mongo.choice is not None and session.mongo.choice.kind == "simulated"
    if "MONGODB_URL" not in added and not simulated:
        missing.append("MongoDB")
    return missing


def run_in_own_group(command: str, env: Mapping[str, str], cwd: Path, timeout: float,
                     tail_bytes: int) -> tuple[int | None, bool, bytes]:
    """(exit code or None, timed out, last ``tail_bytes`` of stdout+stderr) of ``sh -c command``.

    The command leads a new session; when it exits or overruns, what is left of its process
    group is ended (SIGTERM, then SIGKILL). The leader is reaped only after that, so its pid,
    which is the group id, cannot be reused while we signal the group. Output is read as it
    comes, so a chatty command costs ``tail_bytes`` of memory, not its whole output.
    """
    process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=dict(env), cwd=cwd, start_new_session=True)
    pipe = process.stdout.fileno()
    tail = bytearray()
    deadline = time.monotonic() + timeout
    timed_out = False
    open_pipe = True
    try:
        while not _leader_exited(process.pid):
            if time.monotonic() >= deadline:
                timed_out = True
                break
            open_pipe = open_pipe and _read_some(pipe, tail, tail_bytes, POLL_S)
            if not open_pipe:
                time.sleep(POLL_S)
    finally:
        end_group(process.pid)
        drain_deadline = time.monotonic() + KILL_GRACE_S
        while open_pipe and time.monotonic() < drain_deadline:
            open_pipe = _read_some(pipe, tail, tail_bytes, POLL_S)
        process.stdout.close()
        process.wait()
    return (None if timed_out else process.returncode), timed_out, bytes(tail)


def _leader_exited(pid: int) -> bool:
    """Has the leader exited? Asked without reaping it (WNOWAIT), so its pid stays reserved."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None and info.si_pid == pid


def _read_some(fd: int, tail: bytearray, limit: int, wait: float) -> bool:
    """Read what is there within ``wait`` seconds into ``tail`` (kept to ``limit`` bytes); False at EOF."""
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return True
    chunk = os.read(fd, 65536)
    if not chunk:
        return False
    tail.extend(chunk)
    del tail[:-limit]
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] not in {"Z", "X"} and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def end_group(pgid: int) -> None:
    """SIGTERM every process of the group, SIGKILL what is still there after KILL_GRACE_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        give_up = time.monotonic() + KILL_GRACE_S
        while group_members(pgid) and time.monotonic() < give_up:
            time.sleep(0.05)


def mask_secrets(output: str, values) -> str:
    """The command's output with every password of the URLs it was given masked, as printable lines."""
    for value in values:
        output = output.replace(value, redact(value))
        try:
            raw = urlsplit(value).password
        except ValueError:
            raw = None
        if raw:
            for secret in sorted({raw, unquote(raw), url_quote(unquote(raw), safe="")}, key=len, reverse=True):
                output = output.replace(secret, MASK)
    return "\n".join(printable(line) for line in redact(output).split("\n"))


def command_check(result: dict[str, Any]) -> CheckResult:
    if result.get("skipped"):
        return CheckResult("premigration.command", "skipped", f"--then command {result['skipped']}",
                           {"command": result["command"]})
    if result["timed_out"]:
        message = (f"--then command did not finish within --then-timeout {result['timeout_s']:g}s; "
                   "its whole process group was ended")
    elif result["exit_code"] == 0:
        message = f"--then command exited 0 against the restored copy in {result['seconds']:.1f}s"
    else:
        last = (result["output_tail"].strip().splitlines() or [""])[-1]
        message = f"--then command exited {result['exit_code']}: {clip(last, 200)}"
    return CheckResult("premigration.command", "passed" if command_ok(result) else "failed", message,
                       {"command": result["command"], "exit_code": result["exit_code"],
                        "output_tail": result["output_tail"][-1500:]})


def command_ok(result: Mapping[str, Any]) -> bool:
    return not result["timed_out"] and result["exit_code"] == 0 and not result.get("skipped")


def verdict(before_outcome: str, after_outcome: str, result: Mapping[str, Any], interrupted: bool) -> str:
    """The run's outcome: a failed command over a backup that restored and passed is ``migration_failed``.

    A backup that failed (or could not be tested) in the first round keeps that verdict: the
    command's failure says nothing about a backup already known bad.
    """
    if interrupted or command_ok(result):
        return after_outcome
    if before_outcome != "passed":
        return before_outcome
    return "migration_failed"


def console_tail(result: Mapping[str, Any], lines: int = 20) -> list[str]:
    """The last lines of the command's output, for the console when it failed (printable, secrets masked)."""
    return result["output_tail"].rstrip().splitlines()[-lines:]


# -- what the command changed -----------------------------------------------------------------
def changes(before: dict[str, Any], after: dict[str, Any], schema_before: Mapping[str, Any] | None = None,
            schema_after: Mapping[str, Any] | None = None, limits: Limits = Limits()) -> dict[str, Any]:
    """What the command changed: tables, row counts, Alembic revision, and the schema (see schema_diff)."""
    from .schema_diff import diff_snapshots

    b, a = before["counts"].get("postgresql", {}), after["counts"].get("postgresql", {})
    result = {
        "tables_added": sorted(set(a) - set(b)),
        "tables_removed": sorted(set(b) - set(a)),
        "row_counts_changed": {t: [b[t], a[t]] for t in sorted(set(a) & set(b)) if a[t] != b[t]},
        "alembic_version": [before.get("alembic_version"), after.get("alembic_version")],
    }
    if schema_before is not None and schema_after is not None:
        result["schema"] = diff_snapshots(schema_before, schema_after, limits)
    return result


# -- the two rounds -----------------------------------------------------------------------------
def run_rounds(config: DrillConfig, *, printer: Callable[..., None], pytest_argv: list[str],
               attribution: dict | None = None) -> int:
    """Round 'before' (outputs in <report dir>/before/), the command, round 'after' (the main outputs).

    One restore serves both rounds. A simulated MongoDB is refused before anything is restored
    (exit 2) unless --then-allow-simulated; a failed command over a good backup is exit 3
    (migration_failed). Each round is a DrillRun given, at construction, all it needs.
    """
    import pytest

    from . import schema_diff
    from .engines.janitor import sweep_strays
    from .engines.selection import choose_mongo
    from .exit_codes import EXIT_HARNESS
    from .plugin import DrillRun

    refuse_simulated(config, choose_mongo(config).kind)
    extra = {"attribution": attribution} if attribution is not None else {}
    first = DrillRun(config, progress=printer)
    session = first.session
    printer(f"run {first.run_id}: pre-migration drill of {shown_source(config.backups)}; then: {redact(config.then)}")
    for stray in sweep_strays(first.run_id, [config.temp_dir] if config.temp_dir is not None else []):
        printer(f"removed a stray of a killed earlier run: {stray}")
    try:
        main_dir = first.decide_report_dir()
        before = DrillRun(config, session=session, round_label="before", record_history=False, extra_summary=extra,
                          report_dir=main_dir / "before")
        pytest.main(list(pytest_argv), plugins=[before])
        if before.summary is None or before.interrupted:
            return before.verdict_code()
        before.print_verdict()
        if before.seal_error is not None:
            return before.sealed(EXIT_HARNESS)
        before_round = round_record("before", before.summary, session)
        limits = session.expectations.limits
        schema_before = schema_diff.snapshot(session, limits)
        printer(f"then: running {redact(config.then)!r} against the restored databases "
                f"(timeout {config.then_timeout:g}s)")
        with session.running("then"):
            result = run_command(config.then, session, Path.cwd())
        schema_after = schema_diff.snapshot(session, limits)
        printer("then: " + (result["skipped"] if result.get("skipped") else
                            f"ended after --then-timeout {config.then_timeout:g}s" if result["timed_out"]
                            else f"exited {result['exit_code']} after {result['seconds']:.1f}s"))
        if not command_ok(result):  # an outcome, not progress: shown even with -q
            for line in console_tail(result):
                print(f"then| {line}", file=sys.stderr)
        session.new_round()
        def add_after_round(summary: dict) -> None:
            summary["rounds"].append(round_record("after", summary, session))
            summary["changes"] = changes(summary["rounds"][0], summary["rounds"][-1],
                                         schema_before, schema_after, limits)
            summary["outcome"] = verdict(before.summary["outcome"], summary["outcome"], result,
                                         after.interrupted)  # bound below, read once the round ran

        after = DrillRun(config, session=session, round_label="after", extra_checks=[command_check(result)],
                         extra_summary={**extra, "then": result, "rounds": [before_round]},
                         report_dir=main_dir, folder=first.folder,  # the main outputs: latest, history, pruning
                         finish_summary=add_after_round)
        pytest.main(list(pytest_argv), plugins=[after])
        if after.summary is None:
            return EXIT_HARNESS
        after.print_verdict()
        return after.sealed(after.verdict_code())
    finally:
        session.close()
