"""A real, throwaway ``mongod`` from PATH: temp dbpath, free port, tagged, removed afterwards.

Readiness is pymongo's own server selection (it waits for the server to answer ``ping``),
not a sleep. The process carries GRIMOIRE_DRILL_RUN_ID in its environment and its dbpath
name, so a later run can recognise strays left by a killed run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from ..errors import HarnessError
from .base import RUN_ENV, EngineInfo, ToolResult, free_port, tail, tool_env

READY_TIMEOUT_MS = 60_000


def find_mongod() -> str | None:
    return shutil.which("mongod")


class LocalMongo:
    kind = "local"

    def __init__(self, *, run_id: str, temp_root: Path | None = None):
        self.run_id = run_id
        self._temp_root = temp_root
        self.mongod = find_mongod()
        if self.mongod is None:
            raise HarnessError("mongod not found on PATH", fix="install MongoDB 7 or choose --mongo-engine docker|external")
        self.base_dir: Path | None = None
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._client: pymongo.MongoClient | None = None
        self.info = EngineInfo(kind=self.kind)

    def __enter__(self) -> "LocalMongo":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"grimoire-drill-mongo-{self.run_id}-", dir=self._temp_root))
        (self.base_dir / "db").mkdir()
        self.port = free_port()
        log = open(self.base_dir / "mongod.log", "wb")
        with log:
            self._process = subprocess.Popen(
                [self.mongod, "--dbpath", str(self.base_dir / "db"), "--port", str(self.port),
                 "--bind_ip", "127.0.0.1", "--unixSocketPrefix", str(self.base_dir), "--nounixsocket"],
                stdout=log, stderr=subprocess.STDOUT, env=tool_env({RUN_ENV: self.run_id}), start_new_session=True,
            )
        self._client = pymongo.MongoClient("127.0.0.1", self.port, serverSelectionTimeoutMS=READY_TIMEOUT_MS,
                                           directConnection=True)
        try:
            build = self._client.admin.command("buildInfo")
        except PyMongoError as exc:
            raise HarnessError(f"local mongod did not become ready: {exc}", where=str(self.base_dir / "mongod.log"),
                               fix="read the mongod log; check disk space") from exc
        tools = {}
        if self.has_tool("mongorestore"):
            tools["mongorestore"] = self._tool_version("mongorestore")
        self.info = EngineInfo(kind=self.kind, version=build.get("version", "unknown"), tools=tools)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def client(self) -> pymongo.MongoClient:
        assert self._client is not None, "engine not started"
        return self._client

    def url(self, dbname: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{dbname}"

    def database_name(self, base: str) -> str:
        return base

    def drop_database(self, name: str) -> None:
        self.client().drop_database(name)

    def has_tool(self, name: str) -> bool:
        return shutil.which(name) is not None

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None) -> ToolResult:
        argv = [shutil.which(tool) or tool, f"--host=127.0.0.1:{self.port}"]
        argv += [arg.format(**{k: str(v) for k, v in files.items()}) for arg in args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, env=tool_env({}))
        return ToolResult(tuple(argv), done.returncode, done.stdout, tail(done.stderr, 40))

    def _tool_version(self, tool: str) -> str:
        done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"
