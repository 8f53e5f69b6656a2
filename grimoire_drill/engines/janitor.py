"""Find and remove what killed runs left behind: labelled containers, tagged server processes, temp
dirs, and scratch databases on external servers. The one place that judges strays: engines only
tag what they start.

Every container carries ``grimoire-drill.run`` and its owner's host, boot, pid and start time; every local
server or tool process carries GRIMOIRE_DRILL_RUN_ID and GRIMOIRE_DRILL_OWNER (``<pid>:<start>``)
in its environment; every temp dir of a run is named ``gd-<run id>-*`` and engine dirs hold an
owner file. A thing whose owner process is gone is a stray: a run that is still going (another
drill on the same machine) is never touched, nor is anything we cannot attribute for certain.
Scratch databases on an external server (``engines/scratch.py``) carry their owner record; one
made on another machine, in another pid namespace or without a record is left and reported.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .base import (BOOT_LABEL, HOST_LABEL, OWNER_ENV, OWNER_FILE, PID_LABEL, PID_NS_LABEL, PID_START_LABEL,
                   RUN_ENV, RUN_LABEL, TEMP_PREFIX, owner_gone, pid_namespace, process_start, run_dir_prefix)
from .scratch import (OWNER_COLLECTION, OWNER_DOCUMENT_ID, ScratchOwner, boot_id, is_scratch_database,
                      scratch_run_id, session_name, session_run_id)
from ..text import quote

STOP_WAIT_S = 15.0     # a postmaster's immediate shutdown or mongod's SIGTERM takes well under this
KILL_WAIT_S = 5.0
POLL_S = 0.05
RUN_DIR = re.compile(rf"^{re.escape(TEMP_PREFIX)}(?P<run>[0-9]{{14}}[0-9a-f]{{6}})-")


@dataclass(frozen=True)
class TaggedProcess:
    """A process some drill started, as /proc shows it."""

    pid: int
    ppid: int
    start: str
    name: str
    run_id: str
    owner: str
    cwd: Path | None

    def describe(self, children: int) -> str:
        extra = f" and {children} child process{'es' if children != 1 else ''}" if children else ""
        return f"{self.name} process {self.pid}{extra} of run {self.run_id}"


def sweep_strays(current_run_id: str, temp_roots: Iterable[Path] = ()) -> list[str]:
    """Remove strays of earlier runs; return one description per thing removed.

    ``temp_roots``: where runs make their temp dirs besides the system temp dir (--temp-dir).
    """
    removed: list[str] = []
    dead_runs: set[str] = set()
    from .container import docker_status  # lazy: the docker SDK is only needed when a daemon answers

    ok, _why = docker_status()
    if ok:
        for name, run_id in remove_stray_containers(current_run_id):
            removed.append(f"container {name}")
            dead_runs.add(run_id)
    strays = stray_processes(current_run_id)
    dirs = [path for process in strays if (path := _run_dir_of(process)) is not None]
    removed += stop_processes(strays)
    dead_runs |= {process.run_id for process in strays}
    roots = [Path(tempfile.gettempdir()), *temp_roots]
    dirs += stray_dirs(roots, current_run_id, dead_runs)
    for path in dict.fromkeys(dirs):  # unique, in order
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"temp dir {path}")
    return removed


# -- containers -----------------------------------------------------------------------------------

DOCKER_TIMEOUT_S = 5


def container_owner_gone(labels: dict[str, str]) -> bool:
    """True only when we can tell from a container's labels (``container.owner_labels``) that the
    drill that started it is gone: same host, and another boot or a dead or reused pid."""
    if labels.get(HOST_LABEL) != socket.gethostname():
        return False  # another machine's container on a shared daemon: not ours to judge
    if labels.get(BOOT_LABEL) != (boot_id() or "unknown"):
        return True
    namespace = labels.get(PID_NS_LABEL, pid_namespace())
    if namespace != pid_namespace():
        return False  # started inside another pid namespace (a container): its pid means nothing here
    return owner_gone(f"{labels.get(PID_LABEL, '')}:{labels.get(PID_START_LABEL, '')}:{namespace}")


def remove_strays(current_run_id: str) -> list[str]:
    """Remove containers of earlier runs whose process is gone; return their names.

    A container of the current run, of a live process, or started from another host is kept.
    Without a daemon there is nothing to remove.
    """
    return [name for name, _run_id in remove_stray_containers(current_run_id)]


def remove_stray_containers(current_run_id: str) -> list[tuple[str, str]]:
    """``remove_strays``, returning (container name, run id) so ``sweep_strays`` can clean that run's dirs."""
    import docker
    from docker.errors import DockerException, NotFound

    try:
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
    except DockerException:
        return []
    removed: list[tuple[str, str]] = []
    try:
        for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
            labels = container.labels
            if labels.get(RUN_LABEL) == current_run_id or not container_owner_gone(labels):
                continue
            try:
                container.remove(force=True, v=True)
            except NotFound:
                continue  # someone else removed it meanwhile
            removed.append((container.name, labels.get(RUN_LABEL, "")))
    except (DockerException, OSError):
        return removed
    finally:
        client.close()
    return removed


# -- processes -----------------------------------------------------------------------------------

def tagged_processes() -> list[TaggedProcess]:
    """Every process on this machine we may read that carries a run id and an owner tag."""
    found: list[TaggedProcess] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or another user's
        if RUN_ENV.encode() not in environ:
            continue
        env = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        run_id = env.get(RUN_ENV.encode(), b"").decode(errors="replace")
        owner = env.get(OWNER_ENV.encode(), b"").decode(errors="replace")
        described = _stat(pid)
        if not run_id or not owner or described is None or pid == os.getpid():
            continue
        ppid, start, name = described
        try:
            cwd: Path | None = Path(os.readlink(entry / "cwd"))
        except OSError:
            cwd = None
        found.append(TaggedProcess(pid, ppid, start, name, run_id, owner, cwd))
    return found


def stray_processes(current_run_id: str) -> list[TaggedProcess]:
    """Tagged processes of other runs whose owner is gone (an owner still running keeps them)."""
    return [process for process in tagged_processes()
            if process.run_id != current_run_id and owner_gone(process.owner)]


def stop_processes(strays: list[TaggedProcess]) -> list[str]:
    """Stop strays: SIGQUIT to PostgreSQL (immediate shutdown), SIGTERM to the rest, SIGKILL if they stay.

    Returns one description per process tree (a server and its children count as one).
    """
    if not strays:
        return []
    for process in strays:
        _signal(process, signal.SIGQUIT if process.name == "postgres" else signal.SIGTERM)
    survivors = _wait_gone(strays, STOP_WAIT_S)
    for process in survivors:
        _signal(process, signal.SIGKILL)
    _wait_gone(survivors, KILL_WAIT_S)
    pids = {(process.run_id, process.pid) for process in strays}
    roots = [process for process in strays if (process.run_id, process.ppid) not in pids]
    return [root.describe(_descendants(root, strays)) for root in roots]


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, start time, command name) of a live process, None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = stat.rpartition(")")
    fields = rest.split()
    if fields[0] in {"Z", "X"}:
        return None
    return int(fields[1]), fields[19], head.partition("(")[2]


def _signal(process: TaggedProcess, signum: int) -> None:
    if process_start(process.pid) != process.start:
        return  # already gone (or the pid was reused): not ours to signal
    try:
        os.kill(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(processes: list[TaggedProcess], seconds: float) -> list[TaggedProcess]:
    """Wait until every process has exited (zombies count as exited); return those still running."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [process for process in processes if process_start(process.pid) == process.start]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(POLL_S)


def _descendants(root: TaggedProcess, processes: list[TaggedProcess]) -> int:
    children = [process for process in processes if process.ppid == root.pid and process.run_id == root.run_id]
    return len(children) + sum(_descendants(child, processes) for child in children)


# -- temp dirs ------------------------------------------------------------------------------------

def _run_dir_of(process: TaggedProcess) -> Path | None:
    """The outermost ``gd-<its run id>-*`` dir above a process's cwd (a postmaster runs in its data dir)."""
    if process.cwd is None:
        return None
    prefix = run_dir_prefix(process.run_id)
    outermost = None
    for path in (process.cwd, *process.cwd.parents):
        if path.name.startswith(prefix):
            outermost = path
    return outermost


def stray_dirs(roots: Iterable[Path], current_run_id: str, dead_runs: set[str]) -> list[Path]:
    """``gd-<run id>-*`` dirs in ``roots`` of runs known dead, or whose owner file names a gone owner."""
    found: list[Path] = []
    for root in dict.fromkeys(Path(root) for root in roots):
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for entry in entries:
            match = RUN_DIR.match(entry.name)
            if match is None or match["run"] == current_run_id or entry.is_symlink() or not entry.is_dir():
                continue
            if not _removable(entry):
                continue
            if match["run"] in dead_runs or _owner_file_says_gone(entry, match["run"]):
                found.append(entry)
    return found


def _removable(path: Path) -> bool:
    """Ours to remove: we are root, or the dir is ours."""
    try:
        return os.geteuid() == 0 or path.stat().st_uid == os.geteuid()
    except OSError:
        return False


def _owner_file_says_gone(path: Path, run_id: str) -> bool:
    """The dir's owner file, or one in a ``gd-<same run>-*`` dir just inside it, names a gone owner."""
    candidates = [path / OWNER_FILE]
    try:
        candidates += [child / OWNER_FILE for child in path.iterdir()
                       if child.name.startswith(run_dir_prefix(run_id)) and child.is_dir()]
    except OSError:
        pass
    for candidate in candidates:
        try:
            tag = candidate.read_text()
        except OSError:
            continue
        if owner_gone(tag):
            return True
    return False


# -- scratch databases on external servers ----------------------------------------------------------

GONE, ALIVE, UNKNOWN = "gone", "alive", "unknown"


@dataclass
class ScratchSweep:
    """What a sweep of one server did: console lines for what it removed and for what it had to leave."""

    removed: list[str]
    left: list[str]

    @classmethod
    def empty(cls) -> "ScratchSweep":
        return cls([], [])

    def lines(self) -> list[str]:
        return self.removed + self.left


def judge_scratch_owner(owner: ScratchOwner | None, run_id: str) -> tuple[str, str]:
    """(GONE | ALIVE | UNKNOWN, who) for the owner record of a scratch database of run ``run_id``.

    GONE only when the owner process ran on this boot of this machine, in this pid namespace,
    and is no longer running: anything else keeps the database (a live drill needs it).
    """
    if owner is None or owner.run_id != run_id:
        return UNKNOWN, f"run {run_id} left no owner record of grimoire-drill"
    pid, _, rest = owner.owner.partition(":")
    namespace = rest.partition(":")[2]
    who = f"run {run_id}, pid {quote(pid, 20)} on host {quote(owner.host, 80)}"
    if not owner.boot or owner.boot != boot_id():
        return UNKNOWN, f"{who} is on another machine (or before a reboot): its owner cannot be judged from here"
    if namespace != pid_namespace():
        return UNKNOWN, f"{who} is in another pid namespace (a container): its owner cannot be judged from here"
    return (GONE if owner_gone(owner.owner) else ALIVE), who


def _left(kind: str, name: str, why: str) -> str:
    return f"left the scratch {kind} {name} alone: {why}; drop it by hand once that run is over"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return quote(lines[0] if lines else type(error).__name__, 200)


def sweep_postgres_scratch(conn: Any, current_run_id: str) -> ScratchSweep:
    """Drop scratch databases (and the roles derived from their names) of runs whose owner is gone.

    ``conn``: an autocommit psycopg connection to the server's maintenance database, as the drill's login.
    A run holding a session named ``session_name(run)`` is alive, whatever else is known. A
    role is judged by its own owner record (COMMENT ON ROLE) when it has one, else by its run's
    database, else (no record at all, no session) as left by a drill killed before it wrote one.
    """
    import psycopg
    from psycopg import sql

    databases = conn.execute("SELECT datname, shobj_description(oid, 'pg_database'), pg_has_role(datdba, 'USAGE') "
                             "FROM pg_database ORDER BY datname").fetchall()
    roles = conn.execute("SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles ORDER BY rolname").fetchall()
    live = _live_runs(conn)  # after the listings: a database listed was made after its run's session opened
    sweep = ScratchSweep.empty()
    verdicts: dict[str, tuple[str, str]] = {}
    for name, comment, ours in databases:
        run_id = scratch_run_id(name)
        if not is_scratch_database(name) or run_id == current_run_id:
            continue
        state, who = _postgres_verdict(run_id, comment, ours, live)
        if verdicts.get(run_id, (None,))[0] != ALIVE:
            verdicts[run_id] = (state, who)
        if state == GONE:
            statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            _drop(lambda: conn.execute(statement), "database", name, who, sweep, psycopg.Error)
        elif state == UNKNOWN:
            sweep.left.append(_left("database", name, who))
    for name, comment in roles:
        run_id = scratch_run_id(name)
        if run_id is None or run_id == current_run_id:
            continue
        if run_id in live or comment is not None or run_id not in verdicts:
            state, who = _postgres_verdict(run_id, comment, True, live)
        else:
            state, who = verdicts[run_id]
        if state == GONE:
            statement = sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name))
            _drop(lambda: conn.execute(statement), "role", name, who, sweep, psycopg.Error)
        elif state == UNKNOWN:
            sweep.left.append(_left("role", name, who))
    return sweep


def _live_runs(conn: Any) -> set[str]:
    """Runs holding a session on the server: every external engine keeps one open (``session_name``)
    from before it creates anything until it has dropped it. Any login sees application_name."""
    rows = conn.execute("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s",
                        (session_name("%"),)).fetchall()
    return {run for (name,) in rows if (run := session_run_id(name)) is not None}


def _postgres_verdict(run_id: str, comment: str | None, ours: bool, live: set[str]) -> tuple[str, str]:
    """(state, who) of one scratch object of ``run_id`` from its comment, whether we may drop it, and the live runs."""
    if run_id in live:
        return ALIVE, f"run {run_id}, still connected"
    if comment is not None:
        return judge_scratch_owner(ScratchOwner.from_comment(comment), run_id)
    if ours:  # no record and no session: its drill died between CREATE and COMMENT
        return GONE, f"run {run_id}, killed before it recorded its owner"
    return UNKNOWN, f"run {run_id} left no owner record of grimoire-drill"


def _drop(drop: Callable[[], object], kind: str, name: str, who: str, sweep: ScratchSweep, errors: type) -> None:
    """Run ``drop`` and say what happened: removed, or left with the server's reason."""
    try:
        drop()
    except errors as exc:
        sweep.left.append(f"could not remove the stray scratch {kind} {name} of a killed run ({who}): "
                          f"{_first_line(exc)}")
    else:
        sweep.removed.append(f"removed a stray scratch {kind} {name} of a killed run ({who})")


def sweep_mongo_scratch(client: Any, current_run_id: str) -> ScratchSweep:
    """Drop scratch databases of runs whose owner is gone, judged by their ``_grimoire_drill_owner`` record."""
    from pymongo.errors import PyMongoError

    sweep = ScratchSweep.empty()
    for name in sorted(client.list_database_names()):
        run_id = scratch_run_id(name)
        if not is_scratch_database(name) or run_id == current_run_id:
            continue
        try:
            record = client[name][OWNER_COLLECTION].find_one({"_id": OWNER_DOCUMENT_ID})
        except PyMongoError as exc:
            sweep.left.append(_left("database", name, f"its owner record is unreadable ({_first_line(exc)})"))
            continue
        state, who = judge_scratch_owner(ScratchOwner.from_document(record), run_id)
        if state == GONE:
            _drop(lambda: client.drop_database(name), "database", name, who, sweep, PyMongoError)
        elif state == UNKNOWN:
            sweep.left.append(_left("database", name, who))
    return sweep
