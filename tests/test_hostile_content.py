"""Backup content shaped to hurt: it must give a failed check naming the thing, never a crash or a hang.

Each test builds the hostile file or tree itself (small, in the test) and runs the real reader,
loader, check-result hook or writer on it. Long-input tests assert the result, never a time;
a pattern that backtracked would simply not finish within the suite's patience.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
import sys
from pathlib import Path

import bson
import psycopg
import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from grimoire_drill.archive import read_backup_info
from grimoire_drill.dump import count_bson, count_export, iter_bson_batches, read_metadata, scan_mongodump
from grimoire_drill.engines.simulated_mongo import SimulatedMongo
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.evidence import plain, plain_mapping
from grimoire_drill.export_counts import count_in_place
from grimoire_drill.limits import Limits
from grimoire_drill.check_outcome import failure_message
from grimoire_drill.report.example import example_summary
from grimoire_drill.report.html_parts import redact
from grimoire_drill.report.outputs import write_run_outputs
from grimoire_drill.report.prometheus import render_prom
from grimoire_drill.restore.mongo import restore_mongo
from tests.test_defects_e2e import assert_left_nothing, drill, open_area, open_dir  # noqa: F401 (a fixture)
from tests.test_dump import metadata_text, write_bson, write_dump

MEGABYTE = 1024 * 1024
SKIP = ("admin", "config", "local")


def nested_bson(depth: int) -> bytes:
    """One document nested ``depth`` levels below the top ({"a": {"a": …}}), built without recursion."""
    inner = b"\x05\x00\x00\x00\x00"
    for _ in range(depth):
        body = b"\x03a\x00" + inner + b"\x00"
        inner = struct.pack("<i", len(body) + 4) + body
    return inner


# --------------------------------------------------------------------------- backup_info.txt

OLD_INFO_LINE = re.compile(r"([A-Za-z][A-Za-z ]*?)\s*:\s+(\S.*?)\s*")


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from("Ab :\t\u00a0x-1é\x0b"), max_size=14))
def test_backup_info_parsing_is_the_former_regex_on_short_lines(tmp_path_factory, line):
    folder = tmp_path_factory.mktemp("info")
    (folder / "backup_info.txt").write_text(line + "\n", encoding="utf-8")
    lines = (folder / "backup_info.txt").read_text(encoding="utf-8").splitlines()
    expected = {}
    for one in lines:
        match = OLD_INFO_LINE.fullmatch(one)
        if match and match.group(1) not in expected:
            expected[match.group(1)] = match.group(2)
    assert read_backup_info(folder) == expected


def test_backup_info_with_a_megabyte_of_spaces_and_no_colon_is_read_in_linear_time(tmp_path):
    (tmp_path / "backup_info.txt").write_text("Backup ID: 20261124_020000\nBackup" + " " * MEGABYTE + "x\n")
    limits = Limits(max_line_chars=2 * MEGABYTE)
    assert read_backup_info(tmp_path, limits) == {"Backup ID": "20261124_020000"}
    (tmp_path / "backup_info.txt").write_text("Key" + " " * MEGABYTE + ": " + " " * MEGABYTE + "v \n")
    assert read_backup_info(tmp_path, Limits(max_line_chars=3 * MEGABYTE)) == {"Key": "v"}


def test_backup_info_line_and_file_limits_are_named(tmp_path):
    (tmp_path / "backup_info.txt").write_text("Backup ID: 20261124_020000\nHost: " + "h" * 5000 + "\n")
    with pytest.raises(DrillFailure, match=r"line 2 of backup_info.txt .*limits\.max_line_chars \(1,000\)"):
        read_backup_info(tmp_path, Limits(max_line_chars=1000))
    with pytest.raises(DrillFailure, match=r"limits\.max_text_file_bytes \(100\)"):
        read_backup_info(tmp_path, Limits(max_text_file_bytes=100))
    (tmp_path / "backup_info.txt").unlink()
    (tmp_path / "backup_info.txt").mkdir()
    with pytest.raises(DrillFailure, match="cannot read backup_info.txt"):
        read_backup_info(tmp_path)


# --------------------------------------------------------------------------- metadata

def test_metadata_is_read_bounded_even_when_gzip_inflates_it(tmp_path):
    path = tmp_path / "recipes.metadata.json.gz"
    path.write_bytes(gzip.compress(b"{" + b" " * (8 * MEGABYTE) + b"}"))   # 8 MB from ~8 KB
    with pytest.raises(DrillFailure, match=r"limits\.max_text_file_bytes \(1,048,576\)") as caught:
        read_metadata(path, Limits(max_text_file_bytes=MEGABYTE))
    assert str(path) in str(caught.value)
    plain_path = tmp_path / "ingredients.metadata.json"
    plain_path.write_text('{"indexes": [], "pad": "' + "x" * 3000 + '"}')
    with pytest.raises(DrillFailure, match=r"line 1 is longer than limits\.max_line_chars \(2,000\)"):
        read_metadata(plain_path, Limits(max_line_chars=2000))


def test_deeply_nested_metadata_fails_naming_the_file(tmp_path):
    path = tmp_path / "recipes.metadata.json"
    path.write_text('{"indexes": ' + "[" * 20_000 + "]" * 20_000 + "}")   # within max_line_chars
    with pytest.raises(DrillFailure, match="malformed metadata JSON") as caught:
        read_metadata(path)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- BSON bounds

def test_a_document_declaring_two_gigabytes_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "recipes.bson"
    good = bson.encode({"_id": 1, "title": "ok"})
    path.write_bytes(good + struct.pack("<i", 2**31 - 1) + b"\x00" * 64)
    batches = iter_bson_batches(path)
    assert [d["_id"] for d in next(batches).documents] == [1]   # what came before the damage
    with pytest.raises(DrillFailure) as caught:
        next(batches)
    message = str(caught.value)
    assert str(path) in message and f"at byte {len(good)}" in message
    assert "limits.max_document_bytes (16,793,600)" in message and "2,147,483,647" in message


@pytest.mark.parametrize("depth", [101, 900, 5000])
def test_nesting_past_the_limit_fails_naming_the_offset_and_the_limit(tmp_path, depth):
    path = tmp_path / "recipes.bson"
    first = bson.encode({"_id": 1})
    path.write_bytes(first + nested_bson(depth))
    with pytest.raises(DrillFailure) as caught:
        count_bson(path)
    message = str(caught.value)
    assert str(path) in message and f"byte {len(first)}" in message
    assert "limits.max_bson_depth (100)" in message or "not valid BSON" in message  # 5000: the C decoder's guard
    assert "recursion" not in type(caught.value.__cause__).__name__.lower()


def test_nesting_at_the_limit_is_a_valid_document(tmp_path):
    path = tmp_path / "recipes.bson"
    path.write_bytes(nested_bson(100))
    assert count_bson(path) == 1
    with pytest.raises(DrillFailure, match=r"limits\.max_bson_depth \(20\)"):
        count_bson(path, Limits(max_bson_depth=20))


# --------------------------------------------------------------------------- the native loader

def hostile_dump(root: Path) -> Path:
    """A clean three-collection dump plus collections a server refuses, each in its own way."""
    write_dump(root)
    db = root / "legrimoire"
    write_bson(db / "dollar.bson", [{"_id": 1, "ok": True}])
    with open(db / "dollar.bson", "ab") as handle:
        handle.write(bson.encode({"_id": 2, "$where": "sleep(1)"}, check_keys=False))
    write_bson(db / "array_id.bson", [{"_id": [1, 2]}])
    (db / "deep.bson").write_bytes(bson.encode({"_id": 1}) + nested_bson(150))
    nul_key = bytearray(bson.encode({"_id": 3, "ab": 1}))
    nul_key[nul_key.index(b"ab\x00")] = 0                         # the key "a\x00b": not BSON any more
    (db / "nul_key.bson").write_bytes(bytes(nul_key))
    (db / "%24cmd.bson").write_bytes(bson.encode({"_id": 1}))      # "$cmd": no server takes that name
    (db / "odd\udcff.bson").write_bytes(bson.encode({"_id": 1}))   # a file name that is not UTF-8
    weird = root / "bad\udcfe"
    weird.mkdir()
    write_bson(weird / "things.bson", [{"_id": 1}])
    return root


def test_rejected_documents_fail_their_collection_and_the_others_still_load(tmp_path):
    root = hostile_dump(tmp_path / "mongodb")
    layout = scan_mongodump(root)
    with SimulatedMongo(run_id="hostile") as engine:
        result = restore_mongo(engine, root, layout, skip=SKIP, jobs=1)
        restored = {c.namespace: c for c in result.collections}
        assert restored["legrimoire.recipes"].documents == 30 and not restored["legrimoire.recipes"].errors
        assert restored["legrimoire.ingredients"].documents == 12
        assert engine.document_count("legrimoire", "categories") == 4
        errors = "\n".join(result.all_errors())
    assert not result.ok
    expected = {
        "legrimoire.dollar": "Top-level field names cannot start with",
        "legrimoire.array_id": "TypeError",
        "legrimoire.deep": "limits.max_bson_depth (100)",
        "legrimoire.nul_key": "not valid BSON",
        "legrimoire.$cmd": "not a name MongoDB takes",
        "legrimoire.odd\\xff": "file name is not UTF-8",
        "bad\\xfe.things": "database folder name is not UTF-8",
    }
    for namespace, reason in expected.items():
        line = next((e for e in result.all_errors() if namespace in e), None)
        assert line is not None and reason in line, (namespace, errors)
    assert "dollar.bson" in errors and "deep.bson" in errors
    json.dumps(result.all_errors()).encode("utf-8")                 # every message is writable as it is


def test_two_files_claiming_one_collection_fail_naming_both(tmp_path):
    db = tmp_path / "mongodb" / "legrimoire"
    db.mkdir(parents=True)
    write_bson(db / "recipes.bson", [{"_id": 1}])
    write_bson(db / "other.bson", [{"_id": 2}])
    (db / "other.metadata.json").write_text(metadata_text("recipes", []))
    with pytest.raises(DrillFailure, match="both other.bson and recipes.bson claim collection 'recipes'"):
        scan_mongodump(tmp_path / "mongodb")
    (db / "other.metadata.json").unlink()
    write_bson(db / "a%2Eb.bson", [{"_id": 3}])
    write_bson(db / "a.b.bson", [{"_id": 4}])
    with pytest.raises(DrillFailure, match=r"both a%2Eb.bson and a.b.bson claim collection 'a.b'"):
        scan_mongodump(tmp_path / "mongodb")


# --------------------------------------------------------------------------- JSON exports

@pytest.mark.parametrize(("text", "reason"), [
    ('{"not": "an array"}', "expected a JSON array"),
    ("[" + "[" * 200_000 + "]" * 200_000 + "]", "nested too deeply"),
    ('[{"a": 1}, ' + '{"b": ' * 100_000 + "1" + "}" * 100_000 + "]", "nested too deeply"),
    ('[{"title": "' + "x" * (3 * MEGABYTE) + '"}]', r"limits\.max_export_element_chars \(1,048,576\)"),
    ('[{"title": "\\ud800"}, 12345678901234567890123456789012345678901234567890]', None),
])
def test_odd_exports_fail_naming_the_file_or_count(tmp_path, text, reason):
    path = tmp_path / "recipes_export.json"
    path.write_text(text)
    limits = Limits(max_export_element_chars=MEGABYTE)
    if reason is None:
        assert count_in_place(path, limits) == 2 == count_export(path, limits)
        return
    with pytest.raises(DrillFailure, match=reason) as caught:
        count_in_place(path, limits)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- the verdict of a check

def raised(exc: BaseException) -> pytest.ExceptionInfo:
    """``exc`` as pytest hands it to the report hook: raised, with its traceback."""
    with pytest.raises(type(exc)) as info:
        raise exc
    return info


@pytest.mark.parametrize(("exc", "status"), [
    (KeyError("image_url"), "failed"),
    (TypeError("unhashable type: 'list'"), "failed"),
    (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), "failed"),
    (RecursionError("maximum recursion depth exceeded"), "failed"),
    (bson.errors.InvalidDocument("cannot encode"), "failed"),
    (DrillFailure("truncated", where="x.bson"), "failed"),
    (HarnessError("engine gone", fix="restart"), "error"),
    (psycopg.OperationalError("connection refused"), "error"),
    (OSError(28, "No space left on device"), "error"),
])
def test_an_exception_on_content_fails_the_check_and_harness_trouble_stays_error(exc, status):
    got, message = failure_message(raised(exc), Limits())
    assert got == status
    if status == "failed" and not isinstance(exc, DrillFailure):
        assert type(exc).__name__ in message


def test_a_megabyte_name_in_an_exception_gives_a_short_printable_message():
    exc = KeyError("\udcff" + "n" * MEGABYTE + "\x1b[2J")
    status, message = failure_message(raised(exc), Limits())
    assert status == "failed" and len(message) < 400 and "KeyError" in message
    assert "\udcff" not in message and "\x1b" not in message
    message.encode("utf-8")


def odd_evidence() -> dict:
    deep: dict = {}
    cursor = deep
    for _ in range(1000):
        cursor["d"] = {}
        cursor = cursor["d"]
    return {"bytes": b"\xff\x00raw", "surrogate": "odd\udcffname", "deep": deep, "huge": "x" * MEGABYTE,
            "oid": ObjectId(), "nan": float("nan"), "many": list(range(100_000)), ("tuple", 1): {1, 2},
            b"key": None}


def test_evidence_is_made_plain_and_bounded():
    limits = Limits()
    shown = plain_mapping(odd_evidence(), limits)
    text = json.dumps(shown, allow_nan=False)
    text.encode("utf-8")
    assert len(text) < 20_000
    assert shown["surrogate"] == "odd\\xffname" and shown["nan"] == "nan"
    assert len(shown["many"]) == limits.max_evidence_items and shown["many"][-1].endswith("more")
    assert plain(shown, limits) == shown                            # idempotent: a writer may apply it again


def test_writers_survive_odd_evidence_and_names(tmp_path):
    summary = example_summary()
    summary["checks"][0]["evidence"] = odd_evidence()
    summary["checks"][0]["message"] = "first \udcff" + "m" * MEGABYTE
    summary["counts"]["mongodb"]["legrimoire.\udcff\n\"x\\"] = 3
    summary["counts"]["mongodb"]["legrimoire." + "c" * MEGABYTE] = 4
    write_run_outputs(summary, tmp_path, tmp_path / "history.jsonl", report_seconds_from=0.0, clock_start=0.0)
    written = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert written["checks"][0]["evidence"]["surrogate"] == "odd\\xffname"
    assert (tmp_path / "summary.json").stat().st_size < 200_000
    prom = (tmp_path / "drill.prom").read_text(encoding="utf-8")
    labels = {sample.labels.get("collection") for family in text_string_to_metric_families(prom)
              for sample in family.samples if family.name == "grimoire_drill_restored_documents"}
    assert 'legrimoire.\\xff\\x0a"x\\' in labels                # printable in summary.json, then escaped
    assert max(len(label) for label in labels if label) <= Limits().max_quoted_chars


def test_prometheus_labels_of_non_utf8_names_render():
    summary = example_summary()
    summary["counts"]["postgresql"]["t\udcff"] = 1
    families = {f.name: f for f in text_string_to_metric_families(render_prom(summary))}
    assert {s.labels["table"] for s in families["grimoire_drill_restored_rows"].samples} >= {"t\\xff"}


# --------------------------------------------------------------------------- linear patterns

def test_redaction_of_long_hostile_text_still_masks():
    text = "password" * (MEGABYTE // 8) + "=hunter2 " + "a." * (MEGABYTE // 2) + " pg://u:s3cret@host"
    masked = redact(text)
    assert "hunter2" not in masked and "s3cret" not in masked and masked.endswith("pg://u:***@host")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# --------------------------------------------------------------------------- the whole drill

def _append_bson(path: Path, documents: list[dict]) -> None:
    with open(path, "ab") as handle:
        for document in documents:
            handle.write(bson.encode(document, check_keys=False))


def _append_export(path: Path, objects: list[dict]) -> None:
    exported = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(exported + objects), encoding="utf-8")


def odd_backup(root: Path) -> None:
    """A clean sample, then content of every odd shape the checks read, in the files they read it from."""
    db = root / "mongodb" / "legrimoire"
    odd_recipes = [{"_id": f"odd-{kind}", "title": "odd", "image_url": value}
                   for kind, value in (("list", ["/uploads/recipes/a.jpg"]), ("number", 42),
                                       ("dict", {"$oid": "x"}), ("none", None), ("created", "yesterday"))]
    _append_bson(db / "recipes.bson", odd_recipes)
    _append_export(root / "recipes_export.json", odd_recipes)
    twins = [{"_id": f"twin-{n}", "off_id": {"nested": ["twin"]}, "names": {"fr": "x", "en": "x"}} for n in (1, 2)]
    _append_bson(db / "ingredients.bson", twins)
    _append_export(root / "ingredients_export.json", twins)
    write_bson(db / "dollar.bson", [{"_id": 1}])
    _append_bson(db / "dollar.bson", [{"_id": 2, "$where": "1"}])
    (db / "odd\udcff.bson").write_bytes(bson.encode({"_id": 1}))
    (root / "uploads" / "recipes" / "odd\udcfe.jpg").write_bytes(b"\xff\xd8 not really a picture")
    with open(root / "backup_info.txt", "a") as handle:
        handle.write("Notes" + " " * (70 * 1024) + "no colon here\n")


@pytest.mark.slow
def test_a_backup_full_of_odd_content_fails_the_checks_concerned_and_writes_every_output(sample_factory, open_area):
    import shutil

    work = open_dir(open_area, "odd-content")
    sample = sample_factory(as_archive=False)
    root = work / sample.name
    shutil.copytree(sample, root)
    odd_backup(root)

    result = drill(root, work)

    assert result.returncode == 1, result.output
    for name in ("summary.json", "report.html", "junit.xml", "drill.prom"):
        assert (result.report / name).is_file(), name
    summary = result.summary()
    assert summary["outcome"] == "failed" and summary["totals"]["error"] == 0, result.checks("error")
    failed = result.checks("failed")
    assert "limits.max_line_chars (65,536)" in failed["archive.backup_info"]
    assert "legrimoire.dollar" in failed["mongodb.restore"] or "legrimoire.dollar" in json.dumps(summary)
    restore = next(c for c in summary["checks"] if c["id"] == "mongodb.restore")
    errors = "\n".join(restore["evidence"]["errors"])
    assert "legrimoire.dollar" in errors and "legrimoire.odd\\xff" in errors
    uploads = failed["consistency.uploads"]
    assert "image_url" in uploads and "'odd-list'" in uploads
    assert "appears 2 times" in failed["mongodb.unique.ingredients.off_id_1"]
    passed = result.checks("passed")
    assert {"consistency.mongodb_counts.recipes", "consistency.mongodb_counts.categories",
            "mongodb.collection.recipes"} <= set(passed), failed
    families = {f.name for f in text_string_to_metric_families((result.report / "drill.prom").read_text())}
    assert "grimoire_drill_success" in families
    assert_left_nothing(result)


def test_the_traceback_pytest_shows_of_a_check_that_stopped_on_content_is_short_and_writable():
    from _pytest.reports import TestReport

    from grimoire_drill.check_outcome import bound_longrepr

    text = "Traceback …\nKeyError: '" + "k" * MEGABYTE + "\udcff'\n"
    report = TestReport("drills/test_x.py::test_y", ("drills/test_x.py", 1, "test_y"), {}, "failed", text, "call")
    bound_longrepr(report, Limits())
    shown = str(report.longrepr)
    shown.encode("utf-8")
    assert len(shown) <= 4 * Limits().max_evidence_chars + 8 and shown.endswith("k\\udcff'")
    skipped = TestReport("n", ("f", 1, "n"), {}, "skipped", ("f", 1, "Skipped: why"), "call")
    bound_longrepr(skipped, Limits())
    assert skipped.longrepr == ("f", 1, "Skipped: why")


def test_the_export_counting_child_uses_the_runs_limit(tmp_path):
    from grimoire_drill.export_counts import ExportCounts

    huge = tmp_path / "recipes_export.json"
    huge.write_text('[{"title": "' + "x" * (2 * MEGABYTE) + '"}]')
    deep = tmp_path / "ingredients_export.json"
    deep.write_text("[" + "[" * 100_000 + "]" * 100_000 + "]")
    counts = ExportCounts([huge, deep], "hostile", background_from_bytes=0,
                          limits=Limits(max_export_element_chars=MEGABYTE)).start()
    try:
        assert counts.in_background
        with pytest.raises(DrillFailure, match=r"limits\.max_export_element_chars \(1,048,576\)"):
            counts.count(huge)
        with pytest.raises(DrillFailure, match="nested too deeply"):
            counts.count(deep)
    finally:
        counts.close()
