"""``grimoire-drill run BACKUPS --generations all|N|random:N``: drill several backups of one folder.

The auditor's question is "does every backup in the retention window restore?", so each chosen
backup gets the drill a single ``run`` gives it, oldest first (each drill's "previous
generation" in ``history.jsonl`` is then the one drilled just before it), and one index page
(``report.generations_index``) lists them with the drift between consecutive ones.

Why each generation is a child process (``python -m grimoire_drill.cli run <archive>``), not
``pytest.main()`` again in this process: a drill is a whole pytest session with process-wide
state. pytest caches the drills' conftest and test modules in ``sys.modules`` (a second session
reuses the first one's modules), plugins and pytest-html keep per-process state, the simulated
MongoDB holds gigabytes of objects that the single run deliberately never frees
(``cli.console_main`` leaves through ``os._exit``), and an engine thread or a container left by
one drill would leak into the next one's verdict. A child is exactly the drill a single run
does, with its own engines torn down by its own exit, and its memory returned to the system.

What the child gets is what a single run gets: our environment (minus the ``--generations``
settings, so it drills one backup), the options given on our command line, and ``--run-id``
(so its run folder is known), ``--report-dir`` (under ours, when one was given) and ``--now``.
A secret typed on our command line (``--mongo-uri``, ``--postgres-dsn``) is never put on the
child's, nor in its environment, nor on disk: it is written into a pipe the child inherits, and
the child is given ``--postgres-dsn-file /dev/fd/N``, which it reads once at start.

Freshness of an older backup is judged as of the moment the next backup in the folder was
taken (its ``--now``): then it was the newest, and ``archive.fresh`` asks whether the next
night's backup came in time. The newest is judged as of now, as a single run judges it, and is
given the folder itself, as a single run is, so the folder-wide checks run once, on it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from . import archive
from .archive import BackupName
from .config import OPTIONS_BY_NAME, DrillConfig, GenerationChoice
from .engines.base import new_run_id
from .errors import DrillFailure, GrimoireDrillError, HarnessError
from .exit_codes import EXIT_FAILED, EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_PASSED
from .expectations import load_expectations
from .limits import Limits
from .report.generations_index import build_index, plain_counts, totals_line, write_index
from .report.run_dirs import RunFolder, claim_explicit_folder, claim_run_folder, prune_runs, publish_latest
from .report.scope import scope_of
from .text import quote

GENERATIONS_FOLDER = "generations"   # reports/generations/<run id>/: the index of each --generations run
# Settings a child must not inherit: they would make it run generations itself, or name our run.
CHILD_ENV_DROPPED = tuple(OPTIONS_BY_NAME[name].env for name in ("generations", "generations_seed", "run_id"))
# Our own options, decided here for each child rather than passed on as given.
NOT_PASSED_ON = ("backups", "generations", "generations_seed", "run_id", "report_dir", "now")
SECRET_PIPE_BYTES = 60 * 1024       # under Linux's 64 KiB pipe buffer, so writing it never waits for the child
CHILD_VERDICTS = {EXIT_PASSED: "PASSED", EXIT_FAILED: "FAILED", EXIT_INTERRUPTED: "INTERRUPTED"}


@dataclass(frozen=True)
class Planned:
    """One chosen backup: what its child drills and as of when its freshness is judged (None: now)."""

    backup: BackupName
    target: Path
    as_of: datetime | None


@dataclass(frozen=True)
class PassedOn:
    """What the user gave on the command line that each child gets too (raw strings, True for flags)."""

    options: Mapping[str, Any]
    keyword: str | None = None
    pytest_args: str = ""
    verbose: bool = False
    quiet: bool = False


def choose(names: list[BackupName], choice: GenerationChoice, seed: int | None) -> list[BackupName]:
    """The chosen backups, oldest first. ``names`` is newest first (``archive.named_backups``).

    ``random:N`` samples from the backups oldest first with ``random.Random(seed)``, so one seed
    over the same folder picks the same backups again.
    """
    oldest_first = list(reversed(names))
    if choice.mode == "all":
        return oldest_first
    if choice.mode == "newest":
        return oldest_first[-choice.count:]
    picked = set(random.Random(seed).sample(range(len(oldest_first)), min(choice.count, len(oldest_first))))
    return [name for position, name in enumerate(oldest_first) if position in picked]


def seed_of(config: DrillConfig, run_id: str) -> tuple[int | None, str | None]:
    """(seed, where it came from) of ``random:N``: --generations-seed, else the run id's random part."""
    if config.generations.mode != "random":
        return None, None
    if config.generations_seed is not None:
        return config.generations_seed, config.source_of("generations_seed")
    return int(run_id[-6:], 16), "run id"


def plan(config: DrillConfig, limits: Limits, run_id: str) -> tuple[list[Planned], dict[str, Any]]:
    """The backups to drill, oldest first, and the selection as the index records it."""
    folder = config.backups
    if folder is None or not folder.is_dir():
        raise HarnessError("--generations needs a folder of backups" + ("" if folder is None else
                           " (this is not a folder)" if folder.exists() else " (it does not exist)"),
                           where=None if folder is None else str(folder),
                           fix="pass the folder the backup job writes backup_* archives to")
    if archive.parse_backup_name(folder.name, config.backup_timezone) is not None:
        raise HarnessError("--generations needs a folder of backups, and this is one extracted backup",
                           where=str(folder), fix="pass the folder that holds the backup_* archives")
    names = archive.named_backups(folder, limits.max_series_backups, limits.name("max_series_backups"),
                                  config.backup_timezone)
    if not names:
        raise DrillFailure(f"no backup_YYYYMMDD_HHMMSS archive in {folder}",
                           fix="check that the backup job ran and wrote here (BACKUP_DIR of scripts/backup-production.sh)")
    seed, seed_source = seed_of(config, run_id)
    chosen = choose(names, config.generations, seed)
    if len(chosen) > limits.max_generations:
        raise HarnessError(f"--generations {config.generations} would drill {len(chosen)} backups, more than "
                           f"{limits.name('max_generations')}", where=str(folder),
                           fix="choose fewer (--generations N or random:N) or raise the limit in [limits] "
                               "of expectations.toml")
    successor = {names[i].backup_id: names[i - 1] for i in range(1, len(names))}  # names: newest first
    planned = []
    for backup in chosen:
        newer = successor.get(backup.backup_id)
        if newer is None:  # the newest: drilled as a single run drills the folder
            planned.append(Planned(backup, folder, config.now))
        else:
            planned.append(Planned(backup, backup.path, newer.taken_at))
    selection = {"mode": config.generations.mode, "count": config.generations.count, "seed": seed,
                 "seed_source": seed_source, "found": len(names)}
    return planned, selection


class GenerationsRun:
    """One ``--generations`` command: plan, a child drill per backup, the index, the exit code."""

    def __init__(self, config: DrillConfig, passed_on: PassedOn, printer: Callable[..., None]):
        self.config = config
        self.passed_on = passed_on
        self.say = printer
        self.limits = load_expectations(config.expectations).limits
        self.run_id = new_run_id()
        self.started_at = datetime.now(timezone.utc)
        self.now = config.now if config.now is not None else self.started_at
        self.folder: RunFolder | None = None

    # -- where things go -----------------------------------------------------------------------
    def _claim_index_folder(self) -> RunFolder:
        if self.config.report_dir is not None:
            return claim_explicit_folder(self.config.report_dir.resolve(), self.run_id,
                                         wait_s=self.limits.report_dir_wait_s,
                                         wait_limit=self.limits.name("report_dir_wait_s") + " s", say=self.say)
        from .plugin import DEFAULT_REPORTS

        return claim_run_folder(DEFAULT_REPORTS.resolve(), GENERATIONS_FOLDER, self.run_id)

    def _child_report_dir(self, planned: Planned) -> Path | None:
        """Under our --report-dir, one folder per backup; else None: the default reports/ layout."""
        if self.config.report_dir is None:
            return None
        assert self.folder is not None
        return self.folder.path / planned.backup.name

    def _summary_path(self, report_dir: Path | None, run_id: str) -> Path | None:
        if report_dir is not None:
            return report_dir / "summary.json"
        from .plugin import DEFAULT_REPORTS

        found = sorted(DEFAULT_REPORTS.resolve().glob(f"*/{run_id}/summary.json"))
        return found[0] if found else None

    # -- one child -------------------------------------------------------------------------------
    def child_argv(self, planned: Planned, run_id: str, report_dir: Path | None,
                   secret_files: Mapping[str, str]) -> list[str]:
        """The command line of one generation's drill; a secret typed on ours is named by its file in
        ``secret_files`` (name -> path, see ``secret_pipes``), never given itself."""
        argv = [sys.executable, "-m", "grimoire_drill.cli", "run", str(planned.target), f"--run-id={run_id}"]
        for name, value in self.passed_on.options.items():
            option = OPTIONS_BY_NAME[name]
            if name in NOT_PASSED_ON or option.env_only or value is None or value is False:
                continue
            if option.secret:
                argv.append(f"{OPTIONS_BY_NAME[option.file].cli}={secret_files[name]}")
            elif option.flag:
                argv.append(option.cli)
            else:
                argv.append(f"{option.cli}={value}")
        if report_dir is not None:
            argv.append(f"--report-dir={report_dir}")
        if planned.as_of is not None:
            argv.append(f"--now={planned.as_of.isoformat()}")
        if self.passed_on.keyword:
            argv.append(f"-k{self.passed_on.keyword}")
        if self.passed_on.pytest_args:
            argv.append(f"--pytest-args={self.passed_on.pytest_args}")
        argv += (["-v"] if self.passed_on.verbose else []) + (["-q"] if self.passed_on.quiet else [])
        return argv

    def secret_pipes(self) -> dict[str, int]:
        """For each secret typed on our command line, the read end of a pipe already holding it (and closed
        for writing), so the child reads it from ``/dev/fd/N``: never on argv, in its environment or on disk."""
        pipes: dict[str, int] = {}
        for name, value in self.passed_on.options.items():
            option = OPTIONS_BY_NAME[name]
            if not option.secret or value is None:
                continue
            payload = (getattr(self.config, name) + "\n").encode("utf-8")
            if len(payload) > SECRET_PIPE_BYTES:
                raise HarnessError(f"{option.cli} is longer than {SECRET_PIPE_BYTES} bytes",
                                   fix=f"give it with {OPTIONS_BY_NAME[option.file].cli} or {option.env}")
            read_end, write_end = os.pipe()
            try:
                os.write(write_end, payload)  # fits the pipe's buffer: never blocks
            finally:
                os.close(write_end)
            pipes[name] = read_end
        return pipes

    @staticmethod
    def child_environment() -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name not in CHILD_ENV_DROPPED}

    def drill(self, planned: Planned) -> tuple[dict[str, Any], bool]:
        """Run one generation's drill to its end; (its index entry, whether we were interrupted meanwhile)."""
        run_id = new_run_id()
        report_dir = self._child_report_dir(planned)
        pipes = self.secret_pipes()
        argv = self.child_argv(planned, run_id, report_dir, {name: f"/dev/fd/{fd}" for name, fd in pipes.items()})
        interrupted = False
        out = sys.stderr.fileno()  # its verdict lines and progress: ours are the one line per generation
        sys.stderr.flush()
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=tuple(pipes.values()),
                                     env=self.child_environment(), start_new_session=True)
        except OSError as exc:  # we could not test it: an ERROR generation, the others still run
            entry = self._entry(planned, run_id, EXIT_HARNESS, None)
            entry["note"] = f"could not start its drill: {exc.strerror or exc}"
            return entry, False
        finally:
            for fd in pipes.values():
                os.close(fd)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (cli turns it into one): the child cleans up, then we stop
            interrupted = True
            code = self._stop(child)
        return self._entry(planned, run_id, code, self._summary_path(report_dir, run_id)), interrupted

    def _stop(self, child: subprocess.Popen) -> int:
        """SIGTERM (the drill cleans up as on Ctrl-C) and wait; a second interrupt kills its process group."""
        self.say(f"interrupted: stopping the drill of this generation (pid {child.pid}), which cleans up")
        try:
            child.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                self.say("interrupted again: killing the drill; the next run sweeps what it left")
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _entry(self, planned: Planned, run_id: str, code: int, summary_path: Path | None) -> dict[str, Any]:
        """The index entry of one drill: its verdict from its exit code, the rest from its summary.json."""
        verdict = CHILD_VERDICTS.get(code, "ERROR")
        entry: dict[str, Any] = {
            "backup": planned.backup.name, "backup_id": planned.backup.backup_id, "taken_at": planned.backup.taken_at,
            "judged_as_of": planned.as_of.isoformat() if planned.as_of is not None else None,
            "run_id": run_id, "exit_code": code, "verdict": verdict, "simulated": False, "failed_checks": None,
            "error_checks": None, "rto_seconds": None, "scope": None, "counts": None, "note": None,
            "report_path": None, "summary_path": None,
        }
        if code < 0:
            entry["note"] = f"the drill was ended by signal {-code}"
        summary, problem = read_summary(summary_path, self.limits)
        if summary is None:
            entry["note"] = entry["note"] or problem
            return entry
        totals = summary.get("totals") if isinstance(summary.get("totals"), Mapping) else {}
        rto = summary.get("rto_seconds")
        archive_info = summary.get("archive") if isinstance(summary.get("archive"), Mapping) else {}
        entry.update(
            simulated=summary.get("simulated") is True,
            failed_checks=_count_of(totals.get("failed")), error_checks=_count_of(totals.get("error")),
            rto_seconds=float(rto) if isinstance(rto, (int, float)) and not isinstance(rto, bool) else None,
            counts=plain_counts(summary.get("counts"), self.limits),
            scope=_scope_words(summary),
            summary_path=summary_path,
            report_path=summary_path.with_name("report.html") if summary_path.with_name("report.html").is_file() else None,
        )
        drilled = archive_info.get("name")
        if isinstance(drilled, str) and drilled != planned.backup.name:  # a newer backup arrived meanwhile
            entry["note"] = f"the folder's newest backup changed while drilling: this drill is of {quote(drilled, 64)}"
        return entry

    # -- the whole command ------------------------------------------------------------------------
    def run(self) -> int:
        planned, selection = plan(self.config, self.limits, self.run_id)
        described = f"{self.config.generations}" + (f" with seed {selection['seed']}" if selection["seed"] is not None else "")
        print(f"generations {described}: {len(planned)} of {selection['found']} backups in {self.config.backups}, "
              "oldest first" + (f" (replay: --generations {self.config.generations} --generations-seed "
                                f"{selection['seed']})" if selection["seed"] is not None else ""), flush=True)
        self.folder = self._claim_index_folder()
        entries: list[dict[str, Any]] = []
        interrupted = False
        try:
            for position, generation in enumerate(planned, start=1):
                self.say(f"generation {position}/{len(planned)}: {generation.backup.name}"
                         + (f" (freshness as of {generation.as_of.isoformat()})" if generation.as_of else ""))
                entry, interrupted = self.drill(generation)
                entries.append(entry)
                print(f"[{position}/{len(planned)}] {generation_line(entry)}", flush=True)
                if interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
        return self._finish(entries, planned[len(entries):], selection, interrupted)

    def _finish(self, entries: list[dict[str, Any]], left: list[Planned], selection: dict[str, Any],
                interrupted: bool) -> int:
        """Write the index (signals held off meanwhile, so it is whole), print the totals, return the code."""
        verdicts = {entry["verdict"] for entry in entries}
        if interrupted:
            code, outcome = EXIT_INTERRUPTED, "interrupted"
        elif "FAILED" in verdicts:
            code, outcome = EXIT_FAILED, "failed"
        elif verdicts - {"PASSED"}:
            code, outcome = EXIT_HARNESS, "error"
        else:
            code, outcome = EXIT_PASSED, "passed"
        assert self.folder is not None
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            index = build_index(run_id=self.run_id, backups=str(self.config.backups), selection=selection,
                                started_at=self.started_at, finished_at=datetime.now(timezone.utc), now=self.now,
                                entries=entries, not_drilled=[p.backup.name for p in left], interrupted=interrupted,
                                exit_code=code, outcome=outcome, index_dir=self.folder.path, limits=self.limits)
            html_path, _ = write_index(index, self.folder.path)
            self._publish(interrupted)
        finally:
            self.folder.release()
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        print(totals_line(index), flush=True)
        print(f"index: {html_path}", flush=True)
        return code

    def _publish(self, interrupted: bool) -> None:
        """In the default layout, a whole run's index becomes reports/generations/latest; old ones go."""
        folder = self.folder
        if folder is None or folder.backup_dir is None:
            return
        try:
            if not interrupted:
                publish_latest(folder.backup_dir, folder.path.name)
            for removed in prune_runs(folder.backup_dir, self.config.keep_runs, protect={folder.path.name}):
                self.say(f"removed an old generations index (--keep-runs {self.config.keep_runs}): {removed}")
        except (OSError, GrimoireDrillError) as error:  # the index is written: say it, do not fail the run
            line = error.line() if isinstance(error, GrimoireDrillError) else str(error)
            print(f"grimoire-drill: could not update {folder.backup_dir}/latest: {line}", file=sys.stderr)


def read_summary(path: Path | None, limits: Limits) -> tuple[dict[str, Any] | None, str | None]:
    """A drill's summary.json as a dict, or (None, why not): missing, over limits.max_summary_bytes, not JSON."""
    if path is None:
        return None, "the drill wrote no summary.json"
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > limits.max_summary_bytes:
                return None, f"summary.json is larger than {limits.name('max_summary_bytes')} bytes: not read"
            data = json.loads(handle.read(limits.max_summary_bytes + 1))
    except FileNotFoundError:
        return None, "the drill wrote no summary.json"
    except (OSError, ValueError) as exc:
        return None, f"summary.json could not be read: {type(exc).__name__}"
    if not isinstance(data, dict):
        return None, "summary.json is not a JSON object"
    return data, None


def generation_line(entry: Mapping[str, Any]) -> str:
    """``backup_…: PASSED SIMULATED — 0 failed checks, RTO 4.2 s — report: …``, one per finished generation."""
    words = entry["verdict"] + (f" {entry['scope']}" if entry.get("scope") else "") + (
        " SIMULATED" if entry.get("simulated") else "")
    parts = [f"{entry['backup']}: {words}"]
    if entry.get("failed_checks") is not None:
        parts.append(f"{entry['failed_checks']} failed checks" + (f", {entry['error_checks']} error"
                                                                   if entry.get("error_checks") else ""))
    if entry.get("rto_seconds") is not None:
        parts.append(f"RTO {entry['rto_seconds']:.1f} s")
    if entry.get("note"):
        parts.append(entry["note"])
    if entry.get("report_path") is not None:
        parts.append(f"report: {entry['report_path']}")
    return " — ".join(parts)


def _scope_words(summary: Mapping[str, Any]) -> str | None:
    """``partial (5 of 46 checks)`` when the drill was narrowed (-k, --pytest-args), else None."""
    scope = scope_of(summary)
    if scope["kind"] == "full":
        return None
    return f"partial ({_count_of(scope.get('ran'))} of {_count_of(scope.get('of'))} checks)"


def _count_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def run_generations(config: DrillConfig, passed_on: PassedOn, printer: Callable[..., None]) -> int:
    """The whole ``--generations`` command, as ``cli`` calls it; the exit code."""
    return GenerationsRun(config, passed_on, printer).run()
