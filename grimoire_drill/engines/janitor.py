"""Find and remove what killed runs left behind: labelled containers, tagged server processes.

Every container carries ``grimoire-drill.run`` and its owner's pid; every local server carries
GRIMOIRE_DRILL_RUN_ID in its environment. A thing whose owner is gone is a stray.
"""

from __future__ import annotations


def sweep_strays(current_run_id: str) -> list[str]:
    """Remove strays of earlier runs; return one description per thing removed."""
    removed: list[str] = []
    from .docker import docker_status, remove_strays

    ok, _why = docker_status()
    if ok:
        removed += [f"container {name}" for name in remove_strays(current_run_id)]
    return removed
