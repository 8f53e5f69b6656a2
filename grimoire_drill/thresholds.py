"""Every value a check compares against, resolved once (flag > environment > expectations.toml > default).

Why: a check that resolved its own limit ("the flag if given, else expectations") repeated the
precedence in every check, and a report could not say what the backup was judged against.
``resolve_thresholds`` decides each value before the checks run; the checks read
``thresholds.max_age_hours``, and the summary records each value with where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .config import DrillConfig
from .expectations import Expectations

# Judged from the backup's own clock: backup-production.sh writes Backup ID when it starts and
# Backup Date after the dumps, both in the host's local time; a large backup's dumps may take
# hours, never days, and a host clock a few minutes off must not read as "taken in the future".
BUILT_IN = {
    "future_tolerance_hours": 0.1,        # an archive named this far in the future is still "now"
    "backup_date_max_lag_hours": 12.0,    # backup_info.txt's Backup Date at most this long after the ID
    "backup_date_early_minutes": 1.0,     # ... and at most this long before it
}


@dataclass(frozen=True)
class Thresholds:
    """What the checks judge against; ``sources`` says where each value came from."""

    max_age_hours: float
    min_size_kb: float
    future_tolerance_hours: float
    backup_date_max_lag_hours: float
    backup_date_early_minutes: float
    # Between generations ([generations] of expectations.toml); None = the check is off.
    max_drop_percent: float | None = None
    max_data_lag_hours: float | None = None
    retention_days: int | None = None
    sources: tuple[tuple[str, str], ...] = ()  # (name, "flag" | "env" | "expectations" | "default")

    def as_summary(self) -> dict[str, dict[str, Any]]:
        """``{"max_age_hours": {"value": 26.0, "source": "expectations"}, ...}`` for summary.json.

        A threshold that is off has ``"value": null, "off": true``, so the summary says the check was off.
        """
        source = dict(self.sources)
        shown: dict[str, dict[str, Any]] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            shown[f.name] = {"value": value, "source": source.get(f.name, "default")}
            if value is None:
                shown[f.name]["off"] = True
        return shown

    def is_off(self, name: str) -> bool:
        return getattr(self, name) is None


def resolve_thresholds(config: DrillConfig, expectations: Expectations) -> Thresholds:
    """The drill's thresholds: a setting given as a flag or in the environment wins over expectations.toml."""
    values: dict[str, float | int | None] = {}
    sources: dict[str, str] = {}
    for name in ("max_age_hours", "min_size_kb"):  # a DrillConfig option and an [archive] key each
        given = getattr(config, name)
        if given is None:
            values[name], sources[name] = float(getattr(expectations, name)), "expectations"
        else:
            values[name], sources[name] = float(given), config.source_of(name)
    rules = expectations.generations
    for name in ("max_drop_percent", "max_data_lag_hours", "retention_days"):
        values[name], sources[name] = getattr(rules, name), "expectations"
    for name, value in BUILT_IN.items():
        values[name], sources[name] = value, "default"
    return Thresholds(**values, sources=tuple(sources.items()))
