"""PostgreSQL restores run in a sandbox: a hostile dump runs nothing outside its scratch database.

Each hostile dump is made the way an attacker who owns production would make it: the clean
sample's database, plus one hostile object, dumped by the real pg_dump (custom format), or the
clean sample's ``database.sql`` with psql meta-commands written into it. The drill runs end to
end through the CLI on the real local PostgreSQL (and the docker engine for COPY TO PROGRAM),
and each test asserts what must not happen: the marker file the dump aims at never appears
(its folder is writable by the server's OS user, so a working attack *would* create it), the
drill exits 1 and ``postgresql.restore`` fails naming the statement or the line.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from grimoire_drill.engines.base import new_run_id
from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir
from grimoire_drill.engines.pg_sandbox import ADMIN_ROLE, RestoreRole, scram_verifier
from grimoire_drill.restore.postgres import restore_postgres

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")]

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local", "--min-size-kb", "1")
SOURCE_DB = "hostile_source"   # where the hostile objects are built: their payload stays quiet here


@pytest.fixture
def outside():
    """A folder outside every temp dir of the drill that the ``postgres`` OS user could write to."""
    path = Path(tempfile.mkdtemp(prefix="grimoire-drill-outside-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_root():
    root = Path(tempfile.mkdtemp(prefix="grimoire-drill-test-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def source_pg(pg_root):
    """A cluster playing production, its superuser named like the app's, as backup-production.sh sees it."""
    with LocalPostgres(run_id=new_run_id(), superuser="grimoire", temp_root=pg_root) as pg:
        yield pg


def _backup_with(clean_tree: Path, work: Path, *, custom: Path | None = None, plain: str | None = None) -> Path:
    """A copy of the clean backup folder whose PostgreSQL dump is replaced (the other one removed)."""
    tree = work / clean_tree.name
    shutil.copytree(clean_tree, tree)
    postgres = tree / "postgresql"
    for name in ("database.backup", "database.sql"):
        (postgres / name).unlink()
    if custom is not None:
        shutil.copy(custom, postgres / "database.backup")
    if plain is not None:
        (postgres / "database.sql").write_text(plain)
    return tree


def _hostile_custom_dump(source_pg: LocalPostgres, clean_tree: Path, out: Path, hostile_sql: str) -> Path:
    """The clean database plus ``hostile_sql``, built as production's superuser and dumped by pg_dump -Fc."""
    source_pg.drop_database(SOURCE_DB)
    source_pg.create_database(SOURCE_DB)
    loaded = source_pg.run_tool("pg_restore", ["-d", SOURCE_DB, "{dump}"],
                                {"dump": clean_tree / "postgresql" / "database.backup"})
    assert loaded.ok, loaded.stderr
    with psycopg.connect(source_pg.conninfo(SOURCE_DB), autocommit=True) as conn:
        conn.execute(hostile_sql)
    dump = out / "database.backup"
    done = source_pg.run_tool("pg_dump", ["-F", "c", "-b", "-f", "{out}", SOURCE_DB], {"out": dump})
    assert done.ok, done.stderr
    return dump


def _drill(run_cli, tree: Path, report: Path, *extra: str):
    result = run_cli(*RUN, *extra, tree, "--report-dir", report)
    summary = json.loads((report / "summary.json").read_text())
    checks = {check["id"]: check for check in summary["checks"]}
    return result, summary, checks


def _payload(action: str) -> str:
    """``public.payload(text)``: IMMUTABLE (an index may call it), doing ``action`` through a VOLATILE helper
    (a non-volatile function may not COPY), but only outside the source database it is built in."""
    return f"""
CREATE FUNCTION public.payload_action() RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    IF current_database() <> '{SOURCE_DB}' THEN
        {action};
    END IF;
END $fn$;
CREATE FUNCTION public.payload(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    PERFORM public.payload_action();
    RETURN $1;
END $fn$;
"""


# -- custom dumps: code that runs inside the server -------------------------------------------------

COPY_PROGRAM = "EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch ' || current_setting('grimoire.marker'))"

CARRIERS = {
    "index expression": "CREATE INDEX idx_recipes_payload ON public.recipes (public.payload(title));",
    "materialized view": "CREATE MATERIALIZED VIEW public.payload_view AS SELECT public.payload(title) FROM public.recipes;",
    "check constraint": "ALTER TABLE public.users ADD CONSTRAINT users_payload CHECK (public.payload(email) IS NOT NULL);",
}


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_copy_to_program_in_a_custom_dump_runs_nothing(carrier, source_pg, clean_tree, outside, tmp_path, run_cli):
    marker = outside / "MARKER-copy-program"
    action = COPY_PROGRAM.replace("current_setting('grimoire.marker')", f"'{marker}'")
    dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path, _payload(action) + CARRIERS[carrier])
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, custom=dump), tmp_path / "report")
    assert not marker.exists(), f"COPY TO PROGRAM ran on the drill host via a {carrier}"
    assert result.returncode == 1, result.output
    restore = checks["postgresql.restore"]
    assert restore["status"] == "failed"
    assert "pg_execute_server_program" in restore["message"], restore["message"]


def test_an_event_trigger_in_a_custom_dump_is_refused(source_pg, clean_tree, outside, tmp_path, run_cli):
    marker = outside / "MARKER-event-trigger"
    hostile = _payload(f"EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch {marker}')") + f"""
CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN PERFORM public.payload('x'); END $fn$;
CREATE EVENT TRIGGER payload_on_ddl ON ddl_command_end EXECUTE FUNCTION public.on_ddl();
"""
    dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path, hostile)
    with psycopg.connect(source_pg.conninfo(SOURCE_DB), autocommit=True) as conn:
        conn.execute("DROP EVENT TRIGGER payload_on_ddl")  # the next sample build must not fire it
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, custom=dump), tmp_path / "report")
    assert not marker.exists()
    assert result.returncode == 1, result.output
    assert "permission denied to create event trigger" in checks["postgresql.restore"]["message"]


@pytest.mark.parametrize("read, named", [
    ("SELECT pg_read_file('/etc/hostname')", "pg_read_file"),
    ("SELECT lo_import('/etc/hostname')::text", "lo_import"),
    ("SELECT pg_ls_dir('/')::text", "pg_ls_dir"),
])
def test_server_file_reads_in_a_custom_dump_fail_inside_the_restore(read, named, source_pg, clean_tree, tmp_path,
                                                                   run_cli):
    hostile = f"CREATE MATERIALIZED VIEW public.leak AS {read} AS leaked;"
    dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path, hostile)
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, custom=dump), tmp_path / "report")
    assert result.returncode == 1, result.output
    message = checks["postgresql.restore"]["message"]
    assert "permission denied" in message and named in message, message


def test_copy_from_a_server_file_fails_inside_the_restore(source_pg, clean_tree, outside, tmp_path, run_cli):
    """A function body (run by an index build) reading /etc/passwd and writing a file next to the marker."""
    written = outside / "MARKER-copy-to-file"
    action = f"COPY public.loot FROM '/etc/passwd'; COPY public.loot TO '{written}'"
    dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path, "CREATE TABLE public.loot (line text);"
                                + _payload(action) + CARRIERS["index expression"])
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, custom=dump), tmp_path / "report")
    assert not written.exists()
    assert result.returncode == 1, result.output
    assert "pg_read_server_files" in checks["postgresql.restore"]["message"]


def test_an_untrusted_language_in_a_custom_dump_is_refused(source_pg, clean_tree, tmp_path, run_cli):
    """No plpython3u/plperlu here: a C-language function on a system library is the same class."""
    hostile = """
CREATE FUNCTION public.evil_handler() RETURNS language_handler
    AS '$libdir/plpgsql', 'plpgsql_call_handler' LANGUAGE c;
CREATE LANGUAGE evil HANDLER public.evil_handler;
"""
    dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path, hostile)
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, custom=dump), tmp_path / "report")
    assert result.returncode == 1, result.output
    restore = checks["postgresql.restore"]
    assert "permission denied for language c" in restore["message"], restore["message"]
    assert any("must be superuser to create procedural language" in error or "evil" in error
               for error in restore["evidence"]["errors"]), restore["evidence"]["errors"]


# -- plain dumps: psql meta-commands -----------------------------------------------------------------

def _meta_commands(marker: Path, dump_key: str) -> list[str]:
    """Every psql meta-command family that reaches the host: shell, pipes, files, env, connections, keys."""
    return [
        f"\\! touch {marker}-bang",
        f"\\o |touch {marker}-o-pipe",
        f"\\copy (SELECT 1) TO PROGRAM 'touch {marker}-copy'",
        f"SELECT 1 \\g |touch {marker}-g-pipe",
        ";",                                      # ends the query the refused \g left in the buffer
        f"\\setenv PAGER 'touch {marker}-pager'",
        f"SELECT '\\! touch {marker}-gexec' \\gexec",
        ";",
        "\\i /etc/hostname",
        "\\ir ../../../../etc/hostname",
        f"\\w {marker}-w",
        "\\lo_import /etc/hostname",
        f"\\lo_export 1 {marker}-lo-export",
        "\\connect postgres",
        f"\\unrestrict {dump_key}",            # pg_dump's own key, written again by the attacker ...
        f"\\! touch {marker}-after-unrestrict",  # ... does not lift *our* restriction
        "\\set ON_ERROR_STOP 1",
    ]


def test_meta_commands_in_database_sql_run_nothing_and_each_line_is_named(clean_tree, outside, tmp_path, run_cli):
    marker = outside / "MARKER"
    text = (clean_tree / "postgresql" / "database.sql").read_text()
    dump_key = re.search(r"^\\restrict (\S+)$", text, re.MULTILINE).group(1)
    lines = text.splitlines()
    injected = _meta_commands(marker, dump_key)
    at = lines.index("ALTER TABLE public.alembic_version OWNER TO grimoire;") + 1  # between statements, after SQL ran
    hostile = "\n".join(lines[:at] + injected + lines[at:]) + "\n"
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, plain=hostile), tmp_path / "report")
    assert sorted(p.name for p in outside.iterdir()) == [], "a meta-command ran on the drill host"
    assert result.returncode == 1, result.output
    restore = checks["postgresql.restore"]
    assert restore["status"] == "failed" and "database.sql line" in restore["message"]
    named = "\n".join(restore["evidence"]["errors"])
    for offset, command in enumerate(injected):
        if command != ";":
            assert f"database.sql line {at + offset + 1}: psql meta-command refused" in named, command
    # the tables (made before and after the injected lines) are all there: SQL kept running as the role
    assert checks["postgresql.table.users"]["status"] == "passed"


def test_a_genuine_plain_dump_restores_cleanly_under_restricted_mode(clean_tree, tmp_path, run_cli):
    """pg_dump 15.18's own \\restrict/\\unrestrict pair is refused by psql, harmlessly: not the backup's fault."""
    text = (clean_tree / "postgresql" / "database.sql").read_text()
    assert re.search(r"^\\restrict \S+$", text, re.MULTILINE) and re.search(r"^\\unrestrict \S+$", text, re.MULTILINE)
    result, summary, checks = _drill(run_cli, _backup_with(clean_tree, tmp_path, plain=text), tmp_path / "report")
    assert result.returncode == 0, result.output
    assert checks["postgresql.restore"]["evidence"]["tool"] == "psql"
    phase = next(p for p in summary["phases"] if p["name"] == "restore_postgresql")
    own = phase["detail"]["own_restrict_lines"]
    assert len(own) == 2 and own[0] < own[1]


# -- the role itself -----------------------------------------------------------------------------------

def test_restore_runs_as_an_unprivileged_role_that_owns_only_its_database(clean_tree, pg_root):
    with LocalPostgres(run_id=new_run_id(), superuser=ADMIN_ROLE, temp_root=pg_root) as pg:
        result = restore_postgres(pg, clean_tree / "postgresql", "le_grimoire", jobs=2, owner="grimoire",
                                  extensions=("uuid-ossp",))
        assert result.ok, result.errors
        with psycopg.connect(pg.conninfo(result.database)) as conn:   # checks read as the role too
            assert conn.execute("SELECT current_user").fetchone() == ("grimoire",)
        with psycopg.connect(pg.conninfo("postgres")) as conn:
            role = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                                "FROM pg_roles WHERE rolname = 'grimoire'").fetchone()
            assert role == (False, False, False, False, False)
            granted = conn.execute("SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
                                   "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'grimoire'").fetchall()
            assert granted == []   # no pg_execute_server_program, pg_read/write_server_files, nothing
            owned = conn.execute("SELECT datname FROM pg_database WHERE datdba = "
                                 "(SELECT oid FROM pg_roles WHERE rolname = 'grimoire')").fetchall()
            assert owned == [("le_grimoire",)]
        with psycopg.connect(pg.conninfo(result.database)) as conn:
            assert conn.execute("SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'uuid-ossp'"
                                ).fetchone() == ("grimoire",)
            owners = {row[0] for row in conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")}
            assert owners == {"grimoire"}
        pg.drop_database(result.database)
        with psycopg.connect(pg.conninfo("postgres")) as conn:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'grimoire'").fetchone() == (0,)


def test_the_role_password_reaches_the_server_only_as_a_scram_verifier():
    role = RestoreRole.new("r")
    verifier = scram_verifier(role.password, salt=b"0123456789abcdef")
    assert verifier.startswith("SCRAM-SHA-256$4096:") and role.password not in verifier
    assert role.password not in repr(role)


# -- the docker engine ------------------------------------------------------------------------------

@pytest.mark.docker
def test_docker_engine_copy_to_program_runs_nothing_in_the_container(local_postgres_image, source_pg, clean_tree, tmp_path,
                                                                     monkeypatch):
    from grimoire_drill.engines.docker import DockerPostgres

    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    marker = "/tmp/MARKER-docker-copy-program"
    dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path,
                                _payload(f"EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch {marker}')")
                                + CARRIERS["index expression"])
    (tmp_path / "hostile").mkdir()
    hostile = _backup_with(clean_tree, tmp_path / "hostile", custom=dump)
    with DockerPostgres(new_run_id(), image=local_postgres_image, superuser=ADMIN_ROLE) as pg:
        clean = restore_postgres(pg, clean_tree / "postgresql", "le_grimoire", jobs=2, owner="grimoire",
                                 extensions=("uuid-ossp",))
        assert clean.ok, clean.errors
        result = restore_postgres(pg, hostile / "postgresql", "le_grimoire_hostile", jobs=2, owner="grimoire_h",
                                  extensions=("uuid-ossp",))
        assert pg._exec(["sh", "-c", f"test -e {marker}"], {})[0] != 0, "COPY TO PROGRAM ran in the container"
        assert pg._exec(["sh", "-c", "test -e /tmp"], {})[0] == 0   # the probe itself can see files
    assert not result.ok
    assert any("pg_execute_server_program" in error for error in result.errors), result.errors


# -- reading the dump's own row counts ------------------------------------------------------------------

def test_source_counts_hold_only_a_bounded_piece_of_a_giant_line(tmp_path):
    """A 64 MiB COPY row with no newline in sight is one row, read without holding it."""
    import tracemalloc

    from grimoire_drill.limits import Limits
    from grimoire_drill.pg_source import source_row_counts

    dump = tmp_path / "database.sql"
    with open(dump, "wb") as handle:
        handle.write(b"-- dump\nCOPY public.users (id, name) FROM stdin;\n1\tshort\n2\t")
        for _ in range(64):
            handle.write(b"x" * (1 << 20))
        handle.write(b"\n\\.\nCOPY public.recipes (id) FROM stdin;\n" + b"9" * 200 + b"\n\\.\n")
        handle.write(b"COPY public.never_ended (id) FROM stdin;\n" + b"y" * (3 << 20))   # no newline at the end
    tracemalloc.start()
    try:
        counts = source_row_counts(dump, Limits(max_line_chars=4096))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert counts == {"users": 2, "recipes": 1, "never_ended": None}  # a block the file ends inside: unknown
    assert peak < 8 << 20, f"{peak:,} bytes held to count a 64 MiB line"


def test_a_garbled_custom_dump_still_names_every_table(sample_factory, tmp_path):
    """pg_restore cannot read all the data: the blocks read whole keep their counts, every other table
    the TOC lists is there with an unknown count (None), so no table drops out of the report."""
    import tarfile

    from grimoire_drill.engines.local_postgres import find_client_bindir
    from grimoire_drill.pg_source import source_row_counts

    if find_client_bindir() is None:
        pytest.skip("no pg_restore on this machine")
    with tarfile.open(sample_factory("corrupt-pg-dump")) as tar:
        tar.extractall(tmp_path, filter="data")
    (dump,) = tmp_path.glob("backup_*/postgresql/database.backup")
    clean = source_row_counts(dump.with_name("database.sql"))
    counts = source_row_counts(dump)
    assert counts is not None and set(counts) == set(clean)
    assert None in counts.values()
    assert all(n == clean[table] for table, n in counts.items() if n is not None)


def test_an_expected_extension_that_is_not_trusted_restores_without_error(source_pg, pg_root, tmp_path):
    """The admin installs it (the role may not); the dump's COMMENT ON EXTENSION is refused, harmlessly."""
    with psycopg.connect(source_pg.conninfo("postgres")) as conn:
        row = conn.execute("SELECT bool_or(trusted) FROM pg_available_extension_versions "
                           "WHERE name = 'pgstattuple'").fetchone()
    if row is None or row[0] is None or row[0]:
        pytest.skip("no untrusted contrib extension (pgstattuple) installed here")
    source_pg.drop_database(SOURCE_DB)
    source_pg.create_database(SOURCE_DB)
    with psycopg.connect(source_pg.conninfo(SOURCE_DB), autocommit=True) as conn:
        conn.execute('CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION pgstattuple; '
                     "CREATE TABLE t (id uuid PRIMARY KEY DEFAULT uuid_generate_v4()); INSERT INTO t DEFAULT VALUES")
    dumps = {"custom": tmp_path / "custom", "plain": tmp_path / "plain"}
    for kind, folder in dumps.items():
        folder.mkdir()
        args = ["-F", "c", "-f", "{out}"] if kind == "custom" else ["-f", "{out}"]
        out = folder / ("database.backup" if kind == "custom" else "database.sql")
        assert source_pg.run_tool("pg_dump", args + [SOURCE_DB], {"out": out}).ok
    with LocalPostgres(run_id=new_run_id(), superuser=ADMIN_ROLE, temp_root=pg_root) as pg:
        for kind, folder in dumps.items():
            result = restore_postgres(pg, folder, f"db_{kind}", jobs=1, owner="grimoire",
                                      extensions=("uuid-ossp", "pgstattuple"))
            assert result.ok, (kind, result.errors)
            assert "pgstattuple" in result.detail["extension_comments_skipped"][0]
            with psycopg.connect(pg.conninfo(result.database)) as conn:
                assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
            pg.drop_database(result.database)


# -- the verdict's attribution: a dump cannot pass itself off as a lost server -------------------------

LOST_WORDS = "server closed the connection unexpectedly"


@pytest.mark.parametrize("kind", ["plain", "custom"])
def test_a_dump_that_spells_a_lost_connection_is_still_a_bad_backup_not_a_harness_error(
        kind, source_pg, clean_tree, tmp_path, run_cli):
    """The phrase libpq prints when a server dies, in an error, a notice and a quoted statement of the dump."""
    hostile_sql = (f'DO $$ BEGIN RAISE NOTICE \'{LOST_WORDS}\'; END $$;\n'
                   f'CREATE VIEW public."{LOST_WORDS}" AS SELECT 1 AS x;\n'
                   f'CREATE FUNCTION public.lost() RETURNS void LANGUAGE plpgsql AS $fn$ BEGIN '
                   f'RAISE EXCEPTION \'could not connect to server: {LOST_WORDS}\'; END $fn$;\n')
    if kind == "plain":
        text = (clean_tree / "postgresql" / "database.sql").read_text()
        text += hostile_sql + f'SELECT * FROM "{LOST_WORDS} (no such table)";\nSELECT public.lost();\n'
        tree = _backup_with(clean_tree, tmp_path, plain=text)
    else:  # an event trigger needs a superuser: refused, and pg_restore echoes its statement, phrase and all
        hostile_sql += ("CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
                        "$fn$ BEGIN END $fn$;\n"
                        f'CREATE EVENT TRIGGER "{LOST_WORDS}" ON ddl_command_start EXECUTE FUNCTION public.on_ddl();\n')
        dump = _hostile_custom_dump(source_pg, clean_tree, tmp_path, hostile_sql)
        tree = _backup_with(clean_tree, tmp_path, custom=dump)
    result, summary, checks = _drill(run_cli, tree, tmp_path / "report")
    assert result.returncode == 1, result.output
    assert summary["outcome"] == "failed"
    restore = checks["postgresql.restore"]
    assert restore["status"] == "failed", restore
    assert checks["postgresql.table.users"]["status"] == "passed"   # the server was there all along


def test_the_dump_toc_is_summarised_by_kind_in_both_formats(clean_tree, tmp_path):
    """Objects per kind from the custom dump's TOC and from the plain dump's comments: the same picture;
    a kind a hostile dump invents counts as OTHER, never as its own text."""
    from grimoire_drill.engines.local_postgres import find_client_bindir
    from grimoire_drill.pg_source import dump_objects
    from grimoire_drill.report.html_parts import counts_table

    plain = dump_objects(clean_tree / "postgresql" / "database.sql")
    assert plain["TABLE"] >= 10 and plain["TABLE DATA"] == plain["TABLE"] and plain["INDEX"] > 0
    if find_client_bindir() is not None:
        custom = dump_objects(clean_tree / "postgresql" / "database.backup")
        assert {kind: custom[kind] for kind in ("TABLE", "TABLE DATA", "INDEX")} == {
            kind: plain[kind] for kind in ("TABLE", "TABLE DATA", "INDEX")}
    hostile = tmp_path / "database.sql"
    hostile.write_bytes(b"-- Name: x; Type: TABLE; Schema: public; Owner: -\n"
                        + b"".join(b"-- Name: y; Type: KIND %d <SCRIPT>; Schema: -; Owner: -\n" % n for n in range(500))
                        + b"-- Name: z; Type: " + b"Z" * 5000 + b"; Schema: -; Owner: -\n")
    assert dump_objects(hostile) == {"TABLE": 1, "OTHER": 1}  # the <SCRIPT> kinds do not even parse as a kind
    summary = {"source_counts": {"postgresql": {"users": 3}, "postgresql_objects": plain}, "counts": {}}
    assert f"{plain['TABLE']} table" in counts_table(summary)
