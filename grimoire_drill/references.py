"""References between restored documents (``categories.parents`` → ``categories.off_id``), on the server.

Why on the server, in batches: the target keys can be many (ingredients: 10^5–10^6 off_ids) and a
backup is untrusted, so the drill never holds a set of every key. It streams the source field and
asks the server which of at most ``limits.reference_batch_values`` values (and
``limits.reference_batch_bytes`` characters) exist, one ``$match: {$in}`` + ``$group`` per batch:
the answer holds at most the batch's distinct values, however many targets share a key. The same
queries run on a real MongoDB and on the simulated engine (mongomock).

A value that is not a string cannot name a document (the app's models say ``List[str]``; Beanie
would refuse the document), so it is counted as dangling without a lookup, as is a string longer
than a whole batch may be.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .expectations import ExpectedReference
from .limits import Limits
from .text import quote

CURSOR_BATCH = 100   # source documents fetched per round trip (each at most 16 MiB, as the server sends them)


@dataclass(frozen=True)
class ReferenceCount:
    """What one reference came to: how many values were checked, how many point nowhere, a few of them."""

    documents: int                          # source documents with the field
    references: int                         # values in those fields
    dangling: int
    not_strings: int                        # ... of the dangling, values that are not strings at all
    examples: tuple[tuple[str, str], ...]   # (source document, missing value), quoted; at most max_reference_examples
    lookups: int                            # $in queries sent


def count_dangling(database: Any, reference: ExpectedReference, limits: Limits) -> ReferenceCount:
    """Count the values of ``reference``'s source field that match no target document, in bounded memory."""
    counter = _Counter(database[reference.target_collection], reference.target_field, limits)
    documents = 0
    projection = {reference.source_field: 1, "off_id": 1}
    cursor = database[reference.source_collection].find({reference.source_field: {"$exists": True}}, projection,
                                                         batch_size=CURSOR_BATCH)
    try:
        for doc in cursor:
            documents += 1
            name = _document_name(doc, limits)
            for value in _values(_field(doc, reference.source_field)):
                counter.add(name, value)
    finally:
        cursor.close()
    counter.flush()
    return ReferenceCount(documents=documents, references=counter.references, dangling=counter.dangling,
                          not_strings=counter.not_strings, examples=tuple(counter.examples), lookups=counter.lookups)


class _Counter:
    """The pending batch and the running counts of one reference."""

    def __init__(self, target, field: str, limits: Limits):
        self.target, self.field, self.limits = target, field, limits
        self.pending: list[tuple[str, str]] = []   # (source document, value)
        self.pending_chars = 0
        self.references = self.dangling = self.not_strings = self.lookups = 0
        self.examples: list[tuple[str, str]] = []

    def add(self, name: str, value: Any) -> None:
        self.references += 1
        if not isinstance(value, str):
            self.not_strings += 1
            self._missing(name, quote(repr(value)[: self.limits.max_quoted_chars + 1], self.limits.max_quoted_chars))
            return
        if len(value) > self.limits.reference_batch_bytes:
            self._missing(name, quote(value[: self.limits.max_quoted_chars + 1], self.limits.max_quoted_chars))
            return
        if (len(self.pending) >= self.limits.reference_batch_values
                or self.pending_chars + len(value) > self.limits.reference_batch_bytes):
            self.flush()
        self.pending.append((name, value))
        self.pending_chars += len(value)

    def flush(self) -> None:
        if not self.pending:
            return
        wanted = list(dict.fromkeys(value for _, value in self.pending))
        self.lookups += 1
        found = {row["_id"] for row in self.target.aggregate([
            {"$match": {self.field: {"$in": wanted}}},
            {"$group": {"_id": f"${self.field}"}},
        ], allowDiskUse=True) if isinstance(row.get("_id"), str)}
        for name, value in self.pending:
            if value not in found:
                self._missing(name, quote(value[: self.limits.max_quoted_chars + 1], self.limits.max_quoted_chars))
        self.pending, self.pending_chars = [], 0

    def _missing(self, name: str, shown: str) -> None:
        self.dangling += 1
        if len(self.examples) < self.limits.max_reference_examples:
            self.examples.append((name, shown))


def _field(doc: dict, path: str) -> Any:
    """``doc``'s value at a dotted ``path`` through sub-documents (None when a step is missing)."""
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _values(value: Any) -> Iterator[Any]:
    """The references a field holds: each element of a list, or the value itself; none for null."""
    if value is None:
        return
    if isinstance(value, list):
        yield from value
    else:
        yield value


def _document_name(doc: dict, limits: Limits) -> str:
    """How a message names the source document: its off_id (how the app names it), else its _id."""
    name = doc.get("off_id")
    text = name if isinstance(name, str) else str(doc.get("_id"))
    return quote(text[: limits.max_quoted_chars + 1], limits.max_quoted_chars)
