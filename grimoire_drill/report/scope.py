"""What a verdict covers: every check of the full drill, or only some of them.

Why it is part of the verdict: ``run -k archive`` restores nothing, so its green "passed"
proves only that the archive reads. A reader of one line (a nightly job, an auditor, an
alert) must see that from the line itself. So the scope is decided once, here, from what was
collected and what ran, and every writer words the verdict through ``verdict_label``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

OFF_SHOWN = 5  # check ids an "OFF:" line names before it counts the rest

FULL = "full"
PARTIAL = "partial"


def build_scope(statuses: Iterable[str], *, full_count: int, deselected: int, selection: str) -> dict[str, Any]:
    """``{"kind", "ran", "of", "selection", ...}`` for one run.

    ``full_count`` is how many checks the full drill has (every collected check, counted before
    any deselection); a check "ran" when it was attempted (passed, failed or error). A check
    skipped (its stage was not run, it could not be judged here) or never reached (``-x``,
    Ctrl-C) proved nothing, so the run is partial even without a selection. A check that is
    ``off`` (its threshold is "off" in expectations.toml, or it does not apply: no previous
    generation, one archive instead of a folder) was decided not to be asked: it keeps a run
    full, and every output names it as off, never as passed.
    """
    statuses = list(statuses)
    ran = sum(1 for status in statuses if status not in ("skipped", "off"))
    skipped = sum(1 for status in statuses if status == "skipped")
    off = sum(1 for status in statuses if status == "off")
    of = max(full_count, len(statuses))
    not_reached = max(0, of - deselected - len(statuses))
    kind = FULL if of > 0 and ran + off == of and ran > 0 else PARTIAL
    return {"kind": kind, "ran": ran, "of": of, "selection": selection,
            "deselected": deselected, "skipped": skipped, "not_reached": not_reached, "off": off}


def scope_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The run's scope; a summary without one (summary@1) is read as full, as it was then claimed."""
    scope = summary.get("scope")
    if isinstance(scope, Mapping) and scope.get("kind") in (FULL, PARTIAL):
        return dict(scope)
    totals = summary.get("totals") or {}
    count = sum(v for v in totals.values() if isinstance(v, int))
    return {"kind": FULL, "ran": count, "of": count, "selection": ""}


def is_partial(summary: Mapping[str, Any]) -> bool:
    return scope_of(summary)["kind"] == PARTIAL


def is_full_pass(summary: Mapping[str, Any]) -> bool:
    """The only verdict that may read as "the backup is good": passed, and every check ran."""
    return summary.get("outcome") == "passed" and not is_partial(summary)


def is_whole_drill_verdict(summary: Mapping[str, Any]) -> bool:
    """May this run stand for the backup (``latest``, ``list``)? A full run, or a failure of the
    whole drill: nothing was selected, and checks skipped only because the backup failed earlier
    (a missing collection skips its index checks). A newer failure must never hide behind an
    older pass; a partial pass never stands for the whole drill."""
    scope = scope_of(summary)
    if scope["kind"] == FULL:
        return True
    return summary.get("outcome") == "failed" and not scope.get("selection") and not scope.get("deselected")


def verdict_label(summary: Mapping[str, Any]) -> str:
    """PASSED, PARTIAL PASS (12 of 46 checks), FAILED (partial: 12 of 46 checks), ERROR…"""
    outcome = str(summary.get("outcome", "error"))
    scope = scope_of(summary)
    counted = f"{scope['ran']} of {scope['of']} checks"
    if scope["kind"] != PARTIAL:
        return outcome.upper()
    if outcome == "passed":
        return f"PARTIAL PASS ({counted})"
    return f"{outcome.upper()} (partial: {counted})"


def off_line(summary: Mapping[str, Any]) -> str:
    """One line naming the checks that were off (not asked), or '' when none was."""
    off = [check["id"] for check in summary.get("checks", ()) if check.get("status") == "off"]
    if not off:
        return ""
    shown = ", ".join(off[:OFF_SHOWN]) + (f" and {len(off) - OFF_SHOWN} more" if len(off) > OFF_SHOWN else "")
    return f"OFF: {len(off)} check(s) not asked (off in expectations.toml, or not applicable here): {shown}"


def scope_line(summary: Mapping[str, Any]) -> str:
    """One line saying what was not proven, or '' for a full run."""
    scope = scope_of(summary)
    if scope["kind"] != PARTIAL:
        return ""
    parts = [f"{scope['ran']} of {scope['of']} checks ran"]
    if scope.get("selection"):
        parts.append(f"selected by {scope['selection']}")
    for key, words in (("deselected", "deselected"), ("skipped", "skipped"), ("not_reached", "not reached")):
        if scope.get(key):
            parts.append(f"{scope[key]} {words}")
    return "PARTIAL: " + ", ".join(parts) + " — this run does not prove the whole backup restores"
