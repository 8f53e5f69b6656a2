"""Everything a run can know before it starts an engine, decided once, up front.

Why: a typo in ``-k``, a missing passphrase or an impossible ``--require-real`` used to be found
after both servers had started and PostgreSQL had been restored, and then said three times.
Here each of them is one HarnessError (exit 2) before anything is started, claimed or written:
the expectations parse, the ``-k`` expression compiles and selects at least one check (the
drill is collected in-process, nothing runs), the backup is located, a ``.gpg`` archive has
its passphrase, and the engine each database would get is chosen (``engines.selection``
decides without starting anything) when a selected check needs a restore.

A backup that cannot be located is not a usage error: it is a bad backup. The run goes on as a
failed drill (every output written, exit 1), but starts no engine for it.
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr
from dataclasses import dataclass
from typing import Sequence

from . import archive
from .check_selection import needs_engines
from .config import DrillConfig
from .engines.selection import Choice, choose_mongo, choose_postgres
from .errors import DrillFailure, HarnessError
from .expectations import Expectations, load_expectations

FIX_KEYWORD = ("-k matches the checks' test names and files, e.g. -k archive, -k 'mongodb and not unique', "
               "-k 'postgresql or consistency'")


@dataclass(frozen=True)
class Preflight:
    """What was decided before the run started: the run uses these, it does not decide them again."""

    expectations: Expectations
    backup: archive.BackupRef | None         # None: it could not be located (``backup_failure`` says why)
    backup_failure: DrillFailure | None
    selected: tuple[str, ...] | None         # the check ids this run runs, in collection order; None: all of them
    of: int | None                           # the checks of the whole drill; None: not collected (nothing narrows)
    engines: tuple[Choice, Choice] | None    # (MongoDB, PostgreSQL); None when no engine is to start


def compile_keyword(keyword: str | None) -> None:
    """A ``-k`` expression pytest cannot parse is refused here, naming the column, with examples."""
    if not keyword:
        return
    from _pytest.mark.expression import Expression

    try:
        Expression.compile(keyword)
    except Exception as exc:  # SyntaxError in pytest 9 (offset, msg); ParseError (column, message) before
        column = getattr(exc, "offset", None) or getattr(exc, "column", None)
        reason = getattr(exc, "msg", None) or getattr(exc, "message", None) or str(exc)
        where = f" at column {column}" if column else ""
        raise HarnessError(f"-k {keyword!r} is not a valid expression{where}: {reason}", fix=FIX_KEYWORD) from None


def preflight(config: DrillConfig, pytest_argv: Sequence[str], *, keyword: str | None = None,
              verbose: bool = False, narrowed: bool = True) -> Preflight:
    """Decide what can be decided without an engine; raise HarnessError (exit 2) if the run cannot start.

    ``narrowed`` False (no -k, no --pytest-args): the run is the whole packaged drill, which has
    checks, so the collect-only pass that proves a selection selects something is not paid for
    (it costs a third of a second of every nightly run).
    """
    if config.backups is None:
        raise HarnessError("no BACKUPS given", fix="grimoire-drill run /path/to/backups (or env GRIMOIRE_DRILL_BACKUPS)")
    expectations = load_expectations(config.expectations)
    compile_keyword(keyword)
    selected: tuple[str, ...] | None = None
    of: int | None = None
    if narrowed:
        selected, of = collect_selection(config, expectations, pytest_argv, verbose=verbose)
    if selected is not None and not selected:
        chosen = f"-k {keyword!r}" if keyword else "the selection"
        raise HarnessError(f"{chosen} selects none of the drill's {of} checks", fix=FIX_KEYWORD)
    try:
        backup, failure = archive.locate(config.backups, config.backup_timezone, expectations.limits), None
    except DrillFailure as bad:
        return Preflight(expectations, None, bad, selected, of, None)
    if backup.kind == "tar.gz.gpg" and config.read_passphrase() is None:
        raise HarnessError("the archive is encrypted and no passphrase is set", where=backup.where,
                           fix="set GRIMOIRE_DRILL_PASSPHRASE or pass --passphrase-file FILE")
    engines = ((choose_mongo(config), choose_postgres(config))
               if selected is None or needs_engines(selected) else None)
    return Preflight(expectations, backup, failure, selected, of, engines)


def collect_selection(config: DrillConfig, expectations: Expectations,
                      pytest_argv: Sequence[str], *, verbose: bool = False) -> tuple[tuple[str, ...], int]:
    """(the check ids the run's pytest arguments select, the checks of the whole drill), by collecting only.

    The drill is collected in this process exactly as the run will collect it (the same
    arguments, the same plugin narrowing node ids and --ignore), with ``--collect-only``:
    no fixture runs, so nothing is located, started or written. pytest's own usage errors (an
    unknown option, a node id that is not a check) come back as one HarnessError line.
    """
    import pytest

    from .selection_probe import SelectionProbe

    probe = SelectionProbe(config, expectations)
    said = io.StringIO()
    with redirect_stderr(said):
        code = pytest.main([*pytest_argv, "--collect-only"], plugins=[probe])
    if probe.interrupted:
        raise KeyboardInterrupt
    if code == pytest.ExitCode.USAGE_ERROR:
        lines = [line.removeprefix("ERROR: ").strip() for line in said.getvalue().splitlines() if line.strip()]
        errors = [line.split(": error: ", 1)[1] for line in lines if ": error: " in line]  # argparse's, after usage
        raise HarnessError((errors or lines or ["pytest refused the arguments"])[0],
                           fix="check --pytest-args and -k (grimoire-drill run --help)")
    if probe.selected is None:
        if verbose:
            sys.stderr.write(said.getvalue())
        raise HarnessError(f"the drill's checks could not be collected (pytest exit {int(code)})",
                           fix="re-run with -v to see pytest's output")
    return probe.selected, probe.collected
