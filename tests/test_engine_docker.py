"""The docker engine with real containers: start, restore inside, clean up, even on failure.

Skipped (with the reason) when no Docker daemon answers. PostgreSQL tests use
GRIMOIRE_DRILL_POSTGRES_IMAGE (default grimoire-drill/postgres:15-local, built by
scripts/build-postgres-image.sh); MongoDB tests run only when GRIMOIRE_DRILL_MONGO_IMAGE names
an image present here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from grimoire_drill.engines.base import (BOOT_LABEL, HOST_LABEL, PID_LABEL, PID_NS_LABEL, PID_START_LABEL, RUN_LABEL,
                                         new_run_id)
from grimoire_drill.engines.docker import DockerMongo, DockerPostgres, docker_status, owner_labels
from grimoire_drill.engines.janitor import remove_strays
from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir
from grimoire_drill.errors import HarnessError

from engine_traces import assert_cancel_ends_a_running_tool

pytestmark = pytest.mark.docker

DEFAULT_POSTGRES_IMAGE = "grimoire-drill/postgres:15-local"

TINY_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL,
                    token uuid NOT NULL DEFAULT uuid_generate_v4());
CREATE TABLE recipes (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id), title text NOT NULL);
INSERT INTO users (email) VALUES ('a@example.org'), ('b@example.org'), ('c@example.org');
INSERT INTO recipes (user_id, title) VALUES (1, 'Tourtière'), (1, 'Pouding chômeur'), (2, 'Tarte au sucre');
"""


@pytest.fixture(scope="module")
def docker_client():
    ok, why = docker_status()
    if not ok:
        pytest.skip(why)
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def no_ryuk(monkeypatch):
    """Ryuk's image needs a registry; the engine removes its own containers."""
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")


def _image_or_skip(client, variable: str, default: str | None) -> str:
    from docker.errors import ImageNotFound

    image = os.environ.get(variable, default)
    if not image:
        pytest.skip(f"{variable} is not set (name a MongoDB image present on this machine to run these tests)")
    try:
        client.images.get(image)
    except ImageNotFound:
        pytest.skip(f"image {image} is not present here (scripts/build-postgres-image.sh builds the PostgreSQL one; "
                    f"or set {variable})")
    return image


@pytest.fixture(scope="module")
def postgres_image(docker_client) -> str:
    return _image_or_skip(docker_client, "GRIMOIRE_DRILL_POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE)


@pytest.fixture(scope="module")
def mongo_image(docker_client) -> str:
    return _image_or_skip(docker_client, "GRIMOIRE_DRILL_MONGO_IMAGE", None)


@pytest.fixture(scope="module")
def custom_dump(tmp_path_factory):
    """A real ``pg_dump -F c -b`` of a tiny le_grimoire, made with this machine's PostgreSQL."""
    if find_bindir() is None:
        pytest.skip("no local PostgreSQL binaries to make the dump with")
    out = tmp_path_factory.mktemp("dump") / "database.backup"
    with LocalPostgres(run_id=new_run_id()) as local:
        local.create_database("le_grimoire")
        with psycopg.connect(local.conninfo("le_grimoire")) as conn:
            conn.execute(TINY_SCHEMA)
        done = local.run_tool("pg_dump", ["-F", "c", "-b", "-f", "{out}", "le_grimoire"], {"out": out})
    assert done.ok, done.stderr
    return out


def _containers_of(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- PostgreSQL ---------------------------------------------------------------------------

def test_docker_status_is_one_line(docker_client):
    ok, why = docker_status()
    assert ok and why and "\n" not in why


def test_pg_restore_runs_inside_and_restores_rows(docker_client, postgres_image, custom_dump):
    run_id = new_run_id()
    with DockerPostgres(run_id, image=postgres_image) as pg:
        assert pg.info.kind == "docker"
        assert pg.info.version.startswith("15")
        assert pg.info.image == postgres_image
        assert pg.info.image_id and pg.info.image_id.startswith(("sha256:", postgres_image.split(":")[0]))
        assert "pg_restore" in pg.info.tools and "15" in pg.info.tools["pg_restore"]
        assert pg.has_tool("pg_restore") and pg.has_tool("psql") and not pg.has_tool("mongorestore")
        password = conninfo_to_dict(pg.conninfo("postgres"))["password"]
        assert password and password not in repr(pg.info.as_dict())

        pg.create_database("le_grimoire")
        result = pg.run_tool("pg_restore", ["-d", "le_grimoire", "--no-owner", "--no-privileges", "{dump}"],
                             {"dump": custom_dump})
        assert result.ok, result.stderr
        assert result.argv[0] == "pg_restore" and "-h" in result.argv
        assert str(custom_dump) not in result.argv  # the in-container copy was used
        assert not any(password in arg for arg in result.argv)

        with psycopg.connect(pg.conninfo("le_grimoire")) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 3
            titles = [row[0] for row in conn.execute("SELECT title FROM recipes ORDER BY id")]
            assert titles == ["Tourtière", "Pouding chômeur", "Tarte au sucre"]
            assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'uuid-ossp'").fetchone()
            assert conn.execute("SELECT nextval('users_id_seq')").fetchone()[0] == 4

        (container,) = _containers_of(docker_client, run_id)
        assert container.labels[PID_LABEL] == str(os.getpid())
        launched = " ".join([container.attrs["Path"], *container.attrs["Args"]])
        assert password not in launched
        pg.drop_database("le_grimoire")
    assert _containers_of(docker_client, run_id) == []


def test_tool_output_comes_back_to_the_host(docker_client, postgres_image, tmp_path):
    run_id = new_run_id()
    out = tmp_path / "nested" / "inside.backup"
    with DockerPostgres(run_id, image=postgres_image, superuser="drill") as pg:
        pg.create_database("source")
        with psycopg.connect(pg.conninfo("source")) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50)")
        result = pg.run_tool("pg_dump", ["-F", "c", "-f", "{out}", "source"], {"out": out})
        assert result.ok, result.stderr
        assert out.read_bytes().startswith(b"PGDMP")

        pg.create_database("copy")
        assert pg.run_tool("pg_restore", ["-d", "copy", "{dump}"], {"dump": out}).ok
        with psycopg.connect(pg.url("copy")) as conn:
            assert conn.execute("SELECT count(*), max(id) FROM t").fetchone() == (50, 50)
    assert _containers_of(docker_client, run_id) == []


def test_failing_tool_reports_its_error(docker_client, postgres_image, tmp_path):
    broken = tmp_path / "broken.backup"
    broken.write_bytes(b"PGDMP this is not a dump")
    with DockerPostgres(new_run_id(), image=postgres_image) as pg:
        pg.create_database("target")
        result = pg.run_tool("pg_restore", ["-d", "target", "{dump}"], {"dump": broken})
    assert not result.ok
    assert "pg_restore" in result.stderr


def test_unknown_image_raises_harness_error_and_leaves_nothing(docker_client):
    run_id = new_run_id()
    with pytest.raises(HarnessError) as caught:
        with DockerPostgres(run_id, image="grimoire-drill/no-such-image:0"):
            pass
    assert caught.value.exit_code == 2
    assert "grimoire-drill/no-such-image:0" in str(caught.value)
    assert caught.value.fix and "build-postgres-image" in caught.value.fix
    assert "\n" not in caught.value.line()
    assert _containers_of(docker_client, run_id) == []


def test_container_that_never_gets_ready_is_removed(docker_client, postgres_image):
    run_id = new_run_id()
    engine = DockerPostgres(run_id, image=postgres_image, startup_timeout=0.01)
    with pytest.raises(HarnessError) as caught:
        with engine:
            pass
    password = engine._password  # conninfo() refuses once the container is gone
    assert password not in str(caught.value)
    assert "not ready within" in str(caught.value)
    assert _containers_of(docker_client, run_id) == []


def test_tool_timeout_stops_the_container(docker_client, postgres_image):
    run_id = new_run_id()
    with pytest.raises(HarnessError, match="did not finish within"):
        with DockerPostgres(run_id, image=postgres_image) as pg:
            pg.run_tool("psql", ["-d", "postgres", "-c", "SELECT pg_sleep(60)"], {}, timeout=1)
    assert _containers_of(docker_client, run_id) == []


def test_cancel_ends_a_tool_running_inside_and_refuses_new_ones(docker_client, postgres_image):
    """An interrupted drill: a restore thread inside ``docker exec`` returns now (its container goes)."""
    run_id = new_run_id()
    with DockerPostgres(run_id, image=postgres_image) as pg:
        assert_cancel_ends_a_running_tool(pg)
    assert _containers_of(docker_client, run_id) == []


def test_remove_strays_removes_only_containers_of_dead_processes(docker_client, postgres_image):
    current, earlier = new_run_id(), new_run_id() + "x"
    dead = owner_labels(earlier, "postgres") | {PID_LABEL: str(_dead_pid())}
    alive = owner_labels(earlier + "alive", "postgres")  # this very process: still running
    reused = owner_labels(earlier + "reused", "postgres") | {PID_START_LABEL: "1"}  # our pid, another start
    ours = owner_labels(current, "postgres") | {PID_LABEL: str(_dead_pid())}
    # started by a drill inside a container: its pid (dead here) names another process there
    elsewhere = owner_labels(earlier + "ns", "postgres") | {PID_LABEL: str(_dead_pid()), PID_NS_LABEL: "1"}
    # this very process, but labelled on another boot: whatever the pid is now, its owner is gone
    rebooted = owner_labels(earlier + "boot", "postgres") | {BOOT_LABEL: "another-boot"}
    # another machine on a shared daemon: its (dead here) pid is not ours to judge
    foreign = owner_labels(earlier + "host", "postgres") | {HOST_LABEL: "another-host", PID_LABEL: str(_dead_pid())}
    created = {
        name: docker_client.containers.create(postgres_image, name=f"grimoire-drill-test-{earlier}-{name}",
                                              labels=labels)
        for name, labels in {"dead": dead, "alive": alive, "reused": reused, "ours": ours,
                             "elsewhere": elsewhere, "rebooted": rebooted, "foreign": foreign}.items()
    }
    try:
        removed = remove_strays(current)
        assert sorted(removed) == sorted([created["dead"].name, created["reused"].name, created["rebooted"].name])
        remaining = {c.name for c in docker_client.containers.list(all=True, filters={"label": RUN_LABEL})}
        assert created["alive"].name in remaining and created["ours"].name in remaining
        assert created["elsewhere"].name in remaining and created["foreign"].name in remaining
        assert created["dead"].name not in remaining and created["reused"].name not in remaining
        assert created["rebooted"].name not in remaining
    finally:
        for container in created.values():
            try:
                container.remove(force=True, v=True)
            except Exception:  # noqa: BLE001 — already removed by the code under test
                pass


# -- MongoDB (only with GRIMOIRE_DRILL_MONGO_IMAGE) ---------------------------------------

def test_mongorestore_runs_inside_and_restores_documents(docker_client, mongo_image, tmp_path):
    run_id = new_run_id()
    dump = tmp_path / "mongodump"
    with DockerMongo(run_id, image=mongo_image) as mongo:
        assert mongo.info.kind == "docker" and mongo.info.version != "unknown"
        assert mongo.info.image_id
        client = mongo.client()
        recipes = client["legrimoire"]["recipes"]
        recipes.insert_many([{"title": f"Recette {i}", "is_public": i % 2 == 0} for i in range(25)])
        recipes.create_index([("title", 1)])
        if not mongo.has_tool("mongodump") or not mongo.has_tool("mongorestore"):
            pytest.skip(f"{mongo_image} has no mongodump/mongorestore")
        assert "mongorestore" in mongo.info.tools

        made = mongo.run_tool("mongodump", ["--out={out}"], {"out": dump})
        assert made.ok, made.stderr
        assert (dump / "legrimoire" / "recipes.bson").is_file()
        password = mongo.url("x").split(":")[2].split("@")[0]
        assert not any(password in arg for arg in made.argv)

        mongo.drop_database("legrimoire")
        restored = mongo.run_tool("mongorestore", ["--dir={dump}", "--nsInclude=legrimoire.*"], {"dump": dump})
        assert restored.ok, restored.stderr
        assert client["legrimoire"]["recipes"].count_documents({}) == 25
        assert "title_1" in client["legrimoire"]["recipes"].index_information()
    assert _containers_of(docker_client, run_id) == []


def test_mongo_unknown_image_raises_harness_error(docker_client, mongo_image):
    run_id = new_run_id()
    with pytest.raises(HarnessError):
        with DockerMongo(run_id, image=mongo_image + "-no-such-tag"):
            pass
    assert _containers_of(docker_client, run_id) == []
