"""One option table, one precedence (flag > environment > default), secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from grimoire_drill.config import OPTIONS, build_config
from grimoire_drill.errors import HarnessError


def _flags(**values):
    return lambda option: values.get(option.name)


def test_flag_beats_environment_beats_default():
    env = {"GRIMOIRE_DRILL_MAX_AGE_HOURS": "30", "GRIMOIRE_DRILL_JOBS": "3"}
    config = build_config(_flags(max_age_hours=12.0), env)
    assert config.max_age_hours == 12.0          # flag
    assert config.jobs == 3                      # environment
    assert config.mongo_image == "mongo:7.0"     # default
    assert config.engine == "auto"


def test_secrets_never_show_in_repr():
    env = {"GRIMOIRE_DRILL_POSTGRES_DSN": "postgresql://u:hunter2@db/x", "GRIMOIRE_DRILL_PASSPHRASE": "sesame"}
    config = build_config(_flags(), env)
    assert config.postgres_dsn.endswith("@db/x") and config.passphrase == "sesame"
    assert "hunter2" not in repr(config) and "sesame" not in repr(config)


def test_passphrase_is_environment_only():
    config = build_config(_flags(passphrase="from-a-flag"), {})
    assert config.passphrase is None


def test_passphrase_file_wins_and_is_read_without_newline(tmp_path):
    secret = tmp_path / "pass"
    secret.write_text("from-file\n")
    config = build_config(_flags(passphrase_file=secret), {"GRIMOIRE_DRILL_PASSPHRASE": "from-env"})
    assert config.read_passphrase() == "from-file"


@pytest.mark.parametrize("settings, message", [
    ({"mongo_engine": "external"}, "--mongo-uri"),
    ({"postgres_engine": "external"}, "--postgres-dsn"),
    ({"postgres_engine": "simulated"}, "no simulated PostgreSQL"),
    ({"mongo_engine": "simulated", "require_real": True}, "--require-real"),
])
def test_contradictions_are_refused_with_the_fix(settings, message):
    with pytest.raises(HarnessError, match=message) as caught:
        build_config(_flags(**settings), {})
    assert "fix:" in caught.value.line()


def test_bad_environment_value_names_the_variable():
    with pytest.raises(HarnessError, match="GRIMOIRE_DRILL_MIN_SIZE_KB"):
        build_config(_flags(), {"GRIMOIRE_DRILL_MIN_SIZE_KB": "lots"})


def test_drill_config_has_one_field_per_option_with_its_default():
    """DrillConfig is made from OPTIONS: a new option is one line of the table, nothing to re-list."""
    import dataclasses

    from grimoire_drill.config import DrillConfig

    fields = {f.name: f for f in dataclasses.fields(DrillConfig)}
    assert [f for f in fields if f != "sources"] == [option.name for option in OPTIONS]
    defaults = DrillConfig()
    for option in OPTIONS:
        assert getattr(defaults, option.name) == option.default, option.name
        assert fields[option.name].repr is not option.secret, option.name
    built = build_config(_flags(), {})
    assert all(getattr(built, option.name) == option.default for option in OPTIONS)
    assert all(built.source_of(option.name) == "default" for option in OPTIONS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.engine = "docker"


def test_every_secret_option_is_absent_from_repr(tmp_path):
    """Whatever the secret options are, their values never reach repr (logs, tracebacks, reports)."""
    secrets = [option for option in OPTIONS if option.secret]
    assert {"passphrase", "postgres_dsn", "mongo_uri"} <= {option.name for option in secrets}
    env = {option.env: f"secret-{option.name}-value" for option in secrets}
    config = build_config(_flags(), env)
    for option in secrets:
        assert getattr(config, option.name) == option.parse(f"secret-{option.name}-value")  # notify: a tuple of URLs
        assert f"secret-{option.name}-value" not in repr(config) and f"secret-{option.name}-value" not in str(config)


def test_each_setting_says_where_it_came_from(tmp_path):
    dsn = tmp_path / "dsn"
    dsn.write_text("postgresql://u:p@db/x")
    config = build_config(_flags(max_age_hours=12.0, postgres_dsn_file=dsn), {"GRIMOIRE_DRILL_MIN_SIZE_KB": "50"})
    assert [config.source_of(name) for name in ("max_age_hours", "min_size_kb", "postgres_dsn", "jobs")] == [
        "flag", "env", "file", "default"]


def test_the_environment_only_passphrase_has_no_flag(run_cli):
    help_text = run_cli("run", "--help").stdout
    assert "--passphrase-file" in help_text and "--passphrase " not in help_text


def test_every_option_has_help_and_an_env_name():
    for option in OPTIONS:
        assert option.help and option.env.startswith("GRIMOIRE_DRILL_")


def test_plain_pytest_runs_the_drill_through_the_plugin(sample_factory, tmp_path):
    """`pytest drills/ --drill-backups ...` is the same drill as the CLI (the pytest11 entry point)."""
    import json
    import subprocess
    import sys

    drills = Path(__file__).resolve().parent.parent / "drills"
    report = tmp_path / "r"
    done = subprocess.run([sys.executable, "-m", "pytest", str(drills), "-q", "-p", "no:cacheprovider",
                           "--drill-backups", str(sample_factory()), "--drill-mongo-engine", "simulated",
                           "--drill-postgres-engine", "local", "--drill-report-dir", str(report)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads((report / "summary.json").read_text())["outcome"] == "passed"
    assert (report / "report.html").is_file() and (report / "junit.xml").is_file()


def test_plain_pytest_without_a_backup_is_a_usage_error(tmp_path):
    import subprocess
    import sys

    drills = Path(__file__).resolve().parent.parent / "drills"
    done = subprocess.run([sys.executable, "-m", "pytest", str(drills), "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--drill-backups" in done.stdout + done.stderr


# -- secrets from files, and the warning for secrets typed as arguments ----------------------------

def test_dsn_and_uri_files_are_read_once_and_stripped(tmp_path):
    dsn, uri = tmp_path / "dsn", tmp_path / "uri"
    dsn.write_text("  postgresql://u:hunter2@db/x\n\n")
    uri.write_text("mongodb://u:s3cret@mongo/x\r\n")
    config = build_config(_flags(postgres_dsn_file=dsn), {"GRIMOIRE_DRILL_MONGO_URI_FILE": str(uri)})
    assert config.postgres_dsn == "postgresql://u:hunter2@db/x"
    assert config.mongo_uri == "mongodb://u:s3cret@mongo/x"
    assert "hunter2" not in repr(config) and "s3cret" not in repr(config)


@pytest.mark.parametrize("content, message", [(None, "cannot read the --postgres-dsn-file file"),
                                              ("  \n", "the --postgres-dsn-file file is empty"),
                                              (b"\xff\xfe", "not UTF-8")])
def test_a_dsn_file_that_cannot_be_used_is_one_harness_error_naming_it(tmp_path, content, message):
    path = tmp_path / "dsn"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(HarnessError, match=message) as caught:
        build_config(_flags(postgres_dsn_file=path), {})
    line = caught.value.line()
    assert str(path) in line and "fix:" in line and "\n" not in line


def test_a_dsn_given_twice_is_refused(tmp_path):
    path = tmp_path / "dsn"
    path.write_text("postgresql://u:p@db/x")
    with pytest.raises(HarnessError, match="both --postgres-dsn .* and --postgres-dsn-file"):
        build_config(_flags(postgres_dsn_file=path), {"GRIMOIRE_DRILL_POSTGRES_DSN": "postgresql://u:q@db/x"})


def test_secrets_typed_as_arguments_get_a_warning_naming_the_safe_ways():
    from grimoire_drill.config import argv_secret_warnings

    given = {"postgres_dsn", "mongo_uri", "postgres_dsn_file", "passphrase_file"}
    warnings = argv_secret_warnings(lambda option: option.name in given)
    assert warnings == [
        "--mongo-uri on the command line is visible in ps to every user of this host; "
        "use --mongo-uri-file or GRIMOIRE_DRILL_MONGO_URI",
        "--postgres-dsn on the command line is visible in ps to every user of this host; "
        "use --postgres-dsn-file or GRIMOIRE_DRILL_POSTGRES_DSN",
    ]
    assert argv_secret_warnings(lambda option: option.name.endswith("_file")) == []


def test_cli_warns_about_a_dsn_argument_and_names_an_unreadable_dsn_file(run_cli, tmp_path):
    missing = tmp_path / "no-such-dsn"
    unreadable = run_cli("run", "--postgres-dsn-file", missing, tmp_path)
    assert unreadable.returncode == 2, unreadable.output
    assert "cannot read the --postgres-dsn-file file" in unreadable.stderr and str(missing) in unreadable.stderr
    typed = run_cli("run", "--postgres-engine", "external", "--postgres-dsn", "postgresql://u:hunter2@127.0.0.1:1/x",
                    tmp_path / "no-backups")
    assert ("--postgres-dsn on the command line is visible in ps to every user of this host; "
            "use --postgres-dsn-file or GRIMOIRE_DRILL_POSTGRES_DSN") in typed.stderr
    assert "hunter2" not in typed.output


def test_plain_pytest_warns_about_a_dsn_argument_too(tmp_path):
    import subprocess
    import sys

    drills = Path(__file__).resolve().parent.parent / "drills"
    done = subprocess.run([sys.executable, "-m", "pytest", str(drills), "-q", "-p", "no:cacheprovider",
                           "--drill-backups", str(tmp_path / "none"), "--drill-postgres-engine", "external",
                           "--drill-postgres-dsn", "postgresql://u:hunter2@127.0.0.1:1/x",
                           "--drill-report-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ("--drill-postgres-dsn on the command line is visible in ps to every user of this host; "
            "use --drill-postgres-dsn-file or GRIMOIRE_DRILL_POSTGRES_DSN") in done.stderr, done.stdout + done.stderr


def test_notify_is_repeatable_and_its_urls_never_show(tmp_path):
    """--notify twice, or GRIMOIRE_DRILL_NOTIFY with spaces: every URL, none of them in repr."""
    from grimoire_drill.cli import build_parser, config_from_args

    args = build_parser().parse_args(["run", str(tmp_path), "--notify", "json://a/t0k", "--notify", "ntfy://b/t1k"])
    config = config_from_args(args)
    assert config.notify == ("json://a/t0k", "ntfy://b/t1k") and config.notify_on == "failure"
    assert "t0k" not in repr(config)
    from_env = build_config(_flags(), {"GRIMOIRE_DRILL_NOTIFY": "json://a/t0k\n ntfy://b/t1k",
                                       "GRIMOIRE_DRILL_NOTIFY_ON": "change"})
    assert from_env.notify == ("json://a/t0k", "ntfy://b/t1k") and from_env.notify_on == "change"
