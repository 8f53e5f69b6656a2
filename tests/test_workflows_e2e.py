"""The three users' workflows through the real CLI: pre-migration (--then), list, inspect."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")
THEN = RUN + ("--then-allow-simulated",)  # no MongoDB server here: --then runs against PostgreSQL only

MIGRATION = textwrap.dedent("""
    import os, psycopg
    print("migrating", os.environ["GRIMOIRE_DRILL_POSTGRES_DATABASE"], "mongo db", os.environ["MONGODB_DB_NAME"])
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE recipe_ratings (id serial PRIMARY KEY, stars int)")
        conn.execute("INSERT INTO recipe_ratings (stars) VALUES (5), (4), (3)")
        conn.execute("DELETE FROM favorites WHERE ctid IN (SELECT ctid FROM favorites LIMIT 2)")
        conn.execute("UPDATE alembic_version SET version_num = 'ffff00000001'")
""")


def test_then_runs_the_migration_on_the_copy_and_reports_both_rounds(sample_factory, run_cli, tmp_path):
    script = tmp_path / "migrate.py"
    script.write_text(MIGRATION)
    report = tmp_path / "r"
    result = run_cli(*THEN, sample_factory(), "--report-dir", report, "--then", f"{sys.executable} {script}")
    assert result.returncode == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    before = json.loads((report / "before" / "summary.json").read_text())
    assert [r["label"] for r in summary["rounds"]] == ["before", "after"]
    changes = summary["changes"]
    assert changes["tables_added"] == ["recipe_ratings"]
    favorites = before["counts"]["postgresql"]["favorites"]
    assert changes["row_counts_changed"]["favorites"] == [favorites, favorites - 2]
    assert changes["alembic_version"][1] == "ffff00000001" and changes["alembic_version"][0] != "ffff00000001"
    assert summary["then"]["exit_code"] == 0 and "migrating le_grimoire" in summary["then"]["output_tail"]
    assert any(c["id"] == "premigration.command" and c["status"] == "passed" for c in summary["checks"])
    page = (report / "report.html").read_text()
    assert "recipe_ratings" in page and "ffff00000001" in page


def test_failing_then_command_is_migration_failed_exit_3_with_its_exit_code_and_output(sample_factory, run_cli,
                                                                                       tmp_path):
    report = tmp_path / "r"
    command = f"{sys.executable} -c \"import sys; print('alembic: cannot upgrade, column exists'); sys.exit(5)\""
    result = run_cli(*THEN, sample_factory(), "--report-dir", report, "--then", command)
    assert result.returncode == 3, result.output
    assert "column exists" in result.stderr  # the output tail on the console
    summary = json.loads((report / "summary.json").read_text())
    assert summary["outcome"] == "migration_failed"
    assert summary["then"]["exit_code"] == 5
    check = next(c for c in summary["checks"] if c["id"] == "premigration.command")
    assert check["status"] == "failed" and "exited 5" in check["message"] and "column exists" in check["message"]
    assert "column exists" in (report / "report.html").read_text()


def test_database_password_never_leaks_through_then(sample_factory, run_cli, tmp_path):
    report = tmp_path / "r"
    result = run_cli(*THEN, sample_factory(), "--report-dir", report, "--then", 'echo "url=$DATABASE_URL"')
    assert result.returncode == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    tail = summary["then"]["output_tail"]
    assert "url=postgresql://grimoire:" in tail and "***" in tail
    # the generated password is 32 url-safe characters; nothing of that shape follows "grimoire:"
    for name in ("summary.json", "report.html", "junit.xml", "drill.prom"):
        text = (report / name).read_text()
        assert "grimoire:***@" in text or "url=" not in text


def test_list_shows_backups_newest_first_with_last_verdict(sample_factory, run_cli, tmp_path):
    from grimoire_drill.sample import write_generations

    backups = tmp_path / "backups"
    paths = write_generations(backups, count=3)
    oldest = min(paths)
    oldest.touch()  # the freshest mtime on the oldest backup: order must still follow the names
    assert run_cli(*RUN, backups).returncode == 0
    result = run_cli("list", backups)
    assert result.returncode == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("backup_")]
    assert [r.split()[0] for r in rows] == sorted((p.name for p in paths), reverse=True)
    assert "PASSED SIMULATED" in rows[0] and "never drilled" in rows[-1]


def test_list_of_an_empty_folder_is_exit_1(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("list", tmp_path / "empty")
    assert result.returncode == 1 and "no backup" in result.stderr


def test_inspect_shows_contents_without_restoring(sample_factory, run_cli):
    result = run_cli("inspect", sample_factory())
    assert result.returncode == 0, result.output
    out = result.stdout
    assert "legrimoire.ingredients" in out and "off_id_1 (unique)" in out and "created_at_-1" in out
    assert "TABLE public users" in out or "TABLE DATA public users" in out
    assert "uploads" in out and "Backup ID:" in out and "ingredients_export.json" in out
