"""Which nights of a backup series have a backup, from the backups' names alone.

Why names: a folder of archives is what ``backup-production.sh`` leaves, one ``backup_YYYYMMDD_HHMMSS``
a night, pruned with ``find -mtime +RETENTION_DAYS -delete``. A night with no archive is a night
nobody could restore, and an archive past the retention says the pruning stopped. Copies reset
mtimes, so the names are the only clock; the older archives are never opened.

The rule (pure, so the ``--generations`` index can reuse it):

* A backup belongs to the calendar date of its id (``YYYYMMDD``, the host's local ``date``, naive:
  no time zone, no DST). A backup at 00:30 belongs to its own date, not to the evening before:
  the nightly job may slip past midnight, and it is still that date's backup.
* The window is the ``retention_days`` dates ending at the newest backup's date. Every date of the
  window from its first date (or, for a new installation, from the oldest backup) to the newest
  must have a backup; two backups on one date are fine.
* A new installation: no backup older than the window and the oldest is younger than the window.
  That is reported ("3 nights of 7 so far"), not failed.
* ``find -mtime +N`` deletes an archive only once it is more than N whole days old, so the date
  just before the window (newest − N) is normally still there: expected, not late. Backups dated
  earlier than that should have been pruned (a warning, not a failure).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

ID_FORMAT = "%Y%m%d_%H%M%S"


def night_of(backup_id: str) -> date:
    """The calendar date a backup belongs to: the date part of its id (ValueError if not an id)."""
    return datetime.strptime(backup_id, ID_FORMAT).date()


@dataclass(frozen=True)
class Nights:
    """The judgement of one series. ``missing`` fails; ``too_old`` warns; ``new_installation`` reports."""

    newest: str                    # the newest backup id
    retention_days: int
    window_start: date             # first date of the window (newest's date − retention_days + 1)
    window_end: date               # the newest backup's date
    present: tuple[date, ...]      # dates of the window with at least one backup, oldest first
    missing: tuple[date, ...]      # dates that should have a backup and have none, oldest first
    too_old: tuple[str, ...]       # ids dated before newest − retention_days, oldest first
    grace: tuple[str, ...]         # ids on the date just before the window (kept by find -mtime)

    @property
    def new_installation(self) -> bool:
        """No backup before the window and the oldest one inside it is younger than the window."""
        return not self.too_old and not self.grace and bool(self.present) and self.present[0] > self.window_start


def judge_nights(backup_ids: Iterable[str], retention_days: int) -> Nights:
    """Missing dates and too-old ids of a series of backup ids (any order, duplicates allowed).

    Raises ValueError when there is no id, an id is not ``YYYYMMDD_HHMMSS`` or ``retention_days`` < 1.
    """
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, not {retention_days}")
    ids = sorted(set(backup_ids))
    if not ids:
        raise ValueError("no backup ids to judge")
    newest = ids[-1]
    window_end = night_of(newest)
    window_start = window_end - timedelta(days=retention_days - 1)
    grace_date = window_start - timedelta(days=1)
    by_date = [(night_of(backup_id), backup_id) for backup_id in ids]
    present = sorted({night for night, _ in by_date if night >= window_start})
    too_old = tuple(backup_id for night, backup_id in by_date if night < grace_date)
    grace = tuple(backup_id for night, backup_id in by_date if night == grace_date)
    first_required = window_start if (too_old or grace) else present[0]
    have = set(present)
    missing = tuple(first_required + timedelta(days=offset)
                    for offset in range((window_end - first_required).days + 1)
                    if first_required + timedelta(days=offset) not in have)
    return Nights(newest=newest, retention_days=retention_days, window_start=window_start, window_end=window_end,
                  present=tuple(present), missing=missing, too_old=too_old, grace=grace)
