"""--then through the real CLI: the command reaches the restored copies and nothing else of ours
or the caller's, its failure is exit 3, it is ended with its whole process group on timeout,
and what it changed in the schema is in the diff."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from grimoire_drill.engines.base import process_start

pytestmark = pytest.mark.slow

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")
THEN = RUN + ("--then-allow-simulated",)  # no MongoDB server here: --then runs against PostgreSQL only

PLANTED = {
    "MONGODB_URL": "mongodb://prod-user:prod-mongo-secret@prod-mongo.example:27017/legrimoire",
    "MONGO_URL": "mongodb://prod-mongo-2.example/legrimoire",
    "PGHOST": "prod-pg.example", "PGPASSWORD": "prod-pg-secret",
    "DATABASE_URL": "postgresql://grimoire:prod-db-secret@prod-pg.example:5432/le_grimoire",
    "SQLALCHEMY_DATABASE_URI": "postgresql://grimoire:prod-sqla-secret@prod-pg.example/le_grimoire",
    "GRIMOIRE_DRILL_PASSPHRASE": "prod-gpg-passphrase",
    "AWS_SECRET_ACCESS_KEY": "prod-aws-secret",
    "KEEP_ME": "kept-for-alembic",
}
PRINT_ENV = textwrap.dedent("""
    import json, os, sys
    with open(sys.argv[1], "w") as out:
        json.dump(dict(os.environ), out)
""")


def test_then_never_sees_the_callers_databases_and_refuses_a_simulated_mongo_before_restoring(
        sample_factory, run_cli, tmp_path):
    script = tmp_path / "print_env.py"
    script.write_text(PRINT_ENV)
    seen = tmp_path / "child-env.json"
    command = f"{sys.executable} {script} {seen}"

    refused = run_cli(*RUN, sample_factory(), "--report-dir", tmp_path / "refused", "--then", command, env=PLANTED)
    assert refused.returncode == 2, refused.output
    assert "--then-allow-simulated" in refused.stderr and "simulated" in refused.stderr
    assert not seen.exists()                                     # the command never ran
    assert not (tmp_path / "refused" / "summary.json").exists()  # nor was anything restored or reported

    report = tmp_path / "r"
    result = run_cli(*THEN, sample_factory(), "--report-dir", report, "--then", command, env=PLANTED)
    assert result.returncode == 0, result.output
    child = json.loads(seen.read_text())
    for name, value in PLANTED.items():
        if name == "KEEP_ME":
            assert child[name] == value  # the rest of the caller's environment stays
        else:
            assert value not in child.values(), name
    assert child["DATABASE_URL"].startswith("postgresql://") and "@127.0.0.1:" in child["DATABASE_URL"]
    assert child["DATABASE_URL"] == child["GRIMOIRE_DRILL_DATABASE_URL"]
    assert "MONGODB_URL" not in child and "MONGO_URL" not in child and "PGHOST" not in child
    assert child["MONGODB_DB_NAME"] == "legrimoire"
    assert not {"PGPASSWORD", "GRIMOIRE_DRILL_PASSPHRASE", "AWS_SECRET_ACCESS_KEY"} & set(child)
    assert "PATH" in child
    summary = json.loads((report / "summary.json").read_text())
    assert "MONGODB_URL" not in summary["then"]["environment"] and "DATABASE_URL" in summary["then"]["environment"]


def test_then_past_its_timeout_is_ended_with_its_grandchildren(sample_factory, run_cli, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # the drill's child is sh; it starts a shell that starts a long sleep, then waits for it
    command = f"sh -c 'sleep 600 & echo $! > {pid_file}; wait'; echo never-printed"
    report = tmp_path / "r"
    result = run_cli(*THEN, sample_factory(), "--report-dir", report, "--then", command, "--then-timeout", "3")
    assert result.returncode == 3, result.output
    summary = json.loads((report / "summary.json").read_text())
    assert summary["outcome"] == "migration_failed"
    assert summary["then"]["timed_out"] is True and summary["then"]["exit_code"] is None
    assert "never-printed" not in summary["then"]["output_tail"]
    check = next(c for c in summary["checks"] if c["id"] == "premigration.command")
    assert "--then-timeout 3s" in check["message"] and "process group" in check["message"]
    grandchild = int(pid_file.read_text())
    assert process_start(grandchild) is None  # gone (or a zombie waiting for init): nothing left running


ADD_COLUMN = textwrap.dedent("""
    import os, sys, psycopg
    from urllib.parse import urlsplit
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN x int")
        conn.execute("CREATE INDEX users_x_idx ON users (x)")
        conn.execute("ALTER TABLE users ADD CONSTRAINT users_x_positive CHECK (x > 0)")
        conn.execute("UPDATE recipes SET title = upper(title)")  # a data migration: values change, counts stay
    password = urlsplit(os.environ["DATABASE_URL"]).password
    open(sys.argv[1], "w").write(password)
    # the kept tail (limits.then_output_tail_bytes, 16384) starts with the password's last 6 characters
    sys.stdout.write(password + "x" * (16384 - 6))
""")


def test_then_schema_changes_are_in_the_diff_and_a_cut_tail_shows_no_password_fragment(sample_factory, run_cli,
                                                                                        tmp_path):
    script = tmp_path / "add_column.py"
    script.write_text(ADD_COLUMN)
    password_file = tmp_path / "password"
    report = tmp_path / "r"
    result = run_cli(*THEN, sample_factory(), "--report-dir", report, "--then",
                     f"{sys.executable} {script} {password_file}")
    assert result.returncode == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    fragment = password_file.read_text()[-6:]
    assert "earlier output cut" in summary["then"]["output_tail"]
    for name in ("summary.json", "report.html", "junit.xml"):
        assert fragment not in (report / name).read_text(), name
    schema = summary["changes"]["schema"]
    assert schema["columns"]["added"]["items"] == ["users.x: integer"]
    assert schema["columns"]["dropped"]["items"] == [] and schema["columns"]["changed"]["items"] == []
    assert [i.split(":")[0] for i in schema["indexes"]["added"]["items"]] == ["users.users_x_idx"]
    assert schema["constraints"]["added"]["items"] == ["users.users_x_positive: CHECK ((x > 0))"]
    assert schema["mongodb_indexes"]["added"]["items"] == []  # compared (simulated store), nothing changed
    page = (report / "report.html").read_text()
    assert "users.x: integer" in page and "users_x_positive" in page
    # content equality is the dump's, so it is proven before the command and off after it, never failed by it
    before = json.loads((report / "before" / "summary.json").read_text())
    content = "consistency.postgresql_content.recipes"
    assert {c["id"]: c["status"] for c in before["checks"]}[content] == "passed"
    after = {c["id"]: c for c in summary["checks"]}[content]
    assert after["status"] == "off" and "migrated by --then" in after["message"], after
    assert summary["scope"]["kind"] == "full"


def test_then_is_not_run_when_a_database_was_not_restored(sample_factory, run_cli, tmp_path):
    """No DATABASE_URL would leave the migration to its own default (alembic.ini), maybe production."""
    marker = tmp_path / "ran"
    report = tmp_path / "r"
    result = run_cli(*THEN, sample_factory("missing-pg-dump"), "--report-dir", report, "--then", f"touch {marker}",
                     env={"DATABASE_URL": "postgresql://grimoire:prod@prod-pg.example/le_grimoire"})
    assert result.returncode == 1, result.output  # the backup is bad; that is the verdict
    assert not marker.exists()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["outcome"] == "failed"
    check = next(c for c in summary["checks"] if c["id"] == "premigration.command")
    assert check["status"] == "skipped" and "PostgreSQL not restored" in check["message"]
