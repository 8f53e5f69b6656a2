"""Thresholds are resolved once: a flag or the environment beats expectations.toml, and each says where it came from."""

from __future__ import annotations

import dataclasses

import pytest

from grimoire_drill.config import build_config
from grimoire_drill.expectations import load_expectations
from grimoire_drill.thresholds import resolve_thresholds


def test_expectations_decide_when_nothing_is_given():
    expectations = load_expectations()
    thresholds = resolve_thresholds(build_config(lambda option: None, {}), expectations)
    assert (thresholds.max_age_hours, thresholds.min_size_kb) == (expectations.max_age_hours, expectations.min_size_kb)
    shown = thresholds.as_summary()
    assert shown["max_age_hours"] == {"value": 26.0, "source": "expectations"}
    assert shown["backup_date_max_lag_hours"]["source"] == "default"
    assert set(shown) == {f.name for f in dataclasses.fields(thresholds)} - {"sources"}


def test_a_flag_and_the_environment_beat_expectations():
    config = build_config(lambda option: 48.0 if option.name == "max_age_hours" else None,
                          {"GRIMOIRE_DRILL_MIN_SIZE_KB": "5", "GRIMOIRE_DRILL_MAX_AGE_HOURS": "99"})
    thresholds = resolve_thresholds(config, load_expectations())
    assert thresholds.max_age_hours == 48.0 and thresholds.min_size_kb == 5.0
    assert thresholds.as_summary()["max_age_hours"]["source"] == "flag"
    assert thresholds.as_summary()["min_size_kb"]["source"] == "env"


def test_thresholds_are_frozen():
    thresholds = resolve_thresholds(build_config(lambda option: None, {}), load_expectations())
    with pytest.raises(dataclasses.FrozenInstanceError):
        thresholds.max_age_hours = 1000.0
