"""PostgreSQL after restore: no error, every app table and extension, counts, alembic head, sequences."""

import pytest
from psycopg import sql


@pytest.mark.check("postgresql.restore")
def test_postgresql_restored_without_error(drill, evidence):
    result = drill.postgres_restore()
    role = result.detail.get("role")
    evidence.data.update(source=result.source, format=result.dump_format, tool=result.tool, role=role,
                         returncode=result.returncode, seconds=round(result.seconds, 3),
                         errors=list(result.errors[:20]), refused_by_sandbox=result.refused_by_sandbox,
                         output_tail=result.output_tail)
    refused = (f"; {result.refused_by_sandbox} refused by the sandbox (the restore runs as unprivileged role {role}, "
               "psql in restricted mode: the dump asked for superuser rights, server programs or files, "
               "or psql meta-commands)" if result.refused_by_sandbox else "")
    assert result.ok, (f"postgresql/{result.source}: {result.tool} reported {len(result.errors)} error(s) "
                       f"(exit {result.returncode}){refused}; first: "
                       f"{result.errors[0] if result.errors else result.output_tail}")
    evidence.message = (f"postgresql/{result.source} ({result.dump_format}) restored by {result.tool} without error, "
                        f"as unprivileged role {role}")


@pytest.mark.check("postgresql.table")
def test_table_exists(drill, table, evidence):
    with drill.postgres_connect() as conn:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()[0]
        assert found, f"table public.{table} missing after restore (init.sql / Alembic create it)"
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
    evidence.data.update(rows=rows)
    evidence.message = f"public.{table} exists, {rows:,} rows"


@pytest.mark.check("postgresql.extension")
def test_extension_installed(drill, extension, evidence):
    with drill.postgres_connect() as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (extension,)).fetchone()
    assert row, f"extension {extension} missing after restore (init.sql creates it)"
    evidence.message = f"extension {extension} {row[0]}"


@pytest.mark.check("postgresql.alembic")
def test_alembic_version_recorded(drill, evidence):
    with drill.postgres_connect() as conn:
        if not conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()[0]:
            pytest.fail("table public.alembic_version missing: the schema version of this backup is unknown")
        versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    evidence.data.update(versions=versions)
    assert len(versions) == 1, f"alembic_version holds {len(versions)} rows, expected exactly one head: {versions}"
    evidence.message = f"schema at Alembic revision {versions[0]}"


@pytest.mark.check("postgresql.sequences")
def test_sequences_ahead_of_data(drill, evidence):
    query = """
        SELECT s.relname, t.relname, a.attname
        FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')
        JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.relkind = 'S'"""
    behind = []
    with drill.postgres_connect() as conn:
        owned = conn.execute(query).fetchall()
        for seq, table, column in owned:
            last = conn.execute(sql.SQL("SELECT last_value FROM {}").format(sql.Identifier(seq))).fetchone()[0]
            top = conn.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))).fetchone()[0]
            if top is not None and last < top:
                behind.append(f"{seq} at {last} < max({table}.{column}) = {top}")
    evidence.data.update(sequences=len(owned), behind=behind)
    assert not behind, f"sequence(s) behind their data, new inserts would collide: {'; '.join(behind)}"
    evidence.message = f"{len(owned)} owned sequence(s), none behind its column's max (tables use UUID keys)"
