"""External engines against a real server someone else "owns": scratch database only, secrets nowhere.

The external PostgreSQL is a LocalPostgres standing in for a shared staging server. The drill
connects as ``staging``, a login with CREATEDB and CREATEROLE and nothing else (no superuser, no
access to the production-named database that already lives there), so touching anything but its
scratch database would fail loudly rather than pass unnoticed. The restore itself runs as the
unprivileged role ``staging`` creates for the run and drops afterwards. MongoDB tests need a real server in
GRIMOIRE_DRILL_MONGO_URI and are skipped with that reason otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import tarfile
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from grimoire_drill.engines.base import new_run_id
from grimoire_drill.engines.external import ExternalMongo, ExternalPostgres, scratch_name
from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir
from grimoire_drill.errors import HarnessError
from grimoire_drill.restore.postgres import restore_postgres

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")

PRODUCTION = "le_grimoire"
MARKERS = [(1, "do not touch"), (2, "production row")]


class StagingServer:
    """A running cluster, a restricted login for the drill, and a production-named database it must not touch."""

    def __init__(self, pg: LocalPostgres):
        self.pg = pg
        self.password = "St4ging/" + secrets.token_urlsafe(18) + "@%"  # URL-special characters on purpose
        with psycopg.connect(pg.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE staging LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                sql.Literal(self.password)))
            conn.execute(f'CREATE DATABASE "{PRODUCTION}"')
            conn.execute(f'REVOKE CONNECT, TEMPORARY ON DATABASE "{PRODUCTION}" FROM PUBLIC')
        with psycopg.connect(pg.conninfo(PRODUCTION), autocommit=True) as conn:
            conn.execute("CREATE TABLE marker (id int PRIMARY KEY, note text)")
            conn.cursor().executemany("INSERT INTO marker VALUES (%s, %s)", MARKERS)

    @property
    def dsn(self) -> str:
        return f"postgresql://staging:{quote(self.password, safe='')}@127.0.0.1:{self.pg.port}/postgres"

    def secrets(self) -> list[str]:
        """Every spelling of the password that could leak."""
        return [self.password, quote(self.password, safe=""), quote(self.password)]

    def databases(self) -> set[str]:
        with psycopg.connect(self.pg.conninfo("postgres")) as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}

    def roles(self) -> set[str]:
        with psycopg.connect(self.pg.conninfo("postgres")) as conn:
            return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}

    def production_rows(self) -> list[tuple]:
        with psycopg.connect(self.pg.conninfo(PRODUCTION)) as conn:
            return conn.execute("SELECT id, note FROM marker ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def staging():
    with LocalPostgres(run_id=new_run_id()) as pg:
        yield StagingServer(pg)


@pytest.fixture(scope="module")
def postgres_dump_dir(sample_factory, tmp_path_factory) -> Path:
    """``postgresql/`` of a generated backup (a real pg_dump custom archive and its plain twin)."""
    out = tmp_path_factory.mktemp("external-dump")
    with tarfile.open(sample_factory()) as tar:
        members = [m for m in tar.getmembers() if "/postgresql/" in m.name]
        tar.extractall(out, members=members, filter="data")
    return next(out.glob("backup_*/postgresql"))


def _assert_untouched(staging: StagingServer, before: set[str], roles: set[str] | None = None) -> None:
    assert staging.production_rows() == MARKERS
    assert staging.databases() == before
    if roles is not None:
        assert staging.roles() == roles, "the run's restore role is dropped with its scratch database"


# -- the engine on its own -----------------------------------------------------------------------

def test_restore_goes_into_the_scratch_database_only_and_it_is_dropped(staging, postgres_dump_dir):
    before, roles = staging.databases(), staging.roles()
    run_id = new_run_id()
    with ExternalPostgres(run_id=run_id, dsn=staging.dsn) as ext:
        assert "superuser" not in ext.info.note
        result = restore_postgres(ext, postgres_dump_dir, PRODUCTION, jobs=2, owner="grimoire",
                                  extensions=("uuid-ossp",))
        assert result.database == f"le_grimoire_drill_{run_id}" == scratch_name(PRODUCTION, run_id)
        assert result.ok, result.errors
        role = scratch_name("grimoire", run_id)
        with psycopg.connect(ext.conninfo(result.database)) as conn:   # the scratch database: as the role
            assert conn.execute("SELECT current_user").fetchone() == (role,)
            assert conn.execute("SELECT count(*) FROM users").fetchone()[0] > 0
        with psycopg.connect(staging.pg.conninfo("postgres")) as conn:
            assert conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
                                (role,)).fetchone() == (False, False, False)
        assert result.database in staging.databases()
        assert staging.production_rows() == MARKERS
    _assert_untouched(staging, before, roles)


def test_a_dsn_role_that_cannot_create_roles_is_a_harness_error(staging):
    password = secrets.token_urlsafe(12)
    with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE norole LOGIN CREATEDB PASSWORD {}").format(sql.Literal(password)))
    try:
        dsn = f"postgresql://norole:{quote(password, safe='')}@127.0.0.1:{staging.pg.port}/postgres"
        with pytest.raises(HarnessError, match="cannot create roles") as caught:
            ExternalPostgres(run_id=new_run_id(), dsn=dsn).__enter__()
        assert "CREATEROLE" in caught.value.fix and password not in str(caught.value)
    finally:
        with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("DROP ROLE norole")


def test_a_superuser_dsn_is_reported_and_the_restore_still_runs_unprivileged(staging, postgres_dump_dir):
    """The LocalPostgres superuser stands in for a DSN with too many rights."""
    with ExternalPostgres(run_id=new_run_id(), dsn=staging.pg.url("postgres")) as ext:
        assert ext.info.note.startswith("WARNING: the --postgres-dsn role is a superuser")
        result = restore_postgres(ext, postgres_dump_dir, PRODUCTION, jobs=1, owner="grimoire",
                                  extensions=("uuid-ossp",))
        assert result.ok, result.errors
        with psycopg.connect(ext.conninfo(result.database)) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)


def test_scratch_database_is_dropped_when_the_body_raises(staging):
    before = staging.databases()
    run_id = new_run_id()
    with pytest.raises(RuntimeError, match="check crashed"):
        with ExternalPostgres(run_id=run_id, dsn=staging.dsn) as ext:
            name = ext.create_database(ext.database_name(PRODUCTION))
            with psycopg.connect(ext.conninfo(name)) as conn:  # an open session must not block the drop
                conn.execute("CREATE TABLE t (x int)")
                conn.commit()
                raise RuntimeError("check crashed")
    _assert_untouched(staging, before)


def test_an_existing_scratch_name_is_refused_and_left_alone(staging):
    run_id = new_run_id()
    taken = scratch_name(PRODUCTION, run_id)
    with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{taken}"')
    try:
        with ExternalPostgres(run_id=run_id, dsn=staging.dsn) as ext:
            with pytest.raises(HarnessError, match="already exists"):
                ext.create_database(ext.database_name(PRODUCTION))
        assert taken in staging.databases(), "a database we did not create is never dropped"
    finally:
        staging.pg.drop_database(taken)


def test_tools_get_the_password_from_a_password_file_not_argv_or_environment(staging):
    run_id = new_run_id()
    with ExternalPostgres(run_id=run_id, dsn=staging.dsn) as ext:
        name = ext.create_database(ext.database_name(PRODUCTION))
        result = ext.run_tool("psql", ["-d", name, "--no-password", "-At", "-c", "SELECT current_user"], {})
        env_dump = ext.run_tool("psql", ["-d", name, "--no-password", "-At", "-c", r"\! env"], {})
    assert result.ok and result.stdout.strip() == "staging", result.stderr
    for secret in staging.secrets():
        assert not any(secret in arg for arg in result.argv)
        assert secret not in env_dump.stdout, "the password reached the tool's environment"
    assert not any("staging" in arg or str(staging.pg.port) in arg for arg in result.argv)
    assert "PGPASSFILE=" in env_dump.stdout and f"GRIMOIRE_DRILL_RUN_ID={run_id}" in env_dump.stdout
    passfile = Path(next(line for line in env_dump.stdout.splitlines() if line.startswith("PGPASSFILE=")).split("=", 1)[1])
    assert not passfile.exists() and not passfile.parent.exists(), "the password file outlived the tool"


def test_errors_and_descriptions_never_show_the_password(staging):
    wrong = staging.dsn.replace(quote(staging.password, safe=""), quote("Wr0ng/" + staging.password, safe=""))
    with pytest.raises(HarnessError) as caught:
        with ExternalPostgres(run_id=new_run_id(), dsn=wrong):
            pass
    message = caught.value.line()
    assert "did not answer" in message and "password authentication failed" in message
    assert f"127.0.0.1:{staging.pg.port}" in message
    with pytest.raises(HarnessError) as bad:
        ExternalPostgres(run_id=new_run_id(), dsn=f"postgresql://staging:{staging.password}@127.0.0.1:notaport/x")
    with ExternalPostgres(run_id=new_run_id(), dsn=staging.dsn) as ext:
        described = json.dumps(ext.info.as_dict())
    with pytest.raises(HarnessError, match="not running"):
        ext.conninfo("postgres")
    for text in (message, bad.value.line(), described):
        for secret in staging.secrets() + ["Wr0ng"]:
            assert secret not in text


# -- the real CLI ---------------------------------------------------------------------------------

def _report_texts(report: Path) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in report.rglob("*") if path.is_file()}


ARGV_WARNING = ("--postgres-dsn on the command line is visible in ps to every user of this host; "
                "use --postgres-dsn-file or GRIMOIRE_DRILL_POSTGRES_DSN")


@pytest.mark.parametrize("via", ["flag", "environment", "file", "file from environment"])
def test_cli_drill_on_an_external_server_passes_and_never_shows_the_password(
        staging, sample_factory, tmp_path, via):
    """Through the real CLI; meanwhile no process but the drill itself may hold the password."""
    import subprocess
    import sys

    from engine_traces import LeakWatch

    before = staging.databases()
    report = tmp_path / "report"
    args = ["run", "--mongo-engine", "simulated", "--postgres-engine", "external", str(sample_factory()),
            "--report-dir", str(report)]
    env = {**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"}
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(f"  {staging.dsn}\n")
    dsn_file.chmod(0o600)
    if via == "flag":
        args += ["--postgres-dsn", staging.dsn]
    elif via == "environment":
        env["GRIMOIRE_DRILL_POSTGRES_DSN"] = staging.dsn
    elif via == "file":
        args += ["--postgres-dsn-file", str(dsn_file)]
    else:
        env["GRIMOIRE_DRILL_POSTGRES_DSN_FILE"] = str(dsn_file)
    watch = LeakWatch(staging.secrets())
    with subprocess.Popen([sys.executable, "-m", "grimoire_drill.cli", *args], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as drill:
        watch.watch(drill.pid)
        stdout, stderr = drill.communicate(timeout=600)
    watch.stop()
    assert drill.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert not watch.leaks, f"the password reached {watch.leaks}"
    assert (ARGV_WARNING in stderr) == (via == "flag"), stderr[-2000:]
    summary = json.loads((report / "summary.json").read_text())
    engine = summary["engines"]["postgresql"]
    assert engine["kind"] == "external" and engine["version"].startswith("15")
    texts = {"stdout": stdout, "stderr": stderr, **_report_texts(report)}
    assert {"report.html", "summary.json", "junit.xml", "drill.prom"} <= set(texts)
    for where, text in texts.items():
        for secret in staging.secrets():
            assert secret not in text, f"the DSN password leaked into {where}"
    _assert_untouched(staging, before)


def test_cli_drill_with_a_superuser_dsn_warns_on_stdout_and_in_the_report(staging, sample_factory, run_cli, tmp_path):
    before, roles = staging.databases(), staging.roles()
    report = tmp_path / "report"
    result = run_cli("run", "--mongo-engine", "simulated", "--postgres-engine", "external", sample_factory(),
                     "--report-dir", report, env={"GRIMOIRE_DRILL_POSTGRES_DSN": staging.pg.url("postgres")})
    assert result.returncode == 0, result.output
    assert "WARNING: the --postgres-dsn role is a superuser" in result.output
    summary = json.loads((report / "summary.json").read_text())
    assert summary["engines"]["postgresql"]["note"].startswith("WARNING: the --postgres-dsn role is a superuser")
    assert "WARNING: the --postgres-dsn role is a superuser" in (report / "report.html").read_text()
    _assert_untouched(staging, before, roles)


# -- MongoDB: only with a real server ------------------------------------------------------------

@pytest.fixture
def mongo_uri() -> str:
    uri = os.environ.get("GRIMOIRE_DRILL_MONGO_URI")
    if not uri:
        pytest.skip("GRIMOIRE_DRILL_MONGO_URI is not set (no MongoDB server here; set it to a throwaway server's URI)")
    return uri


def test_external_mongo_restores_into_a_scratch_database_and_drops_it(mongo_uri, sample_factory, tmp_path):
    from grimoire_drill.dump import scan_mongodump
    from grimoire_drill.restore.mongo import restore_mongo

    with tarfile.open(sample_factory()) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if "/mongodb/" in m.name], filter="data")
    root = next(tmp_path.glob("backup_*/mongodb"))
    run_id = new_run_id()
    marker_db = f"grimoire_drill_marker_{run_id}"
    with ExternalMongo(run_id=run_id, uri=mongo_uri) as ext:
        ext.client()[marker_db]["marker"].insert_many([{"_id": n, "note": note} for n, note in MARKERS])
        try:
            result = restore_mongo(ext, root, scan_mongodump(root), skip=["admin", "config", "local"], jobs=2)
            assert result.ok, result.all_errors()
            assert {c.target.split(".")[0] for c in result.collections} == {f"legrimoire_drill_{run_id}"}
            assert list(ext.client()[marker_db]["marker"].find({}, sort=[("_id", 1)])) == [
                {"_id": n, "note": note} for n, note in MARKERS]
            described = json.dumps(ext.info.as_dict())
            assert run_id in described
            password = ext._parsed.get("password")
            assert not password or password not in described
        finally:
            names = ext.client().list_database_names()
            ext.client().drop_database(marker_db)
    with ExternalMongo(run_id=new_run_id(), uri=mongo_uri) as again:
        assert f"legrimoire_drill_{run_id}" not in again.client().list_database_names()
    assert f"legrimoire_drill_{run_id}" in names
