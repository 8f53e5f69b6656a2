"""What a --then command did to the schema: columns, indexes, constraints, MongoDB indexes.

A migration that only adds a column or an index leaves row counts alone, so the before/after
diff compares snapshots of the catalogs, taken right before and right after the command.
The restored schema comes from the backup (untrusted): each kind is read up to
``limits.max_schema_objects`` entries (more: that kind is not compared, and the diff says so),
each change list shows ``limits.max_listed_changes`` entries and counts the rest, and every
name and definition is quoted through ``text.quote``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import psycopg

from .errors import GrimoireDrillError
from .limits import Limits
from .text import quote

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
KINDS = ("columns", "indexes", "constraints", "mongodb_indexes")

_COLUMNS = """
    SELECT table_schema, table_name, column_name,
           CASE WHEN data_type = 'ARRAY' THEN udt_name ELSE data_type END
             || COALESCE('(' || character_maximum_length || ')', '')
             || CASE WHEN data_type = 'numeric' AND numeric_precision IS NOT NULL
                     THEN '(' || numeric_precision || ',' || COALESCE(numeric_scale, 0) || ')' ELSE '' END
             || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
      FROM information_schema.columns
     WHERE table_schema <> ALL(%(system)s)
     ORDER BY 1, 2, ordinal_position
     LIMIT %(limit)s"""
_INDEXES = """
    SELECT schemaname, tablename, indexname, indexdef
      FROM pg_indexes WHERE schemaname <> ALL(%(system)s)
     ORDER BY 1, 2, 3 LIMIT %(limit)s"""
_CONSTRAINTS = """
    SELECT n.nspname, COALESCE(c.relname, ''), con.conname, pg_get_constraintdef(con.oid)
      FROM pg_constraint con
      JOIN pg_namespace n ON n.oid = con.connamespace
      LEFT JOIN pg_class c ON c.oid = con.conrelid
     WHERE n.nspname <> ALL(%(system)s)
     ORDER BY 1, 2, 3 LIMIT %(limit)s"""


def _key(schema: str, *names: str) -> str:
    """``table.column`` in public, ``schema.table.column`` elsewhere."""
    return ".".join(([] if schema == "public" else [schema]) + [n for n in names if n])


def snapshot(session, limits: Limits) -> dict[str, Any]:
    """{kind: {name: definition}} of the restored databases, or {kind: {"error": why}} when unreadable."""
    shot: dict[str, Any] = {}
    limit = limits.max_schema_objects
    try:
        with session.postgres_connect() as conn:
            for kind, query in (("columns", _COLUMNS), ("indexes", _INDEXES), ("constraints", _CONSTRAINTS)):
                rows = conn.execute(query, {"system": list(SYSTEM_SCHEMAS), "limit": limit + 1}).fetchall()
                shot[kind] = _bounded({_key(s, t, n): d for s, t, n, d in rows}, len(rows), limits, "max_schema_objects")
    except (GrimoireDrillError, psycopg.Error) as exc:
        for kind in ("columns", "indexes", "constraints"):
            shot.setdefault(kind, {"error": quote(str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                                                  limits.max_quoted_chars)})
    shot["mongodb_indexes"] = _mongo_indexes(session, limits)
    return shot


def _bounded(entries: dict[str, str], found: int, limits: Limits, limit_field: str) -> dict[str, Any]:
    if found > getattr(limits, limit_field):
        return {"error": f"more than {limits.name(limit_field)} objects: not compared"}
    return {"objects": entries}


def _mongo_indexes(session, limits: Limits) -> dict[str, Any]:
    """``db.collection.index`` -> its key and options, for every collection of the restored databases."""
    from pymongo.errors import PyMongoError

    state = session.mongo
    if state.engine is None or state.restore.error is not None or state.restore.value is None:
        return {"error": "MongoDB not restored"}
    databases = sorted({c.target.partition(".")[0] for c in state.restore.value.collections})
    entries: dict[str, str] = {}
    try:
        client = state.engine.client()
        for db in databases:
            for name in sorted(client[db].list_collection_names()):
                for index, info in sorted(client[db][name].index_information().items()):
                    entries[f"{db}.{name}.{index}"] = json.dumps(
                        {k: v for k, v in info.items() if k not in ("v", "ns")}, sort_keys=True, default=str)
                    if len(entries) > limits.max_schema_objects:
                        return _bounded(entries, len(entries), limits, "max_schema_objects")
    except (GrimoireDrillError, PyMongoError, AttributeError, NotImplementedError) as exc:
        return {"error": quote(f"{type(exc).__name__}: {exc}", limits.max_quoted_chars)}
    return {"objects": entries}


def diff_snapshots(before: Mapping[str, Any], after: Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    """Per kind: added, dropped, changed ([before, after]); or ``not_compared`` with the reason."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        b, a = before.get(kind) or {}, after.get(kind) or {}
        if "objects" not in b or "objects" not in a:
            out[kind] = {"not_compared": b.get("error") or a.get("error") or "not read"}
            continue
        old, new = b["objects"], a["objects"]
        chars = limits.max_quoted_chars
        out[kind] = {
            "added": _listed([f"{quote(k, chars)}: {quote(new[k], chars)}" for k in sorted(set(new) - set(old))], limits),
            "dropped": _listed([quote(k, chars) for k in sorted(set(old) - set(new))], limits),
            "changed": _listed([[quote(k, chars), quote(old[k], chars), quote(new[k], chars)]
                                for k in sorted(set(old) & set(new)) if old[k] != new[k]], limits),
        }
    return out


def _listed(items: list[Any], limits: Limits) -> dict[str, Any]:
    shown = items[: limits.max_listed_changes]
    return {"items": shown, "more": len(items) - len(shown)}

