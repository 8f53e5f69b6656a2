"""What every engine hands to the restore layer: plain descriptions and a way to run tools.

Engines differ in *where* a tool runs (host binary, inside a container), not in *what* the
restore does, so the restore layer builds the argv and an engine executes it.
"""

from __future__ import annotations

import collections
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..child_env import child_env
from ..errors import HarnessError
from ..limits import Limits

RUN_LABEL = "grimoire-drill.run"
# Labels of every container an engine starts (container.owner_labels), read by the janitor:
HOST_LABEL = "grimoire-drill.host"
BOOT_LABEL = "grimoire-drill.boot"
PID_LABEL = "grimoire-drill.pid"
PID_START_LABEL = "grimoire-drill.pid-start"
PID_NS_LABEL = "grimoire-drill.pid-ns"
INSTANCE_LABEL = "grimoire-drill.instance"
ENGINE_LABEL = "grimoire-drill.engine"
RUN_ENV = "GRIMOIRE_DRILL_RUN_ID"
OWNER_ENV = "GRIMOIRE_DRILL_OWNER"      # "<pid>:<start time>:<pid namespace>" of the drill that started it
OWNER_FILE = ".grimoire-drill-owner"    # the same tag, inside every temp dir an engine creates
TEMP_PREFIX = "gd-"                     # temp dirs of a run: gd-<run id>-...


def new_run_id() -> str:
    """Sortable, unique per run, safe in container names, db names and paths."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(3)


def free_port() -> int:
    """A TCP port free right now on loopback (callers retry if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STOPPING_FIX = "nothing to do: the drill was interrupted"


def stopping_error(what: str, where: str | None = None) -> HarnessError:
    """The one error for work refused because the drill is stopping (a cancelled engine starts nothing)."""
    return HarnessError(f"{what} not started: the drill is stopping", where=where, fix=STOPPING_FIX)


@dataclass(frozen=True)
class EngineInfo:
    """What the report says about an engine. Never holds a secret."""

    kind: str
    version: str = "unknown"
    simulated: bool = False
    image: str | None = None
    image_id: str | None = None
    tools: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        data = {"kind": self.kind, "version": self.version, "simulated": self.simulated}
        if self.image:
            data["image"] = self.image
        if self.image_id:
            data["image_id"] = self.image_id
        if self.tools:
            data["tools"] = dict(self.tools)
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class ToolResult:
    """Outcome of a dump tool (pg_restore, mongorestore) wherever it ran."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


# -- who owns a process or a dir: a pid plus its start time survives pid reuse -------------

def process_start(pid: int) -> str | None:
    """Start time of a live process (clock ticks since boot), None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in {"Z", "X"}:
        return None
    return fields[19]


def pid_namespace() -> str:
    """This process's pid namespace (an inode number): pids mean something only inside one."""
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return ""


def owner_tag(pid: int | None = None) -> str:
    """``<pid>:<start time>:<pid namespace>`` of this process (or ``pid``), for OWNER_ENV and OWNER_FILE."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{process_start(pid) or 'unknown'}:{pid_namespace()}"


def owner_gone(tag: str) -> bool:
    """True only when we can tell the tagged owner is no longer running (a bad tag: False).

    An owner in another pid namespace (a drill inside a container, seen from the host) is
    never judged: its pid means another process here.
    """
    pid_text, _, rest = tag.strip().partition(":")
    start, _, namespace = rest.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if namespace and namespace != pid_namespace():
        return False
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    running = process_start(pid)
    if running is None:
        return True
    return start not in {"", "unknown"} and running != start


def run_env(run_id: str) -> dict[str, str]:
    """Environment tags of every process an engine starts: which run, and which process owns it."""
    return {RUN_ENV: run_id, OWNER_ENV: owner_tag()}


def run_dir_prefix(run_id: str) -> str:
    return f"{TEMP_PREFIX}{run_id}-"


def make_run_dir(run_id: str, what: str, parent: Path | None = None) -> Path:
    """A fresh temp dir ``gd-<run id>-<what>-*`` holding OWNER_FILE, so a later run can tell a stray."""
    path = Path(tempfile.mkdtemp(prefix=f"{run_dir_prefix(run_id)}{what}-", dir=parent))
    (path / OWNER_FILE).write_text(owner_tag() + "\n")
    return path


def tool_env(extra: dict[str, str], *, home: bool = False) -> dict[str, str]:
    """Environment for a host tool: ``child_env`` (an allow-list of ours) plus ``extra``.

    What a tool needs beyond PATH and the locale (the run tags, PGCONNECT_TIMEOUT) is named
    in ``extra``; nothing of the caller's own environment (PG*, DSNs, tokens) reaches it.
    """
    return child_env(extra, home=home)


class BoundedOutput:
    """One stream of a tool: its first and last ``cap // 2`` bytes, and how many were left out between."""

    CHUNK = 64 * 1024

    def __init__(self, cap: int):
        self._half = max(1, cap // 2)
        self._head = bytearray()
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_bytes = 0
        self.omitted = 0

    def read_all(self, pipe) -> None:
        with pipe:
            while chunk := pipe.read1(self.CHUNK) if hasattr(pipe, "read1") else pipe.read(self.CHUNK):
                self.keep(chunk)

    def keep(self, chunk: bytes) -> None:
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self._tail.append(chunk)
        self._tail_bytes += len(chunk)
        while self._tail_bytes - len(self._tail[0]) >= self._half:
            dropped = self._tail.popleft()
            self._tail_bytes -= len(dropped)
            self.omitted += len(dropped)

    def text(self) -> str:
        gap = (f"\n[... {self.omitted:,} bytes of output left out: over limits.max_tool_output_bytes ...]\n"
               if self.omitted else "")
        return (bytes(self._head).decode("utf-8", "replace") + gap
                + b"".join(self._tail).decode("utf-8", "replace"))


class ToolProcesses:
    """The host tools an engine is running, so ``cancel()`` from another thread can end them.

    Ctrl-C reaches only the main thread; a restore thread inside ``pg_restore`` would otherwise
    finish the whole restore before the drill could stop.
    """

    def __init__(self, cancelled: threading.Event, output_cap: int = Limits().max_tool_output_bytes) -> None:
        """``cancelled``: the engine's own cancel flag, so the engine and its tools agree on it."""
        self._output_cap = output_cap
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._cancelled = cancelled

    def check(self, what: str) -> None:
        """Raise when cancelled: a cancelled engine starts nothing new."""
        if self._cancelled.is_set():
            raise stopping_error(what)

    def run(self, argv: list[str], env: dict[str, str], timeout: float | None) -> ToolResult:
        """Run a tool to its end; keep at most ``output_cap`` bytes of each of its streams (head and tail).

        Why bounded: pg_restore and psql repeat what the dump makes the server say (a ``RAISE NOTICE``
        in a loop is a few bytes of dump and gigabytes of stderr), so the whole of it is never held.
        """
        name = Path(argv[0]).name
        with self._lock:
            self.check(name)
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            self._running.add(process)
        streams = [BoundedOutput(self._output_cap), BoundedOutput(self._output_cap)]
        readers = [threading.Thread(target=kept.read_all, args=(pipe,), name=f"{name}-{which}", daemon=True)
                   for kept, pipe, which in zip(streams, (process.stdout, process.stderr), ("stdout", "stderr"))]
        for reader in readers:
            reader.start()
        try:
            try:
                _wait_for_exit(process, readers, timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise HarnessError(f"{name} did not finish within {timeout:.0f}s",
                                   fix="raise the tool timeout or check the dump's size") from None
            except BaseException:
                process.kill()
                process.wait()
                raise
            finally:
                for reader in readers:
                    reader.join()
        finally:
            with self._lock:
                self._running.discard(process)
        stdout, stderr = (kept.text() for kept in streams)
        if self._cancelled.is_set() and process.returncode != 0:
            stderr += f"\n{name}: stopped because the drill is stopping\n"
        return ToolResult(tuple(argv), process.returncode, stdout, stderr)

    def cancel(self) -> None:
        """Stop every running tool (SIGTERM) and refuse new ones; thread-safe, idempotent."""
        with self._lock:
            self._cancelled.set()
            for process in self._running:
                if process.poll() is None:
                    process.terminate()


def _wait_for_exit(process: subprocess.Popen, readers: list[threading.Thread], timeout: float | None) -> None:
    """``process.wait(timeout)`` without its polling: the tool's pipes close when it ends, so wait on those.

    Why: ``Popen.wait`` with a timeout polls ``waitpid`` with sleeps growing to 50 ms, which a
    restore pays once it is done (pg_restore is on the drill's critical path). A reader thread
    ends at end of file, which a join sees at once; the reap that follows is immediate. A tool
    that closes its pipes and runs on still gets the rest of ``timeout`` (raises TimeoutExpired).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    for reader in readers:
        reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    process.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))


def tail(text: str, lines: int = 8) -> str:
    """Last lines of a tool's output, for one-line errors and report evidence."""
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_dir_owned(path: Path, uid: int, gid: int) -> None:
    """Hand a directory to the unprivileged server user (initdb refuses root)."""
    os.chown(path, uid, gid)
    path.chmod(0o700)


RAW_BATCH_DOCS = 1000


def raw_documents(client, database: str, collection: str) -> Iterator[bytes]:
    """A real server's documents of ``database.collection`` as the BSON bytes it stores (no decode)."""
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    raw = client[database].get_collection(collection, codec_options=CodecOptions(document_class=RawBSONDocument))
    for document in raw.find({}, batch_size=RAW_BATCH_DOCS):
        yield document.raw
