"""Throwaway PostgreSQL and MongoDB in Docker containers, through testcontainers.

The real thing for nightly CI and audits: the same images production runs, and the dump tools
(``pg_restore``, ``mongorestore``) run *inside* the container, so the restore uses the tool
version that ships with the server. What both containers share (lifecycle, labels, running
tools inside) is ``container.ContainerEngine``; dumps go in and out as tar streams
(``docker_files``); containers of killed runs are the janitor's (``janitor.remove_stray_containers``).
"""

from __future__ import annotations

from collections.abc import Iterator

from pathlib import Path
from urllib.parse import quote

from ..errors import HarnessError
from ..limits import Limits
from .base import EngineInfo, ToolResult, raw_documents
from .container import STARTUP_TIMEOUT_S, ContainerEngine, docker_status, owner_labels
from .pg_sandbox import RestoreRole, SandboxHost

__all__ = ["DockerMongo", "DockerPostgres", "docker_status", "owner_labels"]


class DockerPostgres(SandboxHost, ContainerEngine):
    """``with DockerPostgres(run_id) as pg:`` a started PostgreSQL container; leaving removes it.

    A ``contract.PostgresEngine``: a restore runs inside the container as ``create_sandbox``'s
    unprivileged role (its password in the exec environment). ``conninfo``/``url`` include a
    generated password: hand them to a driver, never print them.
    """

    engine = "postgres"
    title = "the postgres container"
    port = 5432
    ready_log = r"database system is ready to accept connections"
    image_hint = ("build the local image (scripts/build-postgres-image.sh) or pull it, pass --postgres-image, "
                  "or use --postgres-engine local")

    def __init__(self, run_id: str, image: str = "postgres:15-alpine", superuser: str = "grimoire", *,
                 startup_timeout: float = STARTUP_TIMEOUT_S, output_cap: int = Limits().max_tool_output_bytes):
        super().__init__(run_id, image, startup_timeout, output_cap)
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


class DockerMongo(ContainerEngine):
    """``with DockerMongo(run_id) as mongo:`` a started MongoDB container with root auth."""

    engine = "mongodb"
    title = "the MongoDB container"
    port = 27017
    ready_log = r"waiting for connections"
    image_hint = "pull or load the image (docker pull mongo:7.0), pass --mongo-image, or choose another --mongo-engine"
    root_user = "grimoire"

    def __init__(self, run_id: str, image: str = "mongo:7.0", *, startup_timeout: float = STARTUP_TIMEOUT_S,
                 output_cap: int = Limits().max_tool_output_bytes):
        super().__init__(run_id, image, startup_timeout, output_cap)
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
        self._require_running()
        return self._client

    def url(self, dbname: str) -> str:
        """URL for a user command (--then), password included."""
        self._require_running()
        return (f"mongodb://{quote(self.root_user, safe='')}:{quote(self._password, safe='')}"
                f"@{self.host}:{self.mapped_port}/{quote(dbname, safe='')}?authSource=admin")

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

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None) -> ToolResult:
        """Run a MongoDB tool inside the container; the password travels in a --config file."""
        config = f"password: '{self._password}'\n".encode()
        fixed = ["--host", "127.0.0.1", "--port", str(self.port), "--username", self.root_user,
                 "--authenticationDatabase", "admin", "--config", "{tool_config}"]
        return self._run_inside(tool, fixed + args, files, {}, timeout, secret_files={"tool_config": config})
