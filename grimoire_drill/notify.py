"""Tell someone when a nightly drill fails: the verdict line and the report's path, through Apprise.

Why Apprise: one URL scheme reaches Slack, Teams, Matrix, email, ntfy and plain webhooks, so
the operator picks the channel with a setting, not with code. Why never fatal: a notification
is news about the verdict, never part of it, so a channel that is down is a warning on the
console and the exit code stays the drill's. The URLs carry tokens: they are never printed;
a warning names only the kind of service (``json``, ``slack``...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from .report.console import verdict_lines
from .report.scope import verdict_label

FAILED_SHOWN = 5  # failed checks listed in the body; the report has the rest


def previous_verdict(records: Iterable[Mapping[str, Any]], run_id: str | None) -> str | None:
    """The verdict of the last run in the history before this one (None: no earlier run)."""
    earlier = [record for record in records if record.get("run_id") != run_id]
    if not earlier:
        return None
    last = earlier[-1]
    return str(last.get("verdict") or str(last.get("outcome", "")).upper())


def should_notify(when: str, summary: Mapping[str, Any], previous: str | None) -> bool:
    """always; failure: any verdict but a full pass; change: the verdict differs from the previous run's."""
    verdict = verdict_label(summary)
    if when == "always":
        return True
    if when == "change":
        return previous != verdict
    return verdict != "PASSED"


def message(summary: Mapping[str, Any], report_dir: Path | None) -> tuple[str, str]:
    """(title, body): the verdict and the backup, then the verdict line, failed checks, the report path."""
    archive = summary.get("archive") or {}
    backup = archive.get("backup_id") or archive.get("name") or "no backup"
    title = f"grimoire-drill {verdict_label(summary)} \u2014 backup {backup}"
    lines = verdict_lines(dict(summary), report_dir)
    failed = [line for line in lines if line.startswith("  ")]
    kept = [line for line in lines if not line.startswith("  ")]
    body = [kept[0], *failed[:FAILED_SHOWN]]
    if len(failed) > FAILED_SHOWN:
        body.append(f"  \u2026 and {len(failed) - FAILED_SHOWN} more in the report")
    body.extend(kept[1:])
    return title, "\n".join(body)


def service_of(url: str) -> str:
    """What a warning may say of a URL: its scheme alone (the rest can hold a token)."""
    scheme = urlsplit(url).scheme
    return scheme if scheme.isalnum() else "unknown"


def send(urls: Iterable[str], title: str, body: str, warn: Callable[[str], None]) -> int:
    """Send to each URL on its own (one dead channel does not silence the others); the number sent.

    Apprise's own log lines (which may quote hosts or paths) are captured, never shown.
    """
    import apprise  # late: only a run that notifies pays for loading Apprise's plugins

    sent = 0
    urls = list(urls)
    for index, url in enumerate(urls, start=1):
        which = f"notification {index} of {len(urls)} ({service_of(url)})"
        with apprise.LogCapture(level=apprise.logging.ERROR):  # keep its log off the console
            channel = apprise.Apprise()
            if not channel.add(url):
                warn(f"{which}: not an Apprise URL this version understands; check --notify")
                continue
            try:
                delivered = channel.notify(body=body, title=title)
            except Exception as error:  # a plugin's bug must not end the drill either
                warn(f"{which}: could not be sent ({type(error).__name__})")
                continue
        if delivered:
            sent += 1
        else:
            warn(f"{which}: could not be sent (the service refused it or did not answer)")
    return sent


def notify_run(urls: Iterable[str] | None, when: str, summary: Mapping[str, Any], report_dir: Path | None,
               history: Iterable[Mapping[str, Any]], warn: Callable[[str], None]) -> int:
    """Notify per ``when`` (always|failure|change); never raises for a channel that fails."""
    urls = list(urls or ())
    if not urls or not should_notify(when, summary, previous_verdict(history, summary.get("run_id"))):
        return 0
    title, body = message(summary, report_dir)
    return send(urls, title, body, warn)
