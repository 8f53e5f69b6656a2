"""s3:// sources against a real S3 API server (moto's server mode) on loopback, started here.

The drill lists the bucket, streams the newest object through the one-pass reader and reports
the stored object's sha256; the store's ETag is compared in the same pass; a cut transfer is a
harness error (exit 2) naming the object, and nothing is left in the temp dir.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grimoire_drill import archive
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.limits import Limits
from offsite import CutProxy, quick_retry_expectations

moto_server = pytest.importorskip("moto.server", reason="moto[server] is part of the test extra")
boto3 = pytest.importorskip("boto3")

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")
BUCKET = "grimoire-offsite"
SECRET = "wJalrXUtnFEMI-test-secret-key"


@pytest.fixture(scope="module")
def s3_server():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def aws_env(s3_server, tmp_path_factory) -> dict[str, str]:
    """What the drill's process gets: keys in the environment, as botocore's chain reads them; no profile."""
    nothing = tmp_path_factory.mktemp("no-aws-files") / "none"
    return {"AWS_ACCESS_KEY_ID": "AKIATESTDRILL", "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(nothing), "AWS_SHARED_CREDENTIALS_FILE": str(nothing)}


@pytest.fixture
def in_process_aws(aws_env, monkeypatch):
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def client(aws_env):
    made = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")
    made.create_bucket(Bucket=BUCKET)
    return made


@pytest.fixture(scope="module")
def generations(tmp_path_factory) -> list[Path]:
    """Two nightly sample backups, newest first (the last one an hour old)."""
    from grimoire_drill.sample import write_generations

    return write_generations(tmp_path_factory.mktemp("generations"), count=2,
                             newest=datetime.now(timezone.utc) - timedelta(hours=1))


def upload(client, prefix: str, paths: list[Path], **extra) -> None:
    for path in paths:
        client.upload_file(str(path), BUCKET, f"{prefix}{path.name}", ExtraArgs=extra or None)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary(report: Path) -> dict:
    return json.loads((report / "summary.json").read_text())


def stored_key(bucket: str, key: str):
    """moto's own record of an object, to play bit rot on the store (the bytes change, its checksums not)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)


def rot_gzip_mtime(key) -> None:
    """Change byte 4 (the gzip header's MTIME): the archive still inflates, only its checksums tell."""
    value = bytearray(key.value)
    value[4] ^= 0xFF
    key.value = bytes(value)


# --------------------------------------------------------------------------- full drill


@pytest.mark.slow
def test_the_newest_of_the_bucket_is_drilled_in_full_from_the_stream(client, generations, aws_env, run_cli, tmp_path):
    upload(client, "nightly/", generations)
    report = tmp_path / "report"
    result = run_cli(*RUN, f"s3://{BUCKET}/nightly/", "--report-dir", report, env=aws_env)
    assert result.returncode == 0, result.output
    facts = summary(report)
    newest = generations[0]
    assert facts["archive"]["path"] == f"s3://{BUCKET}/nightly/{newest.name}"
    assert facts["archive"]["sha256"] == sha256(newest)  # the stored object's bytes, read in the one pass
    assert facts["archive"]["size_bytes"] == newest.stat().st_size
    assert facts["totals"]["failed"] == 0 and facts["totals"]["error"] == 0
    assert f"s3://{BUCKET}/nightly/{newest.name}" in (report / "report.html").read_text()
    assert SECRET not in result.output and SECRET not in (report / "summary.json").read_text()

    listed = run_cli("list", f"s3://{BUCKET}/nightly/", env=aws_env)
    assert listed.returncode == 0, listed.output
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [p.name for p in generations]
    listed_json = json.loads(run_cli("list", f"s3://{BUCKET}/nightly/", "--json", env=aws_env).stdout)
    assert listed_json["folder"] == f"s3://{BUCKET}/nightly/"
    assert [b["path"] for b in listed_json["backups"]] == [f"s3://{BUCKET}/nightly/{p.name}" for p in generations]
    inspected = run_cli("inspect", f"s3://{BUCKET}/nightly/{generations[1].name}", env=aws_env)
    assert inspected.returncode == 0, inspected.output
    assert f"sha256 {sha256(generations[1])}" in inspected.stdout


def test_one_object_named_by_its_url_is_located_with_its_etag(client, generations, in_process_aws):
    upload(client, "one/", generations[1:])
    ref = archive.locate(f"s3://{BUCKET}/one/{generations[1].name}")
    assert ref.where == f"s3://{BUCKET}/one/{generations[1].name}" and ref.size_bytes == generations[1].stat().st_size
    assert ref.remote is not None and ref.remote.md5 == hashlib.md5(generations[1].read_bytes()).hexdigest()


# --------------------------------------------------------------------------- names, as for folders


def test_hostile_and_impossible_names_are_ignored_and_a_bad_newest_is_never_skipped(client, generations,
                                                                                     in_process_aws):
    upload(client, "names/", generations)
    for key in ("names/backup_20991399_000000.tar.gz", "names/backup_latest.tar.gz",
                "names/backup_29990101_000000.tar.gz.part", "names/x/backup_29990101_000000.tar.gz"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"not a backup")
    assert archive.locate(f"s3://{BUCKET}/names/").name == generations[0].name.removesuffix(".tar.gz")
    client.put_object(Bucket=BUCKET, Key="names/backup_29990101_000000.tar.gz", Body=b"")
    with pytest.raises(DrillFailure) as caught:
        archive.locate(f"s3://{BUCKET}/names/")
    assert f"s3://{BUCKET}/names/backup_29990101_000000.tar.gz" in str(caught.value)
    assert "zero bytes" in str(caught.value) and "older backup is never drilled" in str(caught.value)
    client.put_object(Bucket=BUCKET, Key="names/backup_29990202_000000.tar.gz/", Body=b"")  # a "folder"
    with pytest.raises(DrillFailure, match="folder"):
        archive.locate(f"s3://{BUCKET}/names/")


def test_how_many_names_a_listing_may_hold_is_a_limit(client, generations, in_process_aws):
    upload(client, "many/", generations)
    client.put_object(Bucket=BUCKET, Key="many/readme.txt", Body=b"x")
    with pytest.raises(DrillFailure, match=r"limits\.max_series_backups \(1\)"):
        archive.locate(f"s3://{BUCKET}/many/", limits=Limits(max_series_backups=1))
    with pytest.raises(DrillFailure, match=r"limits\.max_listing_entries \(2\)"):
        archive.locate(f"s3://{BUCKET}/many/", limits=Limits(max_listing_entries=2))


# --------------------------------------------------------------------------- bad objects, bad transfers


@pytest.mark.slow
def test_garbage_as_the_newest_object_fails_naming_it(client, generations, aws_env, run_cli, tmp_path):
    upload(client, "garbage/", generations[1:])
    name = "backup_29990101_000000.tar.gz"
    client.put_object(Bucket=BUCKET, Key=f"garbage/{name}", Body=b"\x1f\x8b" + bytes(range(256)) * 64)
    result = run_cli(*RUN, f"s3://{BUCKET}/garbage/", "--report-dir", tmp_path / "r", "-k", "archive",
                     env=aws_env)
    assert result.returncode == 1, result.output
    assert f"s3://{BUCKET}/garbage/{name}" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(("recorded", "said"), [
    ("etag", "ETag"),                        # our md5 of the pass against a single-part ETag
    ("sha256", "x-amz-checksum-sha256"),     # our sha256 of the pass against the recorded one
    ("botocore", "checksum"),                # botocore's own check of the response (its default, CRC32 here)
])
def test_bytes_that_differ_from_the_stores_checksum_fail_the_drill(client, generations, aws_env, run_cli,
                                                                   tmp_path, recorded, said):
    prefix = f"rot-{recorded}/"
    upload(client, prefix, generations[:1], **({"ChecksumAlgorithm": "SHA256"} if recorded == "sha256" else {}))
    key = stored_key(BUCKET, f"{prefix}{generations[0].name}")
    rot_gzip_mtime(key)
    env = dict(aws_env)
    if recorded != "botocore":  # botocore would see it first: leave the comparison to the pass
        env["AWS_RESPONSE_CHECKSUM_VALIDATION"] = "when_required"
    temp = tmp_path / "temp"
    temp.mkdir()
    result = run_cli(*RUN, f"s3://{BUCKET}/{prefix}", "--report-dir", tmp_path / "r", "-k", "archive",
                     "--temp-dir", temp, "--expectations", quick_retry_expectations(tmp_path), env=env)
    assert result.returncode == 1, result.output
    line = next(line for line in result.output.splitlines() if said in line and "FAIL" in line)
    assert f"s3://{BUCKET}/{prefix}{generations[0].name}" in line
    assert list(temp.iterdir()) == []


@pytest.mark.slow
def test_a_transfer_cut_for_good_is_a_harness_error_naming_the_object(client, generations, aws_env, run_cli,
                                                                      tmp_path):
    upload(client, "cut/", generations[:1])
    host, port = aws_env["AWS_ENDPOINT_URL"].removeprefix("http://").split(":")
    proxy = CutProxy((host, int(port)), cut_after=120_000, then="down")
    temp = tmp_path / "temp"
    temp.mkdir()
    try:
        result = run_cli(*RUN, f"s3://{BUCKET}/cut/{generations[0].name}", "--report-dir", tmp_path / "r",
                         "-k", "archive", "--temp-dir", temp, "--expectations", quick_retry_expectations(tmp_path),
                         env={**aws_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
                              "AWS_MAX_ATTEMPTS": "2"})
    finally:
        proxy.close()
    assert proxy.cuts >= 1
    assert result.returncode == 2, result.output
    assert f"s3://{BUCKET}/cut/{generations[0].name}" in result.output
    assert "could not read the stored object" in result.output and "limits.remote_retries (2)" in result.output
    assert list(temp.iterdir()) == []


@pytest.mark.slow
def test_a_transfer_cut_once_is_resumed_and_the_drill_passes(client, generations, aws_env, run_cli, tmp_path):
    upload(client, "blip/", generations[:1])
    host, port = aws_env["AWS_ENDPOINT_URL"].removeprefix("http://").split(":")
    proxy = CutProxy((host, int(port)), cut_after=120_000, then="resume")
    report = tmp_path / "r"
    try:
        result = run_cli(*RUN, f"s3://{BUCKET}/blip/", "--report-dir", report, "-k", "archive",
                         "--expectations", quick_retry_expectations(tmp_path),
                         env={**aws_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"})
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert result.returncode == 0, result.output
    assert summary(report)["archive"]["sha256"] == sha256(generations[0])


# --------------------------------------------------------------------------- credentials, extras


@pytest.mark.slow
def test_wrong_credentials_give_one_line_and_no_secret(client, generations, aws_env, run_cli, tmp_path):
    import requests

    upload(client, "auth/", generations[:1])
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)  # from now on keys are checked
    try:
        result = run_cli(*RUN, f"s3://{BUCKET}/auth/", "--report-dir", tmp_path / "r", "-k", "archive", env=aws_env)
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
    assert result.returncode == 2, result.output
    line = next(line for line in result.output.splitlines() if "refused" in line)
    assert f"s3://{BUCKET}/auth/" in line and "AWS_PROFILE" in line
    assert SECRET not in result.output


def test_no_credentials_at_all_say_so(aws_env, monkeypatch):
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(HarnessError, match="no AWS credentials found"):
        archive.locate(f"s3://{BUCKET}/nightly/")


@pytest.mark.parametrize(("url", "extra"), [("s3://b/p/", "s3"), ("sftp://h/p/", "sftp")])
def test_a_missing_extra_is_one_line_saying_what_to_install(monkeypatch, url, extra):
    monkeypatch.setitem(sys.modules, "s3fs" if extra == "s3" else "sshfs", None)  # as if not installed
    with pytest.raises(HarnessError) as caught:
        archive.locate(url)
    scheme = url.partition(":")[0]
    assert caught.value.line() == f"{scheme}:// needs the {extra} extra: pip install 'grimoire-drill[{extra}]'"


def test_a_password_in_the_url_is_refused_and_never_shown():
    with pytest.raises(HarnessError) as caught:
        archive.locate("sftp://me:hunter2@host/backups/")
    assert "hunter2" not in caught.value.line() and "password" in caught.value.line()
    assert archive.shown_source("sftp://me@host:2222/b/?token=abc") == "sftp://host:2222/b/"


# --------------------------------------------------------------------------- encrypted, through gpg


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory) -> Path:
    from grimoire_drill.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("encrypted"), when=datetime.now(timezone.utc) - timedelta(hours=1),
                        passphrase=PASSPHRASE)


PASSPHRASE = "offsite drill passphrase"


def test_an_encrypted_object_is_decrypted_from_the_stream(client, encrypted, in_process_aws, tmp_path):
    upload(client, "gpg/", [encrypted])
    ref = archive.locate(f"s3://{BUCKET}/gpg/")
    assert ref.kind == "tar.gz.gpg"
    extracted = archive.extract(ref, tmp_path / "x", passphrase=PASSPHRASE)
    assert extracted.sha256 == sha256(encrypted) and (extracted.root / "backup_info.txt").is_file()


def test_a_cut_through_gpg_is_still_a_harness_error_not_a_bad_backup(client, encrypted, aws_env, monkeypatch,
                                                                     tmp_path):
    """gpg sees a truncated input and fails: that is the network's doing, and the verdict says so."""
    upload(client, "gpg-cut/", [encrypted])
    host, port = aws_env["AWS_ENDPOINT_URL"].removeprefix("http://").split(":")
    proxy = CutProxy((host, int(port)), cut_after=120_000, then="down")
    for name, value in {**aws_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "AWS_MAX_ATTEMPTS": "2"}.items():
        monkeypatch.setenv(name, value)
    try:
        ref = archive.locate(f"s3://{BUCKET}/gpg-cut/")
        with pytest.raises(HarnessError) as caught:
            archive.extract(ref, tmp_path / "x", passphrase=PASSPHRASE,
                            limits=Limits(remote_retry_wait_s=0.01, remote_retries=2))
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert caught.value.where == f"s3://{BUCKET}/gpg-cut/{encrypted.name}"
    assert "limits.remote_retries (2)" in caught.value.what


# --------------------------------------------------------------------------- an object we may not read


def test_a_newest_object_we_may_not_read_fails_naming_it(client, generations, aws_env, monkeypatch):
    """IAM on moto's server: listing allowed, reading the newest denied -> exit 1 naming it, as a local 0600 file."""
    import requests

    upload(client, "perm/", generations)
    iam = boto3.client("iam", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")
    iam.create_user(UserName="drill")
    newest = f"arn:aws:s3:::{BUCKET}/perm/{generations[0].name}"
    iam.put_user_policy(UserName="drill", PolicyName="offsite", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": newest}]}))
    key = iam.create_access_key(UserName="drill")["AccessKey"]
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        with pytest.raises(DrillFailure) as caught:
            archive.locate(f"s3://{BUCKET}/perm/")
        older = archive.locate(f"s3://{BUCKET}/perm/{generations[1].name}")  # the same user reads the older one
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
    assert caught.value.where == f"s3://{BUCKET}/perm/{generations[0].name}"
    assert "refuses to read it" in caught.value.what and "let the drill's user read" in caught.value.fix
    assert older.backup_id != archive.parse_backup_name(generations[0].name)[0]


def test_a_url_stays_a_url_in_the_config_and_generations_refuse_it_in_one_line():
    from grimoire_drill.config import parse_backups

    assert parse_backups("s3://bucket/prefix/") == "s3://bucket/prefix/"   # Path() would make it s3:/bucket/prefix
    assert parse_backups("SFTP://h/p") == "SFTP://h/p" and parse_backups("backups") == Path("backups")
    with pytest.raises(HarnessError, match="--generations drills a local folder"):
        archive.named_backups("s3://bucket/prefix/", 10, "limits.max_series_backups (10)")
