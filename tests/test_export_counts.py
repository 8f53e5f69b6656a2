"""Export counts from the background child agree with counting in place, failures included."""

import json
import os

import pytest

from grimoire_drill.dump import count_export
from grimoire_drill.errors import DrillFailure
from grimoire_drill.export_counts import ExportCounts


def _export(path, n):
    path.write_text(json.dumps([{"_id": str(i), "name": f"item {i}"} for i in range(n)], indent=2))
    return path


def test_child_counts_each_export_as_in_place(tmp_path):
    files = [_export(tmp_path / "a.json", 3), _export(tmp_path / "b.json", 1200)]
    counts = ExportCounts(files, "test", background_from_bytes=0).start()
    try:
        assert counts.in_background
        assert [counts.count(f) for f in files] == [3, 1200] == [count_export(f) for f in files]
    finally:
        counts.close()


def test_child_reports_a_broken_export_with_the_same_line(tmp_path):
    broken = tmp_path / "recipes_export.json"
    broken.write_text('[{"a": 1}, {"b": ')
    with pytest.raises(DrillFailure) as in_place:
        count_export(broken)
    counts = ExportCounts([broken], "test", background_from_bytes=0).start()
    try:
        with pytest.raises(DrillFailure) as via_child:
            counts.count(broken)
    finally:
        counts.close()
    assert via_child.value.line() == in_place.value.line()
    assert str(broken) in via_child.value.line()


def test_small_exports_stay_in_process_and_missing_ones_are_left_out(tmp_path):
    small = _export(tmp_path / "a.json", 2)
    counts = ExportCounts([small, tmp_path / "absent.json"], "test").start()
    assert not counts.in_background
    assert counts.count(small) == 2


def test_close_ends_a_running_child(tmp_path):
    big = _export(tmp_path / "big.json", 400_000)
    counts = ExportCounts([big], "test", background_from_bytes=0).start()
    child = counts._child
    counts.close()
    assert child.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    assert counts.count(big) == 400_000  # killed before answering: counted in place instead
