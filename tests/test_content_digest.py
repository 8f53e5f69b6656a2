"""Content digests on real bytes: order-independent, keyed the same on both sides, bounded on hostile input."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tracemalloc
import uuid
from datetime import datetime

import bson
import pytest
from bson import json_util

from grimoire_drill.content_digest import (
    DocumentDigester,
    bucket_of,
    Sampler,
    bson_id_key,
    count_and_digest_bson,
    first_difference,
    id_key_of,
    keyed_bson,
    shown_id,
)
from grimoire_drill.export_content import compare_export
from grimoire_drill.limits import Limits
from grimoire_drill.pg_source import copy_columns, copy_content, hashed_lines

IDS = [bson.ObjectId(), "text id", 42, bson.Int64(7), 2.5, {"a": 1, "b": [1, 2]}, bson.Binary(b"\x00\x01", 0),
       uuid.uuid4(), datetime(2024, 1, 2, 3, 4, 5), True, None, [1, 2], bson.Decimal128("1.25")]


def _raw(document: dict) -> bytes:
    return bson.encode(document, codec_options=bson.CodecOptions(uuid_representation=4))


@pytest.mark.parametrize("value", IDS, ids=[type(v).__name__ for v in IDS])
def test_a_raw_id_is_the_decoded_id_whatever_its_type(value):
    first = _raw({"_id": value, "title": "x"})
    later = _raw({"title": "x", "_id": value})            # _id not first: the fallback decode
    decoded = bson.decode(first, codec_options=bson.CodecOptions(uuid_representation=4))
    assert bson_id_key(first) == bson_id_key(later) == id_key_of(decoded)
    assert shown_id(bson_id_key(first)) == repr(decoded["_id"])


def test_the_digest_ignores_order_and_sees_one_changed_byte(tmp_path):
    documents = [_raw({"_id": n, "title": f"recette {n}"}) for n in range(200)]
    path = tmp_path / "recipes.bson"
    path.write_bytes(b"".join(documents))
    count, digest = count_and_digest_bson(path, Limits(), Sampler())
    shuffled = DocumentDigester(Sampler())
    for raw in random.Random(3).sample(documents, len(documents)):
        shuffled.add_raw(raw)
    assert count == 200 and shuffled.result() == digest
    changed = DocumentDigester(Sampler())
    for raw in documents[:-1] + [_raw({"_id": 199, "title": "recette 198"})]:
        changed.add_raw(raw)
    assert changed.result().count == digest.count and changed.result() != digest


def test_the_keyed_pass_names_the_changed_the_missing_and_the_extra(tmp_path):
    documents = [_raw({"_id": n, "v": n}) for n in range(1000)]
    path = tmp_path / "c.bson"
    path.write_bytes(b"".join(documents))
    sampler = Sampler()

    def restored(edit):
        def side():
            for raw in edit(list(documents)):
                yield bson_id_key(raw), hashlib.sha256(raw).digest()
        return side

    def changed(docs):
        docs[637] = _raw({"_id": 637, "v": -1})
        return docs[::-1]
    found = first_difference(lambda: keyed_bson(path, Limits(), sampler), restored(changed), expected=1000, max_keys=100)
    assert found.kind == "changed" and shown_id(found.key) == "637" and found.buckets == 40
    found = first_difference(lambda: keyed_bson(path, Limits(), sampler), restored(lambda d: d[:500] + d[501:]),
                             expected=1000, max_keys=100)
    assert found.kind == "missing" and shown_id(found.key) == "500"
    found = first_difference(lambda: keyed_bson(path, Limits(), sampler),
                             restored(lambda d: d + [_raw({"_id": "new", "v": 0})]), expected=1001, max_keys=100)
    assert found.kind == "extra" and shown_id(found.key) == "'new'"


def test_a_bucket_past_the_limit_stops_collecting_and_says_so():
    """Keys that pile into one bucket (ground here against a known salt) never grow the table past the limit."""
    salt, buckets = b"known salt", 80            # 200 items, max_keys 10: 80 buckets
    keys = [k for k in (str(n).encode() for n in range(100_000)) if bucket_of(k, buckets, salt) == 0][:200]
    assert len(keys) == 200

    def side(changed: bool):
        def items():
            for n, key in enumerate(keys):
                yield key, hashlib.sha256(key + (b"!" if changed and n == 150 else b"")).digest()
        return items
    found = first_difference(side(False), side(True), expected=200, max_keys=10, salt=salt)
    assert found is not None and found.key is None and "max_keyed_documents" in found.reason
    named = first_difference(side(False), side(True), expected=200, max_keys=10)  # a fresh random salt
    assert named is not None and named.key == keys[150]


def test_sampling_is_deterministic_and_near_its_fraction():
    keys = [str(n).encode() for n in range(20000)]
    kept = [k for k in keys if Sampler(0.25).keeps(k)]
    assert kept == [k for k in keys if Sampler(0.25).keeps(k)]
    assert 4500 < len(kept) < 5500


def test_copy_blocks_give_columns_rows_and_a_digest_of_each_whole_row():
    dump = (b'SET x = 1;\nCOPY public.users (id, "na""me", "with space") FROM stdin;\n1\ta\tb\n2\tc\td\n\\.\n'
            b"COPY public.empty (id) FROM stdin;\n\\.\n")
    tables = copy_content(hashed_lines(io.BytesIO(dump), 4096), Sampler())
    assert tables["users"].columns == ("id", 'na"me', "with space") and tables["users"].rows == 2
    expected = (int.from_bytes(hashlib.sha256(b"1\ta\tb").digest(), "big")
                + int.from_bytes(hashlib.sha256(b"2\tc\td").digest(), "big")) % (1 << 256)
    assert tables["users"].digest.value == expected
    assert tables["empty"].rows == 0 and tables["empty"].digest.count == 0
    assert copy_columns(b"COPY public.t (a, b FROM stdin;", len(b"COPY public.t")) is None


def test_a_giant_row_is_hashed_whole_without_holding_it():
    """A 64 MiB COPY row: its digest is the sha256 of all of it, read in bounded pieces."""
    body = b"2\t" + b"x" * (64 << 20)
    stream = io.BytesIO(b"COPY public.users (id, name) FROM stdin;\n" + body + b"\n\\.\n")
    del body
    tracemalloc.start()
    try:
        tables = copy_content(hashed_lines(stream, 4096), Sampler())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = hashlib.sha256(b"2\t")
    whole.update(b"x" * (64 << 20))
    assert tables["users"].rows == 1 and tables["users"].digest.value == int.from_bytes(whole.digest(), "big")
    assert peak < 8 << 20, f"{peak:,} bytes held to hash a 64 MiB row"


def test_a_mongoexport_export_is_matched_by_id_and_names_the_field(tmp_path):
    documents = [{"_id": bson.ObjectId(), "title": f"r{n}", "created_at": datetime(2024, 5, n + 1, 12, 0, 0, 123000),
                  "servings": bson.Int64(n)} for n in range(5)]
    dump = tmp_path / "recipes.bson"
    dump.write_bytes(b"".join(bson.encode(d) for d in documents))
    export = tmp_path / "recipes_export.json"
    elements = [json.loads(json_util.dumps(d, json_options=json_util.RELAXED_JSON_OPTIONS)) for d in documents]
    export.write_text(json.dumps(elements))
    same = compare_export(export, dump, "recipes", Limits())
    assert same.mismatch is None and same.compared == 5 and same.keyed_by == "_id"
    elements[3]["servings"] = 99
    export.write_text(json.dumps(elements))
    changed = compare_export(export, dump, "recipes", Limits())
    assert changed.field == "servings" and repr(documents[3]["_id"]) in changed.mismatch
    elements[3]["servings"] = 3
    elements[2], elements[3] = elements[3], elements[2]
    export.write_text(json.dumps(elements))
    moved = compare_export(export, dump, "recipes", Limits())
    assert moved.field == "_id" and moved.position == 2


def test_the_count_child_compares_each_export_with_its_dump_in_the_same_parse(clean_tree, tmp_path):
    """In the background child (as for exports of 16 MB and more) and in place, the same answer."""
    import shutil

    from grimoire_drill.engines.base import new_run_id
    from grimoire_drill.export_counts import ExportCounts

    tree = tmp_path / clean_tree.name
    shutil.copytree(clean_tree, tree)
    recipes = tree / "recipes_export.json"
    objects = json.loads(recipes.read_text(encoding="utf-8"))
    objects[2]["servings"] = 999
    recipes.write_text(json.dumps(objects, indent=2, ensure_ascii=False), encoding="utf-8")
    (tree / "mongodb" / "legrimoire" / "ingredients.bson").write_bytes(b"\x05\x00")   # a torn dump
    exports = [recipes, tree / "ingredients_export.json"]
    dumps = {recipes: (tree / "mongodb" / "legrimoire" / "recipes.bson", "recipes"),
             exports[1]: (tree / "mongodb" / "legrimoire" / "ingredients.bson", "ingredients")}
    for background in (0, 1 << 40):
        counts = ExportCounts(exports, new_run_id(), background_from_bytes=background, dumps=dumps).start()
        try:
            assert counts.in_background == (background == 0)
            assert counts.count(recipes) == len(objects) and counts.count(exports[1]) > 0
            changed = counts.content(recipes)
            assert changed.field == "servings" and changed.position == 2 and changed.compared == 2
            with pytest.raises(Exception, match="ingredients.bson|truncated"):
                counts.content(exports[1])
        finally:
            counts.close()
