"""What a check's outcome becomes: its status and one-line message, and what pytest-html shows of it.

Why apart from the plugin: this is the one place an exception raised on backup content becomes a
verdict (failed, not a crash of the drill; error only for the harness's own trouble), and the one
place a check's message and traceback are bounded before any output shows them.
"""

from __future__ import annotations

import errno
import html
from typing import Any, NoReturn

import pytest

from .errors import DrillFailure, GrimoireDrillError
from .evidence import plain
from .limits import Limits
from .report.summary import CheckResult
from .text import ELLIPSIS, quote


# A skip whose reason starts with this is a check that was not asked (status "off"), not one that
# could not be judged ("skipped"). Only check_off writes it; reasons are the drill's own words.
OFF_MARK = "[off] "


def check_off(reason: str) -> NoReturn:
    """End a check as ``off``: its threshold is "off", or it does not apply here (no previous generation,
    one archive instead of a folder). An off check keeps the run full and is named as off in every output,
    never as passed. ``reason`` says which: "max_drop_percent is off in expectations.toml ([generations])"."""
    pytest.skip(OFF_MARK + reason)


def skip_status(reason: str) -> tuple[str, str]:
    """(status, message) of a skipped check: ``off`` when check_off ended it, else ``skipped``."""
    if reason.startswith(OFF_MARK):
        return "off", reason[len(OFF_MARK):]
    return "skipped", reason


# Errors of the machine or of an engine, not of the backup: the drill could not tell (exit 2).
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EROFS})


def engine_errors() -> tuple[type[BaseException], ...]:
    """A lost connection to an engine. Imported when a check fails, not when the plugin loads: the drivers
    cost a quarter of a second of start-up on the main thread, before the archive is read."""
    import psycopg
    from pymongo.errors import ConnectionFailure

    return (ConnectionFailure, psycopg.OperationalError, psycopg.InterfaceError)


def failure_message(excinfo, limits: Limits | None = None) -> tuple[str, str]:
    """(status, one-line message) for an exception raised by a check or its fixtures.

    The one place a check's exception becomes a verdict. Checks read backup content, so any
    exception they did not foresee (a KeyError, a TypeError on a field of the wrong type, a
    UnicodeError, a RecursionError, a bson or pymongo error on our data) means the backup
    holds something the drill cannot vouch for: ``failed``, with the exception's type and its
    message quoted. Only the harness's own trouble is ``error`` (exit 2): a HarnessError, an
    engine that stopped answering, a full disk or no memory.
    """
    limits = Limits() if limits is None else limits
    value = excinfo.value
    if isinstance(value, DrillFailure):
        return "failed", value.line()
    if isinstance(value, GrimoireDrillError):
        return "error", value.line()
    if isinstance(value, AssertionError):
        return "failed", _first_line(value, "assertion failed")
    if excinfo.typename == "Failed":
        return "failed", _first_line(getattr(value, "msg", value), "failed")
    detail = quote(f"{excinfo.typename}: {_first_line(value, '(no message)')}", limits.max_quoted_chars)
    if _is_harness_trouble(value):
        return "error", f"the drill could not run this check: {detail}"
    return "failed", f"the check stopped on the backup's content: {detail}"


def _is_harness_trouble(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, *engine_errors())):
        return True
    return isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS


def _first_line(value: Any, empty: str) -> str:
    try:
        lines = str(value).strip().splitlines()
    except Exception:  # noqa: BLE001 — an exception's own __str__ may raise on odd content
        return empty
    return lines[0] if lines else empty


def shown_message(message: str, limits: Limits) -> str:
    """A check's message as every output shows it: printable, and a few quoted pieces long at most."""
    return quote(message[: 4 * limits.max_quoted_chars + 1], 4 * limits.max_quoted_chars)


def attach_html(report, result: CheckResult) -> None:
    from pytest_html import extras

    bound_longrepr(report, Limits())
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_short(v))}</td></tr>"
                   for k, v in result.evidence.items())
    block = (f"<div class='gd-check gd-{result.status}'><p><b>{html.escape(result.id)}</b>: "
             f"{html.escape(result.message)}</p>" + (f"<table class='gd-evidence'>{rows}</table>" if rows else "")
             + "</div>")
    report.extras = list(getattr(report, "extras", [])) + [extras.html(block)]


def bound_longrepr(report, limits: Limits) -> None:
    """pytest's own traceback text, which report.html and junit.xml also show, made writable and short.

    A check that stopped on content quotes that content in its traceback (a 1 MB key, a lone
    surrogate that no UTF-8 file can hold): keep the end, where the exception is, and show
    non-UTF-8 bytes as escapes. Line breaks stay, so the traceback still reads as one.
    """
    if report.longrepr is None or not report.failed:   # a skip's longrepr is a tuple pytest itself reads
        return
    try:
        text = str(report.longreprtext if hasattr(report, "longreprtext") else report.longrepr)
    except Exception:  # noqa: BLE001 — a repr of odd content must not cost the report
        text = "(the traceback could not be rendered)"
    cap = 4 * limits.max_evidence_chars
    bounded = text if len(text) <= cap else ELLIPSIS + text[-cap:]
    try:
        bounded.encode("utf-8")
    except UnicodeEncodeError:
        bounded = bounded.encode("utf-8", errors="backslashreplace").decode("utf-8")
    if bounded != text:
        report.longrepr = bounded


def _short(value: Any, limit: int = 2000) -> str:
    """An evidence value (already plain: see evidence.py) as one table cell of at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(plain(value, Limits()))
    return quote(text[: limit + 1], limit)
