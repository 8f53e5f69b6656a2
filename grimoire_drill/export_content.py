"""Compare a JSON export with the BSON dump of the same collection, value by value, streamed.

Why: the backup holds two independent copies of recipes and ingredients, the mongodump and the
JSON export, so a value that differs between them (a title changed in one) shows a copy that is
not what production held, even when the counts agree.

How each export is normalised, as the one that wrote it does:
- the app's export (``json.dump(..., default=str)`` of ``Model.dict(exclude={'id'})``, no ``_id``):
  a dump value becomes what ``json.dump`` writes of it (datetimes, ObjectIds as ``str()``); the
  export has no key, so element *n* is compared with document *n*, both in natural order;
- ``mongoexport --jsonArray`` (elements carry ``_id``, Extended JSON): the element is read back
  as BSON values, and its ``_id`` must be the document's.
Only the export's fields are compared (the app's ingredient export keeps a subset). Both files
are read one element at a time, so memory stays that of one document.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bson import json_util

from .bson_stream import iter_documents
from .content_digest import id_key_of, shown_id
from .errors import DrillFailure
from .json_export import FIX_EXPORT, iter_export
from .limits import Limits
from .text import quote

EXTENDED_JSON = json_util.RELAXED_JSON_OPTIONS.with_options(tz_aware=False)


@dataclass(frozen=True)
class ExportComparison:
    """What was compared and the first difference (``mismatch`` None: every export object matches)."""

    file: str
    collection: str
    compared: int
    keyed_by: str            # "_id" (mongoexport) or "position" (the app's export, which has no _id)
    mismatch: str | None = None
    position: int | None = None
    document_id: str | None = None
    field: str | None = None


def count_and_compare(export: Path, dump: Path, collection: str, limits: Limits) -> tuple[int, ExportComparison]:
    """The export's objects and its comparison with the dump, in one parse of the export (the count child's)."""
    counted = [0]

    def tally() -> Iterator[dict]:
        for element in iter_export(export, limits):
            counted[0] += 1
            yield element
    elements = tally()
    comparison = compare_export(export, dump, collection, limits, elements)
    for _element in elements:  # the rest, counted after the first difference
        pass
    return counted[0], comparison


def as_result(comparison: ExportComparison) -> dict:
    return asdict(comparison)


def from_result(data: dict) -> ExportComparison:
    return ExportComparison(**{f.name: data.get(f.name) for f in fields(ExportComparison)})


def compare_export(export: Path, dump: Path, collection: str, limits: Limits,
                   elements: Iterator[dict] | None = None) -> ExportComparison:
    """Walk the export and the dump side by side; stop at the first object that differs."""
    elements = iter_export(export, limits) if elements is None else elements
    documents = iter_documents(dump, limits)
    keyed_by = "position"
    compared = 0
    name = export.name
    for position, element in enumerate(elements):
        pair = next(documents, None)
        if pair is None:
            return ExportComparison(name, collection, compared, keyed_by,
                                    f"{name}: object #{position} has no document in {collection}.bson "
                                    "(the export holds more objects than the dump)", position)
        _raw, document = pair
        shown = quote(shown_id(id_key_of(document)), limits.max_quoted_chars)
        if "_id" in element:
            keyed_by = "_id"
            element = _as_bson(element, export, position)
            if not _same(element["_id"], document.get("_id")):
                other = quote(repr(element["_id"]), limits.max_quoted_chars)
                return ExportComparison(name, collection, compared, keyed_by,
                                        f"{name}: object #{position} is _id {other} but document #{position} of "
                                        f"{collection}.bson is _id {shown} (an object missing, added or moved)",
                                        position, shown, "_id")
            field = _first_differing_field(element, document, lambda value: value)
        else:
            field = _first_differing_field(element, document, _as_app_export)
        if field is not None:
            return ExportComparison(name, collection, compared, keyed_by,
                                    f"{name}: {collection} _id {shown} differs from the dump in field "
                                    f"{quote(field, limits.max_quoted_chars)!r}", position, shown, field)
        compared += 1
    if next(documents, None) is not None:
        return ExportComparison(name, collection, compared, keyed_by,
                                f"{name}: ends after {compared:,} objects, {collection}.bson has more documents",
                                compared)
    return ExportComparison(name, collection, compared, keyed_by)


def _as_bson(element: dict, export: Path, position: int) -> dict:
    """A mongoexport element (Extended JSON) as the BSON values it stands for."""
    try:
        return json_util.loads(json.dumps(element), json_options=EXTENDED_JSON)
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
        raise DrillFailure(f"object #{position} is not valid Extended JSON: {type(exc).__name__}", where=str(export),
                           fix=FIX_EXPORT) from exc


def _first_differing_field(element: dict, document: dict, normalise) -> str | None:
    for key, value in element.items():
        if key == "_id":
            continue
        theirs = document.get(key, None)
        if not _same(value, normalise(theirs)):
            return key
    return None


def _as_app_export(value: Any) -> Any:
    """What ``json.dump(value, default=str)`` writes of a decoded BSON value, read back."""
    if isinstance(value, dict):
        return {str(key): _as_app_export(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_app_export(item) for item in value]
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (bool, int, float, str)):
        return _plain(value)
    return str(value)


def _plain(value: Any) -> Any:
    """Int64 and other subclasses of JSON's types as the plain value json writes."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _same(ours: Any, theirs: Any) -> bool:
    """Equal as JSON values (NaN equals NaN; datetimes compared in UTC); recursion bounded by the dump's depth."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return list(ours) == list(theirs) and all(_same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs))
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, float) and isinstance(theirs, float) and math.isnan(ours) and math.isnan(theirs):
        return True
    if isinstance(ours, datetime) and isinstance(theirs, datetime):
        return _utc(ours) == _utc(theirs)
    try:
        return ours == theirs
    except Exception:  # noqa: BLE001 — values from the backup compare in their own ways
        return False


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(timezone.utc).replace(tzinfo=None)
