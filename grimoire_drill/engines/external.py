"""Servers someone else runs (a shared staging box). We only ever touch our own scratch database.

The scratch database is ``<db>_drill_<run id>`` (``scratch.scratch_name``): created for the run
(refused if it already exists), tagged at once with its owner record, dropped afterwards. A
drill killed before it could drop leaves it behind: the next drill's janitor, run as the
engine connects, drops scratch databases whose owner is gone (``janitor.sweep_*_scratch``).
Nothing else on the server is read, written or dropped.
Credentials stay inside client objects; they never reach argv, output or a child's environment
(a PostgreSQL tool reads the password from a 0600 password file that lives while it runs).
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote as url_quote

import psycopg
import pymongo
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

from ..errors import HarnessError
from ..limits import Limits
from .base import EngineInfo, ToolProcesses, ToolResult, make_run_dir, raw_documents, run_env, tool_env
from .janitor import ScratchSweep, sweep_mongo_scratch, sweep_postgres_scratch
from .lifecycle import EngineLifecycle
from .local_postgres import find_client_bindir
from .pg_sandbox import RestoreRole, SandboxHost, admin_rights
from .scratch import OWNER_COLLECTION, OWNER_DOCUMENT_ID, ScratchOwner, scratch_name, session_name

CONNECT_TIMEOUT_MS = 15_000

__all__ = ["ExternalMongo", "ExternalPostgres", "scratch_name"]


def _scrubbed(error: BaseException, secret: str | None) -> str:
    """First line of a driver error, with the password (if any) masked."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line.replace(secret, "***") if secret else line


def _redacted_host(hosts) -> str:
    return ",".join(f"{host}:{port}" for host, port in hosts)


def _with_sweep(note: str, sweep: ScratchSweep) -> str:
    """The engine's note for the summary, saying what the janitor removed or left on the server."""
    parts = [note]
    if sweep.removed:
        parts.append(f"removed {len(sweep.removed)} stray scratch object(s) of killed runs")
    if sweep.left:
        parts.append(f"left {len(sweep.left)} scratch object(s) whose owner cannot be judged")
    return "; ".join(parts)


def _sweep_failed(error: BaseException, secret: str | None) -> ScratchSweep:
    return ScratchSweep([], [f"could not look for stray scratch databases: {_scrubbed(error, secret)}"])


class ExternalMongo(EngineLifecycle):
    """A server reached through ``--mongo-uri``: starting connects (and sweeps strays), stopping drops
    the scratch databases this run made and disconnects."""

    kind = "external"
    title = "the external MongoDB engine"

    def __init__(self, *, run_id: str, uri: str):
        super().__init__(run_id)
        self._uri = uri
        try:
            self._parsed = parse_uri(uri)
        except Exception as exc:  # pymongo raises several types for a bad URI
            raise HarnessError("--mongo-uri is not a valid MongoDB URI", fix="use mongodb://user:pass@host:27017/") from exc
        self._client: pymongo.MongoClient | None = None
        self._created: list[str] = []
        self.undropped: list[str] = []
        self.janitor = ScratchSweep.empty()   # what the stray sweep did as we connected, for the console

    def start(self) -> None:
        self._client = pymongo.MongoClient(self._uri, serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS)
        try:
            build = self._client.admin.command("buildInfo")
        except PyMongoError as exc:
            why = _scrubbed(exc, self._parsed.get("password"))
            raise HarnessError(f"external MongoDB at {_redacted_host(self._parsed['nodelist'])} did not answer: {why}",
                               fix="check --mongo-uri, network and credentials") from None
        try:
            self.janitor = sweep_mongo_scratch(self._client, self.run_id)
        except PyMongoError as exc:
            self.janitor = _sweep_failed(exc, self._parsed.get("password"))
        note = f"scratch databases *_drill_{self.run_id} on {_redacted_host(self._parsed['nodelist'])}"
        self.info = EngineInfo(kind=self.kind, version=build.get("version", "unknown"),
                               note=_with_sweep(note, self.janitor))

    def stop(self) -> None:
        """Drop the scratch databases we created (a failed start created none) and disconnect."""
        if self._client is None:
            return
        if self.cancelled:  # cancel() closed the client: drop with a fresh one
            self._client = pymongo.MongoClient(self._uri, serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS)
        for name in self._created:
            try:
                self._client.drop_database(name)
            except PyMongoError:
                self.undropped.append(name)
        self._client.close()
        self._client = None

    @property
    def running(self) -> bool:
        return self._client is not None

    def _end_work(self) -> None:
        """cancel(): end the native loader's inserts (its client is closed: further operations raise
        InvalidOperation); leaving the block still drops the scratch databases."""
        if self._client is not None:
            self._client.close()

    def client(self) -> pymongo.MongoClient:
        self._require_running()
        return self._client

    def database_name(self, base: str) -> str:
        """The scratch name for ``base``; refuses to reuse a database that already exists.

        The owner record is its first write, so the database never holds data without it.
        """
        name = scratch_name(base, self.run_id)
        if name not in self._created:
            if name in self.client().list_database_names():
                raise HarnessError(f"scratch database {name} already exists on the external MongoDB",
                                   fix="retry (a new run id gives a new name) or drop it by hand")
            self._created.append(name)
            record = {"_id": OWNER_DOCUMENT_ID, **ScratchOwner.this_process(self.run_id).as_document()}
            self.client()[name][OWNER_COLLECTION].insert_one(record)
        return name

    def url(self, dbname: str) -> str:
        """A URI for a --then command: the given one with the scratch database as its path.

        The path database is also where a driver authenticates unless ``authSource`` says
        otherwise, so the original authentication database is kept explicitly (the given
        ``authSource``, else the original path database, else ``admin``), or a user defined in
        ``admin`` would fail to log in to the scratch database.
        """
        head, _, rest = self._uri.partition("://")
        hostpart, _, path_and_query = rest.partition("/")
        hostpart, _, query = hostpart.partition("?")  # mongodb://host?opts (no slash) is valid too
        query = path_and_query.partition("?")[2] or query
        options = [item for item in re.split("[&;]", query) if item and item.split("=", 1)[0].lower() != "authsource"]
        if self._parsed.get("username") is not None:
            given = next((v for k, v in self._parsed["options"].items() if k.lower() == "authsource"), None)
            source = given or self._parsed.get("database") or "admin"
            options.append("authSource=" + url_quote(source, safe=""))
        return f"{head}://{hostpart}/{url_quote(dbname, safe='')}" + (f"?{'&'.join(options)}" if options else "")

    def document_count(self, database: str, collection: str) -> int:
        """Documents the server holds in ``database.collection``, counted by the server."""
        return self.client()[database][collection].count_documents({})

    def stored_documents(self, database: str, collection: str) -> Iterator[bytes]:
        """The server's documents of ``database.collection`` as the raw BSON it stores."""
        return raw_documents(self.client(), database, collection)

    def drop_database(self, name: str) -> None:
        if name in self._created:
            self.client().drop_database(name)

    def has_tool(self, name: str) -> bool:
        """mongorestore would need the credentials on its command line or in a file: use the native loader."""
        return False

    def run_tool(self, tool: str, args: list[str], files: dict, timeout: float | None = None) -> ToolResult:
        raise NotImplementedError("external MongoDB restores through the native loader")


class ExternalPostgres(SandboxHost, EngineLifecycle):
    """A server reached through ``--postgres-dsn``. The DSN role is the admin: it creates the
    unprivileged restore role ``<app user>_drill_<run id>`` (so it needs CREATEROLE) and drops it
    with the scratch database; restores and checks run as that role. Starting connects (and
    sweeps strays); stopping drops what this run made."""

    kind = "external"
    title = "the external PostgreSQL engine"

    def __init__(self, *, run_id: str, dsn: str, output_cap: int = Limits().max_tool_output_bytes):
        super().__init__(run_id)
        try:
            self._params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            raise HarnessError("--postgres-dsn is not a valid libpq DSN",
                               fix="use postgresql://user:pass@host:5432/postgres") from None
        self._params.setdefault("connect_timeout", "15")
        self.bindir = find_client_bindir()
        self._created: list[str] = []
        self.undropped: list[str] = []
        self._roles: dict[str, RestoreRole] = {}
        self._open = False
        self._tools = ToolProcesses(self._cancelled, output_cap)
        self.janitor = ScratchSweep.empty()   # what the stray sweep did as we connected, for the console
        self._presence: psycopg.Connection | None = None  # open for the whole run: see scratch.session_name

    def start(self) -> None:
        secret = self._params.get("password")
        try:
            self._presence = psycopg.connect(
                make_conninfo(**{**self._params, "application_name": session_name(self.run_id)}), autocommit=True)
            version = self._presence.execute("SHOW server_version").fetchone()[0]
            superuser, createrole = admin_rights(self._presence)
        except psycopg.Error as exc:
            raise HarnessError(f"external PostgreSQL at {self._server()} did not answer: {_scrubbed(exc, secret)}",
                               fix="check --postgres-dsn, network and credentials") from None
        if not (superuser or createrole):
            raise HarnessError(f"the --postgres-dsn role on {self._server()} cannot create roles: the restore runs "
                               "as an unprivileged role it creates", fix="ALTER ROLE <dsn user> CREATEROLE")
        try:
            self.janitor = sweep_postgres_scratch(self._presence, self.run_id)
        except psycopg.Error as exc:
            self.janitor = _sweep_failed(exc, secret)
        note = f"scratch database *_drill_{self.run_id} on {self._server()}"
        if superuser:
            note = ("WARNING: the --postgres-dsn role is a superuser (the restore still runs as an unprivileged "
                    "role; give the drill a CREATEROLE CREATEDB login instead); " + note)
        self.info = EngineInfo(kind=self.kind, version=version, note=_with_sweep(note, self.janitor))
        self._open = True

    def stop(self) -> None:
        """Drop every scratch database we created (connections to it are ended: WITH (FORCE)), and its role."""
        for name in list(self._created):
            try:
                self.drop_database(name)
            except psycopg.Error:
                self._created.remove(name)
                self.undropped.append(name)
                role = self._roles.pop(name, None)
                if role is not None:
                    self.undropped.append(f"role {role.name}")
        self._open = False
        self._close_presence()  # only now: what we made is gone, so no janitor may judge it left

    def _close_presence(self) -> None:
        if self._presence is not None:
            self._presence.close()
            self._presence = None

    @property
    def running(self) -> bool:
        return self._open

    def _end_work(self) -> None:
        """cancel(): end running tools (pg_restore) now; stop() still drops."""
        self._tools.cancel()

    def _server(self) -> str:
        return f"{self._params.get('host', 'localhost')}:{self._params.get('port', '5432')}"

    def database_name(self, base: str) -> str:
        return scratch_name(base, self.run_id)

    def _refuse_existing(self, conn: psycopg.Connection, name: str) -> None:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise HarnessError(f"scratch database {name} already exists on the external PostgreSQL",
                               fix="retry (a new run id gives a new name) or drop it by hand")

    def create_database(self, name: str) -> str:
        with psycopg.connect(make_conninfo(**self._params), autocommit=True) as conn:
            self._refuse_existing(conn, name)
            conn.execute(f'CREATE DATABASE "{name}"')
            self._created.append(name)
            self._tag(conn, "DATABASE", name)
        return name

    def _tag(self, conn: psycopg.Connection, kind: str, name: str) -> None:
        """Write our owner record on a database or role we just created, before anything goes into it.

        A drill killed after this leaves something the next drill's janitor can judge by its owner;
        one killed between the CREATE and this, by its run's session being gone (``session_name``).
        """
        comment = ScratchOwner.this_process(self.run_id).as_comment()
        conn.execute(sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), sql.Identifier(name), sql.Literal(comment)))

    def _record_owner(self, admin: psycopg.Connection, database: str, role: RestoreRole) -> None:
        """The sandbox's role and database carry our owner record, as create_database's do."""
        self._tag(admin, "ROLE", role.name)
        self._tag(admin, "DATABASE", database)

    def create_sandbox(self, database: str, *, owner: str, extensions=()) -> RestoreRole:
        """The scratch database, owned by a new unprivileged role (refused if the database exists)."""
        with psycopg.connect(make_conninfo(**self._params), autocommit=True) as conn:
            self._refuse_existing(conn, database)
        try:
            return super().create_sandbox(database, owner=owner, extensions=extensions)
        finally:
            if database in self._roles:
                self._created.append(database)

    def drop_database(self, name: str) -> None:
        if name not in self._created:
            return
        self._drop_sandbox(name)
        self._created.remove(name)

    def _admin_conninfo(self, dbname: str | None) -> str:
        """libpq conninfo as the DSN's role (None: the DSN's own database), password included: never print it."""
        self._require_running()
        return make_conninfo(**self._params) if dbname is None else make_conninfo(**{**self._params, "dbname": dbname})

    def _role_conninfo(self, dbname: str, role: RestoreRole) -> str:
        self._require_running()
        return make_conninfo(**{**self._params, "dbname": dbname, "user": role.name, "password": role.password})

    def _restore_role_name(self, owner: str) -> str:
        """New per run, like the scratch database: the server is shared, so never the app's own name."""
        return scratch_name(owner, self.run_id)

    def url(self, dbname: str) -> str:
        """URL for a --then command, password included: never print it. A sandbox: as its restore role."""
        self._require_running()
        params = {**self._params, "dbname": dbname}
        role = self._roles.get(dbname)
        if role is not None:
            params.update(user=role.name, password=role.password)
        auth = params.get("user", "")
        if params.get("password"):
            auth += ":" + params["password"]
        return f"postgresql://{auth}@{params.get('host', 'localhost')}:{params.get('port', '5432')}/{dbname}"

    def run_tool(self, tool: str, args: list[str], files: dict[str, Path], timeout: float | None = None,
                 role: RestoreRole | None = None) -> ToolResult:
        """Host client tools, as ``role`` if given; connection parameters travel as PG* environment
        variables, not argv, and the password in a password file (PGPASSFILE), not PGPASSWORD: a
        process's environment is copied into every child it starts and shown by ``ps e`` to its user."""
        self._require_running()
        if self.bindir is None:
            raise HarnessError(f"{tool} not found", fix="install postgresql-client-15")
        params = self._params if role is None else {**self._params, "user": role.name, "password": role.password}
        env = {_LIBPQ_ENV[key]: str(value) for key, value in params.items() if key in _LIBPQ_ENV}
        argv = [str(self.bindir / tool)] + [arg.format(**{k: str(v) for k, v in files.items()}) for arg in args]
        with _password_file(self.run_id, params.get("password")) as passfile:
            if passfile is not None:
                env["PGPASSFILE"] = str(passfile)
            # HOME: ~/.pgpass, ~/.pg_service.conf and ~/.postgresql/ certificates, as for our own connection
            return self._tools.run(argv, tool_env({**run_env(self.run_id), **env}, home=True), timeout)


@contextmanager
def _password_file(run_id: str, password: str | None) -> Iterator[Path | None]:
    """A libpq password file (``*:*:*:*:password``, mode 0600 in a 0700 run dir) for one tool run."""
    if not password:
        yield None
        return
    if "\n" in password or "\r" in password:
        raise HarnessError("the --postgres-dsn password holds a line break, which libpq tools cannot be given",
                           fix="use a password without line breaks for the drill's login")
    folder = make_run_dir(run_id, "pgpass")
    try:
        path = folder / "pgpass"
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"*:*:*:*:{escaped}\n")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# libpq connection keywords a tool takes from its environment instead of argv (libpq-envars)
_LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER", "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS", "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
