"""The PostgreSQL dumps: the app's schema and rows in a real throwaway cluster, then the real pg_dump twice."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from ..engines.local_postgres import LocalPostgres
from ..errors import HarnessError
from . import data
from .job import PG_DB, Job
from .schema_sql import INIT_SQL, MIGRATED_SQL, SEARCH_PATH_TRAP_SQL


def write_postgres(out: Path, job: Job, pg: LocalPostgres) -> None:
    pg.drop_database(PG_DB)
    pg.create_database(PG_DB)
    with psycopg.connect(pg.conninfo(PG_DB)) as conn:
        conn.execute(INIT_SQL)
        conn.execute(MIGRATED_SQL)
        # The rows are generated consistent, so per-row foreign-key triggers are pure cost here (a third
        # of the load); replica mode skips them for this session. pg_restore still checks every key.
        conn.execute("SET session_replication_role = replica")
        _load_rows(conn, job)
        conn.execute("RESET session_replication_role")
        if job.plan.search_path_trap:
            conn.execute(SEARCH_PATH_TRAP_SQL)
        conn.commit()
    with psycopg.connect(pg.conninfo(PG_DB), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    dumps = ((["-F", "c", "-b", "-f", "{out}", PG_DB], "database.backup"), (["-f", "{out}", PG_DB], "database.sql"))
    with ThreadPoolExecutor(max_workers=len(dumps), thread_name_prefix="pg_dump") as pool:  # independent readers
        running = [(pool.submit(pg.run_tool, "pg_dump", args, {"out": out / name}), name) for args, name in dumps]
        for future, name in running:
            done = future.result()
            if not done.ok:
                raise HarnessError(f"pg_dump failed: {done.stderr.strip()[-300:]}", where=str(out / name),
                                   fix="check the PostgreSQL client tools and free disk space")


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _load_rows(conn: psycopg.Connection, job: Job) -> None:
    seed, counts, when = job.seed, job.counts, job.content_time

    def recipe_facts() -> Iterator[data.RecipeFacts]:
        for index in range(counts.recipes):
            yield data.recipe_facts(seed, index, counts, when)

    _copy(conn, "users", data.USER_COLUMNS, (data.user_row(seed, i, when) for i in range(counts.users)))
    _copy(conn, "recipes", data.RECIPE_COLUMNS, (data.recipe_row(seed, facts) for facts in recipe_facts()))
    _copy(conn, "recipe_tags", data.TAG_COLUMNS,
          (row for facts in recipe_facts() for row in data.recipe_tag_rows(seed, facts)))
    _copy(conn, "grocery_stores", data.STORE_COLUMNS, data.store_rows(seed, when))
    _copy(conn, "grocery_specials", data.SPECIAL_COLUMNS,
          (data.special_row(seed, i, when) for i in range(counts.grocery_specials)))
    _copy(conn, "shopping_lists", data.LIST_COLUMNS,
          (data.shopping_list_row(seed, i, counts, when) for i in range(counts.shopping_lists)))
    _copy(conn, "shopping_list_items", data.ITEM_COLUMNS,
          (row for i in range(counts.shopping_lists) for row in data.shopping_item_rows(seed, i, counts, when)))
    _copy(conn, "favorites", data.FAVORITE_COLUMNS,
          (row for u in range(counts.users) for row in data.favorite_rows(seed, u, counts, when)))
    _copy(conn, "ocr_jobs", data.OCR_COLUMNS,
          (data.ocr_job_row(seed, i, counts, when) for i in range(counts.ocr_jobs)))

