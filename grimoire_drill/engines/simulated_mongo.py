"""An in-process, pymongo-compatible MongoDB (mongomock) for machines with no MongoDB at all.

It lets the whole drill run (native loader, index builds with uniqueness, counts, queries),
but it is not MongoDB: every output that used it says SIMULATED and it is never audit evidence.
"""

from __future__ import annotations

from collections.abc import Iterator

import bson
import mongomock
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from mongomock.store import ServerStore

from .base import EngineInfo, ToolResult
from .lifecycle import EngineLifecycle

# As content_digest.ENCODING: a uuid.UUID goes back as the subtype 4 it came from.
ENCODING = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


class SimulatedMongo(EngineLifecycle):
    """``with SimulatedMongo(...) as mongo:`` an in-process store; leaving the block discards it."""

    kind = "simulated"
    title = "the simulated MongoDB"

    def __init__(self, *, run_id: str):
        super().__init__(run_id)
        self._client: mongomock.MongoClient | None = None
        self._store: ServerStore | None = None
        self.info = EngineInfo(kind=self.kind, simulated=True)

    def start(self) -> None:
        self._store = ServerStore()  # kept: counting a collection is then len(), not a scan
        self._client = mongomock.MongoClient(_store=self._store)
        self.info = EngineInfo(
            kind=self.kind, version=f"mongomock {mongomock.__version__} (emulates MongoDB {mongomock.SERVER_VERSION})",
            simulated=True, note="in-process store, not a MongoDB server: SIMULATED, not audit evidence",
        )

    def stop(self) -> None:
        self._client = None
        self._store = None

    @property
    def running(self) -> bool:
        return self._client is not None

    # cancel(): nothing runs outside this process; the native loader stops when it sees ``cancelled``

    def client(self):
        self._require_running()
        return self._client

    def url(self, dbname: str) -> None:
        """No server, no URL: a --then command cannot reach a simulated database."""
        return None

    def database_name(self, base: str) -> str:
        return base

    def document_count(self, database: str, collection: str) -> int:
        """Documents stored in ``database.collection``: mongomock's count_documents scans and copies all of them."""
        self._require_running()
        return len(self._store[database][collection])

    def stored_documents(self, database: str, collection: str) -> Iterator[bytes]:
        """The store's documents re-encoded (``bson.encode``): it keeps decoded ones and cannot hand back raw BSON.

        Read from the store itself: mongomock's ``find`` copies every document and slows down
        as a collection grows (80 s for 88,000 ingredients, against 1 s here).
        """
        self._require_running()
        encode = bson.encode
        for document in self._store[database][collection].documents:
            yield encode(document, codec_options=ENCODING)

    def drop_database(self, name: str) -> None:
        if self._client is not None:
            self._client.drop_database(name)

    def has_tool(self, name: str) -> bool:
        return False

    def run_tool(self, tool: str, args: list[str], files: dict, timeout: float | None = None) -> ToolResult:
        raise NotImplementedError("the simulated engine has no MongoDB tools; the native loader is used")
