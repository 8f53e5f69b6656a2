"""Load a plain ``database.sql`` with psql in restricted mode, so no meta-command in it ever runs.

Why: psql runs ``\\! cmd``, ``\\o |cmd``, ``\\copy ... to program``, ``\\g |cmd``, ``\\i /etc/...``,
``\\setenv``, ``\\lo_import``, ``\\connect`` ... on the drill host. psql 15.14+ has ``\\restrict KEY``:
after it every backslash command is refused ("backslash commands are restricted") until
``\\unrestrict KEY`` with the same key. We start psql with a one-line file ``\\restrict <random
key>`` before the dump (``-f key -f dump``: one session, the mode carries over), so the key is
new per run, never in argv and never in the dump; the dump cannot leave the mode without it.

A dump from pg_dump 15.14+ carries its own ``\\restrict K`` / ``\\unrestrict K`` pair. Under our
mode psql refuses both (the first as restricted, the second as "wrong key") and stays
restricted; those two refusals, on lines that are exactly such a command, are not errors of
the backup. Every other refused meta-command is an error naming its line.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from ..errors import HarnessError
from ..text import quote

REFUSED = "backslash commands are restricted; only \\unrestrict is allowed"
WRONG_KEY = "\\unrestrict: wrong key"
NOT_RESTRICTED = "\\unrestrict: not currently in restricted mode"
# pg_dump's own pair: keys are alphanumeric (pg_dump draws 64 of [A-Za-z0-9]).
OWN_RESTRICT_LINE = re.compile(r"\\(?:un)?restrict [A-Za-z0-9]+")
PROBE = "\\echo grimoire-drill-restrict-probe"
READ_CHUNK = 1 << 16


def write_restrict_file(directory: Path) -> Path:
    """``\\restrict <random key>`` in a fresh 0600 file in ``directory`` (the run's temp dir)."""
    path = directory / f"restrict-{secrets.token_hex(4)}.psql"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(f"\\restrict {secrets.token_hex(32)}\n")
    return path


def psql_args(database: str, restrict: str, dump: str) -> list[str]:
    """psql's argv (placeholders for the engine): no psqlrc, results to /dev/null, every error reported."""
    return ["-d", database, "--no-password", "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=0",
            "-f", restrict, "-f", dump]


def probe_args(database: str, restrict: str) -> list[str]:
    """A psql run that must see its own ``\\echo`` refused: proof this psql has restricted mode."""
    return ["-d", database, "--no-password", "-X", "-q", "-f", restrict, "-c", PROBE]


def require_restricted_mode(stdout: str, stderr: str, returncode: int) -> None:
    """Raise HarnessError unless the probe's meta-command was refused (psql older than 15.14 runs it)."""
    if REFUSED in stderr and "grimoire-drill-restrict-probe" not in stdout:
        return
    said = " | ".join(stderr.strip().splitlines()[-2:]) or f"exit {returncode}"
    raise HarnessError(f"psql did not show its restricted mode (\\restrict) working, so postgresql/database.sql "
                       f"is not loaded: {said[:200]}",
                       fix="use psql 15.14 or newer (a current postgresql-client point release) and check that "
                           "the server accepts the restore role")


def is_meta_refusal(message: str) -> bool:
    return message.startswith((REFUSED, WRONG_KEY, NOT_RESTRICTED))


def read_lines(dump: Path, wanted: set[int], max_chars: int) -> dict[int, str]:
    """The text of lines ``wanted`` (1-based) of ``dump``, each cut at ``max_chars``, in one streaming pass.

    A line may be gigabytes long (one COPY row): only its first ``max_chars`` are kept.
    """
    found: dict[int, str] = {}
    if not wanted:
        return found
    last = max(wanted)
    number, current, keep = 1, bytearray(), 1 in wanted
    with open(dump, "rb") as handle:
        while number <= last:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if keep and len(current) < max_chars:
                    current += piece[: max_chars - len(current)]
                if end < 0:
                    break
                if keep:
                    found[number] = current.decode("utf-8", errors="replace")
                number += 1
                if number > last:
                    break
                current, keep, start = bytearray(), number in wanted, end + 1
    if keep and number in wanted and number not in found:
        found[number] = current.decode("utf-8", errors="replace")
    return found


def judge_refusals(refusals: list[tuple[int, str]], dump: Path, max_chars: int) -> list[str | None]:
    """For each of psql's refused meta-commands ``(line, message)``: the error to report, or None.

    None (not the backup's fault) only for pg_dump's own pair: the first refusal, when its line is
    exactly ``\\restrict K``, and the last one, when it is exactly ``\\unrestrict K`` with that K.
    Every other one (another ``\\unrestrict K`` too) names its line and shows it.
    """
    texts = read_lines(dump, {line for line, _ in refusals}, max_chars)
    judged: list[str | None] = []
    own_key = _own_restrict_key(refusals, texts)
    for index, (line, message) in enumerate(refusals):
        text = texts.get(line, "").strip()
        first, last = index == 0, index == len(refusals) - 1
        if own_key is not None and ((first and message.startswith(REFUSED) and text == f"\\restrict {own_key}")
                                    or (last and message.startswith(WRONG_KEY) and text == f"\\unrestrict {own_key}")):
            judged.append(None)
            continue
        shown = quote(text, max_chars) if text else "(line not found)"
        judged.append(f"{dump.name} line {line}: psql meta-command refused, nothing ran (restricted mode): {shown}")
    return judged


def _own_restrict_key(refusals: list[tuple[int, str]], texts: dict[int, str]) -> str | None:
    """K of the dump's own ``\\restrict K``, when that is the first refused line."""
    if not refusals:
        return None
    match = OWN_RESTRICT_LINE.fullmatch(texts.get(refusals[0][0], "").strip())
    if match is None or not match.group(0).startswith("\\restrict "):
        return None
    return match.group(0).split(" ", 1)[1]
