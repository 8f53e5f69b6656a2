"""Realistic Le Grimoire backups, clean or with one chosen defect, made the way production makes them.

scripts/backup-production.sh writes ``backup_<id>/`` with a ``mongodump --out`` of the whole server,
a ``pg_dump -F c -b`` plus a plain ``pg_dump`` of ``le_grimoire``, the uploads, two JSON exports and
``backup_info.txt``, then tars it. We do the same: the PostgreSQL dumps come from the real pg_dump of
a throwaway cluster loaded with the app's schema, the MongoDB dump is written in mongodump's own file
format (no MongoDB server can be had here), and every collection streams, so ``scale`` can grow the
archive to gigabytes without holding a collection in memory.

Tooling, not product: nothing here imports the drill's pipeline (enforced by import-linter).
The parts: ``writer`` (the public API), ``job`` (names and the plan of one backup), ``data``,
``catalog``, ``photos`` and ``schema_sql`` (what the databases hold), ``mongodump``, ``pgdump``,
``uploads`` and ``pack`` (each part of the backup), ``defects`` (one named way to be wrong).
"""

from .defects import CATALOGUE, DEFECTS
from .job import MONGO_DB, PG_DB, PG_USER
from .mongodump import collection_metadata
from .writer import SampleWriter, write_generations, write_sample

__all__ = ["CATALOGUE", "DEFECTS", "MONGO_DB", "PG_DB", "PG_USER", "SampleWriter", "collection_metadata",
           "write_generations", "write_sample"]
