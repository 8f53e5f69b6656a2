"""The backup agrees with itself: dump = restored = export counts, and every referenced upload is there."""

import posixpath

import pytest

from grimoire_drill.text import quote


@pytest.mark.check("consistency.mongodb_counts")
def test_mongodb_counts_agree(drill, expectations, counted_collection, evidence):
    namespace = f"{expectations.mongo_database}.{counted_collection}"
    drill.mongo_restore()
    source = drill.mongo_source_counts().get(namespace)
    if source is None:
        pytest.fail(f"{namespace}: not in the dump, nothing to count")
    if source["dump"] is None:
        pytest.fail(f"{namespace}: no .bson data file in the dump (metadata only), nothing to count")
    restored = drill.restored_counts()["mongodb"].get(namespace)
    export = source.get("export")
    evidence.data.update(dump=source["dump"], restored=restored, export=export)
    assert restored == source["dump"], f"{namespace}: {source['dump']:,} documents in the dump but {restored} restored"
    if counted_collection in {c for _, c in expectations.exports}:
        file = next(f for f, c in expectations.exports if c == counted_collection)
        assert export is not None, f"{file}: JSON export missing (backup-production.sh writes it)"
        assert export == source["dump"], (
            f"{file}: {export:,} objects but {source['dump']:,} documents in {namespace}.bson — export and dump disagree")
    evidence.message = f"{namespace}: dump {source['dump']:,} = restored {restored:,}" + (
        f" = export {export:,}" if export is not None else "")


@pytest.mark.check("consistency.postgresql_counts")
def test_postgresql_counts_agree(drill, counted_table, evidence):
    drill.postgres_restore()
    restored = drill.restored_counts()["postgresql"].get(counted_table)
    source = drill.postgres_source_counts()
    if source is None:
        pytest.skip("the dump's own row counts could not be read without a server (no pg_restore on this machine)")
    dumped = source.get(counted_table)
    evidence.data.update(dump=dumped, restored=restored)
    if counted_table in source and dumped is None:
        pytest.fail(f"table {counted_table}: its data block in postgresql/{drill.postgres_dump().name} cannot be "
                    "read whole (the dump is cut or garbled), so its row count is unknown")
    assert dumped is not None, f"table {counted_table}: no data block in postgresql/{drill.postgres_dump().name}"
    assert restored is not None, (f"table {counted_table}: {dumped:,} rows in the dump, none restored "
                                  "(the table is not in the restored database: see postgresql.restore)")
    assert restored == dumped, f"table {counted_table}: {dumped:,} rows in the dump but {restored:,} restored"
    evidence.message = f"table {counted_table}: dump {dumped:,} = restored {restored:,}"


def _shown_id(doc: dict, limits) -> str:
    """A document's ``_id`` as a message quotes it (an _id is backup content: any type, any length)."""
    return quote(repr(doc.get("_id")), limits.max_quoted_chars)


@pytest.mark.check("consistency.uploads")
def test_recipe_images_present(drill, expectations, evidence):
    """Every ``image_url: /uploads/...`` names a file in uploads/.

    The field is read as the backup has it: None means no picture; a string outside the prefix
    is an external link; anything else (a list, a number, an object) is a malformed recipe,
    named by its ``_id``, never a crash of the check.
    """
    db = drill.mongo_database(expectations.mongo_database)
    limits = expectations.limits
    files = drill.upload_files()
    prefix = expectations.uploads_prefix
    referenced = 0
    missing: list[str] = []
    malformed: list[str] = []
    for doc in db["recipes"].find({"image_url": {"$exists": True}}, {"image_url": 1}):
        url = doc.get("image_url")
        if url is None:
            continue
        if not isinstance(url, str):
            malformed.append(f"_id {_shown_id(doc, limits)}: image_url is a {type(url).__name__}, not a string")
            continue
        if not url.startswith(prefix):
            continue
        referenced += 1
        relative = posixpath.normpath(url[len(prefix):])
        if relative not in files:  # also catches "../x": walked paths never climb out of uploads/
            missing.append(url)
    evidence.data.update(referenced=referenced, missing=missing[:20], malformed=malformed[:20],
                         upload_files=len(files))
    assert not malformed, (f"{expectations.mongo_database}.recipes: {len(malformed)} recipe(s) with a malformed "
                           f"image_url, first {malformed[0]}")
    assert not missing, (f"uploads/: {len(missing)} recipe image(s) referenced but absent, "
                         f"first {quote(missing[0], limits.max_quoted_chars)}")
    evidence.message = f"{referenced} recipe image_url(s), all present in uploads/ ({len(files)} files)"
