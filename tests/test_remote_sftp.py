"""sftp:// sources against OpenSSH's own sshd on a loopback port, started (and ended) here.

The drill connects with the key ~/.ssh/config names, verifies the host key against known_hosts,
lists the folder under the local name rules and streams the newest archive into the one pass.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grimoire_drill import archive
from grimoire_drill.errors import DrillFailure
from offsite import CutProxy, Sshd, quick_retry_expectations, start_sshd

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
    assert server.process.poll() is not None


@pytest.fixture(scope="module")
def generations(tmp_path_factory) -> list[Path]:
    """A folder of two nightly sample backups on the server's disk, newest first."""
    from grimoire_drill.sample import write_generations

    return write_generations(tmp_path_factory.mktemp("sftp-backups"), count=2,
                             newest=datetime.now(timezone.utc) - timedelta(hours=1))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary(report: Path) -> dict:
    return json.loads((report / "summary.json").read_text())


def folder_with(tmp_path: Path, sources: list[Path], name: str = "served") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for source in sources:
        (folder / source.name).write_bytes(source.read_bytes())
    return folder


@pytest.mark.slow
def test_the_newest_of_the_folder_is_drilled_in_full_over_sftp(sshd: Sshd, generations, run_cli, tmp_path):
    home = sshd.home("home-full")
    report = tmp_path / "report"
    url = sshd.url(f"{generations[0].parent}/")
    result = run_cli(*RUN, url, "--report-dir", report, env=sshd.env(home))
    assert result.returncode == 0, result.output
    facts = summary(report)
    shown = f"sftp://127.0.0.1:{sshd.port}{generations[0]}"  # no userinfo in what the report shows
    assert facts["archive"]["path"] == shown and facts["archive"]["sha256"] == sha256(generations[0])
    assert facts["totals"]["failed"] == 0 and facts["totals"]["error"] == 0
    for output in ("summary.json", "report.html", "junit.xml", "drill.prom"):
        assert f"{sshd.user}@127.0.0.1" not in (report / output).read_text(), output
    assert f"{sshd.user}@127.0.0.1" not in result.output
    listed = run_cli("list", url, env=sshd.env(home))
    assert listed.returncode == 0, listed.output
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [p.name for p in generations]


def test_one_archive_named_by_its_url_is_extracted_from_the_stream(sshd: Sshd, generations, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(sshd.home("home-one")))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    ref = archive.locate(sshd.url(str(generations[1])))
    assert ref.size_bytes == generations[1].stat().st_size and ref.remote is not None
    extracted = archive.extract(ref, tmp_path / "x")
    assert extracted.sha256 == sha256(generations[1]) and (extracted.root / "backup_info.txt").is_file()


def test_a_folder_named_like_the_newest_archive_is_refused_not_skipped(sshd: Sshd, generations, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("HOME", str(sshd.home("home-dir")))
    served = folder_with(tmp_path, generations)
    (served / "backup_29990101_000000.tar.gz").mkdir()
    (served / "backup_20991399_000000.tar.gz").write_bytes(b"an impossible date: ignored")
    with pytest.raises(DrillFailure) as caught:
        archive.locate(sshd.url(f"{served}/"))
    assert f"{served}/backup_29990101_000000.tar.gz" in str(caught.value) and "folder" in str(caught.value)


@pytest.mark.slow
def test_garbage_as_the_newest_archive_fails_naming_it(sshd: Sshd, generations, run_cli, tmp_path):
    served = folder_with(tmp_path, generations[1:])
    (served / "backup_29990101_000000.tar.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 5000)
    result = run_cli(*RUN, sshd.url(f"{served}/"), "--report-dir", tmp_path / "r", "-k", "archive",
                     env=sshd.env(sshd.home("home-garbage")))
    assert result.returncode == 1, result.output
    assert f"sftp://127.0.0.1:{sshd.port}{served}/backup_29990101_000000.tar.gz" in result.output


@pytest.mark.slow
def test_an_unknown_host_key_is_refused_with_how_to_add_it(sshd: Sshd, generations, run_cli, tmp_path):
    result = run_cli(*RUN, sshd.url(f"{generations[0].parent}/"), "--report-dir", tmp_path / "r", "-k", "archive",
                     env=sshd.env(sshd.home("home-unknown", known=False)))
    assert result.returncode == 2, result.output
    line = next(line for line in result.output.splitlines() if "known_hosts" in line)
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts" in line


@pytest.mark.slow
def test_a_key_the_server_refuses_gives_one_clear_line(sshd: Sshd, generations, run_cli, tmp_path):
    result = run_cli(*RUN, sshd.url(f"{generations[0].parent}/"), "--report-dir", tmp_path / "r", "-k", "archive",
                     env=sshd.env(sshd.home("home-wrong-key", key=sshd.other_key)))
    assert result.returncode == 2, result.output
    line = next(line for line in result.output.splitlines() if "refused our credentials" in line)
    assert f"sftp://127.0.0.1:{sshd.port}" in line and "ssh-agent" in line


@pytest.fixture(scope="module")
def bigger(tmp_path_factory) -> Path:
    """A backup of 1.5 MB: more than one of the pass's 1 MiB reads, so a cut can fall after the first."""
    from grimoire_drill.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("bigger"), when=datetime.now(timezone.utc) - timedelta(hours=1),
                        scale=6)


@pytest.mark.slow
def test_a_cut_after_the_first_read_resumes_at_that_offset_not_from_the_start(sshd: Sshd, bigger, run_cli, tmp_path):
    size = bigger.stat().st_size
    assert size > 1024**2 + 300_000
    proxy = CutProxy(("127.0.0.1", sshd.port), cut_after=1024**2 + 200_000, then="resume")
    report = tmp_path / "r"
    try:
        result = run_cli(*RUN, sshd.url(str(bigger), port=proxy.port), "--report-dir", report, "-k", "archive",
                         "--expectations", quick_retry_expectations(tmp_path),
                         env=sshd.env(sshd.home("home-offset", port=proxy.port)))
    finally:
        proxy.close()
    assert result.returncode == 0, result.output
    assert proxy.cuts == 1 and summary(report)["archive"]["sha256"] == sha256(bigger)
    # Resumed at the first MiB: what crossed the wire is the cut connection plus the rest, not the whole again.
    assert proxy.bytes_down < proxy.cut_after + (size - 1024**2) + 200_000


@pytest.mark.slow
@pytest.mark.parametrize("then", ["down", "resume"])
def test_a_transfer_cut_mid_stream(sshd: Sshd, generations, run_cli, tmp_path, then):
    """Cut for good: exit 2 naming the object, nothing left. Cut once: resumed at the offset reached."""
    proxy = CutProxy(("127.0.0.1", sshd.port), cut_after=150_000, then=then)
    temp, report = tmp_path / "temp", tmp_path / "r"
    temp.mkdir()
    try:
        result = run_cli(*RUN, sshd.url(str(generations[0]), port=proxy.port), "--report-dir", report,
                         "-k", "archive", "--temp-dir", temp, "--expectations", quick_retry_expectations(tmp_path),
                         env=sshd.env(sshd.home(f"home-cut-{then}", port=proxy.port)))
    finally:
        proxy.close()
    assert proxy.cuts >= 1
    if then == "down":
        assert result.returncode == 2, result.output
        assert f"sftp://127.0.0.1:{proxy.port}{generations[0]}" in result.output
        assert "could not read the stored object" in result.output
    else:
        assert result.returncode == 0, result.output
        assert summary(report)["archive"]["sha256"] == sha256(generations[0])
    assert list(temp.iterdir()) == []
