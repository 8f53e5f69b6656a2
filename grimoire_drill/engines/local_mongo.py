"""A real, throwaway ``mongod`` from PATH: temp dbpath, free port, tagged, removed afterwards.

Readiness is a real ``ping`` answered by the server (pymongo server selection, retried while
the process lives), not a sleep. The process carries GRIMOIRE_DRILL_RUN_ID and its owner
(GRIMOIRE_DRILL_OWNER) in its environment and runs in ``gd-<run id>-mongo-*``, so a later
run's janitor can recognise and remove what a killed run left.
"""

from __future__ import annotations

from collections.abc import Iterator

import shutil
import subprocess
import time
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from ..errors import HarnessError
from ..limits import Limits
from .base import (
    EngineInfo,
    ToolProcesses,
    ToolResult,
    free_port,
    make_run_dir,
    raw_documents,
    run_env,
    tail,
    tool_env,
)
from .lifecycle import EngineLifecycle

READY_TIMEOUT_S = 60.0
PING_TIMEOUT_MS = 1000
START_ATTEMPTS = 3


def find_mongod() -> str | None:
    return shutil.which("mongod")


class LocalMongo(EngineLifecycle):
    """``with LocalMongo(...) as mongo:`` a started mongod; leaving the block removes it and its dir."""

    kind = "local"
    title = "the local mongod"

    def __init__(self, *, run_id: str, temp_root: Path | None = None, mongod: str | None = None,
                 output_cap: int = Limits().max_tool_output_bytes):
        super().__init__(run_id)
        self._temp_root = temp_root
        self.mongod = mongod if mongod is not None else find_mongod()
        if self.mongod is None:
            raise HarnessError("mongod not found on PATH", fix="install MongoDB 7 or choose --mongo-engine docker|external")
        self.base_dir: Path | None = None
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._process_code: int | None = None
        self._client: pymongo.MongoClient | None = None
        self._tools = ToolProcesses(self._cancelled, output_cap)

    def start(self) -> None:
        self._check_cancelled("local mongod")
        self.base_dir = make_run_dir(self.run_id, "mongo", self._temp_root)
        last_error = ""
        for _attempt in range(START_ATTEMPTS):  # the free port may be taken meanwhile
            (self.base_dir / "db").mkdir(exist_ok=True)
            self.port = free_port()
            last_error = self._launch()
            if not last_error:
                break
        else:
            raise HarnessError(f"local mongod did not start: {last_error}", where=str(self.base_dir / "mongod.log"),
                               fix="read the mongod log; check disk space")
        build = self.client().admin.command("buildInfo")
        tools = {}
        if self.has_tool("mongorestore"):
            tools["mongorestore"] = self._tool_version("mongorestore")
        self.info = EngineInfo(kind=self.kind, version=build.get("version", "unknown"), tools=tools)

    def _launch(self) -> str:
        """Start mongod and wait until it answers ``ping``; '' when ready, else why not."""
        assert self.base_dir is not None
        with open(self.base_dir / "mongod.log", "ab") as log:
            self._process = subprocess.Popen(
                [self.mongod, "--dbpath", str(self.base_dir / "db"), "--port", str(self.port),
                 "--bind_ip", "127.0.0.1", "--nounixsocket"],
                stdout=log, stderr=subprocess.STDOUT, env=tool_env(run_env(self.run_id)), cwd=self.base_dir,
                start_new_session=True,
            )
        self._client = pymongo.MongoClient("127.0.0.1", self.port, directConnection=True,
                                           serverSelectionTimeoutMS=PING_TIMEOUT_MS)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                self._end_process()
                return f"mongod exited with code {self._process_code}: {self._last_log_line()}"
            self._check_cancelled("local mongod")
            try:
                self._client.admin.command("ping")
                return ""
            except PyMongoError as exc:
                if time.monotonic() > deadline:
                    self._end_process()
                    return f"no answer within {READY_TIMEOUT_S:.0f}s ({str(exc).splitlines()[0][:200]})"

    def _end_process(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process_code = self._process.returncode
            self._process = None

    def _last_log_line(self) -> str:
        try:
            lines = (self.base_dir / "mongod.log").read_text(errors="replace").strip().splitlines()
        except (OSError, TypeError):
            return ""
        return lines[-1][:300] if lines else ""

    def stop(self) -> None:
        """Stop mongod (SIGTERM, then SIGKILL) and remove its dir; safe to call twice."""
        self._end_process()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
        self.port = 0

    @property
    def running(self) -> bool:
        return self._client is not None

    def _end_work(self) -> None:
        """cancel(): end running tools (mongorestore) and the native loader's inserts (its client is
        closed: further operations raise InvalidOperation)."""
        self._tools.cancel()
        if self._client is not None:
            self._client.close()

    def client(self) -> pymongo.MongoClient:
        self._require_running()
        return self._client

    def url(self, dbname: str) -> str:
        self._require_running()
        return f"mongodb://127.0.0.1:{self.port}/{dbname}"

    def database_name(self, base: str) -> str:
        return base

    def document_count(self, database: str, collection: str) -> int:
        """Documents the server holds in ``database.collection``, counted by the server."""
        return self.client()[database][collection].count_documents({})

    def stored_documents(self, database: str, collection: str) -> Iterator[bytes]:
        """The server's documents of ``database.collection`` as the raw BSON it stores."""
        return raw_documents(self.client(), database, collection)

    def drop_database(self, name: str) -> None:
        self.client().drop_database(name)

    def has_tool(self, name: str) -> bool:
        return shutil.which(name) is not None

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None) -> ToolResult:
        self._require_running()
        argv = [shutil.which(tool) or tool, f"--host=127.0.0.1:{self.port}"]
        argv += [arg.format(**{k: str(v) for k, v in files.items()}) for arg in args]
        result = self._tools.run(argv, tool_env(run_env(self.run_id)), timeout)
        return ToolResult(result.argv, result.returncode, result.stdout, tail(result.stderr, 40))

    def _tool_version(self, tool: str) -> str:
        done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False, env=tool_env({}))
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"
