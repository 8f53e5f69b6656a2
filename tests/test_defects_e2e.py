"""End to end: every way a backup goes wrong, through the real CLI, real PostgreSQL, real files.

Each defect of ``grimoire-drill sample --defect`` must fail the drill (exit 1) in the check that
owns it, with a message naming the file, collection or key concerned, in summary.json and on
stdout. Hostile archives must fail naming the member, and write nothing where they aim.
Encrypted, ``--gzip`` and multi-generation samples must pass. Faults of the machine (unreadable
file, full temp dir, a server killed mid-restore) must end with a clear message, the exit code
DESIGN.md gives, and nothing left behind.

The drills of the tables below run a few at a time in the background (the first test that needs
one starts all the selected ones), so the whole file stays within a few minutes on two cores.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from grimoire_drill.engines.base import RUN_ENV
from grimoire_drill.sample import CATALOGUE, DEFECTS

pytestmark = pytest.mark.slow

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")
PARALLEL_DRILLS = 3
PASSPHRASE = "correct horse battery staple 7f3a"


# --------------------------------------------------------------------------- running drills

@dataclass(frozen=True)
class Drill:
    """One finished ``grimoire-drill run``: its exit code, its output and what it wrote."""

    returncode: int
    stdout: str
    stderr: str
    work: Path           # the scenario's own folder: report/, temp/ and anything a test aims at
    archive: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def report(self) -> Path:
        return self.work / "report"

    @property
    def temp(self) -> Path:
        return self.work / "temp"

    def summary(self) -> dict:
        return json.loads((self.report / "summary.json").read_text())

    def checks(self, status: str) -> dict[str, str]:
        return {c["id"]: c["message"] for c in self.summary()["checks"] if c["status"] == status}


def cli(*args, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real CLI as a process, as conftest's run_cli runs it (usable from worker threads)."""
    return subprocess.run([sys.executable, "-m", "grimoire_drill.cli", *map(str, args)], cwd=cwd, env=drill_env(env),
                          capture_output=True, text=True, timeout=timeout, check=False)


def drill_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any passphrase of ours, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "GRIMOIRE_DRILL_PASSPHRASE"}
    env.update({"TESTCONTAINERS_RYUK_DISABLED": "true", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def drill(archive: Path, work: Path, *extra: str, env: dict[str, str] | None = None) -> Drill:
    """``grimoire-drill run`` on ``archive`` with report and temp dirs inside ``work``."""
    (work / "temp").mkdir(parents=True, exist_ok=True)
    done = cli(*RUN, archive, "--report-dir", work / "report", "--temp-dir", work / "temp", *extra,
               cwd=work, env=env)
    return Drill(done.returncode, done.stdout, done.stderr, work, archive)


def assert_left_nothing(result: Drill) -> None:
    assert list(result.temp.iterdir()) == [], f"left behind in the temp dir: {list(result.temp.iterdir())}"


# --------------------------------------------------------------------------- building archives

def repack(source: Path, out_dir: Path, edit: Callable[[Path], None]) -> Path:
    """Unpack a sample, let ``edit`` change its backup_<id>/ folder, pack it again under the same name."""
    scratch = Path(tempfile.mkdtemp(dir=out_dir))
    with tarfile.open(source) as tar:
        tar.extractall(scratch, filter="data")
    (root,) = scratch.iterdir()
    edit(root)
    target = out_dir / source.name
    with tarfile.open(target, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    shutil.rmtree(scratch)
    return target


def fresh_name() -> str:
    return f"backup_{datetime.now(timezone.utc) - timedelta(hours=1):%Y%m%d_%H%M%S}"


def hostile_archive(out_dir: Path, members: Callable[[str], list[tuple[tarfile.TarInfo, bytes | None]]]) -> Path:
    """``backup_<id>.tar.gz`` with a sane start (top folder, backup_info.txt) and then ``members``."""
    top = fresh_name()
    info = f"Backup ID: {top.removeprefix('backup_')}\n".encode()
    start = [(tarfile.TarInfo(top), None), (tarfile.TarInfo(f"{top}/backup_info.txt"), info)]
    start[0][0].type = tarfile.DIRTYPE
    start[0][0].mode = 0o755
    archive = out_dir / f"{top}.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for member, data in start + members(top):
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return archive


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, linkname: str = "", major: int = 0, minor: int = 0) -> tuple[tarfile.TarInfo, None]:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = linkname
    member.devmajor, member.devminor = major, minor
    return member, None


class _Zeros(io.RawIOBase):
    """``size`` zero bytes without holding them: the body of a decompression bomb."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


BOMB_BYTES = 96 * 1024 * 1024   # ~95 KB of gzip: a ratio near 1000, over the limit of 200


def bomb_archive(out_dir: Path) -> Path:
    top = fresh_name()
    archive = out_dir / f"{top}.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        folder = tarfile.TarInfo(top)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        member = tarfile.TarInfo(f"{top}/mongodb/legrimoire/recipes.bson")
        member.size = BOMB_BYTES
        tar.addfile(member, io.BufferedReader(_Zeros(BOMB_BYTES), 1 << 20))
    return archive


# --------------------------------------------------------------------------- scenarios

# defect (optionally "@gzip": with mongodump --gzip) -> (check that must fail, what its message must name)
DEFECT_EXPECTATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "duplicate-off-id": ("mongodb.unique.ingredients.off_id_1", ("legrimoire.ingredients", "off_id=", "appears 2 times")),
    "missing-index": ("mongodb.index.recipes.created_at_-1", ("legrimoire.recipes", "created_at_-1")),
    "extra-index": ("mongodb.indexes_as_dumped.recipes", ("legrimoire.recipes", "source_url_1")),
    "missing-collection": ("mongodb.collection.categories", ("legrimoire.categories", "absent from the dump")),
    "export-count-mismatch": ("consistency.mongodb_counts.ingredients", ("ingredients_export.json", "legrimoire.ingredients")),
    "content-change": ("consistency.mongodb_export_content.recipes", ("recipes_export.json", "_id ObjectId(", "'title'")),
    "truncated-bson": ("mongodb.restore", ("mongodb/legrimoire/recipes.bson:", "truncated mid-document")),
    "truncated-bson@gzip": ("mongodb.restore", ("mongodb/legrimoire/recipes.bson.gz:", "truncated")),
    "malformed-metadata": ("mongodb.restore", ("mongodb/legrimoire/ingredients.metadata.json:", "malformed metadata")),
    "malformed-metadata@gzip": ("mongodb.restore", ("mongodb/legrimoire/ingredients.metadata.json.gz:",)),
    "empty-mongodb": ("mongodb.restore", ("mongodb/", "MongoDB was down at backup time")),
    "missing-upload": ("consistency.uploads", ("uploads/", "/uploads/recipes/")),
    "stale": ("archive.fresh", ("{name}", "more than 26 h")),
    "too-small": ("archive.size", ("{file}", "less than 100 KB")),
    "no-backup-info": ("archive.backup_info", ("backup_info.txt missing",)),
    "backup-info-mismatch": ("archive.backup_info", ("backup_info.txt says Backup ID", "{name}")),
    "truncated-pg-dump": ("postgresql.restore", ("postgresql/database.backup", "end of file")),
    "corrupt-pg-dump": ("postgresql.restore", ("postgresql/database.backup", "could not uncompress data")),
    "missing-pg-dump": ("postgresql.restore", ("postgresql", "no PostgreSQL dump")),
    "sql-errors": ("postgresql.restore", ("postgresql/database.backup", "strip_accents", "idx_recipes_title_key")),
    "dangling-reference": ("mongodb.references.categories.parents",
                           ("legrimoire.categories.parents", "1 of ", "→ en:discontinued-foods")),
    "missing-night": ("generations.nights", ("1 night(s) without a backup in the 7 days",)),
    # "@series": two nights (write_generations), the defect on the newest; only the comparison catches it
    "emptied-collection@series": ("generations.documents", ("mongodb/legrimoire/recipes.bson fell from", "bytes",
                                                            "since backup_")),   # no history: the archive's headers
    "older-data@series": ("generations.freshness.mongodb.recipes.updated_at",
                          ("mongodb.recipes.updated_at", "went back in time")),
    "truncated-archive": ("archive.readable", ("{file}", "archive is truncated or corrupt")),
    "corrupt-archive": ("archive.readable", ("{file}", "archive is truncated or corrupt")),
}


@dataclass(frozen=True)
class Hostile:
    """An archive aimed outside the drill's temp dir: what it holds and where it aims."""

    members: Callable[[str, Path], list]      # (top folder, scenario folder) -> [(TarInfo, data)]
    named: str                                # what the failure must name, "{top}" = the top folder
    reason: str
    targets: Callable[[Path], list[Path]]     # the outside paths it aims at (must stay untouched)


# --temp-dir is <work>/temp and extraction goes to <work>/temp/gd-<run>/backup/, so from a member of
# <top>/ four ".." reach <work> itself.
UP = "../../../.."
HOSTILE: dict[str, Hostile] = {
    "dotdot": Hostile(lambda top, work: [_file(f"{top}/{UP}/escaped-dotdot.txt", b"pwned\n")],
                      "{top}/../../../../escaped-dotdot.txt", "'..' in path",
                      lambda work: [work / "escaped-dotdot.txt"]),
    "absolute": Hostile(lambda top, work: [_file(str(work / "escaped-absolute.txt"), b"pwned\n")],
                        "escaped-absolute.txt", "absolute path", lambda work: [work / "escaped-absolute.txt"]),
    "symlink": Hostile(lambda top, work: [_special(f"{top}/uploads", tarfile.SYMTYPE, f"{UP}/outside"),
                                          _file(f"{top}/uploads/planted.txt", b"pwned\n")],
                       "{top}/uploads", "symlink points outside", lambda work: [work / "outside" / "planted.txt"]),
    "hardlink": Hostile(lambda top, work: [_special(f"{top}/secret", tarfile.LNKTYPE, str(work / "outside" / "secret.txt")),
                                           _file(f"{top}/secret", b"overwritten\n")],
                        "{top}/secret", "hard link to", lambda work: []),
    "device": Hostile(lambda top, work: [_special(f"{top}/uploads/null", tarfile.CHRTYPE, major=1, minor=3)],
                      "{top}/uploads/null", "device, fifo or other special file", lambda work: []),
    "bomb": Hostile(lambda top, work: [], "{top}/mongodb/legrimoire/recipes.bson", "decompression bomb",
                    lambda work: []),
}

SECRET = b"the file a hard link must not reach\n"


class Shared:
    """What scenarios share across worker threads: samples (built once per arguments), the encrypted one."""

    def __init__(self, sample_factory, area: Path):
        self._factory = sample_factory
        self.area = area
        self._guard = threading.Lock()
        self._locks: dict[tuple, threading.Lock] = {}
        self._encrypted: tuple[Path, Path] | None = None

    def _lock(self, key: tuple) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def sample(self, defect: str | None = None, **kw) -> Path:
        with self._lock(("sample", defect, tuple(sorted(kw.items())))):
            return self._factory(defect, **kw)

    def encrypted(self) -> tuple[Path, Path]:
        """(``backup_<id>.tar.gz.gpg``, passphrase file), made by ``grimoire-drill sample --encrypt``."""
        with self._lock(("encrypted",)):
            if self._encrypted is None:
                if shutil.which("gpg") is None:
                    pytest.skip("gpg is not installed")
                work = open_dir(self.area, "encrypted-sample")
                secret = work / "passphrase.txt"
                secret.write_text(PASSPHRASE + "\n")
                secret.chmod(0o600)
                done = cli("sample", work / "backups", "--encrypt", "--passphrase-file", secret, cwd=work)
                assert done.returncode == 0, done.stdout + done.stderr
                (archive,) = (work / "backups").iterdir()
                self._encrypted = archive, secret
            return self._encrypted


Built = tuple[Path, tuple[str, ...], dict[str, str]]     # archive or folder to drill, extra CLI args, extra env


def _defect(key: str) -> Callable[[Shared, Path], Built]:
    defect, _, variant = key.partition("@")
    if CATALOGUE[defect].series is not None:       # a defect of the folder: the CLI writes the series
        return lambda shared, work: (_cli_series(work, "--defect", defect), (), {})
    if variant == "series":                        # two nights, the defect on the newest
        return lambda shared, work: (_cli_series(work, "--generations", "2", "--defect", defect), (), {})
    return lambda shared, work: (shared.sample(defect, gzip_dump=variant == "gzip"), (), {})


def _cli_series(work: Path, *args: str) -> Path:
    """``grimoire-drill sample BACKUPS *args`` (real backups, one a night); the folder, its printed paths beside."""
    out = work / "backups"
    done = cli("sample", out, *args, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    (work / "printed.txt").write_text(done.stdout)
    return out


def _named_series(offsets: tuple[int, ...]) -> Callable[[Shared, Path], Built]:
    """The clean sample as the newest, and older nights (days before it) by name: hard links to it.

    The series is judged from names alone, so what the older files hold is never read; a drill that
    opened one would restore the newest's content and could not tell.
    """
    def build(shared: Shared, work: Path) -> Built:
        newest = shared.sample()
        out = work / "backups"
        out.mkdir()
        os.link(newest, out / newest.name)
        taken = datetime.strptime(newest.name.removesuffix(".tar.gz"), "backup_%Y%m%d_%H%M%S")
        for days in offsets:
            os.link(newest, out / f"backup_{taken - timedelta(days=days):%Y%m%d_%H%M%S}.tar.gz")
        return out, (), {}
    return build


def _hostile(key: str) -> Callable[[Shared, Path], Built]:
    def build(shared: Shared, work: Path) -> Built:
        (work / "outside").mkdir()
        (work / "outside" / "secret.txt").write_bytes(SECRET)
        if key == "bomb":
            return bomb_archive(work), (), {}
        return hostile_archive(work, lambda top: HOSTILE[key].members(top, work)), (), {}
    return build


def _plain_sql_with_errors(shared: Shared, work: Path) -> Built:
    """The sql-errors sample with only database.sql: restored with psql instead of pg_restore."""
    archive = repack(shared.sample("sql-errors"), work, lambda root: (root / "postgresql" / "database.backup").unlink())
    return archive, (), {}


def _backup_date_of_another_night(shared: Shared, work: Path) -> Built:
    def shift_date(root: Path) -> None:
        info = root / "backup_info.txt"
        text = info.read_text()
        shown = re.search(r"Backup Date: (\S+ \S+)", text).group(1)
        earlier = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S") - timedelta(days=2)
        info.write_text(text.replace(shown, f"{earlier:%Y-%m-%d %H:%M:%S}"))
    return repack(shared.sample(), work, shift_date), (), {}


def _generations(shared: Shared, work: Path) -> Built:
    """Three encrypted nightly backups by the CLI (write_generations passes the passphrase on); the
    newest is 1 h old, the oldest is touched last, as a copy would be."""
    out = work / "backups"
    env = {"GRIMOIRE_DRILL_PASSPHRASE": PASSPHRASE}
    done = cli("sample", out, "--generations", "3", "--encrypt", cwd=work, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (work / "printed.txt").write_text(done.stdout)
    oldest = Path(done.stdout.split()[-1])
    os.utime(oldest, (time.time() + 60, time.time() + 60))
    return out, (), env


def _encrypted(how: str) -> Callable[[Shared, Path], Built]:
    def build(shared: Shared, work: Path) -> Built:
        archive, secret = shared.encrypted()
        return archive, *{
            "environment": ((), {"GRIMOIRE_DRILL_PASSPHRASE": PASSPHRASE}),
            "passphrase-file": (("--passphrase-file", str(secret)), {}),
            "wrong": ((), {"GRIMOIRE_DRILL_PASSPHRASE": WRONG_PASSPHRASE}),
            "none": ((), {}),
        }[how]
    return build


WRONG_PASSPHRASE = "not-the-passphrase-" + PASSPHRASE[::-1]
SCENARIOS: dict[str, Callable[[Shared, Path], Built]] = {
    **{f"defect:{key}": _defect(key) for key in DEFECT_EXPECTATIONS},
    **{f"hostile:{key}": _hostile(key) for key in HOSTILE},
    "plain-sql-errors": _plain_sql_with_errors,
    "backup-date-of-another-night": _backup_date_of_another_night,
    "gzip": lambda shared, work: (shared.sample(gzip_dump=True), (), {}),
    "generations": _generations,
    "series:week": lambda shared, work: (_cli_series(work, "--generations", "7"), (), {}),
    "series:new-installation": _named_series((1, 2)),
    "series:past-retention": _named_series((*range(1, 7), 10)),
    **{f"encrypted:{how}": _encrypted(how) for how in ("environment", "passphrase-file", "wrong", "none")},
}


def uses(*scenarios: str, samples: tuple[dict, ...] = ()):
    """Declare what a test needs, so the drills fixture starts it early, in the background."""
    def mark(test):
        test.scenarios, test.samples = scenarios, samples
        return test
    return mark


@pytest.fixture(scope="module")
def open_area():
    """Work dirs the local PostgreSQL's OS user can traverse (pytest's own tmp dirs are private to root)."""
    area = Path(tempfile.mkdtemp(prefix="grimoire-drill-e2e-"))
    area.chmod(0o755)
    yield area
    shutil.rmtree(area, ignore_errors=True)


def open_dir(area: Path, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=area))
    path.chmod(0o755)
    return path


@pytest.fixture
def work(open_area, request):
    return open_dir(open_area, re.sub(r"\W+", "-", request.node.name)[:60])


@pytest.fixture(scope="module")
def shared(sample_factory, open_area) -> Shared:
    return Shared(sample_factory, open_area)


@pytest.fixture(scope="module")
def drills(request, shared):
    """``drills(scenario)`` -> Drill. Every scenario the selected tests of this module need runs in a
    small pool from the start; samples the sequential tests need are built there too."""
    wanted: list[str] = []
    samples: list[dict] = []
    for item in request.session.items:
        if item.module is not request.module:
            continue
        params = item.callspec.params if hasattr(item, "callspec") else {}
        wanted += [f"{kind}:{params[kind]}" for kind in ("defect", "hostile") if kind in params]
        wanted += [f"encrypted:{params['how']}"] if "how" in params else []
        wanted += list(getattr(item.function, "scenarios", ()))
        samples += list(getattr(item.function, "samples", ()))
    futures: dict[str, Future] = {}

    def run(name: str) -> Drill:
        work = open_dir(shared.area, re.sub(r"\W+", "-", name))
        target, extra, env = SCENARIOS[name](shared, work)
        return drill(target, work, *extra, env=env)

    with ThreadPoolExecutor(max_workers=PARALLEL_DRILLS, thread_name_prefix="drill") as pool:
        for name in dict.fromkeys(wanted):
            futures[name] = pool.submit(run, name)
        for kwargs in samples:
            pool.submit(shared.sample, **kwargs)

        def get(name: str) -> Drill:
            if name not in futures:
                futures[name] = pool.submit(run, name)
            return futures[name].result()

        yield get


# --------------------------------------------------------------------------- defects

def test_every_defect_has_an_expectation():
    assert {key.partition("@")[0] for key in DEFECT_EXPECTATIONS} == set(DEFECTS)


@pytest.mark.parametrize("defect", list(DEFECT_EXPECTATIONS))
def test_defect_fails_the_drill_naming_what_is_wrong(drills, defect):
    result = drills(f"defect:{defect}")
    check_id, named = DEFECT_EXPECTATIONS[defect]
    names = [text.format(name=result.archive.name.removesuffix(".tar.gz"), file=result.archive.name) for text in named]
    assert result.returncode == 1, result.output
    summary = result.summary()
    assert summary["outcome"] == "failed"
    failed = result.checks("failed")
    assert check_id in failed, f"{check_id} did not fail; failed: {sorted(failed)}\n{result.output}"
    for text in names:
        assert text in failed[check_id], f"{check_id}: {failed[check_id]!r} does not name {text!r}"
        assert text in result.stdout, f"stdout does not name {text!r}:\n{result.stdout}"
    assert summary["totals"]["error"] == 0, result.checks("error")   # the backup is bad, not the harness
    assert_left_nothing(result)


def test_missing_upload_names_the_exact_url(drills):
    result = drills("defect:missing-upload")
    with tarfile.open(result.archive) as tar:
        names = tar.getnames()
        export = json.load(tar.extractfile(next(n for n in names if n.endswith("/recipes_export.json"))))
    present = {name.partition("/")[2] for name in names}
    absent = [r["image_url"] for r in export if r.get("image_url") and r["image_url"].lstrip("/") not in present]
    assert len(absent) == 1
    assert absent[0] in result.checks("failed")["consistency.uploads"]
    assert absent[0] in result.stdout


def test_stale_backup_is_judged_by_its_name_not_its_fresh_mtime(drills):
    result = drills("defect:stale")
    assert time.time() - result.archive.stat().st_mtime < 3600      # the copy is new...
    evidence = next(c for c in result.summary()["checks"] if c["id"] == "archive.fresh")["evidence"]
    assert evidence["age_hours"] > 70                                # ...the backup is three days old


@uses("plain-sql-errors")
def test_plain_sql_dump_with_errors_fails_naming_its_line(drills):
    result = drills("plain-sql-errors")
    assert result.returncode == 1, result.output
    message = result.checks("failed")["postgresql.restore"]
    assert "postgresql/database.sql: psql reported" in message
    assert re.search(r"database\.sql line \d+: function strip_accents\(text\) does not exist", message), message
    assert "postgresql/database.sql" in result.stdout
    assert_left_nothing(result)


@uses("backup-date-of-another-night")
def test_backup_date_of_another_night_fails(drills):
    result = drills("backup-date-of-another-night")
    assert result.returncode == 1, result.output
    message = result.checks("failed")["archive.backup_info"]
    assert "backup_info.txt says Backup Date" in message and "-48.0 h apart" in message


# --------------------------------------------------------------------------- hostile archives

@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_hostile_archive_fails_naming_the_member_and_writes_nothing_outside(drills, hostile):
    result = drills(f"hostile:{hostile}")
    case = HOSTILE[hostile]
    top = result.archive.name.removesuffix(".tar.gz")
    member = case.named.format(top=top)
    assert result.returncode == 1, result.output
    message = result.checks("failed")["archive.readable"]
    assert "unsafe member " in message and member in message and case.reason in message, message
    assert member in result.stdout and str(result.archive) in message
    for target in case.targets(result.work):
        assert not target.exists(), f"{target} was written by a hostile archive"
    assert sorted(p.name for p in (result.work / "outside").iterdir()) == ["secret.txt"]
    assert (result.work / "outside" / "secret.txt").read_bytes() == SECRET
    assert (result.work / "outside" / "secret.txt").stat().st_nlink == 1
    assert_left_nothing(result)


# --------------------------------------------------------------------------- encrypted, gzip, generations

def _gpg_agents_of_removed_homes() -> list[str]:
    """gpg-agents still running whose --homedir is gone: left behind by whoever removed the home."""
    orphans = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and argv and Path(argv[0]).name == "gpg-agent" and "--homedir" in argv:
            home = argv[argv.index("--homedir") + 1]
            if not Path(home).exists():
                orphans.append(" ".join(argv))
    return orphans


@uses("encrypted:environment")
def test_encrypted_sample_is_aes256_and_leaves_no_agent(drills, tmp_path):
    archive = drills("encrypted:environment").archive
    assert archive.name.endswith(".tar.gz.gpg")
    with pytest.raises(tarfile.ReadError):
        tarfile.open(archive)
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    packets = subprocess.run(["gpg", "--batch", "--no-autostart", "--homedir", str(home), "--list-packets",
                              str(archive)], capture_output=True, text=True, check=False).stdout
    assert re.search(r":symkey enc packet: version \d+, cipher 9\b", packets), packets   # 9 = AES256
    assert _gpg_agents_of_removed_homes() == []


@pytest.mark.parametrize("how", ["environment", "passphrase-file"])
def test_encrypted_backup_passes_with_the_right_passphrase(drills, how):
    result = drills(f"encrypted:{how}")
    assert result.returncode == 0, result.output
    summary = result.summary()
    assert summary["outcome"] == "passed" and summary["archive"]["kind"] == "tar.gz.gpg"
    assert summary["counts"]["postgresql"]["users"] > 0
    assert_left_nothing(result)
    assert _gpg_agents_of_removed_homes() == []


def _everything_written(result: Drill) -> str:
    files = [p for p in result.work.rglob("*") if p.is_file()]
    return result.output + "".join(p.read_text(errors="replace") for p in files)


@uses("encrypted:wrong")
def test_wrong_passphrase_is_a_clear_failure_that_never_shows_the_passphrase(drills):
    result = drills("encrypted:wrong")
    assert result.returncode == 1, result.output
    message = result.checks("failed")["archive.readable"]
    assert "gpg could not decrypt the archive" in message and result.archive.name in message
    assert "check the passphrase" in result.stdout
    written = _everything_written(result)
    assert (result.report / "summary.json").is_file() and (result.work / "history.jsonl").is_file()
    assert WRONG_PASSPHRASE not in written and PASSPHRASE not in written
    assert_left_nothing(result)


@uses("encrypted:none")
def test_missing_passphrase_is_a_harness_error_with_the_fix(drills):
    """Known before any engine starts (the preflight): one line with the fix, nothing started or written."""
    result = drills("encrypted:none")
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "encrypted and no passphrase is set" in lines[0], result.stderr
    assert "--passphrase-file" in lines[0] and "GRIMOIRE_DRILL_PASSPHRASE" in lines[0]
    assert "engine" not in result.output and not (result.report / "summary.json").exists()


@uses("gzip")
def test_gzip_dump_sample_passes_with_the_counts_written(drills):
    result = drills("gzip")
    with tarfile.open(result.archive) as tar:
        dumped = [n for n in tar.getnames() if "/mongodb/legrimoire/" in n]
    assert dumped and all(n.endswith((".bson.gz", ".metadata.json.gz")) for n in dumped), dumped
    assert result.returncode == 0, result.output
    summary = result.summary()
    for namespace, source in summary["source_counts"]["mongodb"].items():
        assert summary["counts"]["mongodb"][namespace] == source["dump"] > 0


@uses("generations")
def test_newest_generation_by_name_is_drilled_whatever_the_mtimes(drills):
    result = drills("generations")
    newest, middle, oldest = (Path(line) for line in (result.work / "printed.txt").read_text().split())
    assert newest.name > middle.name > oldest.name
    assert all(path.name.endswith(".tar.gz.gpg") for path in (newest, middle, oldest))
    assert max(newest.parent.iterdir(), key=lambda p: p.stat().st_mtime) == oldest
    assert result.returncode == 0, result.output            # the older two are > 26 h old: they would fail
    assert result.summary()["archive"]["name"] == newest.name.removesuffix(".tar.gz.gpg")
    assert newest.name.removesuffix(".tar.gz.gpg") in result.stdout


# --------------------------------------------------------------------------- series of nights

def _nights(result: Drill) -> dict:
    return next(c for c in result.summary()["checks"] if c["id"] == "generations.nights")


@uses("defect:missing-night")
def test_missing_night_is_named_by_its_date(drills):
    result = drills("defect:missing-night")
    newest = max(Path(line).name for line in (result.work / "printed.txt").read_text().split())
    gap = datetime.strptime(newest, "backup_%Y%m%d_%H%M%S.tar.gz").date() - timedelta(days=3)
    assert result.returncode == 1, result.output
    assert gap.isoformat() in result.checks("failed")["generations.nights"]
    assert _nights(result)["evidence"]["missing"] == [gap.isoformat()]
    assert set(result.checks("failed")) == {"generations.nights"}      # every backup itself is good


@uses("series:week")
def test_a_clean_week_of_real_backups_passes(drills):
    result = drills("series:week")
    assert result.returncode == 0, result.output
    check = _nights(result)
    assert check["status"] == "passed" and check["message"].startswith("every night of the 7 days"), check
    assert len(check["evidence"]["nights_present"]) == 7 and check["evidence"]["warnings"] == []


@uses("series:new-installation")
def test_three_nights_are_reported_as_a_new_installation(drills):
    result = drills("series:new-installation")
    assert result.returncode == 0, result.output
    check = _nights(result)
    assert check["status"] == "passed" and "3 nights of 7 so far: new installation?" in check["message"], check
    assert check["evidence"]["new_installation"] is True


@uses("series:past-retention")
def test_a_ten_day_old_backup_warns_should_have_been_pruned(drills):
    result = drills("series:past-retention")
    assert result.returncode == 0, result.output
    check = _nights(result)
    (old,) = check["evidence"]["should_have_been_pruned"]
    assert check["status"] == "passed" and "WARNING:" in check["message"] and "should have been pruned" in check["message"]
    assert old in check["message"] and len(check["evidence"]["warnings"]) == 1


@uses("gzip")
def test_one_archive_has_no_series_its_check_is_off_and_the_drill_stays_full(drills):
    result = drills("gzip")
    check = _nights(result)
    assert check["status"] == "off" and check["message"] == "BACKUPS is one archive: no series of nights to check"
    summary = result.summary()
    assert summary["scope"]["kind"] == "full" and summary["scope"]["off"] >= 1 and summary["totals"]["off"] >= 1
    off_line = next(line for line in result.stdout.splitlines() if line.startswith("OFF: "))
    # one archive also turns the comparison with a previous generation off: the line names a few and counts the rest
    assert f"OFF: {summary['totals']['off']} check(s)" in off_line
    assert "generations.nights" in off_line or f"and {summary['totals']['off'] - 5} more" in off_line


# --------------------------------------------------------------------------- faults of the machine

def test_unreadable_archive_fails_saying_so(shared):
    """chmod 000 means nothing to root: the drill runs as ``nobody`` (setpriv) to meet the permission."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the drill as an unprivileged user")
    # pytest's tmp dirs are private to root; this one is reachable by nobody and removed after.
    work = Path(tempfile.mkdtemp(prefix="gd-test-unreadable-"))
    try:
        work.chmod(0o777)
        archive = work / shared.sample().name
        shutil.copy(shared.sample(), archive)
        archive.chmod(0o000)
        (work / "temp").mkdir()
        (work / "temp").chmod(0o777)
        probe = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                                "import grimoire_drill.cli"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"nobody cannot run this Python: {probe.stderr.strip()[-200:]}")
        done = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m",
                               "grimoire_drill.cli", *RUN, str(archive), "--report-dir", str(work / "report"),
                               "--temp-dir", str(work / "temp")], cwd=work, env=drill_env({"HOME": str(work)}), capture_output=True, text=True,
                              timeout=600, check=False)
        result = Drill(done.returncode, done.stdout, done.stderr, work, archive)
        assert result.returncode == 1, result.output         # DESIGN.md: unreadable is the backup failing
        message = result.checks("failed")["archive.readable"]
        assert str(archive) in message and "Permission denied" in message and "read" in message.split("fix:")[1]
        assert str(archive) in result.stdout
        assert_left_nothing(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs: too small for any sample's extraction."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=1777", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)


def test_full_temp_dir_is_a_harness_error_naming_it_and_cleaned(shared, tmp_path, tiny_tmpfs):
    archive = shared.sample()
    done = cli(*RUN, archive, "--report-dir", tmp_path / "report", "--temp-dir", tiny_tmpfs, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output                       # the machine failed, not the backup
    assert "disk full" in output and str(tiny_tmpfs) in output
    assert list(tiny_tmpfs.iterdir()) == []
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["outcome"] == "error"


def test_unusable_temp_dir_is_a_harness_error_naming_it(shared, tmp_path):
    not_a_folder = tmp_path / "temp"
    not_a_folder.write_text("a file where the temp dir should be\n")
    done = cli(*RUN, shared.sample(), "--report-dir", tmp_path / "report", "--temp-dir", not_a_folder, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert str(not_a_folder) in output and "Traceback" not in output
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["outcome"] == "error"


def _processes() -> dict[int, tuple[int, list[str], bytes]]:
    """pid -> (parent pid, argv, environ) of every live process we may read."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            argv = [a for a in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
            environ = (proc / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            found[int(proc.name)] = (int(fields[1]), argv, environ)
    return found


@uses(samples=({"scale": 30},))
def test_server_killed_mid_restore_is_a_harness_error_and_everything_is_cleaned(shared, work):
    """SIGKILL the local PostgreSQL's postmaster while pg_restore works.

    To be sure the restore is under way, pg_restore is paused (SIGSTOP) once connected, the server
    is killed, and pg_restore resumes against the dead server: no timing decides the outcome.
    """
    archive = shared.sample(scale=30)
    temp = work / "temp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "grimoire_drill.cli", *RUN, str(archive), "--report-dir",
                             str(work / "report"), "--temp-dir", str(temp)], cwd=work, env=drill_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    run_id = None
    server: list[int] = []
    try:
        while proc.poll() is None and not server:
            found = re.search(r"run (\w+): drilling", "".join(lines[:5]))
            run_id = found.group(1) if found else None
            if run_id is not None:
                server = _kill_server_mid_restore(run_id)
            time.sleep(0.002)
        stdout = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    output = stdout + "".join(lines)
    assert server, f"pg_restore was never seen running: the drill ended first\n{output}"
    assert proc.returncode == 2, output                        # DESIGN.md: a dying server is the harness's
    assert "PostgreSQL server stopped answering" in output and "pg_restore" in output, output
    summary = json.loads((work / "report" / "summary.json").read_text())
    assert summary["outcome"] == "error"
    restore = next(c for c in summary["checks"] if c["id"] == "postgresql.restore")
    assert restore["status"] == "error" and "while pg_restore restored postgresql/database.backup" in restore["message"]
    assert list(temp.iterdir()) == []
    assert not [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(f"gd-{run_id}")]
    deadline = time.monotonic() + 30     # orphaned backends notice their postmaster is gone and exit
    while time.monotonic() < deadline:
        alive = {pid: argv for pid, (_ppid, argv, environ) in _processes().items()
                 if pid in server or f"{RUN_ENV}={run_id}".encode() in environ.split(b"\0")}
        if not alive:
            break
        time.sleep(0.2)
    assert not alive, f"left running after the drill: {alive}"


def _kill_server_mid_restore(run_id: str) -> list[int]:
    """When this run's pg_restore has a backend: pause it, SIGKILL the postmaster, resume it.

    Returns the server's pids (postmaster and children) once done, [] while not yet possible.
    """
    processes = _processes()
    mine = {pid: info for pid, info in processes.items() if f"{RUN_ENV}={run_id}".encode() in info[2].split(b"\0")}
    restores = [pid for pid, (_ppid, argv, _env) in mine.items() if argv and Path(argv[0]).name == "pg_restore"]
    postmasters = [pid for pid, (_ppid, argv, _env) in mine.items()
                   if argv and Path(argv[0]).name == "postgres" and "-D" in argv]
    if not restores or len(postmasters) != 1:
        return []
    # Backends rewrite their argv (and the environ behind it): find them as the postmaster's children.
    children = [pid for pid, (ppid, _argv, _env) in processes.items() if ppid == postmasters[0]]
    if not any(" le_grimoire " in " ".join(processes[pid][1]) for pid in children):
        return []
    for pid in restores:
        os.kill(pid, signal.SIGSTOP)
    try:
        os.kill(postmasters[0], signal.SIGKILL)
    finally:
        for pid in restores:
            os.kill(pid, signal.SIGCONT)
    return postmasters + children
