"""End to end: a backup against the generation before it, through the real CLI and a real PostgreSQL.

A valid backup holding a fraction of yesterday's data (``emptied-collection``), or yesterday's data
under today's name (``older-data``), passes every check of its own; only the comparison with the
previous generation fails it, naming both backups and both values. The previous generation is the
last full drill in history.jsonl, else the older archive's headers (bytes). A previous archive that
is hostile is read with every limit and never writes outside the temp dir nor fails today's backup.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest

from grimoire_drill.archive import parse_backup_name
from grimoire_drill.sample import write_generations
from tests.test_defects_e2e import assert_left_nothing, drill, open_area, open_dir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow
MINUS = "\u2212"


@pytest.fixture
def tmp_path(open_area, request):
    """A work dir the local PostgreSQL's OS user can traverse (pytest's own tmp dirs are private to root)."""
    return open_dir(open_area, request.node.name[:40].replace("[", "-").replace("]", ""))


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Two nightly generations per defect (None: clean), newest first, each in its own folder."""
    made: dict[str | None, list[Path]] = {}

    def make(defect: str | None) -> list[Path]:
        if defect not in made:
            made[defect] = write_generations(tmp_path_factory.mktemp(f"series-{defect or 'clean'}"), count=2,
                                             defect=defect)
        return made[defect]
    return make


def drilled_before(older: Path, work: Path, *extra: str):
    """Drill the older generation as the nightly job did, an hour after it was taken (history beside the report)."""
    _id, taken = parse_backup_name(older.name)
    return drill(older, work, "--now", (taken + timedelta(hours=1)).isoformat(), *extra)


def checks(result, prefix: str = "generations.") -> dict[str, tuple[str, str]]:
    return {c["id"]: (c["status"], c["message"]) for c in result.summary()["checks"] if c["id"].startswith(prefix)}


def others_all_pass(result) -> None:
    bad = {i: s for i, (s, _m) in checks(result, "").items() if not i.startswith("generations.") and s != "passed"}
    assert bad == {}, f"only the comparison with the previous generation may catch it: {bad}"


def test_the_first_backup_ever_has_nothing_to_compare_and_stays_a_full_pass(series, tmp_path):
    newest, older = series(None)
    lonely = tmp_path / "backups"
    lonely.mkdir()
    shutil.copy(older, lonely / older.name)
    result = drilled_before(lonely / older.name, tmp_path / "work")
    assert result.returncode == 0, result.output
    assert "PASSED" in result.stdout and "PARTIAL" not in result.stdout
    status, message = checks(result)["generations.documents"]
    assert status == "off" and "no previous generation to compare with" in message
    assert result.summary()["scope"]["kind"] == "full"
    assert result.summary()["previous_generation"]["found"] is False


def test_a_clean_series_passes_against_the_older_archive_and_against_history(series, tmp_path):
    newest, older = series(None)
    against_archive = drill(newest.parent, tmp_path / "archive")
    assert against_archive.returncode == 0, against_archive.output
    found = checks(against_archive)
    assert found["generations.documents"][0] == "passed" and "bytes" in found["generations.documents"][1]
    assert found["generations.freshness.mongodb.recipes.updated_at"][0] == "passed"
    assert against_archive.summary()["previous_generation"]["source"] == "archive"
    assert_left_nothing(against_archive)

    work = tmp_path / "history"
    assert drilled_before(older, work).returncode == 0
    against_history = drill(newest.parent, work)
    assert against_history.returncode == 0, against_history.output
    found = checks(against_history)
    assert {s for s, _m in found.values()} <= {"passed", "off"}
    assert found["generations.rows"][0] == "passed" and "rows" in found["generations.rows"][1]
    assert found["generations.freshness.postgresql.users.created_at"][0] == "passed"
    previous = against_history.summary()["previous_generation"]
    assert previous["source"] == "history" and previous["backup_id"] == parse_backup_name(older.name)[0]
    assert "Since the previous generation" in (work / "report" / "report.html").read_text()


def test_an_emptied_collection_fails_naming_both_backups_and_both_values(series, tmp_path):
    newest, older = series("emptied-collection")
    old_name = older.name.removesuffix(".tar.gz")
    work = tmp_path / "history"
    drilled_before(older, work)
    result = drill(newest.parent, work)
    assert result.returncode == 1, result.output
    others_all_pass(result)
    found = checks(result)
    assert found["generations.documents"] == ("failed", found["generations.documents"][1])
    assert f"legrimoire.recipes fell from 24 to 2 documents ({MINUS}92 %) since {old_name}" in found["generations.documents"][1]
    assert f"recipes fell from 24 to 2 rows ({MINUS}92 %) since {old_name}" in found["generations.rows"][1]
    assert found["generations.uploads"][0] == "failed" and "files" in found["generations.uploads"][1]
    assert f"generations.documents: legrimoire.recipes fell from 24 to 2" in result.stdout
    evidence = next(c for c in result.summary()["checks"] if c["id"] == "generations.documents")["evidence"]
    assert evidence["previous"]["name"] == old_name and evidence["current"]["name"] == newest.name.removesuffix(".tar.gz")

    without_history = drill(newest.parent, tmp_path / "archive")
    assert without_history.returncode == 1
    status, message = checks(without_history)["generations.documents"]
    assert status == "failed" and "mongodb/legrimoire/recipes.bson fell from" in message and "bytes" in message
    assert old_name in message
    assert "the archive fell from" in checks(without_history)["generations.archive_size"][1]


def test_older_data_under_a_newer_name_fails_freshness(series, tmp_path):
    newest, older = series("older-data")
    old_name = older.name.removesuffix(".tar.gz")
    result = drill(newest.parent, tmp_path / "archive")
    assert result.returncode == 1, result.output
    others_all_pass(result)
    status, message = checks(result)["generations.freshness.mongodb.recipes.updated_at"]
    assert status == "failed" and f"is older than {old_name}'s" in message and "went back in time" in message
    status, message = checks(result)["generations.freshness.postgresql.users.created_at"]
    assert status == "off" and "not read from an archive" in message   # PostgreSQL: no restore of an archive
    assert checks(result)["generations.documents"][0] == "passed", "the counts did not change: only freshness catches it"

    work = tmp_path / "history"
    drilled_before(older, work)
    with_history = drill(newest.parent, work)
    status, message = checks(with_history)["generations.freshness.postgresql.users.created_at"]
    assert status == "failed" and old_name in message and message.count("T") >= 2  # both values shown


def test_thresholds_off_skip_saying_so_and_a_data_lag_limit_fails(series, tmp_path):
    newest, _older = series("emptied-collection")
    rules = (Path(__file__).parents[1] / "drills" / "expectations.toml").read_text()
    rules = rules.replace("max_drop_percent = 20.0", 'max_drop_percent = "off"')
    rules = rules.replace('max_data_lag_hours = "off"', "max_data_lag_hours = 24")
    custom = tmp_path / "expectations.toml"
    custom.write_text(rules)
    result = drill(newest.parent, tmp_path / "work", "--expectations", custom)
    found = checks(result)
    assert found["generations.documents"] == (
        "off", "max_drop_percent is off in expectations.toml ([generations] max_drop_percent)")
    status, message = found["generations.data_lag.mongodb.recipes.updated_at"]
    assert status == "failed" and "h older than the backup" in message and "max_data_lag_hours (24 h)" in message
    assert result.summary()["thresholds"]["max_drop_percent"]["off"] is True


def _hostile(older_name: str, folder: Path, members) -> Path:
    """An archive named as the night before, built from (TarInfo, data) pairs."""
    target = folder / f"{older_name}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def _member(name: str, data: bytes = b"", **kind) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in kind.items():
        setattr(info, key, value)
    return info, (data if info.isreg() else None)


@pytest.mark.parametrize("case", ["escape", "bomb"])
def test_a_hostile_previous_archive_is_read_bounded_and_never_fails_todays_backup(series, tmp_path, case):
    newest, older = series(None)
    folder = tmp_path / "backups"
    folder.mkdir()
    shutil.copy(newest, folder / newest.name)
    top = older.name.removesuffix(".tar.gz")
    marker = tmp_path / "escaped"
    if case == "escape":
        members = [_member(f"{top}/", type=tarfile.DIRTYPE),
                   _member(f"{top}/mongodb/legrimoire/recipes.metadata.json", b"{}"),
                   _member(f"{top}/../../escaped", b"owned"),
                   _member(f"{top}/link", type=tarfile.SYMTYPE, linkname="../../escaped")]
        expected = "unsafe member"
    else:
        members = [_member(f"{top}/", type=tarfile.DIRTYPE),
                   _member(f"{top}/mongodb/legrimoire/recipes.bson", bytes(40 * 1024 * 1024))]
        expected = "limits.max_ratio"
    _hostile(top, folder, members)
    result = drill(folder, tmp_path / "work")
    assert result.summary()["outcome"] == "passed", result.output
    assert result.returncode == 0
    status, message = checks(result)["generations.documents"]
    assert status == "skipped" and f"the previous generation {top} could not be read" in message
    assert expected in message
    assert not marker.exists() and not (tmp_path / "work" / "escaped").exists()
    assert_left_nothing(result)


def test_timestamps_of_the_wrong_type_are_left_out_and_counted_never_a_crash(series, tmp_path):
    import bson

    from tests.test_defects_e2e import repack

    newest, older = series(None)
    folder = tmp_path / "backups"
    folder.mkdir()
    shutil.copy(older, folder / older.name)

    def odd_values(root: Path) -> None:
        with (root / "mongodb" / "legrimoire" / "recipes.bson").open("ab") as handle:
            for value in ("2999-01-01T00:00:00", 17, {"$date": "not one"}):
                handle.write(bson.encode({"_id": bson.ObjectId(), "title": "odd", "updated_at": value}))

    repack(newest, folder, odd_values)
    result = drill(folder, tmp_path / "work")
    found = next(c for c in result.summary()["checks"] if c["id"] == "generations.freshness.mongodb.recipes.updated_at")
    assert found["status"] == "passed", found
    assert found["evidence"]["ignored"] == 3 and "3 values of another type left out" in found["message"]
    assert result.summary()["totals"]["error"] == 0
