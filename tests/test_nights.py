"""The date rule of a backup series (grimoire_drill/nights.py): pure, so properties check it directly."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimoire_drill.archive import series_ids
from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits
from grimoire_drill.nights import judge_nights, night_of


def _id(day: date, at: time = time(2, 0)) -> str:
    return datetime.combine(day, at).strftime("%Y%m%d_%H%M%S")


def _series(newest: date, offsets, at: time = time(2, 0)) -> list[str]:
    return [_id(newest - timedelta(days=offset), at) for offset in offsets]


def test_a_full_week_has_nothing_missing_and_is_not_new():
    nights = judge_nights(_series(date(2026, 12, 2), range(7)), 7)
    assert nights.missing == () and nights.too_old == () and not nights.new_installation
    assert nights.window_start == date(2026, 11, 26) and nights.window_end == date(2026, 12, 2)


def test_a_missing_night_is_named():
    nights = judge_nights(_series(date(2026, 12, 2), [0, 1, 2, 4, 5, 6]), 7)
    assert nights.missing == (date(2026, 11, 29),)


def test_three_nights_are_a_new_installation_not_a_failure():
    nights = judge_nights(_series(date(2026, 12, 2), range(3)), 7)
    assert nights.missing == () and nights.new_installation and len(nights.present) == 3


def test_a_ten_day_old_backup_should_have_been_pruned_but_nothing_is_missing():
    ids = _series(date(2026, 12, 2), [*range(7), 10])
    nights = judge_nights(ids, 7)
    assert nights.too_old == (ids[-1],) and nights.missing == () and not nights.new_installation


def test_the_night_before_the_window_is_what_find_mtime_keeps():
    """find -mtime +7 deletes past 7 whole days: the folder normally holds 8 nights, none of them late."""
    nights = judge_nights(_series(date(2026, 12, 2), range(8)), 7)
    assert nights.too_old == () and len(nights.grace) == 1 and nights.missing == ()


def test_an_old_backup_means_the_whole_window_is_required():
    """A series that began before the window: its first nights cannot be excused as a new installation."""
    nights = judge_nights(_series(date(2026, 12, 2), [0, 1, 9]), 7)
    assert nights.missing == tuple(date(2026, 11, 26) + timedelta(days=d) for d in range(5))


def test_a_backup_after_midnight_belongs_to_its_own_date():
    ids = [_id(date(2026, 12, 2), time(0, 30)), _id(date(2026, 12, 1), time(23, 50))]
    assert night_of(ids[0]) == date(2026, 12, 2)
    assert judge_nights(ids, 2).missing == ()
    late = [_id(date(2026, 12, 2), time(0, 30)), _id(date(2026, 11, 30), time(23, 50))]
    assert judge_nights(late, 3).missing == (date(2026, 12, 1),)


def test_two_backups_on_one_date_count_once():
    ids = [_id(date(2026, 12, 2), time(2)), _id(date(2026, 12, 2), time(14)), _id(date(2026, 12, 1))]
    nights = judge_nights(ids, 7)
    assert nights.present == (date(2026, 12, 1), date(2026, 12, 2)) and nights.new_installation


@pytest.mark.parametrize("newest", [date(2027, 1, 3), date(2028, 3, 2), date(2026, 3, 2), date(2100, 3, 3)])
def test_month_and_year_boundaries(newest):
    """Across New Year, a leap day (2028), a non-leap February and 2100 (no leap year)."""
    full = _series(newest, range(7))
    assert judge_nights(full, 7).missing == ()
    gap = [i for i in full if night_of(i) != newest - timedelta(days=3)]
    assert judge_nights(gap, 7).missing == (newest - timedelta(days=3),)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        judge_nights([], 7)
    with pytest.raises(ValueError):
        judge_nights(["20261399_000000"], 7)
    with pytest.raises(ValueError):
        judge_nights([_id(date(2026, 1, 1))], 0)


days = st.dates(min_value=date(1971, 1, 1), max_value=date(2999, 12, 31))
times = st.times().map(lambda t: t.replace(microsecond=0))


@given(newest=days, offsets=st.sets(st.integers(0, 40), max_size=30), retention=st.integers(1, 30),
       at=st.lists(times, min_size=1, max_size=3))
def test_properties_of_any_series(newest, offsets, retention, at):
    offsets = offsets | {0}
    if (newest - timedelta(days=max(offsets))).year < 1970:
        return
    ids = [_id(newest - timedelta(days=o), at[o % len(at)]) for o in offsets]
    nights = judge_nights(ids + ids[:1], retention)               # order and duplicates do not matter
    window = {newest - timedelta(days=d) for d in range(retention)}
    dated = {newest - timedelta(days=o) for o in offsets}
    assert nights.window_end == newest and nights.window_start == newest - timedelta(days=retention - 1)
    assert set(nights.present) == dated & window
    # every date of the window is either present, missing, or before a new installation's first backup
    before_first = {d for d in window if d < min(nights.present)} if nights.new_installation else set()
    assert set(nights.present) | set(nights.missing) | before_first == window
    assert not set(nights.missing) & dated
    assert {night_of(i) for i in nights.too_old} == {d for d in dated if (newest - d).days > retention}
    assert all(night < nights.window_start for night in map(night_of, nights.grace))
    assert nights.new_installation == (max(offsets) < retention - 1)


# --------------------------------------------------------------------------- the folder's names (archive.series_ids)

def test_series_lists_names_and_never_opens_an_older_backup(tmp_path):
    """A fifo named like an old archive would hang any open(); a link to outside must not be followed."""

    outside = tmp_path / "outside"
    outside.mkdir()
    marker = outside / "read-me-and-fail"
    marker.write_text("secret\n")
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "backup_20261202_020000.tar.gz").write_bytes(b"x" * 10)
    os.mkfifo(folder / "backup_20261201_020000.tar.gz")
    (folder / "backup_20261130_020000.tar.gz.gpg").symlink_to(marker)
    (folder / "backup_20261129_020000").mkdir()
    for hostile in ("backup_20261399_020000.tar.gz", "backup_20261128_020000.tar.gz.evil", "backup_\n20261127",
                    "backup_latest", "notes.txt"):
        (folder / hostile).write_bytes(b"")
    before = marker.stat().st_atime_ns
    assert series_ids(folder, 100, "limits.max_series_backups (100)") == (
        "20261129_020000", "20261130_020000", "20261201_020000", "20261202_020000")
    assert marker.stat().st_atime_ns == before and marker.read_text() == "secret\n"


def test_one_backup_is_no_series(tmp_path):
    archive = tmp_path / "backup_20261202_020000.tar.gz"
    archive.write_bytes(b"x")
    folder = tmp_path / "backup_20261201_020000"
    folder.mkdir()
    assert series_ids(archive, 100, "x") is None and series_ids(folder, 100, "x") is None


def test_a_folder_of_too_many_backup_names_is_refused_naming_the_limit(tmp_path):
    limits = Limits(max_series_backups=5)
    for day in range(1, 8):
        (tmp_path / f"backup_202612{day:02d}_020000.tar.gz").write_bytes(b"x")
    with pytest.raises(DrillFailure, match=r"limits\.max_series_backups \(5\)"):
        series_ids(tmp_path, limits.max_series_backups, limits.name("max_series_backups"))
