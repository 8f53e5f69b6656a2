"""The unprivileged role a PostgreSQL restore runs as, and the scratch database it alone owns.

Why: a dump is untrusted. Run as a superuser, an index expression calling ``COPY ... TO PROGRAM``
or a ``pg_read_file`` default runs on the server host. The restore role is a plain LOGIN with
no predefined roles (no ``pg_execute_server_program``, ``pg_read_server_files``,
``pg_write_server_files``), not CREATEROLE/CREATEDB/REPLICATION/BYPASSRLS, so those statements
fail inside the restore. The admin connection (a superuser, or an external DSN role with
CREATEROLE) only creates the role and the database and installs the expected extensions
beforehand, into the still-empty database.

The role's password never travels in clear: the server gets a SCRAM verifier computed here,
and tools get the password through their environment only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field, replace
from typing import Iterable

import psycopg
from psycopg import sql

from ..errors import HarnessError

# The superuser of a cluster the drill starts itself (local, docker): not the app's user, whose
# name the restore role takes so that a plain dump's ``ALTER ... OWNER TO <app user>`` keeps working.
ADMIN_ROLE = "grimoire_drill_admin"
SCRAM_ITERATIONS = 4096

# What the role must never have: each would let restored SQL act outside its database.
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"


@dataclass(frozen=True)
class RestoreRole:
    """The login a restore and every later read of the scratch database use. ``repr`` hides the password.

    ``admin_extensions``: the expected extensions the admin had to install itself (not trusted),
    so the role does not own them and cannot ``COMMENT ON EXTENSION`` them.
    """

    name: str
    password: str = field(repr=False)
    admin_extensions: tuple[str, ...] = ()

    @classmethod
    def new(cls, name: str) -> "RestoreRole":
        return cls(name=name, password=secrets.token_hex(24))


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802/7677), what the server stores.

    ``CREATE ROLE ... PASSWORD '<verifier>'`` means the clear password never reaches the server's
    logs or pg_stat_activity. The password is ASCII (token_hex), so SASLprep leaves it as is.
    """
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def admin_rights(conn: psycopg.Connection) -> tuple[bool, bool]:
    """(is superuser, may create roles) of the connection's role."""
    row = conn.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def create_role_and_database(admin: psycopg.Connection, database: str, role: RestoreRole) -> None:
    """On an autocommit admin connection: the role, then the database it owns (and nobody else may enter).

    A CREATEROLE admin that is not a superuser must be a member of the role to create a database
    owned by it (and to drop it later): the grant goes that way only, the role gains nothing.
    """
    name = sql.Identifier(role.name)
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role.name,)).fetchone()
    if exists:
        raise HarnessError(f"role {role.name} already exists on the PostgreSQL server",
                           fix="retry (a new run id gives a new role name) or drop the role by hand")
    admin.execute(sql.SQL("CREATE ROLE {} " + ROLE_ATTRIBUTES + " PASSWORD {}").format(
        name, sql.Literal(scram_verifier(role.password))))
    try:
        if not admin_rights(admin)[0]:
            admin.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), name))
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    except psycopg.Error:
        _undo(admin, database, role)  # only what this call created: the role is new, the database is its
        raise


def install_extensions(scratch: psycopg.Connection, role: RestoreRole, extensions: Iterable[str]) -> tuple[str, ...]:
    """On an autocommit admin connection to the still-empty scratch database: the expected extensions.

    A trusted extension (uuid-ossp, pgcrypto, ...) is created *as the role*, so the role owns it
    and the dump's ``CREATE EXTENSION IF NOT EXISTS`` and ``COMMENT ON EXTENSION`` run cleanly;
    any other one is created by the admin, its scripts come from the server's install, not the
    dump; those are returned.
    """
    by_admin: list[str] = []
    for extension in extensions:
        row = scratch.execute("SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = %s",
                              (extension,)).fetchone()
        if row is None or row[0] is None:
            raise HarnessError(f"extension {extension} (expectations.toml [postgresql] extensions) is not "
                               "available on the PostgreSQL server",
                               fix=f"install the package that ships {extension} on the server, or use an engine "
                                   "whose server has it")
        statement = sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
        if row[0]:
            scratch.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role.name)))
            try:
                scratch.execute(statement)
            finally:
                scratch.execute("RESET ROLE")
        else:
            scratch.execute(statement)
            by_admin.append(extension)
    return tuple(by_admin)


def drop_role_and_database(admin: psycopg.Connection, database: str, role: RestoreRole | None) -> None:
    """Drop the scratch database (ending its sessions), then its role, on an autocommit admin connection."""
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    if role is not None:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name)))


class SandboxHost:
    """What a PostgreSQL engine adds to host sandboxed restores (local, docker, external alike).

    The engine supplies ``_admin_conninfo(dbname)`` (None: its maintenance database),
    ``_role_conninfo(dbname, role)`` and ``_restore_role_name(owner)``, and sets
    ``self._roles = {}`` (database -> RestoreRole). A scratch database made by ``create_sandbox``
    is from then on entered only as its role: ``conninfo`` of it, and every tool run with
    ``role=``, connect as the role, so nothing a dump left behind (a view calling a function, an
    operator) ever runs with the admin's rights, not even while the checks read counts.
    """

    def _admin_conninfo(self, dbname: str | None) -> str:
        raise NotImplementedError

    def _role_conninfo(self, dbname: str, role: RestoreRole) -> str:
        raise NotImplementedError

    def _restore_role_name(self, owner: str) -> str:
        raise NotImplementedError

    def _record_owner(self, admin: psycopg.Connection, database: str, role: RestoreRole) -> None:
        """Right after the role and database exist: mark them as this run's (a shared server's janitor reads it)."""

    def conninfo(self, dbname: str) -> str:
        """libpq conninfo for the driver: as the restore role for a sandbox, else as the admin. Never print it."""
        role = self._roles.get(dbname)
        return self._admin_conninfo(dbname) if role is None else self._role_conninfo(dbname, role)

    def create_sandbox(self, database: str, *, owner: str, extensions: Iterable[str] = ()) -> RestoreRole:
        """Create the restore role and ``database`` owned by it, with ``extensions`` installed."""
        role = RestoreRole.new(self._restore_role_name(owner))
        with psycopg.connect(self._admin_conninfo(None), autocommit=True) as admin:
            try:
                create_role_and_database(admin, database, role)
                self._record_owner(admin, database, role)
            except psycopg.Error as exc:
                raise HarnessError(f"could not create the restore role and scratch database {database}: "
                                   f"{_first_line(exc)}",
                                   fix="the admin login needs CREATEROLE and CREATEDB (or superuser)") from None
        self._roles[database] = role
        extensions = tuple(extensions)
        if not extensions:  # nothing to install: no second admin connection (a backend start, on the critical path)
            return role
        try:
            with psycopg.connect(self._admin_conninfo(database), autocommit=True) as scratch:
                role = replace(role, admin_extensions=install_extensions(scratch, role, extensions))
                self._roles[database] = role
        except psycopg.Error as exc:
            raise HarnessError(f"could not install the expected extensions in {database}: {_first_line(exc)}",
                               fix="an extension that is not trusted needs a superuser admin login, "
                                   "or remove it from [postgresql] extensions") from None
        return role

    def _drop_sandbox(self, database: str) -> None:
        """Drop ``database`` and, when it is a sandbox, its role too."""
        with psycopg.connect(self._admin_conninfo(None), autocommit=True) as admin:
            drop_role_and_database(admin, database, self._roles.get(database))
        self._roles.pop(database, None)


def _undo(admin: psycopg.Connection, database: str, role: RestoreRole) -> None:
    """Undo a half-made sandbox: the role just created, and the database only if that role owns it."""
    try:
        if admin.execute("SELECT 1 FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                         "WHERE d.datname = %s AND r.rolname = %s", (database, role.name)).fetchone():
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name)))
    except psycopg.Error:
        pass


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
