"""Facts several writers derive from a summary, derived once so they never disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def simulated_databases(summary: dict[str, Any]) -> list[str]:
    """Databases whose engine was simulated, in a stable order."""
    engines = summary.get("engines", {})
    return sorted(name for name, engine in engines.items() if engine.get("simulated"))


def is_simulated(summary: dict[str, Any]) -> bool:
    """True when the run must not count as audit evidence: flagged at top level or by any engine."""
    return summary.get("simulated") is True or bool(simulated_databases(summary))


def epoch_seconds(timestamp: str) -> float:
    """Unix time of an ISO-8601 instant (the schema requires an explicit offset)."""
    return datetime.fromisoformat(timestamp).timestamp()
