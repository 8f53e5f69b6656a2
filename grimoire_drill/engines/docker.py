"""Throwaway PostgreSQL and MongoDB in Docker containers, through testcontainers.

The real thing for nightly CI and audits: the same images production runs, and the dump tools
(``pg_restore``, ``mongorestore``) run *inside* the container, so the restore uses the tool
version that ships with the server. Dumps go in with ``put_archive`` (streamed, never held in
memory); the password reaches tools through the exec environment or a file inside the
container, never argv.

Every container carries labels naming the run, the host, the boot and the starting process,
so ``remove_strays`` can tell a container left by a killed run from one in use. Ryuk (the
testcontainers reaper) is not used: its image needs a registry, and we clean up ourselves.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import socket
import tarfile
import threading
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, urlparse

from ..errors import HarnessError
from .base import RUN_LABEL, EngineInfo, ToolResult, pid_namespace, process_start
from .pg_sandbox import RestoreRole, SandboxHost

HOST_LABEL = "grimoire-drill.host"
BOOT_LABEL = "grimoire-drill.boot"
PID_LABEL = "grimoire-drill.pid"
PID_START_LABEL = "grimoire-drill.pid-start"
PID_NS_LABEL = "grimoire-drill.pid-ns"
INSTANCE_LABEL = "grimoire-drill.instance"
ENGINE_LABEL = "grimoire-drill.engine"

STARTUP_TIMEOUT_S = 180.0
PROBE_INTERVAL_S = 0.25
STATUS_TIMEOUT_S = 5
CHUNK_BYTES = 1 << 20
WORK_ROOT = "/tmp/grimoire-drill"
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


# -- is there a daemon? --------------------------------------------------------------------

def docker_status() -> tuple[bool, str]:
    """Does a Docker daemon answer here? ``(True, "Docker 24.0.7 at unix://…")`` or ``(False, why)``."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=STATUS_TIMEOUT_S)
    except DockerException as exc:
        return False, f"no Docker daemon answers ({_first_line(exc)})"
    try:
        version = client.version()
        return True, f"Docker {version.get('Version', '?')} answers at {client.api.base_url}"
    except (DockerException, OSError) as exc:
        return False, f"the Docker daemon does not answer ({_first_line(exc)})"
    finally:
        client.close()


# -- who started a container, and is it still there? ----------------------------------------

def _boot_id() -> str:
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return "unknown"


_process_start = process_start  # a pid plus its start time survives pid reuse


def owner_labels(run_id: str, engine: str) -> dict[str, str]:
    """Labels every container we start carries (public so tests can forge a stray)."""
    pid = os.getpid()
    return {
        RUN_LABEL: run_id,
        ENGINE_LABEL: engine,
        HOST_LABEL: socket.gethostname(),
        BOOT_LABEL: _boot_id(),
        PID_LABEL: str(pid),
        PID_START_LABEL: _process_start(pid) or "unknown",
        PID_NS_LABEL: pid_namespace(),
        INSTANCE_LABEL: secrets.token_hex(6),
    }


def _owner_gone(labels: dict[str, str]) -> bool:
    """True only when we can tell: same host, and another boot or a dead/reused pid."""
    if labels.get(HOST_LABEL) != socket.gethostname():
        return False  # another machine's container on a shared daemon: not ours to judge
    if labels.get(BOOT_LABEL) != _boot_id():
        return True
    if labels.get(PID_NS_LABEL, pid_namespace()) != pid_namespace():
        return False  # started inside another pid namespace (a container): its pid means nothing here
    try:
        pid = int(labels.get(PID_LABEL, ""))
    except ValueError:
        return False
    if not Path("/proc/self/stat").exists():
        return not _pid_exists(pid)  # no /proc: a bare liveness check is the best we have
    started = _process_start(pid)
    return started is None or labels.get(PID_START_LABEL) != started


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_strays(current_run_id: str) -> list[str]:
    """Remove containers of earlier runs whose process is gone; return their names.

    A container of the current run, of a live process, or started from another host is kept.
    Without a daemon there is nothing to remove.
    """
    return [name for name, _run_id in remove_stray_containers(current_run_id)]


def remove_stray_containers(current_run_id: str) -> list[tuple[str, str]]:
    """``remove_strays``, returning (container name, run id) so the janitor can clean that run's dirs."""
    import docker
    from docker.errors import DockerException, NotFound

    try:
        client = docker.from_env(timeout=STATUS_TIMEOUT_S)
    except DockerException:
        return []
    removed: list[tuple[str, str]] = []
    try:
        for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
            labels = container.labels
            if labels.get(RUN_LABEL) == current_run_id or not _owner_gone(labels):
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


# -- pieces shared by both engines -----------------------------------------------------------

def _first_line(error: BaseException | str, secret: str | None = None) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    if secret:
        line = line.replace(secret, "***")
    return line[:300]


def _connection_wait_strategy(probe: Callable[[], None], transient: tuple[type[BaseException], ...]):
    """A testcontainers wait strategy that is ready when ``probe()`` (a real client) succeeds.

    Built on call because importing testcontainers reads its config files (no I/O at import).
    """
    from testcontainers.core.waiting_utils import WaitStrategy

    class ConnectionWaitStrategy(WaitStrategy):
        def wait_until_ready(self, container) -> None:
            def attempt() -> bool:
                try:
                    probe()  # raises a non-transient error when the drill is cancelled
                except transient:
                    return False
                return True

            if not self._poll(attempt):
                raise TimeoutError(f"no client connection within {self._startup_timeout:.0f}s")

    return ConnectionWaitStrategy()


def _tar_stream(entries: list[tuple[Path, str]], dirs: list[str], extra: dict[str, bytes]) -> Iterator[bytes]:
    """A tar of host paths (and small in-memory files) produced on the fly, for put_archive.

    A thread writes into a pipe while the HTTP request reads the other end: big dumps are
    never held in memory nor copied to disk. Owners are reset to root; files stay readable.
    """
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o777 if info.isdir() else (0o755 if info.mode & 0o100 else 0o644)
        return info

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                for name in dirs:
                    info = tarfile.TarInfo(name.lstrip("/"))
                    info.type, info.mode = tarfile.DIRTYPE, 0o777
                    tar.addfile(info)
                for name, data in extra.items():
                    info = tarfile.TarInfo(name.lstrip("/"))
                    info.size, info.mode = len(data), 0o600
                    tar.addfile(info, io.BytesIO(data))
                for source, dest in entries:
                    tar.add(str(source), arcname=dest.lstrip("/"), filter=normalise)
        except BaseException as exc:  # reported by the reader once the stream ends
            failure.append(exc)

    producer = threading.Thread(target=produce, name="grimoire-drill-put-archive", daemon=True)
    producer.start()
    with os.fdopen(read_fd, "rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk
    producer.join()
    if failure:
        raise failure[0]


class _ChunkReader(io.RawIOBase):
    """File-like view of get_archive's chunk iterator, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size], self._buffer = self._buffer[:size], self._buffer[size:]
        return size


class _DockerEngine:
    """Lifecycle and tool running shared by the PostgreSQL and MongoDB containers."""

    kind = "docker"
    engine = ""
    port = 0
    ready_log = ""
    image_hint = ""

    def __init__(self, run_id: str, image: str, startup_timeout: float):
        self.run_id = run_id
        self.image = image
        self.startup_timeout = startup_timeout
        self._password = secrets.token_urlsafe(24)
        self._labels = owner_labels(run_id, self.engine)
        self._container = None  # testcontainers DockerContainer once started
        self._cancelled = threading.Event()
        self._tools_running = 0
        self._tools_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.mapped_port = 0
        self._loopback = True
        self.info = EngineInfo(kind=self.kind, image=image)

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start, wait for a real connection, describe; on any failure remove the container."""
        answers, why = docker_status()
        if not answers:
            raise HarnessError(why, where=self.image,
                               fix=f"start the Docker daemon (CI: scripts/ci-docker.sh) or choose another engine "
                                   f"than docker for {self.engine}")
        try:
            self._start()
        except BaseException as exc:
            reason, fix = self._failure_reason(exc)
            self.stop()
            if not isinstance(exc, Exception):
                raise  # Ctrl-C: cleaned up, let it through
            if isinstance(exc, HarnessError):
                raise
            raise HarnessError(f"{self.engine} container from {self.image} did not start: {reason}",
                               where=self.image, fix=fix) from None

    def stop(self) -> None:
        """Remove the container and its anonymous volumes; safe to call twice."""
        self._close_clients()
        container, self._container = self._container, None
        if container is None:
            return
        self._remove_containers()

    def cancel(self) -> None:
        """From any thread: end a running tool now and start nothing new; stop() still cleans up.

        An exec cannot be killed through the Docker API, so a running tool ends with its
        container (the restore is being abandoned anyway); a start in progress fails its next probe.
        """
        self._cancelled.set()
        with self._tools_lock:
            busy = self._tools_running > 0
        if busy:
            self._remove_containers()
        self._cancel_clients()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _cancel_clients(self) -> None:
        """End in-process work through driver clients (MongoDB's native loader)."""

    def _check_cancelled(self, what: str) -> None:
        if self._cancelled.is_set():
            raise HarnessError(f"{what} not started: the drill is stopping", where=self.image,
                               fix="nothing to do: the drill was interrupted")

    def _remove_containers(self) -> None:
        """Remove every container of this engine instance (found by its label, not by reference)."""
        import docker

        try:
            client = docker.from_env(timeout=STATUS_TIMEOUT_S)
        except Exception:  # noqa: BLE001 — best effort; the next run's janitor is the safety net
            return
        try:
            mine = {"label": f"{INSTANCE_LABEL}={self._labels[INSTANCE_LABEL]}"}
            for leftover in client.containers.list(all=True, filters=mine):
                leftover.remove(force=True, v=True)
        except Exception:  # noqa: BLE001 — best effort; the next run's janitor is the safety net
            pass
        finally:
            client.close()

    def _start(self) -> None:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import CompositeWaitStrategy, LogMessageWaitStrategy

        self._check_cancelled(f"{self.engine} container")
        # Ryuk needs an image from a registry; we remove our own containers instead.
        testcontainers_config.ryuk_disabled = True
        name = f"grimoire-drill-{self.run_id}-{self.engine}-{self._labels[INSTANCE_LABEL][:4]}"
        container = DockerContainer(self.image, name=name, labels=self._labels).with_envs(**self._environment())
        base_url = urlparse(container.get_docker_client().client.api.base_url)
        # A unix socket shows as http+docker://localhost. Not testcontainers' inside_container():
        # it only looks for /.dockerenv, which VMs built from images carry too.
        self._loopback = base_url.hostname in {"localhost", "127.0.0.1"}
        if self._loopback:
            # Publish on loopback only: a restored production database is not for the network.
            # (``ports`` values go to docker-py as is; (ip, None) = that ip, a random port.)
            container.ports[f"{self.port}/tcp"] = ("127.0.0.1", None)
        else:
            container.with_exposed_ports(self.port)
        self._container = container
        container.waiting_for(
            CompositeWaitStrategy(
                LogMessageWaitStrategy(re.compile(self.ready_log, re.IGNORECASE)),
                _connection_wait_strategy(self._probe, self._transient_errors()),
            ).with_startup_timeout(self.startup_timeout).with_poll_interval(PROBE_INTERVAL_S)
        )
        container.start()
        self._locate()
        self.info = self._describe()

    def _locate(self) -> None:
        """Where the published port is; known only once the container runs."""
        assert self._container is not None
        self.host = "127.0.0.1" if self._loopback else self._container.get_container_host_ip()
        self.mapped_port = int(self._container.get_exposed_port(self.port))

    def _failure_reason(self, exc: BaseException) -> tuple[str, str]:
        """(what went wrong, the fix): one line each, password-free, with the last log line."""
        from docker.errors import ImageNotFound, NotFound

        text = str(exc)
        if isinstance(exc, (ImageNotFound, NotFound)) or "pull access denied" in text or "/images/create" in text:
            return f"image not available here and not pullable ({_first_line(exc, self._password)})", self.image_hint
        state = self._container_state()
        fix = f"the last log line says why; check that {self.image} is a {self.engine} image that takes this setup"
        if state.get("Status") in {"exited", "dead"}:
            reason = f"the container exited with code {state.get('ExitCode')}"
        elif isinstance(exc, TimeoutError):
            reason = f"not ready within {self.startup_timeout:g}s"
            fix = "check the machine's load and free memory; slow machines need a longer startup timeout"
        else:
            reason = _first_line(exc, self._password)
        last_log = self._last_log_line()
        return (f"{reason}; last log line: {last_log}" if last_log else reason), fix

    def _container_state(self) -> dict:
        if self._container is None or self._container._container is None:
            return {}
        try:
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            return wrapped.attrs.get("State", {})
        except Exception:  # noqa: BLE001 — only decoration for an error we are already raising
            return {}

    def _last_log_line(self) -> str:
        if self._container is None or self._container._container is None:
            return ""
        try:
            logs = self._container.get_wrapped_container().logs(tail=5).decode(errors="replace")
        except Exception:  # noqa: BLE001 — only decoration for an error we are already raising
            return ""
        lines = [line for line in logs.splitlines() if line.strip()]
        return _first_line(lines[-1], self._password) if lines else ""

    # -- running tools inside ------------------------------------------------------------
    def has_tool(self, name: str) -> bool:
        return self._exec([name, "--version"], {})[0] == 0

    def _tool_version(self, tool: str) -> str:
        code, out, _err = self._exec([tool, "--version"], {})
        lines = out.strip().splitlines()
        return lines[0] if code == 0 and lines else "unknown"

    def _run_inside(self, tool: str, args: list[str], files: dict[str, Path], env: dict[str, str],
                    timeout: float | None, secret_files: dict[str, bytes] | None = None) -> ToolResult:
        """Copy ``files`` in, run ``tool`` with ``{name}`` placeholders resolved, copy outputs back.

        A path that exists on the host is an input and goes in; one that does not is an output
        the tool will write, brought back to that host path afterwards (``pg_dump -f {out}``).
        ``secret_files`` (name -> bytes) go in with mode 0600 and resolve ``{name}`` too.
        """
        self._check_cancelled(tool)
        work = f"{WORK_ROOT}-{secrets.token_hex(4)}"
        inside = {name: f"{work}/{name}/{path.name}" for name, path in files.items()}
        inputs = [(path, inside[name]) for name, path in files.items() if path.exists()]
        outputs = [(path, inside[name]) for name, path in files.items() if not path.exists()]
        dirs = [work] + [f"{work}/{name}" for name in files]
        secret_files = secret_files or {}
        inside |= {name: f"{work}/{name}" for name in secret_files}
        from docker.errors import DockerException

        container = self._wrapped()
        stream = _tar_stream(inputs, dirs, {inside[name]: data for name, data in secret_files.items()})
        try:
            copied = container.put_archive("/", stream)
        except (DockerException, OSError) as exc:
            copied, why = False, _first_line(exc, self._password)
        else:
            why = "the daemon refused the archive"
        if not copied:
            raise HarnessError(f"could not copy {', '.join(str(path) for path, _ in inputs)} into the {self.engine} "
                               f"container: {why}", where=container.name,
                               fix="check that the files are readable and Docker's data root has free space "
                                   "(docker system df)")
        argv = [tool, *(arg.format_map(inside) for arg in args)]
        with self._tools_lock:
            self._check_cancelled(tool)
            self._tools_running += 1
        try:
            code, out, err = self._exec(argv, env, timeout=timeout)
            for host_path, path_inside in outputs:
                self._copy_out(path_inside, host_path)
        finally:
            with self._tools_lock:
                self._tools_running -= 1
            if self._container is not None and not self._cancelled.is_set():  # gone after a timeout or cancel
                self._exec(["rm", "-rf", work], {})
        return ToolResult(tuple(argv), code, out, err)

    def _exec(self, argv: list[str], env: dict[str, str], timeout: float | None = None) -> tuple[int, str, str]:
        """Run argv inside the container; the environment carries secrets (argv never does)."""
        from docker.errors import DockerException

        container = self._wrapped()
        api = container.client.api
        exec_id = api.exec_create(container.id, argv, environment=env, stdout=True, stderr=True)["Id"]
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["streams"] = api.exec_start(exec_id, demux=True)
            except BaseException as exc:  # reported in the caller's thread
                outcome["error"] = exc

        runner = threading.Thread(target=run, name=f"grimoire-drill-exec-{argv[0]}", daemon=True)
        runner.start()
        runner.join(timeout)
        if runner.is_alive():
            self.stop()  # the only way to end an exec: its container goes, the restore is lost anyway
            raise HarnessError(f"{argv[0]} did not finish within {timeout:.0f}s inside the {self.engine} container",
                               where=self.image, fix="raise the tool timeout or check the dump's size")
        stopping = f"{argv[0]}: stopped because the drill is stopping (its container was removed)\n"
        if "error" in outcome:
            if self._cancelled.is_set():
                return -1, "", stopping
            raise HarnessError(f"could not run {argv[0]} in the {self.engine} container: "
                               f"{_first_line(outcome['error'], self._password)}", where=self.image,
                               fix="check that the Docker daemon is still running")
        stdout, stderr = outcome["streams"]  # type: ignore[misc]
        out, err = (stdout or b"").decode(errors="replace"), (stderr or b"").decode(errors="replace")
        try:
            code = api.exec_inspect(exec_id).get("ExitCode")
        except DockerException:
            if not self._cancelled.is_set():
                raise
            code = None
        if self._cancelled.is_set():  # cancel() removed the container: whatever the tool said, it was cut short
            return (code if code else -1), out, err + stopping
        return (code if code is not None else -1), out, err

    def _copy_out(self, path_inside: str, host_path: Path) -> None:
        from docker.errors import NotFound

        try:
            chunks, _stat = self._wrapped().get_archive(path_inside, chunk_size=CHUNK_BYTES)
        except NotFound:
            return  # the tool wrote nothing; its exit code says why
        host_path.parent.mkdir(parents=True, exist_ok=True)
        # The archive's top entry is the in-container basename, which is the host path's name.
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(iter(chunks)), CHUNK_BYTES), mode="r|") as tar:
            for member in tar:
                tar.extract(member, host_path.parent, filter="data")

    def _require_running(self) -> None:
        if self._container is None:
            raise HarnessError(f"the {self.engine} container is not running", where=self.image,
                               fix="use the engine inside its `with` block")

    def _wrapped(self):
        if self._container is None:
            raise HarnessError(f"the {self.engine} container is not running", where=self.image,
                               fix="use the engine inside its `with` block")
        return self._container.get_wrapped_container()

    def _image_id(self) -> str:
        image = self._wrapped().image
        digests = image.attrs.get("RepoDigests") or []
        return digests[0] if digests else image.id

    # -- per engine ----------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        """The container's whole environment (besides the image's own ENV): only what its entrypoint
        needs to set the server up. Nothing of the drill's environment is copied in."""
        raise NotImplementedError

    def _probe(self) -> None:
        raise NotImplementedError

    def _transient_errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _describe(self) -> EngineInfo:
        raise NotImplementedError

    def _close_clients(self) -> None:
        pass


class DockerPostgres(SandboxHost, _DockerEngine):
    """``with DockerPostgres(run_id) as pg:`` a started PostgreSQL container; leaving removes it.

    Same methods as LocalPostgres: a restore runs inside the container as ``create_sandbox``'s
    unprivileged role (its password in the exec environment). ``conninfo``/``url`` include a
    generated password: hand them to a driver, never print them.
    """

    engine = "postgres"
    port = 5432
    ready_log = r"database system is ready to accept connections"
    image_hint = ("build the local image (scripts/build-postgres-image.sh) or pull it, pass --postgres-image, "
                  "or use --postgres-engine local")

    def __init__(self, run_id: str, image: str = "postgres:15-alpine", superuser: str = "grimoire", *,
                 startup_timeout: float = STARTUP_TIMEOUT_S):
        super().__init__(run_id, image, startup_timeout)
        self.superuser = superuser
        self._roles: dict[str, RestoreRole] = {}

    def _environment(self) -> dict[str, str]:
        return {"POSTGRES_USER": self.superuser, "POSTGRES_PASSWORD": self._password, "POSTGRES_DB": "postgres"}

    def _transient_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.OperationalError, ConnectionError)

    def _probe(self) -> None:
        import psycopg

        self._check_cancelled("PostgreSQL container")
        self._locate()
        with psycopg.connect(self._admin_conninfo(None), connect_timeout=3) as conn:
            conn.execute("SELECT 1")

    def _describe(self) -> EngineInfo:
        import psycopg

        with psycopg.connect(self._admin_conninfo(None)) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return EngineInfo(kind=self.kind, version=version, image=self.image, image_id=self._image_id(),
                          tools={"pg_restore": self._tool_version("pg_restore")})

    # -- what the restore layer uses -------------------------------------------------------
    def database_name(self, base: str) -> str:
        return base

    def _admin_conninfo(self, dbname: str | None) -> str:
        """libpq conninfo to the published port as the superuser, password included."""
        from psycopg.conninfo import make_conninfo

        self._require_running()
        return make_conninfo(host=self.host, port=str(self.mapped_port), user=self.superuser,
                             password=self._password, dbname=dbname or "postgres")

    def _role_conninfo(self, dbname: str, role: RestoreRole) -> str:
        from psycopg.conninfo import make_conninfo

        self._require_running()
        return make_conninfo(host=self.host, port=str(self.mapped_port), user=role.name,
                             password=role.password, dbname=dbname)

    def _restore_role_name(self, owner: str) -> str:
        """The app's own user name, so a plain dump's ``OWNER TO <owner>`` is a no-op; never the superuser's."""
        if owner == self.superuser:
            raise HarnessError(f"the restore role {owner} would be the container's superuser", where=self.image,
                               fix="start the engine with another superuser name (the drill uses its own)")
        return owner

    def url(self, dbname: str) -> str:
        """URL for a user command (--then), password included; as the restore role for a sandbox."""
        self._require_running()
        role = self._roles.get(dbname)
        user, password = (role.name, role.password) if role is not None else (self.superuser, self._password)
        return (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
                f"@{self.host}:{self.mapped_port}/{quote(dbname, safe='')}")

    def create_database(self, name: str) -> str:
        """A database owned by the superuser (tests); restores use create_sandbox."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._admin_conninfo(None), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        self._drop_sandbox(name)

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None,
                 role: RestoreRole | None = None) -> ToolResult:
        """Run a PostgreSQL client tool inside the container against its own server, as ``role`` if given."""
        user, password = (role.name, role.password) if role is not None else (self.superuser, self._password)
        fixed = ["-h", "127.0.0.1", "-p", str(self.port), "-U", user]
        env = {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
        return self._run_inside(tool, fixed + args, files, env, timeout)


class DockerMongo(_DockerEngine):
    """``with DockerMongo(run_id) as mongo:`` a started MongoDB container with root auth."""

    engine = "mongodb"
    port = 27017
    ready_log = r"waiting for connections"
    image_hint = "pull or load the image (docker pull mongo:7.0), pass --mongo-image, or choose another --mongo-engine"
    root_user = "grimoire"

    def __init__(self, run_id: str, image: str = "mongo:7.0", *, startup_timeout: float = STARTUP_TIMEOUT_S):
        super().__init__(run_id, image, startup_timeout)
        self._client = None

    def _environment(self) -> dict[str, str]:
        return {"MONGO_INITDB_ROOT_USERNAME": self.root_user, "MONGO_INITDB_ROOT_PASSWORD": self._password}

    def _transient_errors(self) -> tuple[type[BaseException], ...]:
        from pymongo.errors import ConnectionFailure, OperationFailure

        # OperationFailure: during init the root user may not exist yet.
        return (ConnectionFailure, OperationFailure, ConnectionError)

    def _new_client(self, timeout_ms: int):
        import pymongo

        return pymongo.MongoClient(self.host, self.mapped_port, username=self.root_user, password=self._password,
                                   authSource="admin", directConnection=True, serverSelectionTimeoutMS=timeout_ms)

    def _probe(self) -> None:
        self._check_cancelled("MongoDB container")
        self._locate()
        probe = self._new_client(2000)
        try:
            probe.admin.command("ping")
        finally:
            probe.close()

    def _describe(self) -> EngineInfo:
        self._client = self._new_client(30_000)
        version = self._client.admin.command("buildInfo").get("version", "unknown")
        tools = {"mongorestore": self._tool_version("mongorestore")} if self.has_tool("mongorestore") else {}
        return EngineInfo(kind=self.kind, version=version, image=self.image, image_id=self._image_id(), tools=tools)

    def _close_clients(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _cancel_clients(self) -> None:
        """The native loader's inserts fail fast (InvalidOperation) once the shared client is closed."""
        if self._client is not None:
            self._client.close()

    # -- what the restore layer uses -------------------------------------------------------
    def client(self):
        """The engine's pymongo MongoClient (shared, thread-safe; closed when the engine stops)."""
        if self._client is None:
            raise HarnessError("the MongoDB container is not running", where=self.image,
                               fix="use the engine inside its `with` block")
        return self._client

    def url(self, dbname: str) -> str:
        """URL for a user command (--then), password included."""
        return (f"mongodb://{quote(self.root_user, safe='')}:{quote(self._password, safe='')}"
                f"@{self.host}:{self.mapped_port}/{quote(dbname, safe='')}?authSource=admin")

    def database_name(self, base: str) -> str:
        return base

    def document_count(self, database: str, collection: str) -> int:
        """Documents the server holds in ``database.collection``, counted by the server."""
        return self.client()[database][collection].count_documents({})

    def drop_database(self, name: str) -> None:
        self.client().drop_database(name)

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None) -> ToolResult:
        """Run a MongoDB tool inside the container; the password travels in a --config file."""
        config = f"password: '{self._password}'\n".encode()
        fixed = ["--host", "127.0.0.1", "--port", str(self.port), "--username", self.root_user,
                 "--authenticationDatabase", "admin", "--config", "{tool_config}"]
        return self._run_inside(tool, fixed + args, files, {}, timeout, secret_files={"tool_config": config})
