"""Test-only pytest plugin for the drill's own pytest run: change one restored value before any check.

Why: a content check must be shown to fail on a real restore that changed a value and kept the
counts. The drill loads this only when a test passes ``--pytest-args "-p alter_restored"`` with
``tests/`` on ``PYTHONPATH``; it lives in tests/, is not installed with the package, and reads
nothing of the backup, so no backup can reach it.

``GRIMOIRE_DRILL_TEST_ALTER`` says what to change: ``mongodb:<collection>`` appends to the title of
the document with the smallest ``_id``; ``postgresql:<table>`` does so for the row with the smallest
``id``. The changed key is written as JSON to the file ``GRIMOIRE_DRILL_TEST_ALTERED`` names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from psycopg import sql

ALTER_ENV = "GRIMOIRE_DRILL_TEST_ALTER"
ALTERED_ENV = "GRIMOIRE_DRILL_TEST_ALTERED"
SUFFIX = " (altered after the restore)"


@pytest.fixture(scope="session", autouse=True)
def _alter_one_restored_value(request):
    what = os.environ.get(ALTER_ENV)
    if what:
        drill = request.getfixturevalue("drill")
        expectations = request.getfixturevalue("expectations")
        database, _, name = what.partition(":")
        key = _alter_mongo(drill, expectations, name) if database == "mongodb" else _alter_postgres(drill, name)
        Path(os.environ[ALTERED_ENV]).write_text(json.dumps({"database": database, "name": name, "key": key}))
    yield


def _alter_mongo(drill, expectations, collection: str) -> str:
    documents = drill.mongo_database(expectations.mongo_database)[collection]
    first = documents.find_one({}, sort=[("_id", 1)])
    documents.update_one({"_id": first["_id"]}, {"$set": {"title": first["title"] + SUFFIX}})
    return repr(first["_id"])


def _alter_postgres(drill, table: str) -> str:
    with drill.postgres_connect() as conn:
        query = sql.SQL("UPDATE {t} SET title = title || %s WHERE id = (SELECT id FROM {t} ORDER BY id LIMIT 1) "
                        "RETURNING id::text").format(t=sql.Identifier(table))
        return conn.execute(query, (SUFFIX,)).fetchone()[0]
