"""What every section shares: redacted escaped text, key/value tables, and dates, durations, ages and
sizes as people read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from html import escape
from typing import Any

from grimoire_drill.report.html.redaction import redact


DATABASE_NAMES = {"mongodb": "MongoDB", "postgresql": "PostgreSQL"}
OUTCOME_SYMBOLS = {"passed": "\u2714", "failed": "\u2718", "error": "\u26a0", "migration_failed": "\u2718"}
OUTCOME_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700", "migration_failed": "#8250df"}
UNKNOWN_COLOUR = "#6e7781"
CHECK_STATUSES = ("passed", "failed", "skipped", "error", "off")
SEPARATOR = " \u00b7 "


def _text(value: Any) -> str:
    """Redacted, escaped text for element content and attribute values; None shows as a dash."""
    if value is None or value == "":
        return "\u2014"
    return escape(redact(str(value)), quote=True)


def _token(value: str) -> str:
    """A value safe inside a class name (statuses are enums, but the summary is data)."""
    return re.sub(r"[^a-z0-9_-]", "", value.lower()) or "unknown"


def _kv_table(rows: Iterable[tuple[str, str]], *, escape_keys: bool = True) -> str:
    body = "".join(f"<tr><th>{_text(key) if escape_keys else key}</th><td>{value}</td></tr>" for key, value in rows)
    return f'<table class="gd-kv">{body}</table>'


def _totals_line(totals: Mapping[str, Any]) -> str:
    return ", ".join(f"{_text(totals.get(status, 0))} {status}" for status in CHECK_STATUSES)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _when(timestamp: Any) -> str:
    """ISO-8601 shown for people: '2026-11-24 03:31:47 UTC' (other offsets kept as written)."""
    if not isinstance(timestamp, str):
        return "unknown"
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ", timespec="seconds")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:04.1f} s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours} h {minutes:02d} min"


def _age(hours: Any) -> str:
    value = _number(hours)
    if value is None:
        return "unknown"
    if abs(value) >= 48:
        return f"{value:,.1f} h ({value / 24:.1f} days)"
    return f"{value:.1f} h"


def _human_bytes(size: float) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value):,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _count(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _text(value)
    if isinstance(value, int):
        return f"{value:,}"
    return _text(value)
