"""MongoDB after restore: what init-db.sh guarantees (collections, indexes) and what the data must honour."""

import pytest

from grimoire_drill.text import quote


def _dump_has(drill, expectations, collection):
    return collection in drill.mongo_layout().get(expectations.mongo_database, {})


@pytest.mark.check("mongodb.restore")
def test_mongodb_restored_without_error(drill, evidence):
    result = drill.mongo_restore()
    errors = result.all_errors()
    evidence.data.update(method=result.method, documents=result.documents, seconds=round(result.seconds, 3),
                         skipped_databases=list(result.skipped_databases), errors=errors[:20])
    assert not errors, f"MongoDB restore reported {len(errors)} error(s); first: {errors[0]}"
    evidence.message = (f"{result.documents:,} documents in {len(result.collections)} collections restored via "
                        f"{result.method}" + (f"; skipped {', '.join(result.skipped_databases)}" if result.skipped_databases else ""))


@pytest.mark.check("mongodb.collection")
def test_collection_exists(drill, expectations, collection, evidence):
    db = drill.mongo_database(expectations.mongo_database)
    present = db.list_collection_names()
    evidence.data.update(database=expectations.mongo_database, present=sorted(present))
    assert collection in present, (
        f"{expectations.mongo_database}.{collection}: collection missing after restore "
        f"({'absent from the dump' if not _dump_has(drill, expectations, collection) else 'in the dump but not restored'})")
    evidence.message = f"{expectations.mongo_database}.{collection} exists"


@pytest.mark.check("mongodb.index")
def test_expected_index(drill, expectations, expected_index, evidence):
    db = drill.mongo_database(expectations.mongo_database)
    coll = expected_index.collection
    info = db[coll].index_information()
    wanted = [list(pair) for pair in expected_index.key]
    matches = {name: spec for name, spec in info.items() if [list(p) for p in spec["key"]] == wanted}
    evidence.data.update(collection=coll, expected_key=wanted, expected_unique=expected_index.unique,
                         restored_indexes={n: [list(p) for p in s["key"]] for n, s in info.items()})
    assert matches, f"{expectations.mongo_database}.{coll}: index {expected_index.name} {wanted} missing (init-db.sh creates it)"
    name, spec = next(iter(matches.items()))
    assert bool(spec.get("unique", False)) == expected_index.unique, (
        f"{expectations.mongo_database}.{coll}: index {name} has unique={bool(spec.get('unique', False))}, "
        f"init-db.sh creates it with unique={expected_index.unique}")
    evidence.message = f"{expectations.mongo_database}.{coll}.{name}" + (" (unique)" if expected_index.unique else "")


@pytest.mark.check("mongodb.indexes_as_dumped")
def test_indexes_match_dump(drill, expectations, collection, evidence):
    layout = drill.mongo_layout().get(expectations.mongo_database, {})
    if collection not in layout:
        pytest.skip(f"{expectations.mongo_database}.{collection} not in the dump (reported by mongodb.collection)")
    dumped = {i.name for i in layout[collection].indexes}
    expected = {i.name for i in expectations.indexes if i.collection == collection} | {"_id_"}
    restored = set(drill.mongo_database(expectations.mongo_database)[collection].index_information())
    evidence.data.update(dumped=sorted(dumped), restored=sorted(restored), expected=sorted(expected))
    assert dumped <= restored, f"{expectations.mongo_database}.{collection}: dumped indexes not restored: {sorted(dumped - restored)}"
    extra = dumped - expected
    assert not extra, (f"{expectations.mongo_database}.{collection}: index(es) {sorted(extra)} in the dump but not in "
                       "init-db.sh — update drills/expectations.toml or remove them from production")
    evidence.message = f"{expectations.mongo_database}.{collection}: {len(restored)} indexes, as dumped and as init-db.sh defines"


@pytest.mark.check("mongodb.unique")
def test_unique_keys_are_unique(drill, expectations, unique_index, evidence):
    db = drill.mongo_database(expectations.mongo_database)
    fields = [f for f, _ in unique_index.key]
    wanted = [list(pair) for pair in unique_index.key]
    enforcing = [name for name, spec in db[unique_index.collection].index_information().items()
                 if spec.get("unique") and [list(p) for p in spec["key"]] == wanted]
    if enforcing:
        # the restored server built a unique index over every document: it cannot hold a duplicate
        evidence.data.update(collection=unique_index.collection, key=fields, enforced_by=enforcing[0])
        evidence.message = (f"{expectations.mongo_database}.{unique_index.collection}.{'+'.join(fields)}: no duplicates "
                            f"(the restored unique index {enforcing[0]} was built over every document)")
        return
    group_id = {f.replace(".", "_"): f"${f}" for f in fields}
    duplicates = list(db[unique_index.collection].aggregate([
        {"$group": {"_id": group_id, "n": {"$sum": 1}}},
        {"$match": {"n": {"$gt": 1}}},
        {"$sort": {"n": -1}},
        {"$limit": 5},
    ], allowDiskUse=True))
    evidence.data.update(collection=unique_index.collection, key=fields,
                         duplicates=[{"value": d["_id"], "count": d["n"]} for d in duplicates])
    if duplicates:
        first = duplicates[0]
        group = first["_id"] if isinstance(first["_id"], dict) else {"value": first["_id"]}
        value = ", ".join(f"{k}={quote(repr(v), expectations.limits.max_quoted_chars)}" for k, v in group.items())
        pytest.fail(f"{expectations.mongo_database}.{unique_index.collection}: {'+'.join(fields)} must be unique but "
                    f"{value} appears {first['n']} times ({len(duplicates)} duplicated value(s) shown)")
    evidence.message = f"{expectations.mongo_database}.{unique_index.collection}.{'+'.join(fields)}: no duplicates"
