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
