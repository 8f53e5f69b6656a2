"""What a check's evidence may hold once it leaves the check: plain, bounded, printable JSON values.

Why: evidence is built from the backup (names, keys, duplicated values, restore errors), and
every writer (summary.json, report.html, junit.xml, history) must take it as it is. A value
that is bytes, a lone surrogate, an ObjectId, a NaN, a dict nested 1000 deep or a 1 MB string
must not make one of them raise or grow without bound, so it is made plain here, once, where
the check result is made (``plugin.py``), and no writer has to remember.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from .limits import Limits
from .text import ELLIPSIS, quote

DEEPER = "…(nested deeper)"


def plain(value: Any, limits: Limits) -> Any:
    """``value`` as JSON-ready data: str keys, printable clipped strings, finite numbers, bounded size."""
    return _plain(value, limits, 0)


def plain_mapping(data: Mapping[Any, Any], limits: Limits) -> dict[str, Any]:
    """A check's evidence table: the same rules, and always a dict."""
    value = _plain(dict(data), limits, 0)
    return value if isinstance(value, dict) else {}


def _plain(value: Any, limits: Limits, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else _clipped(_text_of(value), limits.max_evidence_chars)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _clipped(value, limits.max_evidence_chars)
    if isinstance(value, (bytes, bytearray, memoryview)):
        head = bytes(value[: limits.max_evidence_chars + 1])
        return _clipped(head.decode("utf-8", errors="backslashreplace"), limits.max_evidence_chars)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if depth >= limits.max_evidence_depth:
        return DEEPER
    keep = limits.max_evidence_items - 1   # over the cap: that many, then one entry saying how many more
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for count, (key, item) in enumerate(value.items()):
            if count == keep and len(value) > limits.max_evidence_items:
                out[ELLIPSIS] = f"{len(value) - count} more"
                break
            out[_key(key, limits)] = _plain(item, limits, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value) if not isinstance(value, (set, frozenset)) else sorted(value, key=repr)
        if len(items) <= limits.max_evidence_items:
            return [_plain(item, limits, depth + 1) for item in items]
        return [_plain(item, limits, depth + 1) for item in items[:keep]] + [f"{ELLIPSIS} {len(items) - keep} more"]
    return _clipped(_text_of(value), limits.max_evidence_chars)


def _key(key: Any, limits: Limits) -> str:
    return _clipped(key if isinstance(key, str) else _text_of(key), limits.max_quoted_chars)


def _clipped(text: str, limit: int) -> str:
    """``text.quote``, cut first: escaping a 1 MB string only to clip it would cost a pass over all of it."""
    return quote(text[: limit + 1], limit)


def _text_of(value: Any) -> str:
    """str() of an odd object (ObjectId, Decimal128, a regex…); its type name if even that raises."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 — a value's own __str__ is not ours to trust
        return f"<{type(value).__name__}>"
