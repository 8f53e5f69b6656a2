"""``grimoire-drill run | list | inspect | verify | sample | demo``.

``run`` is a thin shell over pytest: it builds the DrillConfig from the shared option table,
hands it to the plugin and runs the packaged ``drills/`` as a pytest session, then maps the
outcome to the exit codes DESIGN.md gives (0 passed, 1 backup failed, 2 harness, 3 --then failed,
130 interrupted).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .config import OPTIONS, OPTIONS_BY_NAME, Option, argv_secret_warnings, build_config, given_value, parse_backups
from .deadline import RunTimedOut
from .errors import GrimoireDrillError, HarnessError
from .exit_codes import EXIT_FAILED, EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_PASSED
from .usage import OneLineParser, choices_epilog, exit_codes_epilog, os_error_line, say_error, unexpected_error_line
from .usage import with_choices

READ_ONLY_COMMANDS = ("list", "inspect")  # a closed pipe cut their output short, nothing else
MAX_SAMPLE_AGE_HOURS = 100 * 365 * 24  # sample --age-hours: a date far enough back for any test, still a date


class _Terminated(KeyboardInterrupt):
    """SIGTERM handled like Ctrl-C, so every engine and temp dir is cleaned up on the way out."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def drills_dir() -> Path:
    """The packaged drill (works from a checkout and from an installed wheel)."""
    return Path(str(resources.files("grimoire_drill.drills")))


class Printer:
    """Progress on stderr, live: one rewritten status line on a terminal; on a log (CI), plain
    timestamped lines, transient ones (bytes read) at most every LOG_INTERVAL_S seconds."""

    LOG_INTERVAL_S = 10.0

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.started = time.monotonic()
        self._stream = None
        self._tty = False
        self._last_transient = float("-inf")
        self._dangling = False

    def _open(self):
        if self._stream is None:
            # a duplicate of fd 2 taken before pytest captures it, so progress reaches the user live
            self._stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
            self._tty = self._stream.isatty()
        return self._stream

    def __call__(self, line: str, transient: bool = False) -> None:
        if self.quiet:
            return
        stream = self._open()
        now = time.monotonic()
        text = f"[{now - self.started:7.1f}s] {line}"
        if transient and self._tty:
            stream.write("\r\x1b[K" + text)
            self._dangling = True
            return
        if transient:
            if now - self._last_transient < self.LOG_INTERVAL_S:
                return
            self._last_transient = now
        stream.write(("\r\x1b[K" if self._dangling else "") + text + "\n")
        self._dangling = False


# -- run -------------------------------------------------------------------------------------
def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backups", nargs="?", help=OPTIONS[0].help)  # a path or an s3:// / sftp:// URL
    for option in OPTIONS[1:]:
        if option.env_only:
            continue
        if option.flag:
            parser.add_argument(option.cli, action="store_true", default=None, help=option.help)
        else:
            parser.add_argument(option.cli, default=None, choices=option.choices,
                                help=with_choices(option.help, option.choices), metavar=option.name.upper(),
                                action="append" if option.repeatable else "store")
    parser.add_argument("-k", dest="keyword", help="only run checks matching this pytest -k expression")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. \"-x --tb=long\"")
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks and pytest's own output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def _split_pytest_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unbalanced quote
        raise HarnessError(f"--pytest-args cannot be split into arguments: {exc}",
                           fix='quote the whole value once, e.g. --pytest-args "-x --tb=long"') from None


def config_from_args(args: argparse.Namespace):
    """The run's DrillConfig; warns (stderr) about each secret typed on the command line."""
    def lookup(option: Option) -> Any:
        value = given_value(option, getattr(args, option.name, None))
        if value is None or option.flag or not isinstance(value, str):
            return value
        return option.parse(value)
    for warning in argv_secret_warnings(lambda option: getattr(args, option.name, None) is not None):
        print(f"grimoire-drill: warning: {warning}", file=sys.stderr)
    return build_config(lookup)


def _pytest_argv(keyword: str | None, pytest_args: Sequence[str], verbose: bool) -> list[str]:
    # no:unraisableexception: its forced full GC passes at the end cost seconds over a large in-process store
    argv = [str(drills_dir()), "-p", "no:cacheprovider", "-p", "no:unraisableexception", f"--confcutdir={drills_dir()}"]
    argv += ["-v", "--tb=long"] if verbose else ["-p", "no:terminal", "-p", "no:warnings"]
    if keyword:
        argv += ["-k", keyword]
    return argv + _packaged_node_ids(pytest_args)


VALUE_OPTIONS = ("-k", "-m", "-p", "--deselect", "--ignore", "--ignore-glob", "--maxfail", "-o", "--tb", "-W")
PATH_OPTIONS = ("--ignore", "--ignore-glob")  # their value names a drill file, like a node id


def _packaged_node_ids(pytest_args: Sequence[str]) -> list[str]:
    """``drills/test_archive.py::test_fresh`` (or ``test_archive.py::…``) names the packaged drill's file.

    The drill is installed with the package, so a node id as the docs write it rarely exists
    relative to the working dir; it is resolved against the packaged drills/ instead. The plugin
    then turns it into a selection (the verdict counts it as partial).
    """
    resolved: list[str] = []
    takes_value = None
    for token in pytest_args:
        if token.startswith("-") or (takes_value is not None and takes_value not in PATH_OPTIONS):
            takes_value = token if token in VALUE_OPTIONS else None
            resolved.append(token)
            continue
        takes_value = None
        path_text, sep, names = token.partition("::")
        if not Path(path_text).exists():
            relative = Path(path_text)
            if relative.parts and relative.parts[0] == "drills":
                relative = Path(*relative.parts[1:])
            candidate = drills_dir() / relative
            if relative.parts and candidate.exists():
                token = str(candidate) + sep + names
        resolved.append(token)
    return resolved


def run_drill(config, *, printer: Printer, keyword: str | None = None, pytest_args: Sequence[str] = (),
              verbose: bool = False, attribution: dict | None = None) -> int:
    """One drill; ``attribution`` (who ran it, how, with what build) goes into its summary as given.

    The preflight decides first what needs no engine (a HarnessError if the run cannot start:
    nothing is started, claimed or written); a Ctrl-C before pytest made a summary is exit 130.
    """
    import pytest

    from .archive import shown_source
    from .engines.janitor import sweep_strays
    from .plugin import DrillRun
    from .preflight import preflight

    pytest_argv = _pytest_argv(keyword, pytest_args, verbose)
    checked = preflight(config, _pytest_argv(keyword, pytest_args, verbose=False), keyword=keyword, verbose=verbose,
                        narrowed=bool(keyword) or bool(pytest_args))
    if config.then:
        from .premigration import run_rounds

        return run_rounds(config, printer=printer, pytest_argv=pytest_argv, attribution=attribution)
    drill = DrillRun(config, progress=printer, preflight=checked,
                     extra_summary={"attribution": attribution} if attribution is not None else None)
    printer(f"run {drill.run_id}: drilling {shown_source(config.backups)}")
    try:
        drill.decide_report_dir()  # here, so a busy --report-dir or a bad --prom-file is said before pytest starts
        for stray in sweep_strays(drill.run_id, [config.temp_dir] if config.temp_dir is not None else []):
            printer(f"removed a stray of a killed earlier run: {stray}")
        code = pytest.main(pytest_argv, plugins=[drill])
    finally:
        if drill.summary is None:  # interrupted or refused before a summary: leave nothing behind
            drill.abandon()
    if drill.summary is None:
        if drill.interrupted or code == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt  # pytest's start-up or collection was cut short: main says it, exit 130
        print(f"grimoire-drill: the drill did not run (pytest exit {int(code)})", file=sys.stderr)
        return EXIT_HARNESS
    drill.print_verdict()
    return drill.sealed(drill.verdict_code())


# -- list / inspect ----------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """The backups of a folder, newest first; exit 1 when it holds none (the backup job wrote nothing)."""
    from .archive import shown_source
    from .listing import listing, listing_lines

    document = listing(args.backups, args.history, config_from_args(args).backup_timezone, datetime.now(timezone.utc))
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        for line in listing_lines(document) if document["backups"] else ():
            print(line)
    if not document["backups"]:
        say_error(f"no backup_YYYYMMDD_HHMMSS archive in {shown_source(args.backups)} — fix: check that the backup job ran and "
                  "wrote here (BACKUP_DIR of scripts/backup-production.sh)")
        return EXIT_FAILED
    return EXIT_PASSED


def cmd_inspect(args: argparse.Namespace) -> int:
    from .expectations import load_expectations
    from .inspect import inspect_document, inspect_lines

    config = config_from_args(args)
    limits = load_expectations(config.expectations).limits
    with tempfile.TemporaryDirectory(prefix="grimoire-drill-inspect-") as temp:
        document = inspect_document(args.archive, Path(temp), passphrase=config.read_passphrase(), limits=limits)
    print(json.dumps(document, indent=2) if args.json else "\n".join(inspect_lines(document, limits)))
    return EXIT_PASSED


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the report is intact (and signed, and of that archive, when asked), else 1, a line per problem."""
    from .verify import verify_report

    problems, notes = verify_report(args.report_dir, archive=args.archive, require_signature=args.require_signature)
    for line in problems:
        print(f"PROBLEM: {line}")
    if problems:
        print(f"FAILED: {args.report_dir}: {len(problems)} problem(s)")
        return EXIT_FAILED
    print(f"OK: {args.report_dir}: " + "; ".join(notes))
    return EXIT_PASSED


# -- sample / demo -----------------------------------------------------------------------------
def cmd_sample(args: argparse.Namespace) -> int:
    from . import sample

    args.out.mkdir(parents=True, exist_ok=True)
    newest = datetime.now(timezone.utc) - timedelta(hours=args.age_hours)
    common = dict(defect=args.defect, scale=args.scale, gzip_dump=args.gzip, seed=args.seed)
    if args.encrypt:
        common["passphrase"] = config_from_args(args).read_passphrase()
        if common["passphrase"] is None:
            raise HarnessError("--encrypt needs a passphrase", fix="set GRIMOIRE_DRILL_PASSPHRASE or --passphrase-file")
    folder_defect = args.defect in sample.CATALOGUE and sample.CATALOGUE[args.defect].series is not None
    if args.generations > 1 or folder_defect:   # a folder defect (missing-night) is a series of its own
        paths = sample.write_generations(args.out, count=args.generations, newest=newest, **common)
    else:
        paths = [sample.write_sample(args.out, when=newest, **common)]
    for path in paths:
        print(path)
    return EXIT_PASSED


def cmd_demo(args: argparse.Namespace) -> int:
    from . import sample

    printer = Printer(args.quiet)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    printer(f"demo: writing a realistic sample backup into {out}")
    path = sample.write_sample(out, when=datetime.now(timezone.utc) - timedelta(hours=1))
    printer(f"demo: sample ready: {path}")
    from .attribution import collect as collect_attribution

    config = build_config(lambda option: {"backups": out}.get(option.name))
    return run_drill(config, printer=printer, attribution=collect_attribution(sys.argv[1:]))


# -- main --------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_SAMPLE_AGE_HOURS:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours from 0 to {MAX_SAMPLE_AGE_HOURS:,}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .inspect import INSPECT_SCHEMA
    from .listing import LIST_SCHEMA
    from .sample.defects import DEFECTS

    raw = argparse.RawDescriptionHelpFormatter
    parser = OneLineParser(prog="grimoire-drill", description="Restore drills for Le Grimoire backups.",
                           epilog=exit_codes_epilog(), formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"grimoire-drill {__version__}")
    verbose = OneLineParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", help="tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,list,inspect,verify,sample,demo}")

    run = sub.add_parser("run", help="restore the latest backup into throwaway servers and check it",
                         epilog=exit_codes_epilog(), formatter_class=raw)
    add_run_options(run)

    lst = sub.add_parser("list", parents=[verbose], help="backups found, newest first, with the last drill's verdict")
    lst.add_argument("backups", type=parse_backups, nargs="?", default=Path("backups"))
    lst.add_argument("--history", type=Path, default=Path("reports/history.jsonl"),
                     help="history file of the drills (default reports/history.jsonl)")
    lst.add_argument("--backup-timezone", default=None, help=OPTIONS_BY_NAME["backup_timezone"].help)
    lst.add_argument("--json", action="store_true", help=f"one JSON document ({LIST_SCHEMA}) on stdout")

    ins = sub.add_parser("inspect", parents=[verbose], help="what is inside an archive, without restoring")
    ins.add_argument("archive", type=parse_backups)
    ins.add_argument("--passphrase-file", type=Path, default=None)
    ins.add_argument("--json", action="store_true", help=f"one JSON document ({INSPECT_SCHEMA}) on stdout")

    ver = sub.add_parser("verify", parents=[verbose],
                         help="check a report folder: manifest hashes, signature, the archive drilled")
    ver.add_argument("report_dir", type=Path, metavar="REPORT_DIR")
    ver.add_argument("--archive", type=Path, default=None, help="the archive (or backup_* folder) that was drilled")
    ver.add_argument("--require-signature", action="store_true", help="fail when MANIFEST.sha256.asc is missing")

    smp = sub.add_parser("sample", parents=[verbose], formatter_class=raw,
                         help="write a realistic sample backup (optionally with one defect)",
                         epilog=choices_epilog("defects (--defect NAME)", DEFECTS))
    smp.add_argument("out", type=Path)
    smp.add_argument("--defect", default=None, choices=sorted(DEFECTS), metavar="NAME",
                     help="one defect to plant (see the list below)")
    smp.add_argument("--scale", type=_positive_int, default=1, help="multiply documents, rows and uploads")
    smp.add_argument("--gzip", action="store_true", help="mongodump --gzip layout")
    smp.add_argument("--encrypt", action="store_true", help="gpg --symmetric AES256 (.tar.gz.gpg)")
    smp.add_argument("--passphrase-file", type=Path, default=None)
    smp.add_argument("--generations", type=_positive_int, default=1, help="several nightly backups, one per day")
    smp.add_argument("--age-hours", type=_hours, default=1.0, help="age of the newest backup")
    smp.add_argument("--seed", type=int, default=0)

    demo = sub.add_parser("demo", parents=[verbose], help="write a sample backup and drill it; prints the report path",
                          epilog=exit_codes_epilog(), formatter_class=raw)
    demo.add_argument("--out", type=Path, default=Path("demo/backups"))
    demo.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """One command; whatever goes wrong ends in one line on stderr and its exit code (a traceback only with -v)."""
    signal.signal(signal.SIGTERM, _on_sigterm)  # first: a SIGTERM from now on cleans up and exits 130
    verbose, args = False, None
    try:
        from .attribution import collect as collect_attribution

        logging.getLogger("testcontainers").setLevel(logging.WARNING)  # our progress lines say what matters
        args = build_parser().parse_args(argv)
        verbose = getattr(args, "verbose", False)
        if args.command == "run":
            config = config_from_args(args)
            if config.backups is None:
                raise HarnessError("no BACKUPS given", fix="grimoire-drill run /path/to/backups (or env GRIMOIRE_DRILL_BACKUPS)")
            if config.generations is not None:
                from .generations_run import PassedOn, run_generations

                given = {o.name: getattr(args, o.name) for o in OPTIONS[1:] if getattr(args, o.name, None) is not None}
                return run_generations(config, PassedOn(given, args.keyword, args.pytest_args, verbose, args.quiet),
                                       printer=Printer(args.quiet))
            return run_drill(config, printer=Printer(args.quiet), keyword=args.keyword,
                             pytest_args=_split_pytest_args(args.pytest_args), verbose=verbose,
                             attribution=collect_attribution(sys.argv[1:] if argv is None else argv))
        commands = {"list": cmd_list, "inspect": cmd_inspect, "verify": cmd_verify, "sample": cmd_sample,
                    "demo": cmd_demo}
        return commands[args.command](args)
    except GrimoireDrillError as error:
        if verbose:
            raise
        say_error(error.line())
        return error.exit_code
    except RunTimedOut as timeout:  # outside pytest (the stray sweep, a --then command): no outputs to write
        say_error(str(timeout))
        return EXIT_HARNESS
    except KeyboardInterrupt:
        say_error("interrupted; cleaned up")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `grimoire-drill inspect X | head`: the reader left; nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PASSED if getattr(args, "command", None) in READ_ONLY_COMMANDS else EXIT_HARNESS
    except OSError as error:
        if verbose:
            raise
        say_error(os_error_line(error))
        return EXIT_HARNESS
    except Exception as error:  # a bug: still one line, and the way to see more
        if verbose:
            raise
        say_error(unexpected_error_line(error))
        return EXIT_HARNESS


def console_main() -> None:
    """The ``grimoire-drill`` command: ``main()``, then leave without tearing the heap down.

    Why: with the simulated engine the restored store is gigabytes of small Python objects,
    and freeing them one by one at interpreter exit took 9 s of a 1 GB drill, after every
    output was written. Everything the drill owns is closed explicitly before ``main()``
    returns (engines, temp dir, report lock), so only the flush of the standard streams and
    logging is left to do here.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
