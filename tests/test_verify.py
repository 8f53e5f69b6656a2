"""``grimoire-drill verify`` and ``--sign-key`` on real report folders written by the CLI.

The report comes from a real drill of a generated sample (archive checks only, ``-k archive``:
no engine starts, so it is quick); the key is a throwaway one in a temp GNUPGHOME.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from grimoire_drill.report.manifest import MANIFEST_NAME, SIGNATURE_NAME, file_sha256

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")

KEY_UID = "Drill Test <drill-test@example.invalid>"


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory):
    """A temp keyring with one passphrase-less signing key; its gpg-agent is ended afterwards."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {"PATH": os.environ["PATH"], "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", KEY_UID, "default", "sign", "never"],
                   env=env, check=True, capture_output=True)
    yield home
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)


@pytest.fixture(scope="module")
def signed_report(gnupghome, tmp_path_factory):
    """(report dir, archive) of a real drill, sealed and signed by the throwaway key."""
    from datetime import datetime, timedelta, timezone

    from grimoire_drill.sample import write_sample

    out = tmp_path_factory.mktemp("verify-backups")
    archive = write_sample(out, when=datetime.now(timezone.utc) - timedelta(hours=1))
    report = tmp_path_factory.mktemp("verify-report") / "r"
    done = _cli("run", archive, "--report-dir", report, "-k", "archive", "--sign-key", KEY_UID, gnupghome=gnupghome)
    assert done.returncode == 0, done.stdout + done.stderr
    return report, archive


def _cli(*args, gnupghome=None, cwd=None):
    import sys

    env = dict(os.environ)
    if gnupghome is not None:
        env["GNUPGHOME"] = str(gnupghome)
    return subprocess.run([sys.executable, "-m", "grimoire_drill.cli", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def report_copy(signed_report, tmp_path):
    report, archive = signed_report
    copy = tmp_path / "report"
    shutil.copytree(report, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy, archive


def test_a_fresh_signed_report_verifies_with_its_archive(report_copy, gnupghome):
    report, archive = report_copy
    assert (report / SIGNATURE_NAME).read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    summary = json.loads((report / "summary.json").read_text())
    assert summary["attribution"]["command_line"].startswith("grimoire-drill run ")
    assert "--sign-key" in summary["attribution"]["command_line"]
    done = _cli("verify", report, "--archive", archive, "--require-signature", gnupghome=gnupghome)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: ") and "signature good" in done.stdout and "is the one drilled" in done.stdout


def test_one_changed_byte_of_summary_json_fails(report_copy, gnupghome):
    report, _ = report_copy
    data = bytearray((report / "summary.json").read_bytes())
    data[10] ^= 0x01
    (report / "summary.json").write_bytes(bytes(data))
    done = _cli("verify", report, gnupghome=gnupghome)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "PROBLEM: summary.json: modified" in done.stdout


def test_a_resealed_manifest_no_longer_matches_its_signature(report_copy, gnupghome):
    """Whoever edits summary.json and rewrites MANIFEST.sha256 to match cannot re-sign it."""
    report, _ = report_copy
    summary = report / "summary.json"
    summary.write_text(summary.read_text().replace('"outcome": "passed"', '"outcome": "passed" '))
    manifest = report / MANIFEST_NAME
    lines = [line if not line.endswith("  summary.json") else f"{file_sha256(summary)}  summary.json"
             for line in manifest.read_text().splitlines()]
    manifest.write_text("\n".join(lines) + "\n")
    done = _cli("verify", report, gnupghome=gnupghome)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"PROBLEM: {SIGNATURE_NAME}: does not match {MANIFEST_NAME}" in done.stdout
    assert "summary.json: modified" not in done.stdout  # the hashes agree again: only the signature tells


def test_a_different_archive_fails(report_copy, gnupghome, sample_factory):
    report, _ = report_copy
    other = sample_factory(seed=7)
    done = _cli("verify", report, "--archive", other, gnupghome=gnupghome)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"PROBLEM: {other}: sha256" in done.stdout and "is not the drilled archive" in done.stdout


def test_a_missing_signature_fails_only_when_required(report_copy, gnupghome):
    report, _ = report_copy
    (report / SIGNATURE_NAME).unlink()
    assert _cli("verify", report, gnupghome=gnupghome).returncode == 0
    done = _cli("verify", report, "--require-signature", gnupghome=gnupghome)
    assert done.returncode == 1 and f"{SIGNATURE_NAME}: missing" in done.stdout


def test_bad_usage_is_exit_2(tmp_path):
    assert _cli("verify", tmp_path / "nowhere").returncode == 2
    assert _cli("verify").returncode == 2


def test_an_unknown_sign_key_is_exit_2_with_the_outputs_written_and_unsigned(gnupghome, tmp_path, sample_factory):
    report = tmp_path / "r"
    done = _cli("run", sample_factory(), "--report-dir", report, "-k", "archive", "--sign-key", "no-such-key@example.invalid",
                gnupghome=gnupghome)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "gpg could not sign" in done.stderr and "--sign-key" in done.stderr
    assert (report / "summary.json").is_file() and (report / MANIFEST_NAME).is_file()
    assert not (report / SIGNATURE_NAME).exists() and not list(report.glob("*.partial"))
