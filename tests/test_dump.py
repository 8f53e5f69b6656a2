"""dump.py on real files: BSON written with bson.encode, metadata as mongodump writes it, real pg_dumps."""

from __future__ import annotations

import gzip
import json
import re
import uuid
from datetime import datetime
from pathlib import Path

import bson
import pytest
from bson import ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

from grimoire_drill.dump import (
    CollectionDump,
    IndexSpec,
    count_bson,
    count_export,
    iter_export,
    iter_raw_bson,
    pg_dump_format,
    read_metadata,
    scan_mongodump,
)
from grimoire_drill.engines.base import new_run_id
from grimoire_drill.errors import DrillFailure

# --------------------------------------------------------------------------- builders


def recipe(index: int) -> dict:
    return {
        "_id": ObjectId(),
        "title": f"Tarte aux pommes n°{index}",
        "created_at": datetime(2026, 11, 1, 12, 0),  # naive UTC, as BSON dates decode
        "is_public": index % 2 == 0,
        "category": "dessert",
        "cuisine": "française",
        "image_url": f"/uploads/recipes/{uuid.uuid4()}.jpg",
        "ingredients": [{"name": "pomme", "quantity": 3.5}, {"name": "sucre", "quantity": 100}],
    }


def index_spec(key: dict, name: str, **extra) -> dict:
    """An index as mongodump 100.x writes it into .metadata.json (canonical Extended JSON)."""
    return {"v": 2, "key": key, "name": name, **extra}


INDEXES = {
    "recipes": [index_spec({"title": 1}, "title_1"), index_spec({"created_at": -1}, "created_at_-1"),
                index_spec({"is_public": 1}, "is_public_1"), index_spec({"category": 1}, "category_1"),
                index_spec({"cuisine": 1}, "cuisine_1")],
    "ingredients": [index_spec({"off_id": 1}, "off_id_1", unique=True),
                    index_spec({"names.fr": 1}, "names.fr_1"), index_spec({"names.en": 1}, "names.en_1"),
                    index_spec({"custom": 1}, "custom_1")],
    "categories": [index_spec({"off_id": 1}, "off_id_1", unique=True),
                   index_spec({"names.fr": 1}, "names.fr_1"), index_spec({"names.en": 1}, "names.en_1")],
}


def metadata_text(collection: str, indexes: list[dict], *, kind: str = "collection", options: dict | None = None) -> str:
    metadata = {
        "indexes": [index_spec({"_id": 1}, "_id_"), *indexes],
        "uuid": uuid.uuid4().hex,
        "collectionName": collection,
        "type": kind,
    }
    if options is not None:
        metadata["options"] = options
    return json_util.dumps(metadata, json_options=CANONICAL_JSON_OPTIONS)


def write_bson(path: Path, documents: list[dict]) -> Path:
    data = b"".join(bson.encode(document) for document in documents)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_dump(root: Path, *, gz: bool = False, recipes: int = 30) -> Path:
    """A mongodump --out tree like the backup job's, with admin/, prelude.json and oplog.bson."""
    suffix = ".gz" if gz else ""
    db = root / "legrimoire"
    db.mkdir(parents=True)
    counts = {"recipes": recipes, "ingredients": 12, "categories": 4}
    for collection, count in counts.items():
        docs = [recipe(i) if collection == "recipes" else {"_id": ObjectId(), "off_id": f"en:{collection}-{i}",
                                                            "names": {"fr": f"nom {i}", "en": f"name {i}"}}
                for i in range(count)]
        write_bson(db / f"{collection}.bson{suffix}", docs)
        text = metadata_text(collection, INDEXES[collection]).encode()
        (db / f"{collection}.metadata.json{suffix}").write_bytes(gzip.compress(text) if gz else text)
    (db / "public_recipes.metadata.json").write_text(
        metadata_text("public_recipes", [], kind="view",
                      options={"viewOn": "recipes", "pipeline": [{"$match": {"is_public": True}}]}))
    admin = root / "admin"
    admin.mkdir()
    write_bson(admin / "system.version.bson", [{"_id": "featureCompatibilityVersion", "version": "7.0"}])
    (admin / "system.version.metadata.json").write_text(metadata_text("system.version", []))
    (root / "prelude.json").write_text('{"ServerVersion":"7.0.14","ToolVersion":"100.10.0"}')
    write_bson(root / "oplog.bson", [{"op": "n"}])
    return root


# --------------------------------------------------------------------------- mongodump trees


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_scan_mongodump_reads_the_tree(tmp_path, gz):
    root = write_dump(tmp_path / "mongodb", gz=gz)

    tree = scan_mongodump(root)

    assert sorted(tree) == ["admin", "legrimoire"]
    assert sorted(tree["legrimoire"]) == ["categories", "ingredients", "public_recipes", "recipes"]
    assert sorted(tree["admin"]) == ["system.version"]
    recipes = tree["legrimoire"]["recipes"]
    assert isinstance(recipes, CollectionDump)
    assert (recipes.database, recipes.name, recipes.gzipped) == ("legrimoire", "recipes", gz)
    assert recipes.bson_path == root / "legrimoire" / f"recipes.bson{'.gz' if gz else ''}"
    assert recipes.metadata_path == root / "legrimoire" / f"recipes.metadata.json{'.gz' if gz else ''}"
    assert len(recipes.uuid) == 32
    assert [(i.name, i.key, i.unique) for i in recipes.indexes] == [
        ("_id_", (("_id", 1),), False), ("title_1", (("title", 1),), False),
        ("created_at_-1", (("created_at", -1),), False), ("is_public_1", (("is_public", 1),), False),
        ("category_1", (("category", 1),), False), ("cuisine_1", (("cuisine", 1),), False)]
    off_id = tree["legrimoire"]["ingredients"].indexes[1]
    assert off_id == IndexSpec("off_id_1", (("off_id", 1),), True, {"v": 2})
    assert type(off_id.key[0][1]) is int
    view = tree["legrimoire"]["public_recipes"]
    assert view.bson_path is None and view.indexes[0].name == "_id_"
    assert count_bson(recipes.bson_path) == 30
    assert count_bson(tree["legrimoire"]["ingredients"].bson_path) == 12


def test_scan_mongodump_of_an_empty_or_missing_folder_is_empty(tmp_path):
    (tmp_path / "mongodb").mkdir()
    assert scan_mongodump(tmp_path / "mongodb") == {}
    assert scan_mongodump(tmp_path / "absent") == {}


def test_collection_names_come_from_metadata_or_unescaped_file_names(tmp_path):
    db = tmp_path / "legrimoire"
    db.mkdir()
    write_bson(db / "odd%2Fname.bson", [{"a": 1}])
    (db / "odd%2Fname.metadata.json").write_text(metadata_text("odd/name", []))
    write_bson(db / "with%20space.bson", [{"a": 1}, {"a": 2}])
    write_bson(db / "x.metadata.bson", [{"a": 1}])  # a collection literally named "x.metadata"

    tree = scan_mongodump(tmp_path)["legrimoire"]

    assert sorted(tree) == ["odd/name", "with space", "x.metadata"]
    assert tree["with space"].metadata_path is None and tree["with space"].indexes == ()
    assert count_bson(tree["with space"].bson_path) == 2


def test_old_shell_doubles_and_special_index_types(tmp_path):
    path = tmp_path / "recipes.metadata.json"
    path.write_text(json.dumps({"indexes": [
        {"v": {"$numberInt": "2"}, "key": {"title": {"$numberDouble": "1.0"}}, "name": "title_1",
         "unique": True, "sparse": True},
        {"v": {"$numberInt": "2"}, "key": {"title": "text", "weights": {"$numberLong": "-1"}}, "name": "t"},
        {"v": 2, "key": {"created_at": {"$numberInt": "1"}}, "name": "ttl", "expireAfterSeconds": 3600,
         "partialFilterExpression": {"is_public": True}},
    ], "collectionName": "recipes"}))
    db = tmp_path / "db"
    db.mkdir()
    path.rename(db / path.name)

    indexes = scan_mongodump(tmp_path)["db"]["recipes"].indexes

    assert indexes[0] == IndexSpec("title_1", (("title", 1),), True, {"v": 2, "sparse": True})
    assert indexes[1].key == (("title", "text"), ("weights", -1))
    assert indexes[2].options == {"v": 2, "expireAfterSeconds": 3600,
                                  "partialFilterExpression": {"is_public": True}}


def test_both_plain_and_gzip_files_for_one_collection_fail(tmp_path):
    db = tmp_path / "legrimoire"
    db.mkdir()
    write_bson(db / "recipes.bson", [{"a": 1}])
    write_bson(db / "recipes.bson.gz", [{"a": 1}])
    with pytest.raises(DrillFailure, match="both recipes.bson and recipes.bson.gz"):
        scan_mongodump(tmp_path)


@pytest.mark.parametrize(("text", "reason"), [
    ('{"indexes": [', "malformed metadata JSON"),
    ('{"indexes": [{"v": {"$numberInt": "two"}}]}', "malformed metadata JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"indexes": {"a": 1}}', "'indexes' is not a list"),
    ('{"indexes": [{"name": "x_1"}]}', "index #0 in metadata (x_1) has no key"),
    ('{"indexes": [{"key": {"x": 1}}]}', "index #0 in metadata has no name"),
    ('{"indexes": [{"key": {"x": true}, "name": "x"}]}', "boolean key direction"),
    ('{"indexes": [{"key": {"x": null}, "name": "x"}]}', "unusable key direction"),
])
def test_malformed_metadata_fails_naming_the_file(tmp_path, text, reason):
    db = tmp_path / "legrimoire"
    db.mkdir()
    (db / "recipes.metadata.json").write_text(text)
    with pytest.raises(DrillFailure, match=re.escape(reason)) as caught:
        scan_mongodump(tmp_path)
    assert str(db / "recipes.metadata.json") in str(caught.value)


def test_read_metadata_of_damaged_gzip_fails(tmp_path):
    path = tmp_path / "recipes.metadata.json.gz"
    path.write_bytes(gzip.compress(metadata_text("recipes", []).encode())[:-10])
    with pytest.raises(DrillFailure, match="truncated or corrupt"):
        read_metadata(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DrillFailure, match="not valid gzip"):
        read_metadata(path)
    with pytest.raises(DrillFailure, match="cannot read metadata"):
        read_metadata(tmp_path / "absent.metadata.json")


# --------------------------------------------------------------------------- BSON


@pytest.mark.parametrize("suffix", [".bson", ".bson.gz"])
def test_iter_raw_bson_round_trips_documents(tmp_path, suffix):
    documents = [recipe(i) for i in range(50)]
    documents.append({"_id": 1, "far_future": bson.DatetimeMS(2**62)})  # valid BSON, beyond datetime
    path = write_bson(tmp_path / f"recipes{suffix}", documents)

    raw = list(iter_raw_bson(path))

    assert len(raw) == 51 == count_bson(path)
    assert [bson.decode(doc) for doc in raw[:50]] == [bson.decode(bson.encode(d)) for d in documents[:50]]


def test_empty_bson_file_has_no_documents(tmp_path):
    path = tmp_path / "empty.bson"
    path.write_bytes(b"")
    assert count_bson(path) == 0


def test_truncated_bson_fails_at_the_start_of_the_torn_document(tmp_path):
    documents = [recipe(i) for i in range(3)]
    data = b"".join(bson.encode(d) for d in documents)
    last_start = len(data) - len(bson.encode(documents[-1]))
    path = tmp_path / "recipes.bson"
    path.write_bytes(data[:-7])

    with pytest.raises(DrillFailure, match=f"truncated mid-document at byte {last_start}") as caught:
        list(iter_raw_bson(path))
    assert str(path) in str(caught.value)

    path.write_bytes(data[: last_start + 2])
    with pytest.raises(DrillFailure, match=f"truncated mid-document at byte {last_start}: 2 stray bytes"):
        count_bson(path)


def test_truncated_gzip_bson_fails(tmp_path):
    path = write_bson(tmp_path / "recipes.bson.gz", [recipe(i) for i in range(200)])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DrillFailure, match="truncated"):
        count_bson(path)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda d: (3).to_bytes(4, "little") + d[4:], "invalid document length 3 at byte 0"),
    (lambda d: (2**30).to_bytes(4, "little") + d[4:], "invalid document length"),
    (lambda d: d[:-1] + b"\x01", "does not end with 0x00"),
    (lambda d: d[:4] + b"\x7f" + d[5:], "is not valid BSON"),  # unknown element type
])
def test_damaged_bson_fails(tmp_path, damage, reason):
    path = tmp_path / "recipes.bson"
    path.write_bytes(damage(bson.encode(recipe(0))))
    with pytest.raises(DrillFailure, match=reason):
        count_bson(path)


def test_invalid_utf8_in_a_string_fails(tmp_path):
    document = bytearray(bson.encode({"title": "pomme"}))
    document[document.index(b"pomme")] = 0xFF
    path = tmp_path / "recipes.bson"
    path.write_bytes(bytes(document))
    with pytest.raises(DrillFailure, match="is not valid BSON"):
        count_bson(path)


# --------------------------------------------------------------------------- JSON exports


def app_export(path: Path, records: list[dict]) -> Path:
    """What scripts/backup-production.sh's backend snippet writes."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(records, handle, indent=2, ensure_ascii=False, default=str)
    return path


def test_count_and_iter_the_apps_json_export(tmp_path):
    records = [{k: v for k, v in recipe(i).items() if k != "_id"} for i in range(40)]
    path = app_export(tmp_path / "recipes_export.json", records)

    assert count_export(path) == 40
    exported = list(iter_export(path))
    assert exported[3]["title"] == "Tarte aux pommes n°3"
    assert exported[3]["created_at"] == str(records[3]["created_at"])


def test_mongoexport_json_array(tmp_path):
    lines = [json_util.dumps(recipe(i)) for i in range(5)]
    path = tmp_path / "ingredients_export.json"
    path.write_text("[" + ",\n".join(lines) + "]\n")

    exported = list(iter_export(path))

    assert len(exported) == 5 and "$oid" in exported[0]["_id"]


def test_empty_array_and_bom(tmp_path):
    path = tmp_path / "e.json"
    path.write_text("  [ ]\n")
    assert count_export(path) == 0
    path.write_bytes(b"\xef\xbb\xbf[{}]")
    assert count_export(path) == 1


def test_big_export_streams_across_chunk_boundaries(tmp_path):
    """Over several 1 MiB chunks, with numbers and long strings cut at every kind of place."""
    values: list = []
    for i in range(60_000):
        values.append(10**(i % 30) + i if i % 3 else {"t": "é" * (i % 97), "n": i * 1.5, "ok": i % 2 == 0})
    path = tmp_path / "big.json"
    path.write_text(json.dumps(values, ensure_ascii=False))
    assert path.stat().st_size > 3 * 1024 * 1024

    assert count_export(path) == len(values)
    objects = [v for v in values if isinstance(v, dict)]
    path2 = tmp_path / "objects.json"
    path2.write_text(json.dumps(objects + [{"long": "x" * 3_000_000}], ensure_ascii=False))
    read = list(iter_export(path2))
    assert read[:-1] == objects and len(read[-1]["long"]) == 3_000_000


@pytest.mark.parametrize(("text", "reason"), [
    ("", "the file is empty"),
    ("   \n", "the file is empty"),
    ('{"a": 1}', r"expected a JSON array \('\['\)"),
    ('[{"a": 1},]', "malformed JSON at character 10"),
    ('[{"a": 1}, {"b": 2}', "ends before the closing"),
    ('[{"a": 1}, {"b": ', "malformed JSON"),
    ('[{"a": 1}, ', "ends inside the array"),
    ('[{"a": 1} {"b": 2}]', "expected ',' or ']' at character 10"),
    ('[{"a": 1}] trailing', "unexpected 't' after the closing"),
    ('[{"a": "unterminated}]', "Unterminated string"),
    ("[" + "1" * 5000 + "]", "unreadable JSON value"),
    ("[" + "[" * 100_000 + "]" * 100_000 + "]", "unreadable JSON value"),
])
def test_malformed_export_fails_naming_the_file(tmp_path, text, reason):
    path = tmp_path / "recipes_export.json"
    path.write_text(text)
    with pytest.raises(DrillFailure, match=reason) as caught:
        count_export(path)
    assert str(path) in str(caught.value)


def test_export_with_a_non_object_element(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[{"a": 1}, 2]')
    assert count_export(path) == 2
    with pytest.raises(DrillFailure, match="element #1 is a int, not a JSON object"):
        list(iter_export(path))


def test_export_that_is_not_utf8(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'[{"a": "\xff"}]')
    with pytest.raises(DrillFailure, match="not UTF-8"):
        count_export(path)


def test_missing_export_fails(tmp_path):
    with pytest.raises(DrillFailure, match="cannot read the export"):
        count_export(tmp_path / "absent.json")


# --------------------------------------------------------------------------- PostgreSQL dumps


@pytest.fixture(scope="module")
def pg_dumps(tmp_path_factory) -> dict[str, Path]:
    """Real dumps of a small le_grimoire database from a throwaway PostgreSQL, in every format."""
    from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir

    if find_bindir() is None:
        pytest.skip("PostgreSQL binaries not installed")
    import psycopg

    out = tmp_path_factory.mktemp("pgdumps")
    out.chmod(0o777)
    dumps = {"custom": out / "database.backup", "plain": out / "database.sql", "tar": out / "database.tar",
             "directory": out / "database.dir"}
    with LocalPostgres(run_id=new_run_id()) as pg:
        pg.create_database("le_grimoire")
        with psycopg.connect(pg.conninfo("le_grimoire"), autocommit=True) as conn:
            conn.execute("CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE)")
            conn.execute("INSERT INTO users (email) VALUES ('a@example.org'), ('b@example.org')")
        for kind, flag in (("custom", "c"), ("plain", "p"), ("tar", "t"), ("directory", "d")):
            done = pg.run_tool("pg_dump", ["-F", flag, "-b", "-f", "{out}", "le_grimoire"], {"out": dumps[kind]})
            assert done.returncode == 0, done.stderr
    return dumps


def test_pg_dump_format_of_real_dumps(pg_dumps):
    assert pg_dump_format(pg_dumps["custom"]) == "custom"
    assert pg_dump_format(pg_dumps["plain"]) == "plain"


def test_pg_dump_of_other_formats_fails(pg_dumps):
    with pytest.raises(DrillFailure, match=r"a tar archive \(pg_dump -F t\?\)"):
        pg_dump_format(pg_dumps["tar"])
    with pytest.raises(DrillFailure, match="archive format 3, not custom"):
        pg_dump_format(pg_dumps["directory"] / "toc.dat")


@pytest.mark.parametrize(("offset", "value", "reason"), [
    (5, 2, "archive version 2"),
    (8, 0, "integer size 0"),
    (9, 99, "integer size 4 / offset size 99"),
    (10, 3, "archive format 3"),
])
def test_damaged_custom_header_fails(pg_dumps, tmp_path, offset, value, reason):
    data = bytearray(pg_dumps["custom"].read_bytes())
    data[offset] = value
    path = tmp_path / "database.backup"
    path.write_bytes(bytes(data))
    with pytest.raises(DrillFailure, match=f"damaged pg_dump header: {reason}") as caught:
        pg_dump_format(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "is empty"), (b"PGDM", "neither"), (b"PGDMP\x01", "ends inside the header"),
    (b"\x00\x01binary junk", "neither"),
])
def test_other_files_are_not_pg_dumps(tmp_path, content, reason):
    path = tmp_path / "database.backup"
    path.write_bytes(content)
    with pytest.raises(DrillFailure, match=reason):
        pg_dump_format(path)
    with pytest.raises(DrillFailure, match="cannot read the PostgreSQL dump"):
        pg_dump_format(tmp_path / "absent.backup")
