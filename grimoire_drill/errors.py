"""Two kinds of trouble, because they mean different things to the person paged.

``DrillFailure``: the backup is bad (exit 1). ``HarnessError``: we could not test it (exit 2).
Both carry one line saying what, where, and what to do.
"""

from __future__ import annotations


class GrimoireDrillError(Exception):
    """Base: a one-line message naming the thing concerned and the fix."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.what = " | ".join(part.strip() for part in message.strip().splitlines() if part.strip())
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " — ".join(parts)


class DrillFailure(GrimoireDrillError):
    """The backup failed the drill: missing, unreadable, corrupt, stale, incomplete."""

    exit_code = 1


class HarnessError(GrimoireDrillError):
    """The harness could not do its job: bad usage, an engine would not start, the disk is full."""

    exit_code = 2
