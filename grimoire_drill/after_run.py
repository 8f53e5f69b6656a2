"""What follows a sealed run: ``latest`` and pruning, the CI step summary, notifications.

Why apart from the plugin: none of these may change the verdict. Each takes the finished
summary as a plain value and says what went wrong as one line (a warning), so a full disk, a
CI page that cannot be written or a chat service that is down never costs the drill its result.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import GrimoireDrillError


def warn(line: str) -> None:
    print(f"grimoire-drill: WARNING: {line}", file=sys.stderr)


def publish_run(folder, summary: dict[str, Any], *, interrupted: bool, keep_runs: int,
                say: Callable[[str], None]) -> None:
    """A sealed full run becomes ``latest``; older run folders beyond --keep-runs go."""
    from .report.run_dirs import prune_runs, publish_latest
    from .report.scope import is_whole_drill_verdict

    if folder is None or folder.backup_dir is None:
        return
    try:
        if not interrupted and is_whole_drill_verdict(summary):
            publish_latest(folder.backup_dir, folder.path.name)
        for removed in prune_runs(folder.backup_dir, keep_runs, protect={folder.path.name}):
            say(f"removed an old run folder (--keep-runs {keep_runs}): {removed}")
    except (OSError, GrimoireDrillError) as error:  # the run's own outputs are sealed: say it, do not fail it
        line = error.line() if isinstance(error, GrimoireDrillError) else str(error)
        print(f"grimoire-drill: could not update {folder.backup_dir}/latest: {line}", file=sys.stderr)


def write_step_summary(summary: dict[str, Any], report_dir: Path | None) -> None:
    """On GitHub Actions ($GITHUB_STEP_SUMMARY): the verdict, failed checks and RTO on the job's page."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    from .report.ci_summary import step_summary

    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(step_summary(summary, report_dir))
    except OSError as error:  # a CI page is a courtesy: the verdict and its files stand
        warn(f"could not append to $GITHUB_STEP_SUMMARY: {error.strerror or error}")


def send_notifications(config, summary: dict[str, Any], report_dir: Path | None, history_path: Path) -> None:
    """--notify: the verdict to each URL once the outputs are sealed; a failed send is only a warning."""
    if not config.notify:
        return
    from .notify import notify_run
    from .report.history import read_history

    try:
        history = read_history(history_path, limit=2)
    except GrimoireDrillError:
        history = []  # an unreadable history: no previous verdict, so "change" notifies
    notify_run(config.notify, config.notify_on, summary, report_dir, history, warn=warn)
