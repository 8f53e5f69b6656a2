"""grimoire_drill.archive on real files: locating by name, the single pass, and archives that attack the host."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grimoire_drill.archive import stream as archive_stream
from grimoire_drill.archive import (
    Limits,
    extract,
    find_backups,
    locate,
    parse_backup_name,
    read_backup_info,
    tree_digest,
)
from grimoire_drill.archive.writer import FileWriter
from grimoire_drill.errors import DrillFailure, HarnessError

NAME = "backup_20261124_020000"
PASSPHRASE = "correct horse battery staple"

BACKUP_INFO = f"""Le Grimoire - Production Backup
================================

Backup Date: 2026-11-24 02:00:00 UTC
Backup ID: 20261124_020000
Environment: production
Host: grimoire-prod-1

Contents:
---------
- MongoDB dump (BSON format)

To restore specific components:
- MongoDB: mongorestore --uri=<MONGODB_URL> mongodb/
2. Run: scripts/restore-backup.sh {NAME}
"""


# --------------------------------------------------------------------------- builders


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def dir_member(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def tar_bytes(members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def write_archive(path: Path, members) -> Path:
    path.write_bytes(gzip.compress(tar_bytes(members)))
    return path


def good_members(name: str = NAME):
    return [
        dir_member(name),
        file_member(f"{name}/backup_info.txt", BACKUP_INFO.encode()),
        dir_member(f"{name}/mongodb/legrimoire"),
        file_member(f"{name}/mongodb/legrimoire/recipes.bson", os.urandom(20_000)),
        file_member(f"{name}/uploads/recipes/a.jpg", os.urandom(5_000)),
        link_member(f"{name}/uploads/latest.jpg", "recipes/a.jpg"),
        link_member(f"{name}/uploads/copy.jpg", f"{name}/uploads/recipes/a.jpg", tarfile.LNKTYPE),
    ]


def snapshot(folder: Path, exclude: Path) -> dict[str, bytes | str]:
    """Everything under folder except exclude: path -> content (files) or link target."""
    seen: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        if path == exclude or exclude in path.parents:
            continue
        if path.is_symlink():
            seen[str(path)] = os.readlink(path)
        elif path.is_file():
            seen[str(path)] = path.read_bytes()
        else:
            seen[str(path)] = "dir"
    return seen


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, Path]:
    """backups/ (input), dest/ (extraction) and outside/ (must stay untouched)."""
    paths = {name: tmp_path / name for name in ("backups", "dest", "outside")}
    for path in paths.values():
        path.mkdir()
    (paths["outside"] / "secret.txt").write_text("do not touch")
    return paths


# --------------------------------------------------------------------------- locating


def test_parse_backup_name_reads_timestamp_as_utc():
    assert parse_backup_name(NAME) == ("20261124_020000", datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    assert parse_backup_name(f"{NAME}.tar.gz")[0] == "20261124_020000"
    assert parse_backup_name(f"{NAME}.tar.gz.gpg")[0] == "20261124_020000"


@pytest.mark.parametrize("name", ["backup_latest", "backup_20261324_020000", "backup_20261124_250000",
                                  "backup_2026112_020000", "xbackup_20261124_020000", f"{NAME}.zip",
                                  f"{NAME}.tar.gz.partial", ""])
def test_parse_backup_name_rejects_other_names(name):
    assert parse_backup_name(name) is None


def test_find_backups_orders_by_name_not_mtime(workspace):
    backups = workspace["backups"]
    names = ["backup_20261122_020000", "backup_20261123_020000", "backup_20261124_020000"]
    for age, name in enumerate(names):
        path = write_archive(backups / f"{name}.tar.gz", good_members(name))
        # Oldest name gets the newest mtime: a copy that reset mtimes must not fool us.
        os.utime(path, (2_000_000_000 - age * 86_400, 2_000_000_000 - age * 86_400))
    for stray in ["backup_latest.tar.gz", "notes.txt", "backup_20261399_000000.tar.gz",
                  "backup_20261125_020000.tar.gz.partial", "backup_20261125_020000.zip"]:
        (backups / stray).write_bytes(b"x")
    (backups / "not_a_backup").mkdir()

    found = find_backups(backups)

    assert [ref.name for ref in found] == list(reversed(names))
    assert all(ref.kind == "tar.gz" for ref in found)
    assert found[0].size_bytes == (backups / f"{names[-1]}.tar.gz").stat().st_size
    assert locate(backups).name == names[-1]


def test_locate_prefers_the_archive_when_a_folder_of_the_same_backup_sits_beside_it(workspace):
    backups = workspace["backups"]
    write_archive(backups / f"{NAME}.tar.gz", good_members())
    (backups / NAME).mkdir()
    (backups / "backup_20261123_020000.tar.gz.gpg").write_bytes(b"older, encrypted")

    kinds = [(ref.name, ref.kind) for ref in find_backups(backups)]

    assert kinds == [(NAME, "tar.gz"), (NAME, "dir"), ("backup_20261123_020000", "tar.gz.gpg")]


def test_locate_accepts_an_archive_or_a_backup_folder(workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    folder = workspace["backups"] / "backup_20261101_000000"
    (folder / "mongodb").mkdir(parents=True)
    (folder / "mongodb" / "x.bson").write_bytes(b"12345")

    assert locate(archive).kind == "tar.gz"
    assert locate(archive).path == archive
    ref = locate(folder)
    assert (ref.kind, ref.name, ref.size_bytes) == ("dir", "backup_20261101_000000", 5)


def test_locate_fails_on_an_empty_folder(workspace):
    (workspace["backups"] / "readme.txt").write_text("no backups yet")
    with pytest.raises(DrillFailure, match="no backup_YYYYMMDD_HHMMSS archive in .*backups"):
        locate(workspace["backups"])


def test_locate_fails_on_a_missing_path(tmp_path):
    with pytest.raises(DrillFailure, match="no such file or folder") as caught:
        locate(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_locate_fails_on_a_misnamed_file(tmp_path):
    path = tmp_path / "latest.tar.gz"
    path.write_bytes(b"x")
    with pytest.raises(DrillFailure, match="not a backup_YYYYMMDD_HHMMSS"):
        locate(path)


def test_read_backup_info_reads_only_key_value_lines(tmp_path):
    (tmp_path / "backup_info.txt").write_text(BACKUP_INFO)
    assert read_backup_info(tmp_path) == {
        "Backup Date": "2026-11-24 02:00:00 UTC",
        "Backup ID": "20261124_020000",
        "Environment": "production",
        "Host": "grimoire-prod-1",
    }
    assert read_backup_info(tmp_path / "absent") == {}


# --------------------------------------------------------------------------- the single pass


def test_extract_writes_the_tree_and_hashes_the_file(workspace):
    members = good_members()
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    calls: list[tuple[int, int]] = []

    result = extract(locate(archive), workspace["dest"], progress=lambda done, total: calls.append((done, total)))

    root = workspace["dest"] / NAME
    assert result.root == root
    assert result.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result.size_bytes == archive.stat().st_size
    assert result.members == len(members)
    assert result.bytes_extracted == len(BACKUP_INFO.encode()) + 20_000 + 5_000
    expected = {info.name: data for info, data in members if data is not None}
    for name, data in expected.items():
        assert (workspace["dest"] / name).read_bytes() == data
    assert (root / "uploads" / "latest.jpg").resolve() == (root / "uploads" / "recipes" / "a.jpg")
    assert (root / "uploads" / "copy.jpg").stat().st_ino == (root / "uploads" / "recipes" / "a.jpg").stat().st_ino
    assert read_backup_info(root)["Backup ID"] == "20261124_020000"
    assert calls[-1] == (archive.stat().st_size, archive.stat().st_size)


def test_extract_handles_a_real_gnu_tar_archive(workspace, tmp_path):
    """The backup job runs ``tar -czf``; make one exactly that way."""
    source = tmp_path / "src"
    (source / NAME / "postgresql").mkdir(parents=True)
    (source / NAME / "postgresql" / "database.sql").write_text("-- PostgreSQL database dump\n")
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(source), NAME], check=True)

    result = extract(locate(archive), workspace["dest"])

    assert (result.root / "postgresql" / "database.sql").read_text() == "-- PostgreSQL database dump\n"
    assert result.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_extract_refuses_a_destination_that_already_holds_the_backup(workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    (workspace["dest"] / NAME).mkdir()
    with pytest.raises(HarnessError, match="already holds"):
        extract(locate(archive), workspace["dest"])


def test_extract_fails_on_an_archive_without_the_backup_folder(workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", [])
    with pytest.raises(DrillFailure, match=f"holds no {NAME}/ folder"):
        extract(locate(archive), workspace["dest"])


def outside_target(workspace) -> str:
    return str(workspace["outside"] / "secret.txt")


UNSAFE = {
    "absolute path": lambda ws: ([file_member(str(ws["outside"] / "planted.txt"), b"evil")],
                                 str(ws["outside"] / "planted.txt")),
    "dot-dot": lambda ws: ([file_member(f"{NAME}/../../outside/planted.txt", b"evil")],
                           f"{NAME}/../../outside/planted.txt"),
    "symlink to /etc/passwd": lambda ws: ([link_member(f"{NAME}/passwd", "/etc/passwd"),
                                           file_member(f"{NAME}/passwd", b"root::0:0::/:/bin/sh\n")],
                                          f"{NAME}/passwd"),
    "symlink escaping then written through": lambda ws: (
        [link_member(f"{NAME}/up", "../../outside"), file_member(f"{NAME}/up/planted.txt", b"evil")],
        f"{NAME}/up"),
    "symlink chain escaping": lambda ws: (
        [dir_member(f"{NAME}/sub"), link_member(f"{NAME}/sub/b", ".."),
         link_member(f"{NAME}/a", "sub/b/../../outside"), file_member(f"{NAME}/a/planted.txt", b"evil")],
        f"{NAME}/a"),
    "symlink chain leaving the top folder": lambda ws: (
        [dir_member(f"{NAME}/sub"), link_member(f"{NAME}/sub/b", ".."),
         link_member(f"{NAME}/a", "sub/b/../elsewhere")],
        f"{NAME}/a"),
    "hardlink outside (absolute)": lambda ws: (
        [link_member(f"{NAME}/h", outside_target(ws), tarfile.LNKTYPE),
         file_member(f"{NAME}/h", b"overwritten")], f"{NAME}/h"),
    "hardlink outside (relative)": lambda ws: (
        [link_member(f"{NAME}/h", "../outside/secret.txt", tarfile.LNKTYPE),
         file_member(f"{NAME}/h", b"overwritten")], f"{NAME}/h"),
    "character device": lambda ws: ([_device(f"{NAME}/null", tarfile.CHRTYPE)], f"{NAME}/null"),
    "block device": lambda ws: ([_device(f"{NAME}/sda", tarfile.BLKTYPE)], f"{NAME}/sda"),
    "fifo": lambda ws: ([_device(f"{NAME}/pipe", tarfile.FIFOTYPE)], f"{NAME}/pipe"),
    "second top folder": lambda ws: ([file_member("backup_20990101_000000/x", b"x")],
                                     "backup_20990101_000000/x"),
    "duplicate member": lambda ws: ([file_member(f"{NAME}/twice.txt", b"a"),
                                     file_member(f"{NAME}/twice.txt", b"b")], f"{NAME}/twice.txt"),
    "file over a symlink": lambda ws: ([link_member(f"{NAME}/ok", "backup_info.txt"),
                                        file_member(f"{NAME}/ok", b"b")], f"{NAME}/ok"),
    "path through a file": lambda ws: ([file_member(f"{NAME}/f", b"x"), file_member(f"{NAME}/f/g", b"y")],
                                       f"{NAME}/f/g"),
    "NUL in a name": lambda ws: ([file_member(f"{NAME}/é\0b", b"x")], f"{NAME}/é\x00b"),  # via pax
    "decompression bomb": lambda ws: ([file_member(f"{NAME}/zeros.bin", bytes(24 * 1024 * 1024))],
                                      f"{NAME}/zeros.bin"),
}


def _device(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_member_fails_naming_it_and_writes_nothing_outside(case, workspace, tmp_path):
    evil, member_name = UNSAFE[case](workspace)
    members = [dir_member(NAME), file_member(f"{NAME}/backup_info.txt", BACKUP_INFO.encode()), *evil]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    before = snapshot(tmp_path, exclude=workspace["dest"])
    passwd_before = Path("/etc/passwd").read_bytes()

    with pytest.raises(DrillFailure) as caught:
        extract(locate(archive), workspace["dest"])

    assert f"unsafe member {member_name!r}" in str(caught.value)
    assert str(archive) in str(caught.value)
    assert snapshot(tmp_path, exclude=workspace["dest"]) == before
    assert Path("/etc/passwd").read_bytes() == passwd_before
    assert not (workspace["outside"] / "planted.txt").exists()
    root = workspace["dest"] / NAME
    for suffix in ("passwd", "h", "null", "sda", "pipe", "zeros.bin", "up", "a"):
        assert not os.path.lexists(root / suffix)


def test_a_name_the_filesystem_refuses_fails_naming_the_member(workspace):
    long_name = f"{NAME}/{'a' * 300}.jpg"
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz",
                            [dir_member(NAME), file_member(long_name, b"x")])
    with pytest.raises(DrillFailure, match="File name too long: a name component of 304 bytes") as caught:
        extract(locate(archive), workspace["dest"])
    assert f"unsafe member '{long_name[:200]}" in str(caught.value)  # named, clipped to limits.max_quoted_chars
    assert long_name not in str(caught.value)
    assert list((workspace["dest"] / NAME).iterdir()) == []


@pytest.mark.parametrize(("limits", "reason"), [
    (Limits(max_member_bytes=10_000), r"over limits\.max_member_bytes \(10,000\) for one file"),
    (Limits(max_total_bytes=20_000), r"expands past limits\.max_total_bytes \(20,000\)"),
    (Limits(max_members=3), r"more than limits\.max_members \(3\) members"),
])
def test_limits_fail_naming_the_member(limits, reason, workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    with pytest.raises(DrillFailure, match=reason) as caught:
        extract(locate(archive), workspace["dest"], limits=limits)
    assert "unsafe member 'backup_20261124_020000/" in str(caught.value)


def test_the_inflate_ratio_counts_the_whole_stream(workspace):
    """Judged on the inflated stream as it comes (headers and all), not only on declared sizes."""
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    with pytest.raises(DrillFailure, match=r"decompression bomb: .* over limits\.max_ratio \(0\.5\)") as caught:
        extract(locate(archive), workspace["dest"], limits=Limits(max_ratio=0.5, ratio_floor_bytes=1))
    assert "raise max_ratio in [limits]" in str(caught.value)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_archive_fails(keep, workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * keep)])

    with pytest.raises(DrillFailure, match=r"archive is truncated or corrupt at byte \d+") as caught:
        extract(locate(archive), workspace["dest"])
    assert "re-copy the archive" in str(caught.value)


def test_tar_cut_at_a_member_boundary_then_gzipped_fails(workspace):
    """tar killed mid-way while gzip finished cleanly: valid gzip, tar without its end marker."""
    first = tar_bytes(good_members()[:2])
    cut = first.rstrip(b"\0")  # drop the end-of-archive blocks (and the last member's padding)
    cut += b"\0" * (-len(cut) % 512)
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(gzip.compress(cut))

    with pytest.raises(DrillFailure, match="without its end-of-archive marker"):
        extract(locate(archive), workspace["dest"])


def test_flipped_byte_fails(workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DrillFailure, match="truncated or corrupt"):
        extract(locate(archive), workspace["dest"])


def test_trailing_garbage_fails(workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    with archive.open("ab") as handle:
        handle.write(b"this is not gzip")
    with pytest.raises(DrillFailure, match="truncated or corrupt"):
        extract(locate(archive), workspace["dest"])


def test_several_gzip_members_and_zero_padding_read_as_one_stream(workspace):
    """What gzip (and so ``tar -xzf``) accepts: concatenated members, zero padding after them."""
    members = [*good_members(), file_member(f"{NAME}/big.bin", os.urandom(3 * 1024 * 1024 + 123))]
    data = tar_bytes(members)
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(gzip.compress(data[:700_000]) + b"\0" * 4096 + gzip.compress(data[700_000:])
                        + b"\0" * 10_000)

    result = extract(locate(archive), workspace["dest"])

    for info, content in members:
        if content is not None:
            assert (workspace["dest"] / info.name).read_bytes() == content
    assert result.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result.size_bytes == archive.stat().st_size


@pytest.mark.parametrize("offset", [-8, -4], ids=["crc", "length"])
def test_a_wrong_gzip_trailer_fails(offset, workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    data = bytearray(archive.read_bytes())
    data[offset] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(DrillFailure, match=r"archive is truncated or corrupt at byte \d+"):
        extract(locate(archive), workspace["dest"])


def test_garbage_after_zero_padding_fails(workspace):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    with archive.open("ab") as handle:
        handle.write(b"\0" * 100 + b"junk")
    with pytest.raises(DrillFailure, match="truncated or corrupt"):
        extract(locate(archive), workspace["dest"])


def test_files_larger_than_the_read_chunks_come_out_whole(workspace):
    big = os.urandom(5 * 1024 * 1024 + 7)
    members = [*good_members(), file_member(f"{NAME}/postgresql/database.backup", big),
               file_member(f"{NAME}/after.txt", b"after the big one")]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    calls: list[tuple[int, int]] = []

    result = extract(locate(archive), workspace["dest"], progress=lambda done, total: calls.append((done, total)))

    assert (result.root / "postgresql" / "database.backup").read_bytes() == big
    assert (result.root / "after.txt").read_bytes() == b"after the big one"
    assert [done for done, _total in calls] == sorted(done for done, _total in calls)
    assert calls[0][0] > 0 and calls[-1][0] == archive.stat().st_size


def test_many_files_keep_their_data_modes_and_mtimes(workspace):
    """Files are written on writer threads: each must still come out whole, with its own mode and
    mtime, in whatever order the writers finish; a hard link after them finds its target written."""
    members = [dir_member(NAME)]
    expected: dict[str, tuple[bytes, int, int]] = {}
    for number in range(300):
        data = os.urandom(number * 37 % 9_000) if number % 7 else b""  # some empty
        info, _ = file_member(f"{NAME}/uploads/recipes/{number:03d}.jpg", data)
        info.mode = (0o755, 0o600, 0o644)[number % 3]
        info.mtime = 1_700_000_000 + number
        members.append((info, data))
        expected[info.name] = (data, info.mode, info.mtime)
    big = os.urandom(3 * 1024 * 1024 + 11)  # larger than a writer's one-piece copy
    members.append(file_member(f"{NAME}/postgresql/database.backup", big))
    link, _ = link_member(f"{NAME}/uploads/same.jpg", f"{NAME}/uploads/recipes/299.jpg", tarfile.LNKTYPE)
    link.mode, link.mtime = expected[link.linkname][1:]  # a hard link's mode and mtime are its target's
    members.append((link, None))
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)

    result = extract(locate(archive), workspace["dest"])

    for name, (data, mode, mtime) in expected.items():
        written = (workspace["dest"] / name).stat()
        assert (workspace["dest"] / name).read_bytes() == data, name
        assert (written.st_mode & 0o777, int(written.st_mtime)) == (mode, mtime), name
    assert (result.root / "postgresql" / "database.backup").read_bytes() == big
    assert (result.root / "uploads" / "same.jpg").read_bytes() == expected[f"{NAME}/uploads/recipes/299.jpg"][0]
    assert _reader_threads() == []


def test_file_modes_are_made_safe_by_tarfiles_own_rules(workspace):
    """The writers apply data_filter's mode rules (no setuid, no group/other write, owner rw)."""
    modes = (0o4777, 0o2755, 0o666, 0o444, 0o700, 0o640, 0o111)
    members = [dir_member(NAME)]
    for mode in modes:
        info, data = file_member(f"{NAME}/{mode:o}.bin", b"x")
        info.mode = mode
        members.append((info, data))
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)

    extract(locate(archive), workspace["dest"])

    for info, _ in members[1:]:
        wanted = tarfile.data_filter(info, str(workspace["dest"])).mode
        assert (workspace["dest"] / info.name).stat().st_mode & 0o7777 == wanted, oct(info.mode)


def test_the_second_layer_refuses_a_file_the_kernel_put_outside(workspace):
    """Behind the guard (which refuses any path through a link), a writer asks the kernel where
    the file it created really is; a folder swapped for a link to elsewhere is caught there."""
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    dest = workspace["dest"]
    (dest / NAME).symlink_to(workspace["outside"], target_is_directory=True)
    member, _ = file_member(f"{NAME}/planted.txt", b"")

    def unsafe(member, reason):
        return DrillFailure(f"unsafe member {member.name!r}: {reason}")

    writer = FileWriter(None, archive, Limits(), dest, lambda m: tarfile.data_filter(m, str(dest)), unsafe)
    fd = os.open(dest / member.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with pytest.raises(DrillFailure, match="not at .*planted.txt"):
            writer._second_layer(member, fd)
    finally:
        os.close(fd)
        writer.close()


def test_an_interrupt_mid_extraction_stops_every_thread_and_closes_every_file(workspace, monkeypatch):
    """Ctrl-C lands while files are being written: it propagates as it is, and the reader and
    writer threads are gone, with no file left open, when extract returns."""
    monkeypatch.setattr(archive_stream, "PROGRESS_INTERVAL_SECONDS", 0)  # a callback per chunk read
    members = [dir_member(NAME)] + [file_member(f"{NAME}/uploads/{number}.bin", os.urandom(200_000))
                                    for number in range(60)]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    fds_before = _open_fds()

    def interrupt(done: int, total: int) -> None:
        if done > total // 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(locate(archive), workspace["dest"], progress=interrupt)

    assert _reader_threads() == []
    assert _open_fds() == fds_before
    assert 0 < len(list((workspace["dest"] / NAME / "uploads").iterdir())) < 60


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _reader_threads() -> list[threading.Thread]:
    """The archive pass's own threads: the reader, gpg's feeder and the file writers."""
    return [thread for thread in threading.enumerate()
            if thread.name in ("gunzip", "gpg-feed") or thread.name.startswith("untar")]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "gpg"])
def test_an_early_failure_stops_the_reader_and_closes_the_archive(encrypted, workspace, request):
    """An unsafe member near the start, then far more data than the reader may run ahead."""
    members = [dir_member(NAME), file_member(f"{NAME}/../escape.txt", b"evil"),
               file_member(f"{NAME}/zeros.bin", bytes(64 * 1024 * 1024))]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    passphrase = None
    if encrypted:
        archive = request.getfixturevalue("encrypt")(archive, PASSPHRASE)
        passphrase = PASSPHRASE
    fds_before = _open_fds()

    with pytest.raises(DrillFailure, match="unsafe member"):
        extract(locate(archive), workspace["dest"], passphrase=passphrase)

    assert _reader_threads() == []
    assert _open_fds() == fds_before
    assert not (workspace["dest"] / NAME / "zeros.bin").exists()
    assert sorted(p.name for p in workspace["dest"].iterdir()) == [NAME]  # no gpg home left


def test_disk_full_is_a_harness_error_naming_dest(workspace, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members()
                                + [file_member(f"{NAME}/big.bin", os.urandom(200_000))])
        with pytest.raises(HarnessError, match="disk full while extracting into") as caught:
            extract(locate(archive), small)
        assert str(small) in str(caught.value)
    finally:
        subprocess.run(["umount", str(small)], check=True)


# --------------------------------------------------------------------------- encrypted archives


@pytest.fixture
def encrypt(tmp_path_factory):
    """Encrypt like an operator would, in a throwaway GNUPGHOME whose agent is stopped after."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg not installed")
    home = tmp_path_factory.mktemp("gh")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def run(source: Path, passphrase: str) -> Path:
        target = source.with_name(source.name + ".gpg")
        subprocess.run(["gpg", "--batch", "--symmetric", "--cipher-algo", "AES256", "--passphrase-fd", "0",
                        "--pinentry-mode", "loopback", "-o", str(target), str(source)],
                       input=passphrase.encode(), env=env, check=True, capture_output=True)
        source.unlink()
        return target

    yield run
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)


def test_gpg_round_trip_hashes_the_encrypted_file(workspace, encrypt):
    archive = encrypt(write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members()), PASSPHRASE)
    ref = locate(workspace["backups"])
    assert (ref.kind, ref.path) == ("tar.gz.gpg", archive)

    result = extract(ref, workspace["dest"], passphrase=PASSPHRASE)

    assert result.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result.size_bytes == archive.stat().st_size
    assert (result.root / "backup_info.txt").read_text() == BACKUP_INFO
    assert sorted(p.name for p in workspace["dest"].iterdir()) == [NAME]  # scratch gpg home removed


def test_gpg_wrong_passphrase_fails_with_gpgs_reason_and_no_secret(workspace, encrypt):
    encrypt(write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members()), PASSPHRASE)
    wrong = "not the passphrase 12345"

    with pytest.raises(DrillFailure, match="gpg could not decrypt the archive") as caught:
        extract(locate(workspace["backups"]), workspace["dest"], passphrase=wrong)

    message = str(caught.value)
    assert "Bad session key" in message or "decryption failed" in message
    assert wrong not in message and PASSPHRASE not in message
    assert not (workspace["dest"] / NAME).exists()


def test_gpg_truncated_archive_fails(workspace, encrypt):
    archive = encrypt(write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members()), PASSPHRASE)
    archive.write_bytes(archive.read_bytes()[:-2000])
    with pytest.raises(DrillFailure):
        extract(locate(workspace["backups"]), workspace["dest"], passphrase=PASSPHRASE)


def test_gpg_archive_without_passphrase_is_a_usage_error(workspace, encrypt):
    encrypt(write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members()), PASSPHRASE)
    with pytest.raises(HarnessError, match="no passphrase was given"):
        extract(locate(workspace["backups"]), workspace["dest"])


# --------------------------------------------------------------------------- extracted folders


def test_folder_backup_is_used_in_place_with_a_tree_digest(workspace, tmp_path):
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members())
    extracted = extract(locate(archive), workspace["dest"])
    copy = tmp_path / "copies" / NAME
    shutil.copytree(extracted.root, copy, symlinks=True)
    os.utime(copy / "backup_info.txt", (1, 1))

    in_place = extract(locate(copy), tmp_path / "unused")

    assert in_place.root == copy
    assert not (tmp_path / "unused").exists()
    assert in_place.sha256 == tree_digest(extracted.root)[0]
    files = [path for path in copy.rglob("*") if path.is_file() and not path.is_symlink()]
    assert in_place.bytes_extracted == sum(path.stat().st_size for path in files)
    (copy / "uploads" / "recipes" / "a.jpg").write_bytes(b"changed")
    assert extract(locate(copy), tmp_path / "unused").sha256 != in_place.sha256


def test_folder_backup_with_an_escaping_symlink_fails(tmp_path):
    folder = tmp_path / NAME
    folder.mkdir()
    (folder / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(DrillFailure, match="symlink 'passwd' points outside the backup"):
        extract(locate(folder), tmp_path / "unused")
