"""Thresholds are resolved once: a flag or the environment beats expectations.toml, and each says where it came from."""

from __future__ import annotations

import dataclasses

import pytest

from grimoire_drill.config import build_config
from grimoire_drill.errors import HarnessError
from grimoire_drill.expectations import load_expectations, packaged_path
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


def _expectations_with(tmp_path, generations: str):
    source = packaged_path().read_text(encoding="utf-8")
    before, _, after = source.partition("[generations]")
    rest = after.split("\n[", 1)[1]
    path = tmp_path / "expectations.toml"
    path.write_text(f"{before}[generations]\n{generations}\n\n[{rest}", encoding="utf-8")
    return load_expectations(path)


def test_generation_thresholds_default_and_off_is_recorded_as_off(tmp_path):
    thresholds = resolve_thresholds(build_config(lambda option: None, {}), load_expectations())
    shown = thresholds.as_summary()
    assert shown["max_drop_percent"] == {"value": 20.0, "source": "expectations"}
    assert shown["retention_days"] == {"value": 7, "source": "expectations"}
    assert shown["max_data_lag_hours"] == {"value": None, "source": "expectations", "off": True}
    assert thresholds.is_off("max_data_lag_hours") and not thresholds.is_off("max_drop_percent")

    custom = _expectations_with(tmp_path, 'max_drop_percent = "off"\nmax_data_lag_hours = 48\nretention_days = 3')
    thresholds = resolve_thresholds(build_config(lambda option: None, {}), custom)
    assert (thresholds.max_drop_percent, thresholds.max_data_lag_hours, thresholds.retention_days) == (None, 48.0, 3)


@pytest.mark.parametrize("line", ['max_drop_percent = -1', 'max_drop_percent = "none"', 'retention_days = true',
                                  'max_drop_pct = 5'])
def test_a_mistyped_generation_threshold_is_one_clear_error(tmp_path, line):
    with pytest.raises(HarnessError, match="generations"):
        _expectations_with(tmp_path, line)
