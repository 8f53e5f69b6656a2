"""--notify: a real Apprise json:// notification to a real HTTP receiver on loopback.

The receiver records what was POSTed; the drills are real runs of the CLI on generated
samples. A channel that fails (500, nobody listening) must be a WARNING and nothing more.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grimoire_drill.notify import message, notify_run, previous_verdict, should_notify
from grimoire_drill.report.example import example_summary

TOKEN = "s3cr3t-t0ken-in-the-url"


class Receiver:
    """An HTTP server thread on 127.0.0.1 that answers ``status`` and keeps every POST body."""

    def __init__(self, status: int = 200):
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_port}/hook/{TOKEN}"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when we return: nobody listens there


def _failed_summary() -> dict:
    summary = example_summary()
    summary["outcome"] = "failed"
    summary["checks"][0].update(status="failed", message="no backup_*.tar.gz in /backups")
    summary["totals"] = {"passed": len(summary["checks"]) - 1, "failed": 1, "skipped": 0, "error": 0}
    return summary


def test_when_to_notify():
    passed, failed = example_summary(), _failed_summary()
    assert not should_notify("failure", passed, None)
    assert should_notify("failure", failed, "FAILED")
    assert should_notify("always", passed, "PASSED")
    assert should_notify("change", passed, None)          # no earlier run: the first verdict is news
    assert not should_notify("change", passed, "PASSED")
    assert should_notify("change", passed, "FAILED")      # back to green is news too
    history = [{"run_id": "a", "verdict": "FAILED"}, {"run_id": "b", "verdict": "PASSED"}]
    assert previous_verdict(history, "b") == "FAILED"     # our own line is not the previous run
    assert previous_verdict(history, "c") == "PASSED"


def test_body_has_the_verdict_the_failed_check_and_the_report(tmp_path):
    summary = _failed_summary()
    with Receiver() as receiver:
        sent = notify_run([receiver.url], "failure", summary, tmp_path, [], warn=pytest.fail)
    assert sent == 1
    (body,) = receiver.bodies
    assert "FAILED" in body["title"] and "20261124_020000" in body["title"]
    assert body["message"].startswith("FAILED: backup_20261124_020000")
    assert "archive.found: no backup_*.tar.gz in /backups" in body["message"]
    assert str(tmp_path / "report.html") in body["message"]
    assert message(summary, tmp_path)[1] == body["message"]


@pytest.mark.parametrize("down", ["500", "nobody listening"])
def test_a_channel_that_fails_is_a_warning_that_names_no_url(tmp_path, down, capfd):
    warnings: list[str] = []
    with Receiver(status=500) as broken, Receiver() as working:
        url = broken.url if down == "500" else f"json://127.0.0.1:{_closed_port()}/hook/{TOKEN}"
        sent = notify_run([url, working.url], "always", _failed_summary(), tmp_path, [], warn=warnings.append)
    assert sent == 1 and len(working.bodies) == 1         # one dead channel does not silence the others
    assert len(warnings) == 1 and "notification 1 of 2 (json)" in warnings[0]
    out, err = capfd.readouterr()
    for text in (*warnings, out, err):
        assert TOKEN not in text and "127.0.0.1" not in text


@pytest.mark.slow
def test_cli_notifies_on_failure_and_a_failed_send_never_changes_the_exit_code(run_cli, sample_factory, tmp_path):
    archive = sample_factory("missing-upload")
    with Receiver() as receiver:
        done = run_cli("run", archive, "--mongo-engine", "simulated", "--postgres-engine", "local",
                       "--report-dir", tmp_path / "r1", "--notify", receiver.url,
                       env={"GITHUB_STEP_SUMMARY": str(tmp_path / "step.md")})
    assert done.returncode == 1, done.output
    (body,) = receiver.bodies
    assert "FAILED" in body["message"] and "consistency.uploads" in body["message"]
    assert str(tmp_path / "r1" / "report.html") in body["message"]
    step = (tmp_path / "step.md").read_text()  # the CI page: verdict, the failed check, RTO
    assert "FAILED" in step.splitlines()[0] and "consistency\\.uploads" in step and "RTO " in step
    with Receiver(status=500) as broken:
        failed = run_cli("run", archive, "--mongo-engine", "simulated", "--postgres-engine", "local",
                         "--report-dir", tmp_path / "r2", env={"GRIMOIRE_DRILL_NOTIFY": broken.url})
    assert failed.returncode == 1, failed.output
    assert len(broken.bodies) == 1
    assert "WARNING: notification 1 of 1 (json): could not be sent" in failed.stderr
    for done_run, folder in ((done, "r1"), (failed, "r2")):
        assert TOKEN not in done_run.output
        for output in (tmp_path / folder).iterdir():
            assert TOKEN not in output.read_text(errors="replace"), output
