"""References between restored documents (``categories.parents`` → ``categories.off_id``), on the server.

Why a sorted merge: the target keys can be many (ingredients: 10^5–10^6 off_ids) and a backup is
untrusted, so the drill never holds a set of every key; and a lookup per batch of values costs a
scan of the targets per batch wherever there is no index (the simulated engine has none; a backup
may lack one), which grows with sources × targets. Instead the server sorts both sides (the
source field unwound, the target field; ``allowDiskUse``, the simple collation so a collation
the dump's metadata sets cannot reorder them) and the drill walks the two cursors once: linear
time, constant memory. A server that answers out of order is a HarnessError, never a verdict.

A value that is not a string cannot name a document (the app's models say ``List[str]``; Beanie
would refuse the document), so it is counted as dangling; a target that is not a string names
nothing. The server sorts all strings together whatever else a field holds, so the walk reads
the strings in order and counts the rest as it passes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import HarnessError
from .expectations import ExpectedReference
from .limits import Limits
from .text import quote

CURSOR_BATCH = 1000          # values fetched per round trip (small documents: a value and two ids)
SIMPLE = {"locale": "simple"}  # byte order of UTF-8 = Python's code-point order of str


@dataclass(frozen=True)
class ReferenceCount:
    """What one reference came to: how many values were checked, how many point nowhere, a few of them."""

    documents: int                          # source documents with the field
    references: int                         # values in those fields
    dangling: int
    not_strings: int                        # ... of the dangling, values that are not strings at all
    examples: tuple[tuple[str, str], ...]   # (source document, missing value), quoted; at most max_reference_examples
    queries: int                            # queries sent to the server (three, whatever the sizes)


def count_dangling(database: Any, reference: ExpectedReference, limits: Limits) -> ReferenceCount:
    """Count the values of ``reference``'s source field that match no target document, in one sorted walk."""
    source = database[reference.source_collection]
    field = reference.source_field
    documents = source.count_documents({field: {"$exists": True}})
    values = source.aggregate([
        {"$match": {field: {"$exists": True}}},
        {"$project": {"_id": 1, "off_id": 1, "v": f"${field}"}},
        {"$unwind": "$v"},
        {"$sort": {"v": 1}},
    ], allowDiskUse=True, collation=SIMPLE, batchSize=CURSOR_BATCH)
    targets = database[reference.target_collection].find(
        {reference.target_field: {"$exists": True}}, {reference.target_field: 1, "_id": 0},
        batch_size=CURSOR_BATCH, collation=SIMPLE).sort(reference.target_field, 1)
    walk = _Walk(_target_strings(targets, reference), limits)
    try:
        for row in values:
            walk.add(_document_name(row, limits), row.get("v"))
    finally:
        values.close()
        targets.close()
    return ReferenceCount(documents=documents, references=walk.references, dangling=walk.dangling,
                          not_strings=walk.not_strings, examples=tuple(walk.examples), queries=3)


def count_dangling_in_process(documents, reference: ExpectedReference, limits: Limits) -> ReferenceCount:
    """The same count over the in-process store (``documents(collection)`` yields its decoded documents).

    The simulated engine holds every document in this process already, so both sides are sorted
    here: the memory is of the order of the store itself, and mongomock's copying ``find`` and
    ``aggregate`` (seconds per 10,000 ingredients) are not paid.
    """
    pairs: list[tuple[str, str]] = []
    others: list[tuple[str, Any]] = []
    documents_with_field = 0
    for doc in documents(reference.source_collection):
        if not _has_path(doc, reference.source_field):
            continue
        documents_with_field += 1
        value = _field(doc, reference.source_field)
        name = _document_name(doc, limits)
        for item in (value if isinstance(value, list) else () if value is None else (value,)):
            (pairs if isinstance(item, str) else others).append((item, name) if isinstance(item, str) else (name, item))
    targets = sorted(value for doc in documents(reference.target_collection)
                     if isinstance(value := _field(doc, reference.target_field), str))
    walk = _Walk(iter(targets), limits)
    for name, item in others:
        walk.add(name, item)
    for item, name in sorted(pairs):
        walk.add(name, item)
    return ReferenceCount(documents=documents_with_field, references=walk.references, dangling=walk.dangling,
                          not_strings=walk.not_strings, examples=tuple(walk.examples), queries=0)


def _has_path(doc: dict, path: str) -> bool:
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, dict) or step not in value:
            return False
        value = value[step]
    return True


def _target_strings(cursor, reference: ExpectedReference) -> Iterator[str]:
    """The target field's string values, ascending (checked: a walk on a misordered cursor would lie)."""
    last: str | None = None
    for doc in cursor:
        value = _field(doc, reference.target_field)
        if not isinstance(value, str):
            continue
        if last is not None and value < last:
            raise _out_of_order(reference.target)
        last = value
        yield value


def _out_of_order(where: str) -> HarnessError:
    return HarnessError(f"the server returned {where} out of order for a simple-collation sort",
                        where=where, fix="run the drill on a MongoDB that honours collation (3.4+)")


class _Walk:
    """The source values, ascending, walked against the ascending targets; the running counts."""

    def __init__(self, targets: Iterator[str], limits: Limits):
        self.targets, self.limits = targets, limits
        self.target: str | None = next(self.targets, None)
        self.last: str | None = None
        self.references = self.dangling = self.not_strings = 0
        self.examples: list[tuple[str, str]] = []

    def add(self, name: str, value: Any) -> None:
        self.references += 1
        if not isinstance(value, str):
            self.not_strings += 1
            self._missing(name, repr(value))
            return
        if self.last is not None and value < self.last:
            raise _out_of_order("the referencing values")
        self.last = value
        while self.target is not None and self.target < value:
            self.target = next(self.targets, None)
        if self.target != value:
            self._missing(name, value)

    def _missing(self, name: str, value: str) -> None:
        self.dangling += 1
        if len(self.examples) < self.limits.max_reference_examples:
            cap = self.limits.max_quoted_chars
            self.examples.append((name, quote(value[: cap + 1], cap)))


def _field(doc: dict, path: str) -> Any:
    """``doc``'s value at a dotted ``path`` through sub-documents (None when a step is missing)."""
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _document_name(doc: dict, limits: Limits) -> str:
    """How a message names the source document: its off_id (how the app names it), else its _id."""
    name = doc.get("off_id")
    text = name if isinstance(name, str) else str(doc.get("_id"))
    return quote(text[: limits.max_quoted_chars + 1], limits.max_quoted_chars)
