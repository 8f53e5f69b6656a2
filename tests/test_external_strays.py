"""External servers keep nothing: a scratch database a killed drill left is found and dropped by the next drill.

The server is a real PostgreSQL (test_engines_external's StagingServer: the drill's login has
CREATEDB, here also CREATEROLE, and no superuser). A drill killed with SIGKILL mid-restore leaves
its scratch database, a copy of production data; the next drill drops it and says so. A scratch
database whose owner still runs (another live drill: tagged with this test process) or whose
owner cannot be judged from here (another machine, another pid namespace, no owner record) is
never dropped; the ones that cannot be judged are reported.
"""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest
from psycopg import sql

from grimoire_drill.engines.base import new_run_id, owner_tag, process_start
from grimoire_drill.engines.external import ExternalMongo, ExternalPostgres, scratch_name
from grimoire_drill.engines.local_postgres import find_bindir
from grimoire_drill.engines.scratch import (OWNER_COLLECTION, OWNER_DOCUMENT_ID, ScratchOwner, boot_id,
                                            scratch_run_id, session_name)

from engine_traces import LiveRun, leftovers
from test_engines_external import MARKERS, PRODUCTION, mongo_uri, staging  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")

EXTERNAL = ("--mongo-engine", "simulated", "--postgres-engine", "external")
BIG = 30  # sample scale at which the restore is still running when its progress line appears (test_cleanup.BIG)


def _dead_owner_tag() -> str:
    """The owner tag of a process that has ended: what a SIGKILLed drill's records carry."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        tag = owner_tag(child.pid)
    finally:
        child.kill()
        child.wait()
    assert process_start(child.pid) is None
    return tag


def _record(run_id: str, owner: str, boot: str | None = None) -> ScratchOwner:
    return ScratchOwner(run_id=run_id, owner=owner, boot=boot_id() if boot is None else boot, host="test-host")


def _as_drill(staging, statement: sql.Composable) -> None:
    """Run ``statement`` as the drill's own login, so what it made is the drill's to drop."""
    with psycopg.connect(staging.dsn, autocommit=True) as conn:
        conn.execute(statement)


def _make_database(staging, name: str, record: ScratchOwner | None) -> None:
    _as_drill(staging, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if record is not None:
        _as_drill(staging, sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name),
                                                                           sql.Literal(record.as_comment())))


def _make_role(staging, name: str, record: ScratchOwner | None) -> None:
    _as_drill(staging, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    if record is not None:
        _as_drill(staging, sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name),
                                                                       sql.Literal(record.as_comment())))


def _roles(staging) -> set[str]:
    with psycopg.connect(staging.pg.conninfo("postgres")) as conn:
        return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}


def _comment(staging, name: str) -> str | None:
    with psycopg.connect(staging.pg.conninfo("postgres")) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
    return row[0] if row else None


@pytest.fixture
def cleanup(staging):
    """Databases and roles a test made: dropped as the superuser afterwards, whatever happened."""
    databases: list[str] = []
    roles: list[str] = []
    yield databases, roles
    with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:
        for name in databases:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for name in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module", autouse=True)
def drill_may_create_roles(staging):
    """The restore-role work gives the drill's login CREATEROLE; the sweep drops roles named after a stray."""
    with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("ALTER ROLE staging CREATEROLE")


# -- naming and records ----------------------------------------------------------------------------

def test_scratch_names_carry_the_run_id_and_records_round_trip():
    run_id = new_run_id()
    assert scratch_name(PRODUCTION, run_id) == f"le_grimoire_drill_{run_id}"
    assert scratch_run_id(scratch_name(PRODUCTION, run_id)) == run_id
    assert scratch_run_id(scratch_name(PRODUCTION, run_id) + "_restore") == run_id  # a role derived from it
    assert scratch_run_id("le_grimoire") is None and scratch_run_id(f"le_grimoire_drill_{run_id}x") is None
    record = ScratchOwner.this_process(run_id)
    assert record.owner == owner_tag() and record.boot == boot_id() != ""
    assert ScratchOwner.from_comment(record.as_comment()) == record
    assert ScratchOwner.from_document(json.loads(json.dumps(record.as_document()))) == record
    for junk in (None, "", "a comment someone wrote", record.as_comment()[:-2], record.as_comment() + " " * 2000,
                 'grimoire-drill owner {"run": 1}'):
        assert ScratchOwner.from_comment(junk) is None


# -- the sweep as the engine connects ------------------------------------------------------------

def test_sweep_drops_only_what_a_gone_owner_left_and_reports_what_it_cannot_judge(staging, cleanup):
    databases, roles = cleanup
    dead = _dead_owner_tag()
    pid, start, _namespace = dead.split(":")
    runs = {what: new_run_id() for what in ("dead", "live", "foreign", "foreign_connected", "container", "untagged",
                                            "creating", "not_ours", "mislabelled", "role_only", "role_untagged")}
    names = {what: scratch_name(PRODUCTION, run_id) for what, run_id in runs.items()}
    records = {
        "dead": _record(runs["dead"], dead),
        "live": _record(runs["live"], owner_tag()),                       # another drill, still running
        "foreign": _record(runs["foreign"], dead, boot="0" * 32),         # made on another machine
        "foreign_connected": _record(runs["foreign_connected"], dead, boot="0" * 32),  # ... whose drill is connected
        "container": _record(runs["container"], f"{pid}:{start}:1"),      # another pid namespace
        "untagged": None,                                                 # killed between CREATE and COMMENT
        "creating": None,                                                 # a live drill between the two
        "mislabelled": _record(runs["dead"], dead),                       # a record naming another run
    }
    not_a_scratch_name = f"{PRODUCTION}_drill_nightly"
    for what, record in records.items():
        databases.append(names[what])
        _make_database(staging, names[what], record)
    databases += [not_a_scratch_name, names["not_ours"]]
    _make_database(staging, not_a_scratch_name, None)
    with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:  # made by another login
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names["not_ours"])))
    connected = [psycopg.connect(staging.pg.conninfo("postgres"), application_name=session_name(runs[what]))
                 for what in ("creating", "foreign_connected")]  # another login's sessions: seen all the same
    dead_role, live_role, orphan_role = names["dead"] + "_restore", names["live"] + "_restore", names["role_only"] + "_r"
    roles += [dead_role, live_role, orphan_role]
    _make_role(staging, dead_role, None)                                  # judged by its database's record
    _make_role(staging, live_role, None)
    _make_role(staging, orphan_role, _record(runs["role_only"], dead))    # its own record, no database
    untagged_role = scratch_name("grimoire", runs["role_untagged"])       # killed between CREATE ROLE and DATABASE
    roles.append(untagged_role)
    _make_role(staging, untagged_role, None)

    try:
        with ExternalPostgres(run_id=new_run_id(), dsn=staging.dsn) as ext:
            swept = ext.janitor
            note = ext.info.note
    finally:
        for conn in connected:
            conn.close()

    present, present_roles = staging.databases(), _roles(staging)
    assert {names["dead"], names["untagged"]}.isdisjoint(present)
    assert {dead_role, orphan_role, untagged_role}.isdisjoint(present_roles)
    kept = ("live", "creating", "foreign", "foreign_connected", "container", "not_ours", "mislabelled")
    assert {names[what] for what in kept} | {not_a_scratch_name} <= present
    assert live_role in present_roles
    assert staging.production_rows() == MARKERS
    removed, left = "\n".join(swept.removed), "\n".join(swept.left)
    assert f"removed a stray scratch database {names['dead']} of a killed run (run {runs['dead']}, pid {pid}" in removed
    assert f"removed a stray scratch database {names['untagged']} of a killed run" in removed
    assert f"removed a stray scratch role {dead_role} of a killed run" in removed
    assert f"removed a stray scratch role {orphan_role} of a killed run" in removed
    assert f"removed a stray scratch role {untagged_role} of a killed run" in removed
    assert len(swept.removed) == 5, swept.removed
    for what, why in (("foreign", "another machine"), ("container", "another pid namespace"),
                      ("not_ours", "no owner record"), ("mislabelled", "no owner record")):
        line = next((line for line in swept.left if names[what] in line), None)
        assert line is not None and line.startswith(f"left the scratch database {names[what]} alone: "), left
        assert why in line, line
    for what in ("live", "creating", "foreign_connected"):
        assert names[what] not in left + removed  # a live drill's: kept, and not worth a line
    assert not_a_scratch_name not in left + removed
    assert "removed 5 stray scratch object(s)" in note and "left 4 scratch object(s)" in note


def test_a_scratch_database_is_tagged_with_its_owner_before_anything_goes_in(staging):
    run_id = new_run_id()
    with ExternalPostgres(run_id=run_id, dsn=staging.dsn) as ext:
        name = ext.create_database(ext.database_name(PRODUCTION))
        record = ScratchOwner.from_comment(_comment(staging, name))
        with psycopg.connect(ext.conninfo(name)) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    assert record == ScratchOwner.this_process(run_id)
    assert name not in staging.databases()


# -- the real CLI: kill -9 mid-restore, then the next drill -------------------------------------------

def _wait_until(staging, name: str, run: LiveRun, moment: str) -> None:
    """Poll (as the superuser) until the run's scratch database exists ("created": its record may not be
    written yet) or carries its record and pg_restore fills it ("restoring")."""
    with psycopg.connect(staging.pg.conninfo("postgres"), autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() or (
                moment == "restoring" and _comment(staging, name) is None):
            if run.process.poll() is not None:
                pytest.fail(f"the run ended before it created {name}:\n{run.output}")
            conn.execute("SELECT pg_sleep(0.02)")
    if moment == "created":
        return
    with psycopg.connect(staging.pg.conninfo(name), autocommit=True) as conn:
        while not conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]:
            if run.process.poll() is not None:
                pytest.fail(f"the run ended before it restored into {name}:\n{run.output}")
            conn.execute("SELECT pg_sleep(0.02)")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["restoring", "created"])
def test_a_drill_killed_mid_restore_leaves_its_scratch_database_and_the_next_drill_drops_it(
        staging, sample_factory, run_cli, tmp_path, cleanup, moment):
    databases, _roles_made = cleanup
    env = {"GRIMOIRE_DRILL_POSTGRES_DSN": staging.dsn}   # never on a command line
    live_run, foreign_run = new_run_id(), new_run_id()
    live, foreign = scratch_name(PRODUCTION, live_run), scratch_name(PRODUCTION, foreign_run)
    databases += [live, foreign]
    _make_database(staging, live, _record(live_run, owner_tag()))            # a live drill's: this process
    _make_database(staging, foreign, _record(foreign_run, _dead_owner_tag(), boot="f" * 32))

    killed = LiveRun(*EXTERNAL, sample_factory(scale=BIG), "--report-dir", tmp_path / "killed", cwd=tmp_path, env=env)
    stray = scratch_name(PRODUCTION, killed.run_id)
    databases.append(stray)
    try:
        killed.wait_for("restore_postgresql: loading")
        _wait_until(staging, stray, killed, moment)
    finally:
        killed.kill()
    assert stray in staging.databases(), "a SIGKILLed drill cannot drop its scratch database"
    record = ScratchOwner.from_comment(_comment(staging, stray))
    assert record.run_id == killed.run_id if moment == "restoring" else record is None or record.run_id == killed.run_id

    following = run_cli("run", *EXTERNAL, sample_factory(), "--report-dir", tmp_path / "next", env=env)
    assert following.returncode == 0, following.output
    said = [line for line in following.stderr.splitlines() if stray in line]
    removal = f"removed a stray scratch database {stray} of a killed run (run {killed.run_id}, "
    removal += f"pid {killed.cli_pid}" if record is not None else "killed before it recorded its owner"
    assert any(removal in line for line in said), following.stderr
    assert any(f"left the scratch database {foreign} alone" in line and "another machine" in line
               for line in following.stderr.splitlines()), following.stderr
    assert live not in following.output
    present = staging.databases()
    assert stray not in present and {live, foreign} <= present
    assert staging.production_rows() == MARKERS
    engine = json.loads((tmp_path / "next" / "summary.json").read_text())["engines"]["postgresql"]
    assert "removed 2 stray scratch object(s) of killed runs" in engine["note"]   # its database and its restore role
    assert leftovers(killed.run_id) == []  # its pg_restore and temp dir went too (the host janitor)
    for secret in staging.secrets():
        assert secret not in following.output


# -- MongoDB: only with a real server ------------------------------------------------------------

def _mongo_strays(client) -> dict[str, str]:
    """Scratch databases of a dead, a live, a foreign and an unrecorded owner, each holding a copied document."""
    runs = {what: new_run_id() for what in ("dead", "live", "foreign", "untagged")}
    names = {what: scratch_name("legrimoire", run_id) for what, run_id in runs.items()}
    records = {"dead": _record(runs["dead"], _dead_owner_tag()), "live": _record(runs["live"], owner_tag()),
               "foreign": _record(runs["foreign"], owner_tag(), boot="0" * 32)}
    for what, record in records.items():
        client[names[what]][OWNER_COLLECTION].insert_one({"_id": OWNER_DOCUMENT_ID, **record.as_document()})
    for name in names.values():
        client[name]["recipes"].insert_one({"title": "copied from production"})
    return names


def _assert_mongo_swept(client, names: dict[str, str], swept) -> None:
    present = set(client.list_database_names())
    assert names["dead"] not in present and {names["live"], names["foreign"], names["untagged"]} <= present
    assert swept.removed == [line for line in swept.removed if names["dead"] in line] and len(swept.removed) == 1
    assert swept.removed[0].startswith(f"removed a stray scratch database {names['dead']} of a killed run")
    assert any(names["untagged"] in line and "no owner record" in line for line in swept.left), swept.left
    assert any(names["foreign"] in line and "another machine" in line for line in swept.left), swept.left
    assert not any(names["live"] in line for line in swept.lines())


def test_mongo_sweep_judges_owner_records_in_an_in_process_store():
    """The sweep's MongoDB half on the simulated engine's store (the same pymongo API); a real server below."""
    import mongomock

    from grimoire_drill.engines.janitor import sweep_mongo_scratch

    client = mongomock.MongoClient()
    names = _mongo_strays(client)
    _assert_mongo_swept(client, names, sweep_mongo_scratch(client, new_run_id()))


def test_external_mongo_sweeps_scratch_databases_of_gone_owners_only(mongo_uri):  # noqa: F811
    import pymongo

    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=15_000)
    names = _mongo_strays(client)
    try:
        run_id = new_run_id()
        with ExternalMongo(run_id=run_id, uri=mongo_uri) as ext:
            swept = ext.janitor
            mine = ext.database_name("legrimoire")
            record = ext.client()[mine][OWNER_COLLECTION].find_one({"_id": OWNER_DOCUMENT_ID})
        _assert_mongo_swept(client, names, swept)
        assert ScratchOwner.from_document(record) == ScratchOwner.this_process(run_id)
        assert mine not in client.list_database_names()
    finally:
        for name in names.values():
            client.drop_database(name)
        client.close()
