"""--then's pieces on their own: the environment it gets, how it is run and ended, its verdict,
the URL an external MongoDB hands it, and how the command line is recorded."""

from __future__ import annotations


import pytest
from pymongo.uri_parser import parse_uri

from grimoire_drill.attribution import redact_argv
from grimoire_drill.engines.base import process_start
from grimoire_drill.engines.external import ExternalMongo
from grimoire_drill.premigration import command_environment, mask_secrets, run_in_own_group, verdict

CALLER = {
    "PATH": "/venv/bin:/usr/bin:/bin", "HOME": "/home/ops", "VIRTUAL_ENV": "/venv", "LANG": "C.UTF-8",
    "PGHOST": "prod", "PGPASSWORD": "x", "pgservice": "prod", "MONGODB_URL": "mongodb://prod",
    "MONGO_INITDB_ROOT_PASSWORD": "x", "DATABASE_URL": "postgresql://prod", "POSTGRES_HOST": "prod",
    "SQLALCHEMY_DATABASE_URI": "postgresql://prod", "SENTRY_DSN": "https://k@sentry", "REDIS_URL": "redis://prod",
    "GRIMOIRE_DRILL_PASSPHRASE": "p", "GRIMOIRE_DRILL_POSTGRES_DSN": "postgresql://prod",
    "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
    "AZURE_CLIENT_SECRET": "s", "BORG_PASSPHRASE": "p", "SMTP_PASSWORD": "p", "SSH_AUTH_SOCK": "/agent",
    # what an off-site source (s3://, sftp://) reads its credentials from: the drill's, never the command's
    "AWS_PROFILE": "offsite", "AWS_ENDPOINT_URL": "https://s3.example", "AWS_SESSION_TOKEN": "t",
    "AWS_SHARED_CREDENTIALS_FILE": "/k", "SSH_AGENT_PID": "42", "SSH_ASKPASS": "/usr/bin/askpass",
}
KEPT = {"PATH", "HOME", "VIRTUAL_ENV", "LANG"}


def test_command_environment_keeps_the_callers_tools_and_drops_everything_pointing_elsewhere():
    restored = {"DATABASE_URL": "postgresql://grimoire:pw@127.0.0.1:5999/le_grimoire", "MONGODB_DB_NAME": "legrimoire"}
    env = command_environment(CALLER, restored)
    assert set(env) == KEPT | set(restored)
    assert env["DATABASE_URL"] == restored["DATABASE_URL"]
    assert {k: env[k] for k in KEPT} == {k: CALLER[k] for k in KEPT}


def test_output_is_kept_as_a_bounded_tail_and_background_children_are_ended(tmp_path):
    pid_file = tmp_path / "bg.pid"
    command = f"yes line | head -n 200000; sleep 600 & echo $! > {pid_file}; echo last; exit 4"
    code, timed_out, tail = run_in_own_group(command, {"PATH": "/usr/bin:/bin"}, tmp_path, 120, 64)
    assert (code, timed_out) == (4, False)
    assert len(tail) == 64 and tail.endswith(b"line\nlast\n")
    assert process_start(int(pid_file.read_text())) is None  # the backgrounded sleep did not outlive it


def test_a_command_past_its_timeout_is_ended_with_its_group(tmp_path):
    pid_file = tmp_path / "gc.pid"
    command = f"sh -c 'sleep 600 & echo $! > {pid_file}; wait'"
    code, timed_out, _ = run_in_own_group(command, {"PATH": "/usr/bin:/bin"}, tmp_path, 1, 1024)
    assert (code, timed_out) == (None, True)
    assert process_start(int(pid_file.read_text())) is None


def test_passwords_given_to_the_command_are_masked_in_its_output():
    url = "postgresql://grimoire:s3cr%2Ft@127.0.0.1:5432/le_grimoire"
    out = mask_secrets(f"url={url}\npassword is s3cr/t and s3cr%2Ft\n\x1b[31mred\n", [url])
    assert "s3cr" not in out and "url=postgresql://grimoire:***@127.0.0.1" in out
    assert "\\x1b[31mred" in out  # control characters shown, not sent to a terminal


@pytest.mark.parametrize("before, after, ok, expected", [
    ("passed", "failed", False, "migration_failed"),   # the backup restored; the command failed
    ("passed", "passed", True, "passed"),
    ("passed", "failed", True, "failed"),              # the command ran, the copy fails its checks
    ("failed", "failed", False, "failed"),             # a bad backup stays a bad backup
    ("error", "error", False, "error"),
])
def test_verdict_separates_a_failed_migration_from_a_bad_backup(before, after, ok, expected):
    result = {"exit_code": 0 if ok else 5, "timed_out": False}
    assert verdict(before, after, result, interrupted=False) == expected


@pytest.mark.parametrize("uri, expected_source", [
    ("mongodb://drill:pw@db.example:27017/?replicaSet=rs0", "admin"),            # no path: admin
    ("mongodb://drill:pw@db.example:27017/legrimoire", "legrimoire"),          # the path database
    ("mongodb://drill:pw@db.example/legrimoire?authSource=admin&tls=true", "admin"),  # given
    ("mongodb://drill:pw@db.example/legrimoire?authsource=users;w=1", "users"),  # any case, ; separators
])
def test_external_mongo_url_names_the_scratch_database_and_keeps_the_auth_database(uri, expected_source):
    url = ExternalMongo(run_id="r1", uri=uri).url("legrimoire_drill_r1")
    parsed, original = parse_uri(url), parse_uri(uri)
    assert parsed["database"] == "legrimoire_drill_r1"
    assert parsed["options"]["authSource"] == expected_source
    assert (parsed["username"], parsed["password"], parsed["nodelist"]) == (
        original["username"], original["password"], original["nodelist"])
    assert {k: v for k, v in parsed["options"].items() if k.lower() != "authsource"} == {
        k: v for k, v in original["options"].items() if k.lower() != "authsource"}


def test_external_mongo_url_without_credentials_adds_no_auth_source():
    parsed = parse_uri(ExternalMongo(run_id="r1", uri="mongodb://db.example:27017").url("x_drill_r1"))
    assert parsed["database"] == "x_drill_r1" and "authSource" not in parsed["options"]


def test_command_line_masks_secret_options_and_credentials_anywhere():
    argv = ["run", "/b", "--postgres-dsn", "postgresql://u:pw1@h/db", "--mongo-uri=mongodb://u:pw2@h",
            "--postgres-d", "host=h password=pw3", "--then", "alembic -x url=postgresql://u:pw4@h/d upgrade head",
            "--passphrase-file", "/run/secrets/gpg"]
    line = " ".join(redact_argv(argv))
    assert not any(f"pw{i}" in line for i in range(1, 5))
    assert "--postgres-dsn *** --mongo-uri=*** --postgres-d ***" in line
    assert "/run/secrets/gpg" in line and "alembic -x url=postgresql://u:***@h/d upgrade head" in line
