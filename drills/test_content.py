"""The restore kept every value: dump = restored content, by digest, and the JSON export = the dump.

Counts agreeing proves nothing about values; these compare each document's bytes and each row's
COPY text (a digest per collection and table, grimoire_drill/pipeline/content.py), and name the
first differing ``_id`` or primary key when they differ.
"""

import pytest

from grimoire_drill.check_outcome import check_off

MIGRATED = ("the copy was migrated by --then: content equality with the dump applies before the command "
            "(the 'before' round); after it, the schema diff and the other checks judge the copy")


def _scope(comparison) -> str:
    return (f"sampled {comparison.sample:.0%} by key hash: {comparison.dump.count:,} of the dump's"
            if comparison.sampled else f"all {comparison.dump.count:,}")


def _difference(comparison, what: str, key_name: str) -> str:
    difference = comparison.difference
    if difference is None:
        return "the keyed pass found no single differing key"
    if difference.key is None:
        return f"the first difference is not named: {difference.reason}"
    kinds = {"changed": f"first differing {what} {key_name} {comparison.key}",
             "missing": f"{what} {key_name} {comparison.key} is in the dump but not restored",
             "extra": f"{what} {key_name} {comparison.key} is restored but not in the dump"}
    return kinds[difference.kind]


@pytest.mark.check("consistency.mongodb_content")
def test_mongodb_content_agrees(drill, expectations, counted_collection, evidence):
    if drill.migrated:
        check_off(MIGRATED)
    namespace = f"{expectations.mongo_database}.{counted_collection}"
    comparison = drill.mongo_content(namespace)
    evidence.data.update(comparison.evidence())
    scope = _scope(comparison)
    assert comparison.equal, (
        f"{namespace}: restored documents differ from the dump ({scope} compared; digest "
        f"{comparison.dump.hex[:16]}… of {comparison.dump.count:,} vs {comparison.restored.hex[:16]}… of "
        f"{comparison.restored.count:,}): {_difference(comparison, 'document', '_id')}")
    how = "; re-encoded: the simulated engine returns no raw BSON" if comparison.reencoded else ""
    evidence.message = (f"{namespace}: {scope} documents byte-identical to the dump "
                        f"(digest {comparison.dump.hex[:16]}…{how})")


@pytest.mark.check("consistency.postgresql_content")
def test_postgresql_content_agrees(drill, table, evidence):
    if drill.migrated:
        check_off(MIGRATED)
    comparison = drill.postgres_content(table)
    if comparison is None:
        pytest.skip("the dump's own rows could not be read without a server (no pg_restore on this machine)")
    evidence.data.update(comparison.evidence())
    scope = _scope(comparison)
    key_name = "primary key" if comparison.key_columns else "(no primary key)"
    assert comparison.equal, (
        f"table {table}: restored rows differ from the dump ({scope} compared; digest "
        f"{comparison.dump.hex[:16]}… of {comparison.dump.count:,} vs {comparison.restored.hex[:16]}… of "
        f"{comparison.restored.count:,}): {_difference(comparison, 'row', key_name)}")
    evidence.message = f"table {table}: {scope} rows identical to the dump's COPY data (digest {comparison.dump.hex[:16]}…)"


@pytest.mark.check("consistency.mongodb_export_content")
def test_export_content_agrees(drill, expectations, export, evidence):
    file, collection = export
    comparison = drill.export_content(file, collection)
    if comparison is None:
        pytest.fail(f"{file}: the export or {expectations.mongo_database}.{collection}'s .bson is missing, "
                    "nothing to compare (see the counts checks)")
    evidence.data.update(compared=comparison.compared, keyed_by=comparison.keyed_by,
                         first_difference={"position": comparison.position, "_id": comparison.document_id,
                                           "field": comparison.field})
    assert comparison.mismatch is None, comparison.mismatch
    evidence.message = (f"{file}: {comparison.compared:,} objects equal to {collection}.bson's documents "
                        f"(matched by {comparison.keyed_by})")
