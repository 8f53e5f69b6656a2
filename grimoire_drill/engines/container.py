"""What the PostgreSQL and MongoDB containers share: a daemon check, the labels that name a
container's run and owner, and the container lifecycle with tools run inside (``ContainerEngine``).

Every container carries labels naming the run, the host, the boot and the starting process
(``owner_labels``), so the janitor (``janitor.remove_stray_containers``) can tell a container
left by a killed run from one in use. Ryuk (the testcontainers reaper) is not used: its image
needs a registry, and we clean up ourselves. The password reaches tools through the exec
environment or a file inside the container, never argv.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from ..errors import HarnessError
from ..limits import Limits
from .base import (BOOT_LABEL, BoundedOutput, ENGINE_LABEL, HOST_LABEL, INSTANCE_LABEL, PID_LABEL, PID_NS_LABEL, PID_START_LABEL,
                   RUN_LABEL, EngineInfo, ToolResult, pid_namespace, process_start)
from .docker_files import CHUNK_BYTES, extract_chunks, tar_stream
from .lifecycle import EngineLifecycle
from .scratch import boot_id

STARTUP_TIMEOUT_S = 180.0
PROBE_INTERVAL_S = 0.25
STATUS_TIMEOUT_S = 5
WORK_ROOT = "/tmp/grimoire-drill"


# -- is there a daemon? --------------------------------------------------------------------

def docker_status() -> tuple[bool, str]:
    """Does a Docker daemon answer here? ``(True, "Docker 24.0.7 at unix://…")`` or ``(False, why)``."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=STATUS_TIMEOUT_S)
    except DockerException as exc:
        return False, f"no Docker daemon answers ({first_line(exc)})"
    try:
        version = client.version()
        return True, f"Docker {version.get('Version', '?')} answers at {client.api.base_url}"
    except (DockerException, OSError) as exc:
        return False, f"the Docker daemon does not answer ({first_line(exc)})"
    finally:
        client.close()


# -- what a container says about who started it ---------------------------------------------

def owner_labels(run_id: str, engine: str) -> dict[str, str]:
    """Labels every container we start carries (public so tests can forge a stray)."""
    pid = os.getpid()
    return {
        RUN_LABEL: run_id,
        ENGINE_LABEL: engine,
        HOST_LABEL: socket.gethostname(),
        BOOT_LABEL: boot_id() or "unknown",
        PID_LABEL: str(pid),
        PID_START_LABEL: process_start(pid) or "unknown",
        PID_NS_LABEL: pid_namespace(),
        INSTANCE_LABEL: secrets.token_hex(6),
    }


def first_line(error: BaseException | str, secret: str | None = None) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    if secret:
        line = line.replace(secret, "***")
    return line[:300]


def connection_wait_strategy(probe: Callable[[], None], transient: tuple[type[BaseException], ...]):
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


class ContainerEngine(EngineLifecycle):
    """Lifecycle and tool running shared by the PostgreSQL and MongoDB containers."""

    kind = "docker"
    engine = ""
    port = 0
    ready_log = ""
    image_hint = ""

    def __init__(self, run_id: str, image: str, startup_timeout: float,
                 output_cap: int = Limits().max_tool_output_bytes):
        super().__init__(run_id)
        self._output_cap = output_cap
        self.image = image
        self.startup_timeout = startup_timeout
        self._password = secrets.token_urlsafe(24)
        self._labels = owner_labels(run_id, self.engine)
        self._container = None  # testcontainers DockerContainer once started
        self._tools_running = 0
        self._tools_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.mapped_port = 0
        self._loopback = True
        self.info = EngineInfo(kind=self.kind, image=image)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start, wait for a real connection, describe; a failure says why in one line (and
        ``with`` then removes the container)."""
        answers, why = docker_status()
        if not answers:
            raise HarnessError(why, where=self.image,
                               fix=f"start the Docker daemon (CI: scripts/ci-docker.sh) or choose another engine "
                                   f"than docker for {self.engine}")
        try:
            self._start()
        except HarnessError:
            raise
        except Exception as exc:  # Ctrl-C goes through as it is
            reason, fix = self._failure_reason(exc)
            raise HarnessError(f"{self.engine} container from {self.image} did not start: {reason}",
                               where=self.image, fix=fix) from None

    def stop(self) -> None:
        """Remove the container and its anonymous volumes; safe to call twice."""
        self._close_clients()
        container, self._container = self._container, None
        if container is None:
            return
        self._remove_containers()

    @property
    def running(self) -> bool:
        return self._container is not None

    def _where(self) -> str:
        return self.image

    def _end_work(self) -> None:
        """cancel(): end a running tool now.

        An exec cannot be killed through the Docker API, so a running tool ends with its
        container (the restore is being abandoned anyway); a start in progress fails its next probe.
        """
        with self._tools_lock:
            busy = self._tools_running > 0
        if busy:
            self._remove_containers()
        self._cancel_clients()

    def _cancel_clients(self) -> None:
        """End in-process work through driver clients (MongoDB's native loader)."""

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
                connection_wait_strategy(self._probe, self._transient_errors()),
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
            return f"image not available here and not pullable ({first_line(exc, self._password)})", self.image_hint
        state = self._container_state()
        fix = f"the last log line says why; check that {self.image} is a {self.engine} image that takes this setup"
        if state.get("Status") in {"exited", "dead"}:
            reason = f"the container exited with code {state.get('ExitCode')}"
        elif isinstance(exc, TimeoutError):
            reason = f"not ready within {self.startup_timeout:g}s"
            fix = "check the machine's load and free memory; slow machines need a longer startup timeout"
        else:
            reason = first_line(exc, self._password)
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
        return first_line(lines[-1], self._password) if lines else ""

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
        stream = tar_stream(inputs, dirs, {inside[name]: data for name, data in secret_files.items()})
        try:
            copied = container.put_archive("/", stream)
        except (DockerException, OSError) as exc:
            copied, why = False, first_line(exc, self._password)
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
        kept = (BoundedOutput(self._output_cap), BoundedOutput(self._output_cap))  # a dump can make a tool talk

        def run() -> None:
            try:
                for chunks in api.exec_start(exec_id, stream=True, demux=True):
                    for stream, chunk in zip(kept, chunks):
                        if chunk:
                            stream.keep(chunk)
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
                               f"{first_line(outcome['error'], self._password)}", where=self.image,
                               fix="check that the Docker daemon is still running")
        out, err = (stream.text() for stream in kept)
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
        # The archive's top entry is the in-container basename, which is the host path's name.
        extract_chunks(iter(chunks), host_path.parent)

    def _wrapped(self):
        self._require_running()
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
