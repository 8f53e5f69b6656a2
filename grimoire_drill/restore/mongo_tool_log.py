"""What mongorestore's stderr says went wrong, as lines a person can act on.

mongorestore logs everything on stderr, one ``<timestamp>\\t<message>`` line each: progress,
``reading metadata for ...``, and before each index build a Go dump of the spec
(``index: &idx.IndexDocument{Options:primitive.M{...}}``) that can be longer than the error
itself. The error is in ``Failed: <ns>: error restoring from <file>: reading bson input: invalid
BSONSize: ... bytes`` (the last line), in ``continuing through error: E11000 duplicate key ...``
lines, or inside a ``Failed: ... error creating indexes ...`` line. Only those lead a message;
the rest stays in the evidence (``output_tail``).

The stderr quotes the backup (collection names, key values): every line returned is bounded.
"""

from __future__ import annotations

import re

from ..text import quote

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d{4}|Z)?\s+")
NOISE = ("index: &idx.IndexDocument", "reading metadata for", "restoring ", "finished restoring", "no indexes to restore",
         "preparing collections to restore from", "checking for collection data in", "[#", "[.", "using ",
         "restoring indexes for collection", "don't know what to do with", "no metadata; falling back")
CONNECTION = re.compile(r"error connecting to (?:db server|host)|server selection error|connection refused|"
                        r"authentication failed|not authorized", re.IGNORECASE)
DOCUMENT_TOTALS = re.compile(r"^(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore\.$")
WRAPPING = re.compile(r"^(?:Failed: )?(?:continuing through error: )?(?:[^\s:]+: )?(?:error restoring from \S+: )?")
MAX_READ_LINES = 10_000  # a stderr of millions of "continuing through error" lines: the first ones tell


def _messages(stderr: str) -> list[str]:
    """Each stderr line without its timestamp; blank lines dropped."""
    lines = []
    for raw in stderr.splitlines()[:MAX_READ_LINES]:
        line = TIMESTAMP.sub("", raw.strip())
        if line:
            lines.append(line)
    return lines


def _is_error(line: str) -> bool:
    if line.startswith(NOISE):
        return False
    lowered = line.lower()
    return line.startswith("Failed:") or "E11000" in line or lowered.startswith("error") or " error" in lowered


def _lead(line: str) -> str:
    """The part worth reading first: from E11000 on, else the text after mongorestore's wrapping."""
    if "E11000" in line:
        return line[line.index("E11000"):]
    return WRAPPING.sub("", line) or line


def tool_errors(stderr: str, max_chars: int) -> list[str]:
    """The distinct error lines of a mongorestore run, most telling first (E11000, then ``Failed:``), bounded."""
    found = [line for line in _messages(stderr) if _is_error(line)]
    ranked = sorted(found, key=lambda line: (0 if "E11000" in line else 1 if line.startswith("Failed:") else 2))
    shown: list[str] = []
    for line in ranked:
        text = quote(_lead(line), max_chars)
        if text not in shown:
            shown.append(text)
    return shown


def failed_documents(stderr: str) -> int | None:
    """``N document(s) failed to restore`` from mongorestore's last summary line (None: not said)."""
    for line in reversed(_messages(stderr)):
        match = DOCUMENT_TOTALS.match(line)
        if match:
            return int(match.group(2))
    return None


def is_connection_failure(stderr: str) -> bool:
    """mongorestore could not reach or log in to the server: our failure, not the backup's."""
    return any(CONNECTION.search(line) for line in _messages(stderr) if line.startswith("Failed:"))
