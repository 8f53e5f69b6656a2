"""Check a summary against ``grimoire-drill/summary@2`` before anything is written from it.

The summary is the single source for every report file; validating it once means a wrong
enum or a missing field is caught here, with its JSON path, instead of surfacing later as an
odd metric or a blank table cell. The JSON Schema is package data so other tools (CI, audit
scripts) can validate ``summary.json`` with the very same file.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from grimoire_drill.errors import HarnessError

SCHEMA_ID = "grimoire-drill/summary@2"
SCHEMA_RESOURCE = ("schemas", "summary.schema.json")
CHECK_STATUSES = ("passed", "failed", "skipped", "error", "off")


class SummaryInvalid(HarnessError):
    """A summary does not match the schema: a harness bug, or a foreign/old summary.json."""

    def __init__(self, problems: list[str], *, where: str, fix: str):
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"not a valid {SCHEMA_ID}: {shown}{more}", where=where, fix=fix)


def load_schema() -> dict[str, Any]:
    """The summary JSON Schema shipped inside the package."""
    resource = resources.files("grimoire_drill").joinpath(*SCHEMA_RESOURCE)
    return json.loads(resource.read_text(encoding="utf-8"))


def summary_problems(summary: Any) -> list[str]:
    """Every way ``summary`` breaks the schema or its own arithmetic, as readable lines."""
    validator = Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(summary), key=lambda e: (list(e.absolute_path), e.message))
    problems = [_describe(error) for error in errors]
    if not problems:
        problems.extend(_consistency_problems(summary))
    return problems


def validate_summary(
    summary: Any,
    *,
    where: str = "summary",
    fix: str = "this is a grimoire-drill bug: report it with the run's log",
) -> None:
    """Raise ``SummaryInvalid`` (a HarnessError, exit 2) naming each problem; return None if valid.

    ``where``/``fix`` let a caller reading someone else's summary.json name that file and advise
    differently than the default, which assumes we built the summary ourselves.
    """
    problems = summary_problems(summary)
    if problems:
        raise SummaryInvalid(problems, where=where, fix=fix)


def _describe(error: ValidationError) -> str:
    """``archive.sha256: 'xyz' is not valid …`` — the path first, as a person searches for it."""
    path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "oneOf" and error.context:
        # "is not valid under any of the given schemas" hides the useful reason; show the
        # non-null branch's complaint instead.
        reasons = [sub.message for sub in error.context if "'null'" not in sub.message]
        if reasons:
            return f"{path}: {reasons[0]}"
    return f"{path}: {error.message}"


def _consistency_problems(summary: dict[str, Any]) -> list[str]:
    """What a schema cannot say: time runs forwards, totals add up the checks, the scope counts them."""
    problems: list[str] = []
    instants: dict[str, datetime] = {}
    for key in ("started_at", "finished_at"):
        try:
            instants[key] = datetime.fromisoformat(summary[key])
        except ValueError:
            problems.append(f"{key}: {summary[key]!r} is not a real date-time")
    created = summary["archive"].get("created_at")
    if created is not None:
        try:
            datetime.fromisoformat(created)
        except ValueError:
            problems.append(f"archive.created_at: {created!r} is not a real date-time")
    if len(instants) == 2 and instants["finished_at"] < instants["started_at"]:
        problems.append("finished_at: earlier than started_at")
    scope = summary["scope"]
    if scope["ran"] > scope["of"]:
        problems.append(f"scope.ran: {scope['ran']} checks ran but the drill has only {scope['of']}")
    off = scope.get("off", 0)
    full = scope["of"] > 0 and scope["ran"] > 0 and scope["ran"] + off == scope["of"]
    if (scope["kind"] == "full") != full:
        problems.append(f"scope.kind: {scope['kind']!r} but {scope['ran']} of {scope['of']} checks ran"
                        + (f" and {off} were off" if off else ""))
    tally = Counter(check["status"] for check in summary["checks"])
    attempted = len(summary["checks"]) - tally["skipped"] - tally["off"]
    if scope["ran"] != attempted:
        problems.append(f"scope.ran: {scope['ran']} but {attempted} check(s) ran (passed, failed or error)")
    for status in CHECK_STATUSES:
        if summary["totals"].get(status, 0) != tally[status]:
            problems.append(
                f"totals.{status}: {summary['totals'][status]} but {tally[status]} check(s) "
                f"have status {status!r}"
            )
    return problems
