"""References between documents (grimoire_drill/references.py): one sorted walk of both sides, on the server.

Run on the simulated engine (mongomock, what the drill uses here) and, when GRIMOIRE_DRILL_MONGO_URI
names a throwaway server, on a real MongoDB in a scratch database dropped afterwards.
"""

from __future__ import annotations

import os
from dataclasses import replace

import mongomock
import pytest
from bson import ObjectId

from grimoire_drill.engines.base import new_run_id
from grimoire_drill.expectations import ExpectedReference, load_expectations
from grimoire_drill.limits import Limits
from grimoire_drill.references import count_dangling
from grimoire_drill.sample import data

PARENTS = ExpectedReference("categories", "parents", "categories", "off_id", required=True)


@pytest.fixture(params=["simulated", "real"])
def database(request):
    if request.param == "simulated":
        yield mongomock.MongoClient()["legrimoire"]
        return
    uri = os.environ.get("GRIMOIRE_DRILL_MONGO_URI")
    if not uri:
        pytest.skip("GRIMOIRE_DRILL_MONGO_URI is not set (no MongoDB server here; set it to a throwaway server's URI)")
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    name = f"grimoire_drill_test_{new_run_id()}"
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


def _sample_categories(count: int = 40) -> list[dict]:
    """The sample generator's categories: the clean backup's own documents."""
    from datetime import datetime, timezone

    counts = data.SampleCounts.for_scale(1)
    counts = replace(counts, categories=count)
    return [data.category_doc(0, index, counts, datetime(2026, 12, 1, 2, tzinfo=timezone.utc)) for index in range(count)]


def test_the_clean_sample_categories_resolve(database):
    database.categories.insert_many(_sample_categories())
    counted = count_dangling(database, PARENTS, Limits())
    assert counted.documents == 40 and counted.references > 0 and counted.dangling == 0


def test_a_dangling_parent_is_counted_and_named(database):
    docs = _sample_categories()
    docs[-1]["parents"] = ["en:discontinued-foods"]
    docs[5]["parents"] = ["en:vegetables", "en:nowhere", "en:fruits"]
    database.categories.insert_many(docs)
    counted = count_dangling(database, PARENTS, Limits())
    assert counted.dangling == 2 and counted.queries == 3
    assert {value for _, value in counted.examples} == {"en:discontinued-foods", "en:nowhere"}
    assert (docs[-1]["off_id"], "en:discontinued-foods") in counted.examples


def test_examples_are_bounded_and_the_rest_counted(database):
    database.categories.insert_many([{"off_id": f"en:c{i}", "parents": [f"en:gone-{i}"]} for i in range(50)])
    counted = count_dangling(database, PARENTS, Limits(max_reference_examples=3))
    assert counted.dangling == 50 and len(counted.examples) == 3


def test_hostile_values_are_dangling_not_a_crash(database):
    """Not a string, a nested list, a string longer than a batch, a control character, a scalar."""
    long = "en:" + "x" * 5000
    database.categories.insert_many([
        {"off_id": "en:root", "parents": []},
        {"off_id": "en:a", "parents": [{"$where": "sleep(100000)"}, ["en:root"], 7, None]},
        {"off_id": "en:b", "parents": [long]},
        {"off_id": "en:c\x1b[31m", "parents": ["en:\x00evil"]},
        {"off_id": "en:d", "parents": "en:root"},          # a string where a list belongs: one reference
        {"off_id": ObjectId(), "parents": ["en:root"]},
        {"_id": "no-off-id", "parents": ["en:gone"]},
    ])
    limits = Limits(max_quoted_chars=40)
    counted = count_dangling(database, PARENTS, limits)
    assert counted.not_strings == 4                          # the dict, the nested list, 7, None
    assert counted.dangling == 4 + 3                         # ... and the long one, the \x00 one, en:gone
    shown = " ".join(doc + value for doc, value in counted.examples)
    assert "\x1b" not in shown and "\x00" not in shown and len(max(shown.split(), key=len)) < 100
    assert any(doc == "no-off-id" for doc, _ in counted.examples)


def test_many_targets_sharing_a_key_come_back_as_one(database):
    """No unique index (a backup may lack it): the server groups, so the answer stays one row per value."""
    database.categories.insert_many([{"off_id": "en:dup", "parents": []} for _ in range(300)])
    database.categories.insert_one({"off_id": "en:child", "parents": ["en:dup"]})
    counted = count_dangling(database, PARENTS, Limits())
    assert counted.dangling == 0 and counted.references == 1


def test_the_packaged_expectations_say_which_references_are_required():
    references = {r.check_id: r for r in load_expectations().references}
    assert references["categories.parents"].required and references["categories.parents"].target == "categories.off_id"
    assert not references["ingredients.parents"].required


def test_a_malformed_reference_entry_is_a_harness_error(tmp_path):
    from grimoire_drill.errors import HarnessError
    from grimoire_drill.expectations import packaged_path

    path = tmp_path / "expectations.toml"
    path.write_text(packaged_path().read_text() + '\n[[references]]\nfrom = "categories"\nto = "x.y"\nrequired = true\n')
    with pytest.raises(HarnessError, match="collection.field"):
        load_expectations(path)


def test_the_walk_is_linear_however_many_targets_and_sources(database):
    """10,000 sources against 10,000 targets: three queries, one pass (a lookup per batch scanned every target)."""
    database.ingredients.insert_many([{"off_id": f"en:i{i:05d}", "parents": [f"en:i{(i * 7) % 10_000:05d}",
                                                                           f"en:gone{i % 3}"]} for i in range(10_000)])
    reference = ExpectedReference("ingredients", "parents", "ingredients", "off_id", required=False)
    counted = count_dangling(database, reference, Limits(max_reference_examples=2))
    assert counted.documents == 10_000 and counted.references == 20_000
    assert counted.dangling == 10_000 and counted.queries == 3 and len(counted.examples) == 2


def test_targets_of_other_types_name_nothing_and_strings_still_match(database):
    database.categories.insert_many([{"off_id": ["en:a", "en:b"], "parents": []}, {"off_id": 5, "parents": []},
                                     {"off_id": "en:c", "parents": ["en:a", "en:c", 5]}])
    counted = count_dangling(database, PARENTS, Limits())
    assert (counted.references, counted.dangling, counted.not_strings) == (3, 2, 1)


@pytest.mark.parametrize("build", [
    lambda: _sample_categories(),
    lambda: [{"off_id": "en:root", "parents": []},
             {"off_id": "en:a", "parents": [{"$where": "x"}, ["en:root"], 7, None, "en:gone", "en:root"]},
             {"off_id": "en:d", "parents": "en:root"}, {"off_id": "en:e", "parents": None},
             {"_id": "no-off-id", "parents": ["en:gone", "en:a"]}, {"off_id": ["en:x"], "parents": []}],
])
def test_the_in_process_walk_counts_what_the_server_walk_counts(build):
    """The simulated store is walked in process (no copying find); both walks must give the same count."""
    from grimoire_drill.references import count_dangling_in_process

    database = mongomock.MongoClient()["legrimoire"]
    docs = build()
    database.categories.insert_many([dict(doc) for doc in docs])
    served = count_dangling(database, PARENTS, Limits())
    in_process = count_dangling_in_process(lambda name: iter(database[name].find()), PARENTS, Limits())
    assert (in_process.documents, in_process.references, in_process.dangling, in_process.not_strings) == (
        served.documents, served.references, served.dangling, served.not_strings)
    assert sorted(in_process.examples) == sorted(served.examples)
