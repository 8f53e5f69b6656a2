"""mongorestore's stderr read for its real error, and one damaged collection never taking the others down.

No mongorestore exists here, so its stderr is replayed from captured texts in mongo-tools' own
formats (``Failed: %v`` from main, ``continuing through error: %v``, ``error restoring from %v: %v``,
``error creating indexes for %s: %v``, ``invalid BSONSize: %v bytes``, the ``index: &idx.IndexDocument``
dump logged before each index build). The real-server path is tested in test_engine_docker.py
(skipped where no MongoDB image exists).
"""

from __future__ import annotations

import shutil

import pytest

from grimoire_drill.dump import scan_mongodump
from grimoire_drill.engines.base import ToolResult
from grimoire_drill.engines.simulated_mongo import SimulatedMongo
from grimoire_drill.errors import HarnessError
from grimoire_drill.restore.mongo import load_collection, restore_mongo
from grimoire_drill.restore.mongo_tool_log import failed_documents, tool_errors

TS = "2026-12-02T02:00:11.412+0000\t"
INDEX_NOISE = (TS + 'index: &idx.IndexDocument{Options:primitive.M{"name":"off_id_1", "unique":true, "v":2}, '
               'Key:primitive.D{primitive.E{Key:"off_id", Value:1}}, PartialFilterExpression:primitive.D(nil)}')
DUPLICATE_INDEX = "\n".join([
    TS + "preparing collections to restore from",
    TS + "reading metadata for legrimoire.ingredients from /dump/legrimoire/ingredients.metadata.json",
    TS + "restoring legrimoire.ingredients from /dump/legrimoire/ingredients.bson",
    TS + "finished restoring legrimoire.ingredients (220 documents, 0 failures)",
    TS + "restoring indexes for collection legrimoire.ingredients from metadata",
    INDEX_NOISE,
    TS + "Failed: legrimoire.ingredients: error creating indexes for legrimoire.ingredients: createIndex error: "
         "Index build failed: 6a1c0d6e-3d4b-4d7a-9a5e-0b8c1f2e3a4b: Collection legrimoire.ingredients "
         "( 9c1f6b1e-7c55-4a3e-8f0e-2b6d9c4e1a7f ) :: caused by :: E11000 duplicate key error collection: "
         'legrimoire.ingredients index: off_id_1 dup key: { off_id: "3017620422003" }',
    TS + "220 document(s) restored successfully. 0 document(s) failed to restore.",
])
TRUNCATED_BSON = "\n".join([
    TS + "preparing collections to restore from",
    TS + "reading metadata for legrimoire.recipes from /dump/legrimoire/recipes.metadata.json",
    TS + "restoring legrimoire.recipes from /dump/legrimoire/recipes.bson",
    TS + "finished restoring legrimoire.recipes (11 documents, 0 failures)",
    TS + "Failed: legrimoire.recipes: error restoring from /dump/legrimoire/recipes.bson: reading bson input: "
         "invalid BSONSize: 1852142592 bytes",
    TS + "11 document(s) restored successfully. 0 document(s) failed to restore.",
])
DUPLICATE_INSERT = "\n".join([
    TS + "restoring legrimoire.categories from /dump/legrimoire/categories.bson",
    TS + "continuing through error: E11000 duplicate key error collection: legrimoire.categories index: _id_ "
         "dup key: { _id: ObjectId('6569a1f0c3b2a1d4e5f60718') }",
    TS + "finished restoring legrimoire.categories (39 documents, 1 failure)",
    TS + "39 document(s) restored successfully. 1 document(s) failed to restore.",
])
UNREACHABLE = TS + ("Failed: error connecting to db server: server selection error: server selection timeout, "
                    "current topology: { Type: Single, Servers: [{ Addr: localhost:27017, Type: Unknown }] }")


def test_the_e11000_leads_and_the_index_dump_is_not_an_error():
    errors = tool_errors(DUPLICATE_INDEX, 300)
    assert errors[0].startswith("E11000 duplicate key error collection: legrimoire.ingredients index: off_id_1")
    assert '3017620422003' in errors[0]
    assert not any("IndexDocument" in line for line in errors)


def test_invalid_bson_leads_without_mongorestores_wrapping():
    (error,) = tool_errors(TRUNCATED_BSON, 300)
    assert error == "reading bson input: invalid BSONSize: 1852142592 bytes"


def test_continuing_through_error_and_the_failed_count():
    (error,) = tool_errors(DUPLICATE_INSERT, 300)
    assert error.startswith("E11000 duplicate key error collection: legrimoire.categories index: _id_")
    assert failed_documents(DUPLICATE_INSERT) == 1 and failed_documents(TRUNCATED_BSON) == 0


def test_a_hostile_stderr_is_bounded():
    flood = "\n".join([TS + "continuing through error: E11000 dup key: { k: \"" + "x" * 100_000 + "\" }"] * 50
                      + [TS + "Failed: " + "\x1b[31m" + "y" * 10_000])
    errors = tool_errors(flood, 200)
    assert all(len(line) <= 400 for line in errors) and len(errors) <= 2
    assert not any("\x1b" in line for line in errors)


class ReplayedMongorestore(SimulatedMongo):
    """The in-process store, with a mongorestore whose runs are replayed: a collection named in
    ``broken`` fails with that captured stderr (after ``loaded`` of its documents), the others load."""

    def __init__(self, layout, broken: dict[str, tuple[str, bool]]):
        super().__init__(run_id="replayed")
        self.layout, self.broken, self.runs = layout, broken, []

    def has_tool(self, name: str) -> bool:
        return name == "mongorestore"

    def run_tool(self, tool, args, files, timeout=None):
        (include,) = [arg.split("=", 1)[1] for arg in args if arg.startswith("--nsInclude=")]
        assert "--stopOnError" in args and files["dump"].is_dir()
        self.runs.append(include)
        db, _, name = include.partition(".")
        stderr, loads = self.broken.get(include, ("", True))
        dump = self.layout[db][name]
        if loads:
            restored = load_collection(self.client(), dump, db, raw_capable=False)
            if not stderr and restored.errors:
                stderr = TS + "Failed: " + restored.errors[0]
        return ToolResult(("mongorestore", *args), 1 if stderr else 0, "", stderr)


@pytest.mark.parametrize("broken, stderr, leads", [
    ("legrimoire.recipes", TRUNCATED_BSON, "legrimoire.recipes: mongorestore: reading bson input: invalid BSONSize"),
    ("legrimoire.ingredients", DUPLICATE_INDEX, "legrimoire.ingredients: mongorestore: E11000 duplicate key"),
])
def test_one_damaged_collection_does_not_take_the_others_down(clean_tree, tmp_path, broken, stderr, leads):
    root = tmp_path / "mongodb"
    shutil.copytree(clean_tree / "mongodb", root)
    layout = scan_mongodump(root)
    with ReplayedMongorestore(layout, {broken: (stderr, broken != "legrimoire.recipes")}) as engine:
        result = restore_mongo(engine, root, layout, skip=("admin",), jobs=2)
    assert result.method == "mongorestore"
    assert sorted(engine.runs) == ["legrimoire.categories", "legrimoire.ingredients", "legrimoire.recipes"]
    by_name = {c.namespace: c for c in result.collections}
    (error,) = result.all_errors()
    assert error.startswith(leads), error
    assert "IndexDocument" not in error
    for namespace, restored in by_name.items():
        assert bool(restored.errors) == (namespace == broken)
        if namespace != broken:
            assert restored.documents > 0  # the others restored in full
    assert ("IndexDocument" in result.output_tail) == (broken == "legrimoire.ingredients")  # the noise: evidence only


def test_an_unreachable_server_is_the_harness_not_the_backup(clean_tree, tmp_path):
    root = tmp_path / "mongodb"
    shutil.copytree(clean_tree / "mongodb", root)
    layout = scan_mongodump(root)
    with ReplayedMongorestore(layout, {"legrimoire.categories": (UNREACHABLE, False)}) as engine:
        with pytest.raises(HarnessError, match="could not reach the MongoDB server"):
            restore_mongo(engine, root, layout, skip=("admin",), jobs=1)
