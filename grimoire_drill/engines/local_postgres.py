"""A real, throwaway PostgreSQL cluster from this machine's binaries (initdb + pg_ctl).

Executor in the pytest-postgresql sense: it owns one cluster in one temp dir, starts it with
a readiness check (``pg_ctl -w`` pings the server), and removes every trace on stop, also
when start fails. As root, the server runs as the unprivileged ``postgres`` OS user because
initdb and postgres refuse root.

The server and every tool carry the run id and their owner (``GRIMOIRE_DRILL_OWNER``) in their
environment, and the cluster dir is ``gd-<run id>-pg-*`` with an owner file: if the drill is
killed, the next run's janitor finds both and removes them.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from ..errors import HarnessError
from ..limits import Limits
from .base import (
    EngineInfo,
    ToolProcesses,
    ToolResult,
    ensure_dir_owned,
    free_port,
    make_run_dir,
    process_start,
    run_env,
    tail,
    tool_env,
)
from .lifecycle import EngineLifecycle
from .pg_sandbox import RestoreRole, SandboxHost

SERVER_USER = "postgres"
START_ATTEMPTS = 3
STOP_WAIT_S = 30.0
EXIT_POLL_S = 0.02
EXIT_POLL_FIRST_S = 0.001
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; the socket file name adds ".s.PGSQL.<port>"


def find_pg_bindir(*tools: str, search_path: bool = False) -> Path | None:
    """The first PostgreSQL bin dir holding every one of ``tools``: ``pg_config --bindir``, then
    Debian's ``/usr/lib/postgresql/*/bin`` (newest first), then, if asked, wherever PATH has ``tools[0]``."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False, env=tool_env({}))
        if done.returncode == 0:
            candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which(tools[0]) if search_path else None
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if all((Path(candidate) / tool).exists() for tool in tools):
            return Path(candidate)
    return None


def find_bindir() -> Path | None:
    """PostgreSQL server binaries (initdb, pg_ctl) for the local engine."""
    return find_pg_bindir("initdb", "pg_ctl")


def find_client_bindir() -> Path | None:
    """Where pg_restore and psql are: a server install, Debian's layout, or a client-only install on PATH."""
    return find_pg_bindir("pg_restore", "psql", search_path=True)


def _server_account() -> pwd.struct_passwd | None:
    """The OS account the server runs as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise HarnessError(
            "running as root but there is no 'postgres' OS user to run initdb as",
            fix="create one (useradd -r postgres) or run grimoire-drill as an unprivileged user",
        ) from exc


def _exited(process: tuple[int, str], seconds: float) -> bool:
    """Wait until the process (not our child: no waitpid) has exited; False if it did not within ``seconds``.

    Why a pidfd: it becomes readable the moment the process ends, where a polling sleep added up
    to its interval to every stop (the drill stops its server before it writes the report).
    Without pidfds (an old kernel), /proc is polled, first every millisecond, then less often.
    """
    deadline = time.monotonic() + seconds
    pidfd = _pidfd(process)
    if pidfd is not None:
        try:
            ready = select.poll()
            ready.register(pidfd, select.POLLIN)
            while process_start(process[0]) == process[1]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                ready.poll(left * 1000)  # readable once it has ended
            return True
        finally:
            os.close(pidfd)
    interval = EXIT_POLL_FIRST_S
    while process_start(process[0]) == process[1]:
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 2, EXIT_POLL_S)
    return True


def _pidfd(process: tuple[int, str]) -> int | None:
    """A pidfd of exactly ``process`` (pid and start time: not a pid reused since), or None."""
    try:
        pidfd = os.pidfd_open(process[0])
    except (AttributeError, OSError):
        return None
    if process_start(process[0]) != process[1]:  # the pid was reused before the open: not ours to watch
        os.close(pidfd)
        return None
    return pidfd


def _kill(process: tuple[int, str]) -> None:
    if process_start(process[0]) == process[1]:
        try:
            os.kill(process[0], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _fatal_lines(log: str) -> str:
    """The server log's FATAL/PANIC lines without their timestamp prefix."""
    lines = [line.split("FATAL:", 1)[-1].split("PANIC:", 1)[-1].strip()
             for line in log.splitlines() if "FATAL:" in line or "PANIC:" in line]
    return "; ".join(dict.fromkeys(lines[-2:]))  # the same line from two attempts, once


class LocalPostgres(SandboxHost, EngineLifecycle):
    """``with LocalPostgres(...) as pg:`` gives a started cluster; leaving the block removes it.

    A restore goes into ``create_sandbox``'s database as its unprivileged role (trust over our
    own socket: the tool connects *as the role*, no password needed), never as ``superuser``.
    """

    kind = "local"
    title = "the local PostgreSQL"

    def __init__(self, *, run_id: str, superuser: str = "grimoire", temp_root: Path | None = None, output_cap: int = Limits().max_tool_output_bytes,
                 bindir: Path | None = None):
        super().__init__(run_id)
        self.superuser = superuser
        self.bindir = bindir if bindir is not None else find_bindir()
        if self.bindir is None:
            raise HarnessError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found",
                fix="install postgresql-15 or choose --postgres-engine docker|external",
            )
        self._temp_root = temp_root
        self._password = secrets.token_urlsafe(24)
        self.base_dir: Path | None = None
        self._short_socket_dir: Path | None = None
        self.port = 0
        self._tools = ToolProcesses(self._cancelled, output_cap)
        self._roles: dict[str, RestoreRole] = {}

    @property
    def socket_dir(self) -> Path:
        """``<cluster dir>/sock``, or a short dir in /tmp when that path is too long for a socket."""
        assert self.base_dir is not None
        if self._short_socket_dir is not None:
            return self._short_socket_dir
        return self.base_dir / "sock"

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    def start(self) -> None:
        account = _server_account()
        self._check_cancelled("local PostgreSQL")
        self.base_dir = make_run_dir(self.run_id, "pg", self._temp_root)
        self.base_dir.chmod(0o711)
        if len(str(self.base_dir / "sock" / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
            self._short_socket_dir = make_run_dir(self.run_id, "sock")
        else:
            self.socket_dir.mkdir()
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self._password + "\n")
        if account:
            for path in (self.base_dir, self.socket_dir):
                ensure_dir_owned(path, account.pw_uid, account.pw_gid)
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        pwfile.chmod(0o600)
        self._as_server(
            [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser, "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
             "--no-instructions", "--no-sync"],
            account, what="initdb",
        )
        pwfile.unlink()
        last_error = ""
        for _attempt in range(START_ATTEMPTS):
            self._check_cancelled("local PostgreSQL")
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} "
                       f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       f"-c cluster_name=grimoire-drill-{self.run_id}")
            done = self._as_server(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.base_dir / "server.log"),
                 "-w", "-t", "60", "-o", options, "start"],
                account, what="pg_ctl start", check=False,
            )
            if done.returncode == 0:
                break
            last_error = _fatal_lines(self._log_text()) or tail(done.stderr, 3)
        else:
            # the cluster dir (and its log) goes with stop(): the message carries the log's words
            raise HarnessError(f"local PostgreSQL would not start: {last_error}", where=str(self.bindir / "postgres"),
                               fix="check disk space, shared memory and the PostgreSQL install")
        self.info = EngineInfo(kind=self.kind, version=self._server_version(),
                               tools={"pg_restore": self._tool_version("pg_restore")})

    def stop(self) -> None:
        """Stop fast (the data is throwaway) and remove the cluster dir; safe to call twice."""
        if self.base_dir is None:
            return
        postmaster = self._postmaster()
        if postmaster is not None:
            done = self._as_server(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-W", "stop"],
                _server_account(), what="pg_ctl stop", check=False,
            )
            # -W: pg_ctl only signals; its own wait polls every 100 ms, ours ends when the postmaster does
            if done.returncode != 0 or not _exited(postmaster, STOP_WAIT_S):
                _kill(postmaster)
                _exited(postmaster, STOP_WAIT_S)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self._short_socket_dir is not None:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)
            self._short_socket_dir = None
        self.base_dir = None
        self.port = 0
        self._roles.clear()

    @property
    def running(self) -> bool:
        return self.base_dir is not None and bool(self.port)

    def _end_work(self) -> None:
        """cancel(): end running tools (pg_restore) now."""
        self._tools.cancel()

    # -- what the restore layer uses -------------------------------------------------------
    def _admin_conninfo(self, dbname: str | None) -> str:
        """libpq conninfo over the unix socket (trust auth inside our own dir) as the superuser."""
        self._require_running()
        return f"host={self.socket_dir} port={self.port} user={self.superuser} dbname={dbname or 'postgres'}"

    def _role_conninfo(self, dbname: str, role: RestoreRole) -> str:
        self._require_running()
        return f"host={self.socket_dir} port={self.port} user={role.name} dbname={dbname}"

    def _restore_role_name(self, owner: str) -> str:
        """The app's own user name, so a plain dump's ``OWNER TO <owner>`` is a no-op; never the superuser's."""
        if owner == self.superuser:
            raise HarnessError(f"the restore role {owner} would be this cluster's superuser",
                               fix="start the engine with another superuser name (the drill uses its own)")
        return owner

    def url(self, dbname: str) -> str:
        """URL for a user command (--then): TCP with a generated password, as the restore role for a sandbox."""
        self._require_running()
        role = self._roles.get(dbname)
        user, password = (role.name, role.password) if role is not None else (self.superuser, self._password)
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def database_name(self, base: str) -> str:
        """A fresh cluster holds nothing else: restore under the production name."""
        return base

    def create_database(self, name: str) -> str:
        """A database owned by the superuser (sample dumps, tests); restores use create_sandbox."""
        with psycopg.connect(self._admin_conninfo(None), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._drop_sandbox(name)

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None,
                 role: RestoreRole | None = None) -> ToolResult:
        """Run a host PostgreSQL client tool against this cluster; ``{name}`` in args = files[name].

        With ``role`` it connects as that role (a restore), else as the superuser (pg_dump of a sample).
        """
        self._require_running()
        user = role.name if role is not None else self.superuser
        argv = [str(self.bindir / tool), "-h", str(self.socket_dir), "-p", str(self.port), "-U", user]
        argv += [arg.format(**{k: str(v) for k, v in files.items()}) for arg in args]
        return self._tools.run(argv, tool_env({**run_env(self.run_id), "PGCONNECT_TIMEOUT": "10"}), timeout)

    # -- internals -----------------------------------------------------------------------
    def _as_server(self, argv: list[str], account, *, what: str, check: bool = True) -> subprocess.CompletedProcess:
        env = tool_env({**run_env(self.run_id), "LC_ALL": "C"})
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, cwd=self.base_dir,
                              start_new_session=True, **kwargs)
        if check and done.returncode != 0:
            reason = " | ".join(tail(done.stderr, 3).splitlines())
            fix = "check that the temp dir is writable and has free space"
            if account is not None and "Permission denied" in done.stderr:
                fix = (f"the server runs as the '{SERVER_USER}' OS user: every parent of the temp dir "
                       f"({self.base_dir.parent}) must be searchable by it (chmod o+x), or pass another --temp-dir")
            raise HarnessError(f"{what} failed: {reason}", where=str(argv[0]), fix=fix)
        return done

    def _log_text(self) -> str:
        try:
            return (self.base_dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def _postmaster(self) -> tuple[int, str] | None:
        """(pid, start time) of the running postmaster, from its pid file."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        started = process_start(pid)
        return (pid, started) if started is not None else None

    def _server_version(self) -> str:
        with psycopg.connect(self._admin_conninfo(None)) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def _tool_version(self, tool: str) -> str:
        done = subprocess.run([str(self.bindir / tool), "--version"], capture_output=True, text=True, check=False,
                              env=tool_env({}))
        return done.stdout.strip()
