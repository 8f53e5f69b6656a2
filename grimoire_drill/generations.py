"""Two generations of a backup side by side: what fell, what is gone, what went back in time.

Why pure: the drill compares the drilled backup with the one before it, the report shows each
count's previous value and delta, and the ``--generations`` index page compares every pair of a
series. All of them read the same plain records (a ``history.jsonl`` line, or what an older
archive's tar headers say), so the comparison is plain functions of plain values, without I/O.

A record may come from an older version of the drill or be hand-edited: whatever is missing or
mistyped in it is "not known" (``None``), and what is not known on either side is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .text import clip, printable

THIS_DRILL, HISTORY, ARCHIVE = "this drill", "history", "archive"
COUNT_KINDS = ("documents", "rows", "uploads", "archive_size")
MONGO_DUMP, PG_DUMP, UPLOADS = "mongodb/", "postgresql/", "uploads/"
BSON_SUFFIXES = (".bson.gz", ".bson")
MINUS = "\u2212"


@dataclass(frozen=True)
class Generation:
    """What one backup held, as far as it is known (``None``: not known, never "zero").

    ``documents``/``rows`` are counted in a restored copy; ``dump_bytes`` are the sizes of the dump
    files (``mongodb/<db>/<coll>.bson``, ``postgresql/database.backup``), all an archive's headers
    give; ``newest`` is each named timestamp field's newest value (ISO, ``None``: no value at all).
    ``truncated``: a section was cut at ``limits.max_generation_entries``, so absence proves nothing.
    """

    backup_id: str
    name: str
    source: str = THIS_DRILL
    documents: Mapping[str, int] | None = None
    rows: Mapping[str, int] | None = None
    uploads: int | None = None
    archive_bytes: int | None = None
    dump_bytes: Mapping[str, int] | None = None
    indexes: Mapping[str, tuple[str, ...]] | None = None
    tables: tuple[str, ...] | None = None
    newest: Mapping[str, str | None] | None = None
    truncated: bool = False

    def collections(self) -> frozenset[str] | None:
        """The namespaces this backup holds: restored, dumped or with metadata (None: not known)."""
        if self.documents is None and self.dump_bytes is None and self.indexes is None:
            return None
        dumped = {namespace for path in (self.dump_bytes or {}) if (namespace := bson_namespace(path))}
        return frozenset(set(self.documents or ()) | set(self.indexes or ()) | dumped)

    def as_record(self) -> dict[str, Any]:
        """The plain ``generation`` section of summary.json and of a history line."""
        return {
            "documents": _plain_map(self.documents), "rows": _plain_map(self.rows), "uploads": self.uploads,
            "archive_bytes": self.archive_bytes, "dump_bytes": _plain_map(self.dump_bytes),
            "indexes": None if self.indexes is None else {k: list(v) for k, v in sorted(self.indexes.items())},
            "tables": None if self.tables is None else sorted(self.tables),
            "newest": None if self.newest is None else dict(sorted(self.newest.items())),
            "truncated": self.truncated,
        }


def from_record(record: Mapping[str, Any], *, backup_id: str, name: str, source: str) -> Generation:
    """A ``generation`` section read back (summary.json or history.jsonl): mistyped parts are not known."""
    data = record if isinstance(record, Mapping) else {}
    indexes = data.get("indexes")
    newest = data.get("newest")
    return Generation(
        backup_id=backup_id, name=name, source=source,
        documents=_counts(data.get("documents")), rows=_counts(data.get("rows")),
        uploads=_count(data.get("uploads")), archive_bytes=_count(data.get("archive_bytes")),
        dump_bytes=_counts(data.get("dump_bytes")),
        indexes=({str(k): tuple(str(n) for n in v) for k, v in indexes.items() if isinstance(v, list)}
                 if isinstance(indexes, Mapping) else None),
        tables=(tuple(str(t) for t in data["tables"] if isinstance(t, str))
                if isinstance(data.get("tables"), list) else None),
        newest=({str(k): v for k, v in newest.items() if v is None or isinstance(v, str)}
                if isinstance(newest, Mapping) else None),
        truncated=data.get("truncated") is True,
    )


def from_history(record: Mapping[str, Any]) -> Generation:
    """A history.jsonl line as the previous generation; a line written before records had one knows
    only its archive size (what ``history_record`` always kept is not there either: not known)."""
    backup_id = str(record.get("backup_id") or "")
    name = str(record.get("archive") or f"backup_{backup_id}")
    return from_record(record.get("generation") or {}, backup_id=backup_id, name=name, source=HISTORY)


def sanitized(generation: Generation, max_chars: int) -> Generation:
    """Names from the backup made printable and at most ``max_chars`` long, the same way on every side.

    Why here: a name goes into summary.json and history.jsonl and comes back in the next drill. A lone
    surrogate (a ``\\udc80`` escape in metadata JSON) cannot be written as UTF-8, and a 16 MB index name
    would bloat every line; both sides of a comparison are cleaned alike, so no name reads as "gone".
    """
    def name(text: str) -> str:
        return clip(printable(text), max_chars)

    def keyed(section: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if section is None else {name(key): value for key, value in section.items()}

    indexes = keyed(generation.indexes)
    return Generation(
        backup_id=generation.backup_id, name=name(generation.name), source=generation.source,
        documents=keyed(generation.documents), rows=keyed(generation.rows), uploads=generation.uploads,
        archive_bytes=generation.archive_bytes, dump_bytes=keyed(generation.dump_bytes),
        indexes=None if indexes is None else {k: tuple(name(n) for n in v) for k, v in indexes.items()},
        tables=None if generation.tables is None else tuple(name(t) for t in generation.tables),
        newest=generation.newest, truncated=generation.truncated)


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class Change:
    """One count in both generations: ``kind`` is one of COUNT_KINDS, ``unit`` documents/rows/files/bytes."""

    kind: str
    what: str
    unit: str
    previous: int
    current: int

    @property
    def delta(self) -> int:
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        """The change in percent of the previous value (None when that was 0: any growth is infinite)."""
        return None if self.previous == 0 else self.delta * 100.0 / self.previous

    def fell_past(self, max_drop_percent: float) -> bool:
        percent = self.percent
        return percent is not None and -percent > max_drop_percent

    def line(self, since: str) -> str:
        """``legrimoire.recipes fell from 14,200 to 284 documents (−98 %) since backup_20261130_020000``."""
        verb = "fell" if self.delta < 0 else "grew" if self.delta > 0 else "stayed"
        shown = "" if self.percent is None else f" ({percent_text(self.percent)})"
        if verb == "stayed":
            return f"{self.what} stayed at {self.current:,} {self.unit} since {since}"
        return f"{self.what} {verb} from {self.previous:,} to {self.current:,} {self.unit}{shown} since {since}"

    def as_dict(self) -> dict[str, Any]:
        percent = self.percent
        return {"kind": self.kind, "what": self.what, "unit": self.unit, "previous": self.previous,
                "current": self.current, "delta": self.delta,
                "percent": None if percent is None else round(percent, 2)}


def percent_text(percent: float) -> str:
    """``−98 %``, ``+3.5 %``: a real minus sign, one decimal under 10 %."""
    digits = f"{abs(percent):.1f}" if abs(percent) < 10 else f"{abs(percent):.0f}"
    sign = MINUS if percent < 0 else "+" if percent > 0 else "±"
    return f"{sign}{digits} %"


def changes(previous: Generation, current: Generation, kind: str) -> list[Change]:
    """Each count of ``kind`` both generations know: restored counts when both have them, else dump bytes."""
    if kind == "documents":
        if previous.documents is not None and current.documents is not None:
            return _paired("documents", "documents", previous.documents, current.documents)
        return _paired("documents", "bytes", _dumps(previous, MONGO_DUMP), _dumps(current, MONGO_DUMP))
    if kind == "rows":
        if previous.rows is not None and current.rows is not None:
            return _paired("rows", "rows", previous.rows, current.rows)
        return _paired("rows", "bytes", _dumps(previous, PG_DUMP), _dumps(current, PG_DUMP))
    if kind == "uploads":
        return _single("uploads", UPLOADS, "files", previous.uploads, current.uploads)
    if kind == "archive_size":
        return _single("archive_size", "the archive", "bytes", previous.archive_bytes, current.archive_bytes)
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(COUNT_KINDS)}")


def all_changes(previous: Generation, current: Generation) -> list[Change]:
    """Every count both know, in COUNT_KINDS order: what the report's growth table shows."""
    return [change for kind in COUNT_KINDS for change in changes(previous, current, kind)]


def knows(generation: Generation, kind: str) -> bool:
    """Whether ``generation`` knows anything to compare of ``kind`` (for a skip's reason)."""
    return {"documents": generation.documents is not None or _dumps(generation, MONGO_DUMP) != {},
            "rows": generation.rows is not None or _dumps(generation, PG_DUMP) != {},
            "uploads": generation.uploads is not None,
            "archive_size": generation.archive_bytes is not None}[kind]


def _paired(kind: str, unit: str, before: Mapping[str, int], after: Mapping[str, int]) -> list[Change]:
    return [Change(kind, what, unit, value, after[what]) for what, value in sorted(before.items()) if what in after]


def _single(kind: str, what: str, unit: str, before: int | None, after: int | None) -> list[Change]:
    return [] if before is None or after is None else [Change(kind, what, unit, before, after)]


def _dumps(generation: Generation, prefix: str) -> dict[str, int]:
    return {path: size for path, size in (generation.dump_bytes or {}).items()
            if path.startswith(prefix) and (prefix != MONGO_DUMP or bson_namespace(path))}


def bson_namespace(path: str) -> str | None:
    """``mongodb/legrimoire/recipes.bson[.gz]`` -> ``legrimoire.recipes``; None for anything else."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != MONGO_DUMP.rstrip("/"):
        return None
    for suffix in BSON_SUFFIXES:
        if parts[2].endswith(suffix) and len(parts[2]) > len(suffix):
            return f"{parts[1]}.{parts[2][: -len(suffix)]}"
    return None


# --------------------------------------------------------------------------- what is gone


@dataclass(frozen=True)
class Gone:
    """A collection, table or index the previous generation had and this one has not."""

    kind: str   # collection | table | index
    name: str


def gone(previous: Generation, current: Generation) -> list[Gone]:
    """What disappeared, where both sides know (a truncated record proves no absence)."""
    if previous.truncated or current.truncated:
        return []
    lost: list[Gone] = []
    before, after = previous.collections(), current.collections()
    if before is not None and after is not None:
        lost += [Gone("collection", name) for name in sorted(before - after)]
    if previous.tables is not None and current.tables is not None:
        lost += [Gone("table", name) for name in sorted(set(previous.tables) - set(current.tables))]
    if previous.indexes is not None and current.indexes is not None:
        for namespace, names in sorted(previous.indexes.items()):
            if namespace in current.indexes:
                lost += [Gone("index", f"{namespace}.{name}")
                         for name in sorted(set(names) - set(current.indexes[namespace]))]
    return lost


def comparable_parts(previous: Generation, current: Generation) -> list[str]:
    """Which of collections, tables, indexes both sides know (for the gone check's message)."""
    parts = []
    if previous.collections() is not None and current.collections() is not None:
        parts.append("collections")
    if previous.tables is not None and current.tables is not None:
        parts.append("tables")
    if previous.indexes is not None and current.indexes is not None:
        parts.append("indexes")
    return parts


# --------------------------------------------------------------------------- freshness


@dataclass(frozen=True)
class Newest:
    """One named timestamp field's newest value as measured in a restored copy (or a dump file)."""

    field: str                  # "mongodb.recipes.updated_at", "postgresql.users.created_at"
    value: datetime | None      # None: no value of a timestamp type at all
    ignored: int = 0            # values of another type, or out of range, left out and counted
    problem: str | None = None  # why it could not be measured (no such column, the query failed)

    def as_dict(self) -> dict[str, Any]:
        return {"value": None if self.value is None else time_text(self.value), "ignored": self.ignored,
                "problem": self.problem}


def field_id(kind: str, container: str, name: str) -> str:
    """``mongodb.recipes.updated_at``: a freshness field's id in records, check ids and messages."""
    return f"{kind}.{container}.{name}"


def newest_value(generation: Generation, field: str) -> tuple[bool, datetime | None]:
    """(known, newest value) of a timestamp field: known=False when the record does not say."""
    if generation.newest is None or field not in generation.newest:
        return False, None
    return True, parse_time(generation.newest[field])


def went_back(previous: datetime, current: datetime) -> bool:
    """The newest value is older than the previous generation's newest: data went back in time."""
    return as_utc(current) < as_utc(previous)


def lag_hours(newest: datetime, taken_at: datetime) -> float:
    """How long before the backup's own time its newest value lies, in hours."""
    return (as_utc(taken_at) - as_utc(newest)).total_seconds() / 3600.0


def parse_time(text: Any) -> datetime | None:
    """An ISO time from a record (naive read as UTC); None for anything else."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def as_utc(moment: datetime) -> datetime:
    """MongoDB hands back naive UTC; PostgreSQL timestamptz is aware: compare both as aware UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def time_text(moment: datetime | None) -> str:
    return "no value" if moment is None else as_utc(moment).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- plain values


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _counts(value: Any) -> dict[str, int] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(key): count for key, item in value.items() if (count := _count(item)) is not None}


def _plain_map(value: Mapping[str, int] | None) -> dict[str, int] | None:
    return None if value is None else dict(sorted(value.items()))
