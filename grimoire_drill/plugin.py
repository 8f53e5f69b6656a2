"""The pytest plugin: options, the drill's session fixtures, check results, and the outputs.

Loaded by every pytest through the ``pytest11`` entry point, it stays inert unless a drill is
asked for (``--drill-backups`` or the ``grimoire-drill`` CLI), so the project's own tests and
other projects are not affected. Extras reach pytest-html through its hooks.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from . import archive
from .after_run import publish_run, send_notifications, write_step_summary
from .attribution import collect as collect_attribution
from .attribution import with_servers
from .check_outcome import attach_html, failure_message, shown_message, skip_status
from .check_selection import IgnoreRule, NodeSelector, needs_engines, selection_text, split_narrowing_args
from .check_selection import take_ignore_options
from .child_env import settle_platform_probe
from .config import OPTIONS, DrillConfig, Option, argv_secret_warnings, build_config, given_value
from .engines.base import new_run_id
from .errors import GrimoireDrillError, HarnessError
from .evidence import plain_mapping
from .exit_codes import EXIT_HARNESS, EXIT_INTERRUPTED, exit_code
from .expectations import Expectations, load_expectations
from .html_hooks import PYTEST_ENVIRONMENT, HtmlReportHooks, label_junit
from .pipeline.check_view import CheckView
from .pipeline.session import DrillSession
from .report.run_dirs import RunFolder, claim_explicit_folder, claim_run_folder, discard_unused
from .report.scope import build_scope
from .report.summary import CheckResult, build_summary
from .run_facts import Phase, RunFacts
from .thresholds import Thresholds, resolve_thresholds

if TYPE_CHECKING:
    from .preflight import Preflight

PLUGIN_NAME = "grimoire_drill_run"
DEFAULT_REPORTS = Path("reports")


def drill_flag(option: Option) -> str:
    """``--drill-<name>``: the pytest spelling of an option."""
    return "--drill-" + option.name.replace("_", "-")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grimoire-drill", "restore drill of Le Grimoire backups")
    for option in OPTIONS:
        if option.env_only:
            continue  # a passphrase never travels on a command line
        flag = drill_flag(option)
        if option.flag:
            group.addoption(flag, action="store_true", default=None, dest=f"drill_{option.name}", help=option.help)
        else:
            group.addoption(flag, default=None, dest=f"drill_{option.name}", help=option.help,
                            choices=option.choices, metavar=option.name.upper(),
                            action="append" if option.repeatable else "store")
        parser.addini(f"grimoire_drill_{option.name}", option.help, default=None)


def config_from_pytest(pyconfig: pytest.Config) -> DrillConfig:
    def lookup(option: Option) -> Any:
        value = given_value(option, pyconfig.getoption(f"drill_{option.name}"))
        if value is None:
            value = pyconfig.getini(f"grimoire_drill_{option.name}")
            value = value if value not in ("", None, []) else None
        if value is None or option.flag:
            return value
        return option.parse(value) if isinstance(value, str) else value
    for warning in argv_secret_warnings(lambda option: pyconfig.getoption(f"drill_{option.name}") is not None,
                                        drill_flag):
        print(f"grimoire-drill: warning: {warning}", file=sys.stderr)
    return build_config(lookup)


class Evidence:
    """What a check hands to the report: a one-line message for a pass, and data to show."""

    def __init__(self) -> None:
        self.message = ""
        self.data: dict[str, Any] = {}


def check_id(item: pytest.Item) -> str:
    """The stable id of a check: its ``check`` marker, and its parameter's id when it has one."""
    marker = item.get_closest_marker("check")
    base = marker.args[0] if marker else item.name
    callspec = getattr(item, "callspec", None)
    return f"{base}.{callspec.id}" if callspec else base


class DrillRun(HtmlReportHooks):
    """One drill inside one pytest session: owns the pipeline, gathers results, writes outputs."""

    collect_only = False  # a SelectionProbe (selection_probe.py) only collects: no report folder, no outputs

    def __init__(self, config: DrillConfig, *, run_id: str | None = None, progress: Callable[[str], None] | None = None,
                 session: DrillSession | None = None, round_label: str | None = None,
                 extra_checks: list[CheckResult] | None = None, extra_summary: dict[str, Any] | None = None,
                 record_history: bool = True, report_dir: Path | None = None, folder: RunFolder | None = None,
                 finish_summary: Callable[[dict[str, Any]], None] | None = None,
                 preflight: Preflight | None = None):
        """``session`` given: the caller owns it (pre-migration rounds share one restore) and closes it.

        ``report_dir`` (and the claimed ``folder`` it is in) given: the caller chose where this
        round writes; ``finish_summary`` has the last word on the summary before it is written.
        ``preflight`` given: what it decided (expectations, engine choices) is used, not decided again.
        """
        if config.generations is not None:
            raise HarnessError("--generations drills several backups, each in a drill of its own",
                               fix="run them with grimoire-drill run BACKUPS --generations (pytest runs one drill)")
        self.config = config
        if session is None:
            chosen = run_id if run_id is not None else config.run_id
            self.run_id = new_run_id() if chosen is None else chosen
            self.expectations: Expectations = (preflight.expectations if preflight is not None
                                               else load_expectations(config.expectations))
            self.session = DrillSession(config, self.expectations, self.run_id, progress,
                                        engines=preflight.engines if preflight is not None else None)
        else:
            self.run_id, self.expectations, self.session = session.run_id, session.expectations, session
        self.owns_session = session is None
        self.thresholds: Thresholds = resolve_thresholds(config, self.expectations)  # what every check judges against
        self.round_label = round_label
        self.extra_summary = dict(extra_summary or {})
        self.record_history = record_history
        self.finish_summary = finish_summary  # last word before outputs are written
        self.checks: list[CheckResult] = list(extra_checks or [])
        self._extra_count = len(self.checks)  # checks run by the caller, outside pytest (--then's command)
        self.summary: dict[str, Any] | None = None
        self.facts: RunFacts | None = None    # the pipeline's facts, taken when the last check ran
        self.report_dir: Path | None = report_dir
        self.folder: RunFolder | None = folder  # the claimed folder (shared by pre-migration rounds)
        self.interrupted = False
        self.selectors: list[NodeSelector] = []  # files and node ids given as arguments, as a selection
        self.ignored: list[IgnoreRule] = []      # --ignore/--ignore-glob, applied as a deselection
        self._collected = 0     # checks the full drill has: collected, before any deselection
        self._deselected = 0
        self._selection = ""
        self._checks_started: float | None = None
        self._checked_at: datetime | None = None
        self._checks_done: float | None = None
        self.seal_error: HarnessError | None = None  # sealing or signing the outputs failed (exit 2)
        self._html_report: Any = None  # pytest-html's report data, whose title becomes the verdict at the end

    # -- where outputs go --------------------------------------------------------------------
    def decide_report_dir(self) -> Path:
        """This run's own folder: reports/<backup id>/<run id>/, or --report-dir once no other drill writes there."""
        self._check_prom_file()
        if self.report_dir is not None:  # chosen by the caller (pre-migration rounds)
            self.report_dir.mkdir(parents=True, exist_ok=True)
            self.session.use_history(self.history_path)
            return self.report_dir
        if self.config.report_dir is not None:
            limits = self.expectations.limits
            self.folder = claim_explicit_folder(self.config.report_dir.resolve(), self.run_id,
                                                wait_s=limits.report_dir_wait_s,
                                                wait_limit=limits.name("report_dir_wait_s") + " s",
                                                say=self.session.say)
        else:
            try:
                backup_id = (archive.locate(self.config.backups, self.config.backup_timezone,
                                            self.expectations.limits).backup_id
                             if self.config.backups else "no-backup")
            except GrimoireDrillError:
                backup_id = "no-backup"
            self.folder = claim_run_folder(DEFAULT_REPORTS.resolve(), backup_id, self.run_id)
        self.report_dir = self.folder.path
        self.session.use_history(self.history_path)  # the previous generation is read from it
        return self.report_dir

    def _check_prom_file(self) -> None:
        """--prom-file's folder must exist before the drill runs, not be found missing after it."""
        target = self.config.prom_file
        if target is not None and not target.parent.is_dir():
            raise HarnessError("--prom-file: its folder does not exist", where=str(target),
                               fix="create the textfile collector's folder or fix the path")

    @property
    def history_path(self) -> Path:
        assert self.report_dir is not None
        if self.config.history is not None:
            return self.config.history
        if self.folder is not None and self.folder.backup_dir is not None:  # reports/<backup id>/<run id>/
            return self.folder.backup_dir.parent / "history.jsonl"
        return self.report_dir.parent / "history.jsonl"

    def narrow(self, config: pytest.Config) -> None:
        """Take the node ids and --ignore options of this pytest run as a selection over the whole drill."""
        collect, self.selectors = split_narrowing_args(config.args, config.invocation_params.dir)
        config.args[:] = collect  # the whole drill is collected, so "12 of 46 checks" has its 46
        self.ignored = take_ignore_options(config)

    # -- how the run ends ------------------------------------------------------------------------
    def abandon(self) -> None:
        """The run ended before a summary (interrupted while pytest started): stop what it started, drop its empty folder."""
        if self.owns_session:
            self.session.close()
        if self.folder is not None:
            discard_unused(self.folder)

    def verdict_code(self) -> int:
        """The exit code of this run's outcome (exit_codes.exit_code), before sealing is considered."""
        outcome = self.summary["outcome"] if self.summary is not None else None
        return exit_code(outcome, interrupted=self.interrupted, timed_out=self.session.timed_out)

    def sealed(self, code: int) -> int:
        """``code``, unless the outputs could not be sealed or signed (exit 2, said on stderr: the evidence is incomplete)."""
        if self.seal_error is None:
            return code
        print(f"grimoire-drill: {self.seal_error.line()}", file=sys.stderr)
        return EXIT_HARNESS if code != EXIT_INTERRUPTED else code

    def print_verdict(self) -> None:
        """The verdict with its scope (PARTIAL PASS (12 of 46 checks)) and SIMULATED, on stdout."""
        from .report.console import verdict_lines

        for line in verdict_lines(self.summary, self.report_dir) if self.summary is not None else ():
            print(line, file=sys.stdout)

    # -- what the drill's fixtures (drills/conftest.py) hand out --------------------------------
    def check_view(self) -> CheckView:
        """What checks may read of the pipeline (the ``drill`` fixture)."""
        return CheckView(self.session)

    def checks_done(self) -> None:
        """The last check ran: count while the engines still run, stop them (unless the caller owns
        them), and take the run's facts for the report."""
        self._checked_at = datetime.now(timezone.utc)
        self._checks_done = time.perf_counter()
        self.session.settle_counts()
        if self.owns_session:
            self.session.close()
        self.facts = self.session.facts(self._checked_at)

    # -- hooks -----------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if report.when == "setup" and self._checks_started is None:
            self._checks_started = time.perf_counter()
        result = None
        if report.when == "call":
            evidence: Evidence | None = item.funcargs.get("evidence")
            if report.passed:
                result = CheckResult(check_id(item), "passed", evidence.message if evidence else "ok",
                                     dict(evidence.data) if evidence else {}, report.duration)
            elif report.skipped:
                result = CheckResult(check_id(item), *skip_status(_skip_reason(report)), {}, report.duration)
            else:
                status, message = failure_message(call.excinfo, self.expectations.limits)
                result = CheckResult(check_id(item), status, message, dict(evidence.data) if evidence else {},
                                     report.duration)
        elif report.when == "setup" and not report.passed:
            if report.skipped:
                result = CheckResult(check_id(item), *skip_status(_skip_reason(report)))
            else:
                status, message = failure_message(call.excinfo, self.expectations.limits)
                result = CheckResult(check_id(item), status, "not checked: " + message)
        if result is not None:
            limits = self.expectations.limits
            result.message = shown_message(self.session.display(result.message), limits)
            result.evidence = plain_mapping(result.evidence, limits)
            self.checks.append(result)
            report.user_properties.append(("check_id", result.id))
            report.user_properties.append(("message", result.message))
            attach_html(report, result)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """Count the full drill before -k/-m/--deselect narrow it; apply node ids given as arguments."""
        self._collected = len(items)
        self._selection = selection_text(config, [*self.selectors, *self.ignored])
        if self.ignored:
            dropped = [item for item in items if any(rule.matches(item) for rule in self.ignored)]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = [item for item in items if item not in dropped]
        if self.selectors:
            unmatched = [s.text for s in self.selectors if not any(s.matches(item) for item in items)]
            if unmatched:
                raise pytest.UsageError(f"{', '.join(unmatched)}: no check of the drill has this node id "
                                        "(see them with --pytest-args --collect-only)")
            chosen = [any(s.matches(item) for s in self.selectors) for item in items]
            kept = [item for item, keep in zip(items, chosen) if keep]
            dropped = [item for item, keep in zip(items, chosen) if not keep]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = kept

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self._deselected += len(items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """Start the engines before collecting when nothing can narrow the run (no -k, -m, node ids...).

        Why: the PostgreSQL start (initdb, about a second) is the drill's critical path, and every
        check of the whole drill but the archive's needs it; begun here, it overlaps the collection
        instead of following it. Inside the session already (pytest's interrupt path writes every
        output), unlike anything earlier. A narrowed run waits for ``pytest_collection_finish``.
        """
        config = session.config
        if not selection_text(config, [*self.selectors, *self.ignored]) and not config.option.collectonly:
            self.session.start_engines()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Start the engines now when a selected check needs a restore: they come up while the archive is read.

        The run-wide timeout starts here (counted from the run's start): from now on a timeout
        ends in pytest's own interrupt path, which still writes every output.
        """
        self.session.arm_deadline()
        if needs_engines(check_id(item) for item in session.items):
            self.session.start_engines()

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .report.outputs import write_run_outputs  # late import: report writers are not needed to collect

        if self.owns_session:
            self.session.close()
        started = time.perf_counter()
        checks_end = self._checks_done if self._checks_done is not None else started
        checks_begin = self._checks_started if self._checks_started is not None else checks_end
        if self.session.prepared_at is not None:  # restores ran inside the first check that needed them
            checks_begin = max(checks_begin, self.session.prepared_at)
        finished = datetime.now(timezone.utc)
        facts = self.facts if self.facts is not None else self.session.facts(finished)  # no check ran to the end
        check_phase = Phase.timed("checks", began=checks_begin, ended=checks_end, clock_start=self.session.clock_start,
                                  status="ok" if self.checks else "skipped")
        facts = replace(facts, phases=(*facts.phases, check_phase), timed_out=self.session.timed_out)
        self.summary = build_summary(facts, self.checks, finished_at=finished,
                                     interrupted=self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED)
        self.summary["scope"] = build_scope([c.status for c in self.checks],
                                            full_count=self._collected + self._extra_count,
                                            deselected=self._deselected, selection=self._selection)
        self.summary["thresholds"] = self.thresholds.as_summary()
        self.summary.update(self.extra_summary)
        if "attribution" in self.summary:
            self.summary["attribution"] = with_servers(self.summary["attribution"], self.summary["engines"])
        if self.round_label is not None:
            self.summary["round"] = self.round_label
        if self.finish_summary is not None:
            self.finish_summary(self.summary)
        label_junit(session.config, self.summary)
        write_run_outputs(self.summary, self.report_dir,
                                         self.history_path if self.record_history else None,
                                         report_seconds_from=started, clock_start=self.session.clock_start,
                                         prom_file=self.config.prom_file if self.record_history else None)
        session.exitstatus = exit_code(self.summary["outcome"], interrupted=self.interrupted,
                                       timed_out=self.session.timed_out)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        from .report.outputs import seal_outputs

        if self.summary is not None and self.report_dir is not None:
            try:
                seal_outputs(self.summary, self.report_dir, sign_key=self.config.sign_key)
            except HarnessError as error:  # e.g. gpg could not sign: the outputs stand, the caller says why
                self.seal_error = error
                if config.pluginmanager.get_plugin(PLUGIN_NAME) is self:  # plain pytest: no CLI to say it
                    print(f"grimoire-drill: {error.line()}", file=sys.stderr)
            if self.record_history:
                publish_run(self.folder, self.summary, interrupted=self.interrupted, keep_runs=self.config.keep_runs,
                            say=self.session.say)
        if self.summary is not None and self.record_history:
            write_step_summary(self.summary, self.report_dir)
            send_notifications(self.config, self.summary, self.report_dir, self.history_path)
        if self.folder is not None:
            self.folder.release()

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        """``pytest drills/ --drill-backups X`` ends with the verdict, its scope and SIMULATED, like the CLI."""
        from .report.console import verdict_lines

        if self.summary is None:
            return
        terminalreporter.write_sep("=", "grimoire-drill verdict")
        for line in verdict_lines(self.summary, self.report_dir):
            terminalreporter.write_line(line)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return "skipped"


# -- entry-point hooks: activate a DrillRun when asked for ------------------------------------
def find_run(config: pytest.Config) -> DrillRun | None:
    """The DrillRun of this session: registered by the CLI, or by us from --drill-* options."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, DrillRun):
            return plugin
    return None


def _drill_requested(config: pytest.Config) -> bool:
    """A drill runs in this session: the CLI registered one, or --drill-backups / the ini asks for one."""
    return (find_run(config) is not None or config.getoption("drill_backups") is not None
            or bool(config.getini("grimoire_drill_backups")))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Before any plugin configures: settle what pytest-metadata would spawn ``uname`` for."""
    if _drill_requested(config):
        settle_platform_probe()


@pytest.hookimpl(optionalhook=True)
def pytest_metadata(metadata: dict, config: pytest.Config) -> None:
    """pytest-metadata copies CI variables (GIT_URL, JENKINS_URL, ...) into report.html, and such
    URLs can carry credentials: no value of our environment goes into a drill's report.

    What is left (Python, platform, packages, plugins) moves out of pytest-html's Environment box,
    which would stand above the verdict, into the report's technical details at the end.
    """
    if _drill_requested(config):
        for key in [key for key in metadata if key in os.environ]:
            del metadata[key]
        config.stash[PYTEST_ENVIRONMENT] = dict(metadata)
        metadata.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(id): the stable id of a drill check in reports")
    run = find_run(config)
    if run is None:
        if config.getoption("drill_backups") is None and not config.getini("grimoire_drill_backups"):
            return  # not a drill: stay out of the way
        try:
            run = DrillRun(config_from_pytest(config), progress=lambda line, transient=False: print(line, file=sys.stderr),
                           extra_summary={"attribution": collect_attribution(sys.argv[1:], program="pytest")})
        except GrimoireDrillError as error:
            raise pytest.UsageError(error.line()) from None
        config.pluginmanager.register(run, PLUGIN_NAME)
    run.narrow(config)
    if run.collect_only:
        return
    try:
        report_dir = run.decide_report_dir()
    except GrimoireDrillError as error:
        raise pytest.UsageError(error.line()) from None
    if config.option.htmlpath is None:
        config.option.htmlpath = str(report_dir / "report.html")
        config.option.self_contained_html = True
    if getattr(config.option, "xmlpath", None) is None:
        config.option.xmlpath = str(report_dir / "junit.xml")
