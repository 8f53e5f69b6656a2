"""One run-wide timeout: past ``--timeout`` (or ``limits.run_timeout_s``) the run ends with exit 2 naming
the phase that was running, leaves no process and no temp dir, and still writes every output."""

from __future__ import annotations

import json
import re
import signal
import threading
from importlib import resources
from pathlib import Path

import pytest

from grimoire_drill.config import build_config
from grimoire_drill.deadline import RunDeadline, RunTimedOut
from grimoire_drill.engines.local_postgres import find_bindir
from grimoire_drill.errors import HarnessError

from engine_traces import RUN_ID, leftovers

LOCAL = ("--mongo-engine", "simulated", "--postgres-engine", "local")
BIG = 30  # test_cleanup.BIG: engine start and restore take seconds, well past a one-second deadline
TIMED_OUT = re.compile(r"the drill timed out after (?P<seconds>[0-9.]+) s during (?P<phase>.+?) — "
                       r"fix: raise --timeout or limits\.run_timeout_s")
PHASES = {"setup", "locate", "archive", "start (mongodb)", "start (postgresql)", "restore_mongodb",
          "restore_postgresql", "checks"}


# -- the deadline itself ----------------------------------------------------------------------------

def test_the_deadline_interrupts_the_main_thread_naming_the_phase():
    previous = signal.getsignal(signal.SIGALRM)
    deadline = RunDeadline(0.05, lambda: "restore_postgresql")
    assert deadline.arm()
    try:
        with pytest.raises(RunTimedOut) as caught:
            threading.Event().wait(600)  # an uninterruptible-looking wait, as the drill's main thread does
    finally:
        deadline.disarm()
    assert str(caught.value) == deadline.message
    assert TIMED_OUT.fullmatch(deadline.message).group("phase") == "restore_postgresql"
    assert isinstance(caught.value, KeyboardInterrupt)  # it takes Ctrl-C's way out, with its cleanup
    assert signal.getsignal(signal.SIGALRM) == previous


def test_a_disarmed_deadline_never_fires_and_restores_the_handler():
    previous = signal.getsignal(signal.SIGALRM)
    deadline = RunDeadline(3600, lambda: "checks")
    assert deadline.arm()
    assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    deadline.disarm()
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == previous and deadline.message is None


def test_a_deadline_armed_when_its_time_is_already_up_raises_at_once():
    previous = signal.getsignal(signal.SIGALRM)
    deadline = RunDeadline(1, lambda: "setup")
    with pytest.raises(RunTimedOut, match="timed out after 1 s during setup"):
        deadline.arm(elapsed=1.5)
    assert signal.getsignal(signal.SIGALRM) == previous and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_deadline_outside_the_main_thread_is_not_armed():
    results = []
    worker = threading.Thread(target=lambda: results.append(RunDeadline(0.01, lambda: "x").arm()))
    worker.start()
    worker.join()
    assert results == [False]


@pytest.mark.parametrize("value", ["0", "-5", "abc", "inf", "nan"])
def test_timeout_must_be_a_positive_number_of_seconds(value):
    with pytest.raises(HarnessError, match="--timeout: invalid value"):
        build_config(lambda option: option.parse(value) if option.name == "timeout" else None, environ={})
    with pytest.raises(HarnessError, match="GRIMOIRE_DRILL_TIMEOUT: invalid value"):
        build_config(lambda option: None, environ={"GRIMOIRE_DRILL_TIMEOUT": value})


def test_timeout_comes_from_the_flag_or_the_environment_and_defaults_to_the_limit():
    assert build_config(lambda option: option.parse("90") if option.name == "timeout" else None,
                        environ={}).timeout == 90.0
    assert build_config(lambda option: None, environ={"GRIMOIRE_DRILL_TIMEOUT": "2.5"}).timeout == 2.5
    assert build_config(lambda option: None, environ={}).timeout is None  # limits.run_timeout_s applies


# -- the real CLI -----------------------------------------------------------------------------------

def _expectations_with_run_timeout(tmp_path: Path, seconds: int) -> Path:
    text = resources.files("grimoire_drill.drills").joinpath("expectations.toml").read_text()
    text, changed = re.subn(r"(?m)^run_timeout_s = \S+", f"run_timeout_s = {seconds}", text)
    assert changed == 1
    path = tmp_path / "expectations.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")
@pytest.mark.parametrize("how", ["flag", "limit"])
def test_a_run_past_its_timeout_exits_2_naming_the_phase_and_leaves_nothing(sample_factory, run_cli, tmp_path, how):
    temp, report = tmp_path / "temp", tmp_path / "report"
    temp.mkdir()
    limit = ["--timeout", "1"] if how == "flag" else ["--expectations", _expectations_with_run_timeout(tmp_path, 1)]
    result = run_cli("run", *LOCAL, sample_factory(scale=BIG), *limit, "--temp-dir", temp, "--report-dir", report)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    said = TIMED_OUT.search(result.stdout)
    assert said is not None, result.output
    assert said["seconds"] == "1" and set(said["phase"].split(", ")) <= PHASES, said[0]
    run_id = RUN_ID.search(result.stderr).group(1)
    assert leftovers(run_id) == []
    assert list(temp.iterdir()) == [], "the run's temp dir under --temp-dir is gone"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["outcome"] == "error" and summary["error"] == said[0]
    assert {"report.html", "junit.xml", "drill.prom"} <= {path.name for path in report.iterdir()}
    marked = ',simulated="true"' if summary["simulated"] else ""  # once MongoDB's simulated engine was chosen
    assert f'grimoire_drill_outcome{{outcome="error"{marked}}} 1.0' in (report / "drill.prom").read_text()
    assert summary["scope"]["kind"] == "partial"  # a run cut short never reads as the whole drill
