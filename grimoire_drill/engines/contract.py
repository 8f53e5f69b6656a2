"""What the rest of the drill may call on an engine: ``MongoEngine`` and ``PostgresEngine``.

Why Protocols: the restore layer, the session and the checks must work the same on every
engine (local, docker, external, simulated) and so must not depend on any of them. These list
exactly what they use; ``restore/`` imports this module and ``base`` (plain data) only, never a
concrete engine (an import-linter contract in pyproject.toml), and tests/test_engine_contract.py
checks that every engine class provides every member with a compatible signature.

What an engine needs for itself (``drop_database``, ``create_database``, the
``janitor`` of the external ones) is not part of the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol, runtime_checkable

from .base import EngineInfo, ToolResult
from .pg_sandbox import RestoreRole

__all__ = ["Engine", "EngineInfo", "MongoEngine", "PostgresEngine", "RestoreRole", "ToolResult"]


@runtime_checkable
class Engine(Protocol):
    """The lifecycle (``engines.lifecycle.EngineLifecycle``) as its users see it."""

    info: EngineInfo  # what the report says about the engine; meaningful once started

    @property
    def cancelled(self) -> bool:
        """``cancel()`` was called: loaders stop taking new work."""
        ...

    def __enter__(self) -> Any:
        """Start; a failed start has stopped what it began before it raises."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Stop: remove the server, container or store, or drop what was made on an external one."""
        ...

    def cancel(self) -> None:
        """From any thread: end running work now and start nothing new (an interrupt)."""
        ...

    def database_name(self, base: str) -> str:
        """Where the production database ``base`` is restored (a scratch name on a shared server)."""
        ...

    def url(self, dbname: str) -> str | None:
        """A URL for a user's ``--then`` command, secret included (never printed); None without a server."""
        ...


@runtime_checkable
class MongoEngine(Engine, Protocol):
    """A started MongoDB (or the in-process store): restore/mongo.py, the session's counts and the checks."""

    def client(self) -> Any:
        """A pymongo-compatible client (shared, thread-safe), closed when the engine stops."""
        ...

    def document_count(self, database: str, collection: str) -> int:
        """Documents stored in ``database.collection``, counted by the server."""
        ...

    def stored_documents(self, database: str, collection: str) -> Iterator[bytes]:
        """Each document stored in ``database.collection`` as BSON bytes, in any order (content checks).

        A server hands back the bytes it stores (raw BSON, nothing decoded); the in-process store,
        which keeps decoded documents, re-encodes each (``info.simulated`` says which).
        """
        ...

    def has_tool(self, name: str) -> bool:
        """Whether ``run_tool(name, ...)`` can run (mongorestore); else the native loader restores."""
        ...

    def run_tool(self, tool: str, args: list[str], files: Mapping[str, Path],
                 timeout: float | None = None) -> ToolResult:
        """Run a MongoDB tool against this server; ``{name}`` in ``args`` is ``files[name]``."""
        ...


@runtime_checkable
class PostgresEngine(Engine, Protocol):
    """A started PostgreSQL: restore/postgres.py, the session's connections and the checks."""

    def conninfo(self, dbname: str) -> str:
        """libpq conninfo for a driver: as the restore role for a sandbox, else the admin. Never print it."""
        ...

    def create_sandbox(self, database: str, *, owner: str, extensions: Iterable[str] = ()) -> RestoreRole:
        """The unprivileged restore role and ``database`` owned by it, ``extensions`` installed."""
        ...

    def run_tool(self, tool: str, args: list[str], files: Mapping[str, Path], timeout: float | None = None,
                 role: RestoreRole | None = None) -> ToolResult:
        """Run a PostgreSQL client tool against this server, as ``role`` when given."""
        ...
