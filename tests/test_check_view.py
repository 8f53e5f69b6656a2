"""Checks see a small facade of the pipeline: exactly what the drill's checks call, nothing that starts or stops."""

from __future__ import annotations

import re
from pathlib import Path

from grimoire_drill.pipeline.check_view import CheckView
from grimoire_drill.pipeline.session import DrillSession

DRILLS = Path(__file__).resolve().parents[1] / "drills"


def used_by_checks() -> set[str]:
    return {name for path in DRILLS.glob("*.py") for name in re.findall(r"\bdrill\.(\w+)", path.read_text())}


def offered() -> set[str]:
    return {name for name in dir(CheckView) if not name.startswith("_")}


def test_the_view_offers_what_checks_call_and_nothing_more():
    assert used_by_checks(), "no drill.<name> found in drills/: the scan is broken"
    assert offered() == used_by_checks()


def test_the_view_cannot_reach_the_lifecycle():
    for lifecycle in ("close", "cancel", "prepare", "start_engines", "arm_deadline", "new_round", "facts"):
        assert hasattr(DrillSession, lifecycle) and not hasattr(CheckView, lifecycle)
