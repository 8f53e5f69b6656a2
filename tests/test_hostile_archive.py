"""Crafted archives that try to hang, exhaust or crash the archive pass, or to pass by luck.

Each archive is built here, byte by byte where tarfile would refuse to write it. Every case
must end in a DrillFailure naming what is wrong (the member, quoted and clipped, and the limit
as ``limits.<field>``), with nothing written outside the destination. Header bombs declare
2**40 bytes: a read that trusted them would die of MemoryError long before naming a limit.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from grimoire_drill.archive import extract, find_backups, locate, regular_files, tree_digest, walk_tree
from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits
from test_defects_e2e import open_area  # noqa: F401 - the fixture: work dirs PostgreSQL's user can reach
from test_archive import (
    BACKUP_INFO,
    NAME,
    dir_member,
    encrypt,  # noqa: F401 - the fixture
    file_member,
    good_members,
    link_member,
    snapshot,
    tar_bytes,
    workspace,  # noqa: F401 - the fixture
    write_archive,
)

BLOCK = tarfile.BLOCKSIZE
END = bytes(2 * BLOCK)  # the end-of-archive marker
HUGE = 2**40


# --------------------------------------------------------------------------- raw tar pieces


def header(name: str, kind: bytes, size: int, tar_format: int = tarfile.GNU_FORMAT) -> bytes:
    """One 512-byte header declaring ``size`` bytes, whatever follows it."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, 0o644
    return info.tobuf(format=tar_format, encoding="utf-8", errors="surrogateescape")


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def pax_record(keyword: str, value: bytes) -> bytes:
    body = b" " + keyword.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _members_only(data: bytes) -> bytes:
    """The member blocks of a tar, without its end-of-archive marker and padding."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.getmembers()
        return data[: tar.offset]


def raw_archive(workspace: dict[str, Path], body: bytes, *, name: str = NAME) -> Path:
    """``<name>.tar.gz`` holding the sane start, then ``body`` (raw tar blocks), gzipped."""
    path = workspace["backups"] / f"{name}.tar.gz"
    path.write_bytes(gzip.compress(_members_only(tar_bytes(
        [dir_member(name), file_member(f"{name}/backup_info.txt", BACKUP_INFO.encode())])) + body))
    return path


def refused(workspace: dict[str, Path], archive: Path, tmp_path: Path, limits: Limits = Limits()) -> str:
    """Extract ``archive``: it must fail with a DrillFailure and write nothing outside dest; its message."""
    before = snapshot(tmp_path, exclude=workspace["dest"])
    with pytest.raises(DrillFailure) as caught:
        extract(locate(archive), workspace["dest"], limits=limits)
    assert snapshot(tmp_path, exclude=workspace["dest"]) == before
    message = str(caught.value)
    assert str(archive) in message
    assert len(message) < 1_000, message
    message.encode("utf-8")  # printable: no lone surrogates that would crash a report writer
    return message


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(("kind", "label"), [(tarfile.GNUTYPE_LONGNAME, "GNU long-name"),
                                             (tarfile.GNUTYPE_LONGLINK, "GNU long-link"),
                                             (tarfile.XHDTYPE, "PAX"), (tarfile.XGLTYPE, "PAX")],
                         ids=["L", "K", "x", "g"])
def test_a_header_declaring_a_terabyte_is_refused_before_it_is_read(kind, label, workspace, tmp_path):
    body = header("././@LongLink", kind, HUGE) + padded(b"a" * 700) + END
    archive = raw_archive(workspace, body)

    message = refused(workspace, archive, tmp_path)

    assert f"a {label} header of {HUGE:,} bytes, over limits.max_header_bytes (65,536)" in message
    assert "unsafe tar header at byte" in message and "raise max_header_bytes in [limits]" in message


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["L", "x"])
def test_a_header_declaring_a_negative_size_is_refused(kind, workspace, tmp_path):
    archive = raw_archive(workspace, header("././@LongLink", kind, -BLOCK * 4) + END)
    assert "header declaring a negative size" in refused(workspace, archive, tmp_path)


def test_a_member_declaring_a_negative_size_is_refused(workspace, tmp_path):
    negative = header(f"{NAME}/minus.bin", tarfile.REGTYPE, -(2**60))
    pax = pax_record("size", b"-512")
    via_pax = header("././@PaxHeader", tarfile.XHDTYPE, len(pax), tarfile.USTAR_FORMAT) + padded(pax) \
        + header(f"{NAME}/pax.bin", tarfile.REGTYPE, 0, tarfile.USTAR_FORMAT)
    for body, member in ((negative, "minus.bin"), (via_pax, "pax.bin")):
        shutil.rmtree(workspace["dest"])
        workspace["dest"].mkdir()
        message = refused(workspace, raw_archive(workspace, body + END), tmp_path)
        assert f"unsafe member '{NAME}/{member}': a negative size" in message


def test_a_long_name_over_the_header_limit_is_refused_naming_the_limit(workspace, tmp_path):
    """A real 1 MB GNU long name: over limits.max_header_bytes, refused before it is read."""
    name = f"{NAME}/{'n' * 1_000_000}"
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", [dir_member(NAME), file_member(name, b"x")])
    archive.write_bytes(gzip.compress(tar_bytes_gnu([dir_member(NAME), file_member(name, b"x")])))

    message = refused(workspace, archive, tmp_path)

    assert "GNU long-name header of 1,000,024 bytes, over limits.max_header_bytes (65,536)" in message


def test_a_one_megabyte_name_within_a_raised_header_limit_is_clipped_in_the_message(workspace, tmp_path):
    name = f"{NAME}/{'n' * 1_000_000}"
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes_gnu([dir_member(NAME), file_member(name, b"x")])))
    limits = Limits(max_header_bytes=2 * 1024 * 1024, max_quoted_chars=80)

    message = refused(workspace, archive, tmp_path, limits)

    assert "a name of 1,000,023 bytes, over limits.max_name_bytes (4,096)" in message
    quoted_name = message.split("unsafe member '")[1].split("'")[0]
    assert len(quoted_name) <= 80 and quoted_name.startswith(f"{NAME}/nnn") and quoted_name.endswith("…")


def tar_bytes_gnu(members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def test_a_chain_of_extended_headers_is_refused_naming_the_limit(workspace, tmp_path):
    """Thousands of global headers in a row: tarfile would recurse once per header (RecursionError)."""
    record = pax_record("comment", b"x")
    one = header("././@PaxHeader", tarfile.XGLTYPE, len(record), tarfile.USTAR_FORMAT) + padded(record)
    body = one * 5_000 + header(f"{NAME}/after.txt", tarfile.REGTYPE, 0, tarfile.USTAR_FORMAT) + END

    message = refused(workspace, raw_archive(workspace, body), tmp_path)

    assert "more than limits.max_extended_headers (8) extended headers before one member" in message


def test_too_many_pax_records_are_refused_naming_the_limit(workspace, tmp_path):
    records = b"".join(pax_record(f"LIBARCHIVE.x{number}", b"1") for number in range(300))
    body = header("././@PaxHeader", tarfile.XHDTYPE, len(records), tarfile.USTAR_FORMAT) + padded(records) \
        + header(f"{NAME}/after.txt", tarfile.REGTYPE, 0, tarfile.USTAR_FORMAT) + END
    assert "over limits.max_pax_records (256)" in refused(workspace, raw_archive(workspace, body), tmp_path)


def test_global_pax_records_add_up_to_the_limit(workspace, tmp_path):
    """Each global header stays small, but their records stay in force: they are counted together."""
    body = b""
    for group in range(4):
        records = b"".join(pax_record(f"LIBARCHIVE.g{group}.{number}", b"1") for number in range(80))
        body += header("././@PaxHeader", tarfile.XGLTYPE, len(records), tarfile.USTAR_FORMAT) + padded(records) \
            + header(f"{NAME}/f{group}.txt", tarfile.REGTYPE, 0, tarfile.USTAR_FORMAT)
    message = refused(workspace, raw_archive(workspace, body + END), tmp_path)
    assert "PAX records in force, over limits.max_pax_records (256)" in message


def test_a_pax_header_built_to_make_a_regex_backtrack_is_corrupt(workspace, tmp_path):
    """64 KiB of digits: tarfile's own parser (a regex search) spends seconds per such header here."""
    digits = b"1" * (64 * 1024 - BLOCK)
    body = header("././@PaxHeader", tarfile.XHDTYPE, len(digits), tarfile.USTAR_FORMAT) + padded(digits) + END
    assert "archive is truncated or corrupt" in refused(workspace, raw_archive(workspace, body), tmp_path)


@pytest.mark.parametrize("how", ["gnu", "pax"])
def test_sparse_members_are_refused(how, workspace, tmp_path):
    if how == "gnu":
        block = bytearray(header(f"{NAME}/sparse.bin", tarfile.GNUTYPE_SPARSE, 0))
        block[482] = 1  # "more sparse maps follow": an endless list of them
        block[148:156] = b"        "
        block[148:155] = b"%06o\0" % sum(block) + b" "[:0]
        body = bytes(block) + bytes(BLOCK) * 2 + END
    else:
        records = pax_record("GNU.sparse.major", b"1") + pax_record("GNU.sparse.minor", b"0")
        body = header("././@PaxHeader", tarfile.XHDTYPE, len(records), tarfile.USTAR_FORMAT) + padded(records) \
            + header(f"{NAME}/sparse.bin", tarfile.REGTYPE, 0, tarfile.USTAR_FORMAT) + END
    assert "sparse file" in refused(workspace, raw_archive(workspace, body), tmp_path)


# --------------------------------------------------------------------------- after the end


def _gzip_stream(*pieces: bytes | tuple[int, int]) -> bytes:
    """One gzip member of the pieces; ``(count, size)`` is ``count`` blocks of ``size`` zero bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = []
    for piece in pieces:
        if isinstance(piece, tuple):
            zeros = bytes(piece[1])
            for _ in range(piece[0]):
                out.append(compressor.compress(zeros))
        else:
            out.append(compressor.compress(piece))
    out.append(compressor.flush())
    return b"".join(out)


def test_data_after_the_tar_end_is_inflated_only_up_to_the_limit(workspace, tmp_path):
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(_gzip_stream(tar_bytes(good_members()), (8, 1024 * 1024)))
    limits = Limits(max_trailing_bytes=1024 * 1024, max_ratio=1e9)

    message = refused(workspace, archive, tmp_path, limits)

    assert "more than limits.max_trailing_bytes (1,048,576) of data after the tar end-of-archive" in message


def test_a_bomb_after_the_tar_end_counts_toward_the_inflate_ratio(workspace, tmp_path):
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(_gzip_stream(tar_bytes(good_members()), (12, 1024 * 1024)))

    message = refused(workspace, archive, tmp_path, Limits(max_trailing_bytes=1024**3))

    assert "decompression bomb: the archive inflates past" in message and "over limits.max_ratio (200.0)" in message


def test_tar_padding_after_the_end_is_fine(workspace):
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(_gzip_stream(tar_bytes(good_members()), (1, 10240)))
    assert extract(locate(archive), workspace["dest"]).members == len(good_members())


def test_gpg_output_after_a_corrupt_start_is_drained_only_up_to_the_limit(workspace, encrypt):
    """The inflater fails at once; gpg still has megabytes to say: it is stopped, the data error stands."""
    plain = workspace["backups"] / f"{NAME}.tar.gz"
    plain.write_bytes(b"not gzip at all" + os.urandom(6 * 1024 * 1024))
    archive = encrypt(plain, "pass phrase")

    with pytest.raises(DrillFailure, match="archive is truncated or corrupt"):
        extract(locate(archive), workspace["dest"], passphrase="pass phrase",
                limits=Limits(max_trailing_bytes=64 * 1024))

    assert sorted(p.name for p in workspace["dest"].iterdir()) == []  # gpg's scratch home removed


# --------------------------------------------------------------------------- names


def test_non_utf8_names_are_extracted_and_quoted_printably(workspace, tmp_path):
    odd = os.fsdecode(b"\xff\xfe caf\xe9.jpg")
    members = [dir_member(NAME), file_member(f"{NAME}/uploads/{odd}", b"img"),
               link_member(f"{NAME}/uploads/{odd}.lnk", odd)]
    archive = workspace["backups"] / f"{NAME}.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes_gnu(members)))

    result = extract(locate(archive), workspace["dest"])

    assert (result.root / "uploads" / os.fsdecode(b"\xff\xfe caf\xe9.jpg")).read_bytes() == b"img"
    assert tree_digest(result.root)[2] == 3  # uploads/, the file, the link

    members.append(link_member(f"{NAME}/uploads/{odd}.esc", "../../../outside"))
    archive.write_bytes(gzip.compress(tar_bytes_gnu(members)))
    shutil.rmtree(workspace["dest"])
    workspace["dest"].mkdir()
    message = refused(workspace, archive, tmp_path)
    assert f"unsafe member '{NAME}/uploads/\\xff\\xfe caf\\xe9.jpg.esc'" in message


def test_a_path_longer_than_the_kernel_accepts_fails_naming_the_member(workspace, tmp_path):
    deep = "/".join(["d" * 200] * 20)  # 4,019 bytes: under limits.max_name_bytes, over PATH_MAX with dest
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz",
                            [dir_member(NAME), file_member(f"{NAME}/{deep}/x.bin", b"x")])
    message = refused(workspace, archive, tmp_path, Limits(max_quoted_chars=60))
    assert "File name too long" in message and f"unsafe member '{NAME}/ddd" in message


def test_a_name_over_the_name_limit_fails_naming_the_limit(workspace, tmp_path):
    deep = "/".join(["d" * 250] * 20)
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz",
                            [dir_member(NAME), file_member(f"{NAME}/{deep}", b"x")])
    assert "over limits.max_name_bytes (4,096)" in refused(workspace, archive, tmp_path)


def test_a_name_too_many_folders_deep_fails_naming_the_limit(workspace, tmp_path):
    """2,000 one-letter folders fit in 4,096 bytes; each would be one more node to remember and create."""
    deep = "/".join(["a"] * 2_000)
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz",
                            [dir_member(NAME), file_member(f"{NAME}/{deep}", b"x")])
    assert "2,001 folders deep, over limits.max_path_depth (64)" in refused(workspace, archive, tmp_path)


def test_symlink_loops_inside_the_backup_extract_and_every_walk_ends(workspace, tmp_path):
    members = [*good_members(), link_member(f"{NAME}/uploads/a", "b"), link_member(f"{NAME}/uploads/b", "a"),
               link_member(f"{NAME}/uploads/self", "self"), link_member(f"{NAME}/uploads/top", "..")]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)

    result = extract(locate(archive), workspace["dest"])

    digest, _size, entries = tree_digest(result.root)
    assert entries == 13  # 9 of good_members (their folders included) and the 4 links
    copy = tmp_path / "copies" / NAME
    shutil.copytree(result.root, copy, symlinks=True)
    assert extract(locate(copy), tmp_path / "unused").sha256 == digest
    assert not (tmp_path / "unused").exists()


def test_the_uploads_walk_counts_files_and_links_to_them_but_never_leaves_uploads(workspace, tmp_path):
    """The one walker the drill uses for uploads/: a link to another upload is that upload; a loop, a
    dangling link, a link to a folder and a link out of uploads/ are not files, and none is entered."""
    outside = tmp_path / "not-the-backup"
    outside.mkdir()
    (outside / "marker.jpg").write_bytes(b"outside the backup")
    members = [*good_members(), file_member(f"{NAME}/uploads/deep/b.jpg", b"b"),
               link_member(f"{NAME}/uploads/a", "b"), link_member(f"{NAME}/uploads/b", "a"),
               link_member(f"{NAME}/uploads/self", "self"), link_member(f"{NAME}/uploads/top", ".."),
               link_member(f"{NAME}/uploads/here", "."), link_member(f"{NAME}/uploads/deep/back", "../deep"),
               link_member(f"{NAME}/uploads/gone.jpg", "missing.jpg"),
               link_member(f"{NAME}/uploads/info.txt", "../backup_info.txt"),
               link_member(f"{NAME}/uploads/deep/again.jpg", "../recipes/a.jpg")]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    uploads = extract(locate(archive), workspace["dest"]).root / "uploads"
    (uploads / "escape.jpg").symlink_to(outside / "marker.jpg")  # planted after the pass, as on a shared disk

    assert regular_files(uploads) == {"recipes/a.jpg", "latest.jpg", "copy.jpg", "deep/b.jpg", "deep/again.jpg"}
    walked = [rel for rel, _entry in walk_tree(uploads)]
    assert len(walked) == len(set(walked)) == 16  # every entry once: no link was entered
    assert not any(rel.startswith(("top/", "here/", "deep/back/")) for rel in walked)


# --------------------------------------------------------------------------- ambiguous layouts


LAYOUTS = {
    "second top folder": ([file_member("backup_20261123_020000/x", b"x")], "backup_20261123_020000/x",
                          "outside the single top folder"),
    "stray top-level file": ([file_member("README", b"x")], "README", "outside the single top folder"),
    "a/./b then a/b": ([file_member(f"{NAME}/a/./b", b"1"), file_member(f"{NAME}/a/b", b"2")], f"{NAME}/a/b",
                       "appears twice"),
    "./top then top": ([file_member(f"./{NAME}/c", b"1"), file_member(f"{NAME}/c", b"2")], f"{NAME}/c",
                       "appears twice"),
    "double slash": ([file_member(f"{NAME}/d", b"1"), file_member(f"{NAME}//d", b"2")], f"{NAME}//d",
                     "appears twice"),
    "folder twice, once with a slash": ([dir_member(f"{NAME}/e"), dir_member(f"{NAME}/e/")], f"{NAME}/e",
                                        "appears twice"),
    "file then folder": ([file_member(f"{NAME}/f", b"1"), dir_member(f"{NAME}/f")], f"{NAME}/f", "appears twice"),
}


@pytest.mark.parametrize("case", sorted(LAYOUTS))
def test_ambiguous_layouts_fail_naming_the_member(case, workspace, tmp_path):
    extra, member, reason = LAYOUTS[case]
    members = [dir_member(NAME), file_member(f"{NAME}/backup_info.txt", BACKUP_INFO.encode()), *extra]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    message = refused(workspace, archive, tmp_path)
    assert f"unsafe member '{member}'" in message and reason in message


def test_a_top_folder_named_for_another_backup_fails_saying_so(workspace, tmp_path):
    other = "backup_20261123_020000"
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", good_members(other))
    message = refused(workspace, archive, tmp_path)
    assert f"the archive's top folder is '{other}', not {NAME}/ as its file name says" in message


def test_a_folder_that_a_file_member_created_may_still_be_listed(workspace):
    members = [dir_member(NAME), file_member(f"{NAME}/g/h.txt", b"h"), dir_member(f"{NAME}/g")]
    archive = write_archive(workspace["backups"] / f"{NAME}.tar.gz", members)
    assert (extract(locate(archive), workspace["dest"]).root / "g" / "h.txt").read_bytes() == b"h"


# --------------------------------------------------------------------------- the newest backup decides


OLDER = "backup_20261123_020000"
NEWEST = "backup_20261124_020000"


def _newest_broken(backups: Path, how: str) -> Path:
    path = backups / f"{NEWEST}.tar.gz"
    if how == "dangling symlink":
        path.symlink_to(backups / "gone.tar.gz")
    elif how == "symlink loop":
        path.symlink_to(path.name)
    elif how == "folder named like an archive":
        path.mkdir()
        (path / "inside.txt").write_text("x")
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "zero bytes":
        path.write_bytes(b"")
    elif how == "backup folder that is a file":
        path = backups / NEWEST
        path.write_text("not a folder")
    return path


@pytest.mark.parametrize(("how", "reason"), [
    ("dangling symlink", "a dangling symlink"),
    ("symlink loop", "Too many levels of symbolic links"),
    ("folder named like an archive", "a folder named like an archive"),
    ("fifo", "not a regular file"),
    ("zero bytes", "zero bytes"),
    ("backup folder that is a file", "not a folder"),
])
def test_an_unreadable_newest_backup_fails_naming_it_instead_of_drilling_an_older_one(how, reason, workspace):
    backups = workspace["backups"]
    write_archive(backups / f"{OLDER}.tar.gz", good_members(OLDER))
    broken = _newest_broken(backups, how)

    with pytest.raises(DrillFailure) as caught:
        locate(backups)

    message = str(caught.value)
    assert f"{broken}: the newest backup cannot be drilled: " in message and reason in message, message
    assert "an older backup is never drilled in its place" in message
    assert [ref.name for ref in find_backups(backups)] == [OLDER]  # listing still works


@pytest.fixture
def reachable_folder():
    """A folder ``nobody`` can reach (pytest's tmp dirs are private to root), removed after."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="gd-test-hostile-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_an_archive_the_drill_user_cannot_read_fails_naming_it(reachable_folder):
    """Root reads anything: the check runs as ``nobody`` (setpriv) to meet the permission."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to look as an unprivileged user")
    backups = reachable_folder
    write_archive(backups / f"{OLDER}.tar.gz", good_members(OLDER))
    newest = write_archive(backups / f"{NEWEST}.tar.gz", good_members())
    newest.chmod(0)
    code = ("import sys; from grimoire_drill.archive import locate; from grimoire_drill.errors import DrillFailure\n"
            "try: locate(sys.argv[1])\nexcept DrillFailure as e: print(e); sys.exit(1)\n")
    done = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                           code, str(backups)], capture_output=True, text=True, check=False,
                          env={**os.environ, "HOME": str(backups)})
    if "ModuleNotFoundError" in done.stderr or "Permission denied: '/" in done.stderr:
        pytest.skip(f"nobody cannot run this Python: {done.stderr.strip()[-200:]}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{newest}: the newest backup cannot be drilled: cannot open the archive: Permission denied" in done.stdout


# --------------------------------------------------------------------------- any name at all


names = st.lists(st.binary(min_size=1, max_size=120), min_size=1, max_size=4).map(lambda parts: b"/".join(parts))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(raw=st.lists(st.tuples(st.sampled_from([b"", NAME.encode() + b"/", b"./" + NAME.encode() + b"/"]), names,
                              st.sampled_from(["file", "dir", "symlink"])), min_size=1, max_size=4))
def test_any_member_names_extract_inside_dest_or_fail_as_a_drill_failure(raw, tmp_path_factory):
    area = tmp_path_factory.mktemp("names")
    dest, outside = area / "dest", area / "outside"
    outside.mkdir()
    members = [dir_member(NAME)]
    for prefix, name, kind in raw:
        text = os.fsdecode(prefix + name)
        members.append(file_member(text, b"x") if kind == "file" else dir_member(text) if kind == "dir"
                       else link_member(text, os.fsdecode(name)))
    archive = area / f"{NAME}.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes_gnu(members)))
    try:
        extract(locate(archive), dest)
        event("extracted")
    except DrillFailure as failure:
        str(failure).encode("utf-8")  # printable, whatever the name
        event("refused")
    assert {p.name for p in area.iterdir()} <= {"dest", "outside", archive.name}
    assert list(outside.iterdir()) == []
    inside = os.path.realpath(dest) + os.sep
    for folder, subfolders, files in os.walk(dest):  # never follows links
        for entry in subfolders + files:
            assert os.path.realpath(os.path.join(folder, entry)).startswith(inside), entry
    shutil.rmtree(area)



# --------------------------------------------------------------------------- through the CLI


@pytest.mark.slow
def test_a_header_bomb_run_through_the_cli_fails_and_still_writes_every_output(tmp_path):
    from test_defects_e2e import drill, fresh_name

    top = fresh_name()
    archive = tmp_path / f"{top}.tar.gz"
    start = _members_only(tar_bytes([dir_member(top), file_member(f"{top}/backup_info.txt", BACKUP_INFO.encode())]))
    archive.write_bytes(gzip.compress(start + header("././@LongLink", tarfile.GNUTYPE_LONGNAME, HUGE)
                                      + padded(b"a" * 700) + END))

    result = drill(archive, tmp_path / "work")

    assert result.returncode == 1, result.output
    for output in ("summary.json", "report.html", "junit.xml", "drill.prom"):
        assert (result.report / output).is_file(), output
    message = result.checks("failed")["archive.readable"]
    assert "over limits.max_header_bytes (65,536)" in message and str(archive) in message
    assert "limits.max_header_bytes" in result.stdout and "Traceback" not in result.output
    assert list(result.temp.iterdir()) == []


@pytest.mark.slow
def test_odd_names_and_link_loops_in_uploads_pass_the_drill(sample_factory, open_area, tmp_path):
    """Every later walk (uploads count, the report) meets names that are not UTF-8 and links that loop."""
    from test_defects_e2e import drill, open_dir, repack

    def edit(root: Path) -> None:
        uploads = root / "uploads"
        (uploads / os.fsdecode(b"caf\xe9 \x1b[31m.jpg")).write_bytes(b"odd name")
        (uploads / "loop-a").symlink_to("loop-b")
        (uploads / "loop-b").symlink_to("loop-a")
        (uploads / "up").symlink_to("..")

    (tmp_path / "in").mkdir()
    archive = repack(sample_factory(), tmp_path / "in", edit)

    result = drill(archive, open_dir(open_area, "odd-names"))

    assert result.returncode == 0, result.output
    summary = result.summary()
    assert summary["outcome"] == "passed"
    (uploads,) = [c for c in summary["checks"] if c["id"] == "consistency.uploads"]
    assert uploads["status"] == "passed"
    assert (result.report / "report.html").is_file()


@pytest.mark.slow
def test_a_dangling_newest_backup_fails_the_cli_run_naming_it(sample_factory, open_area):
    """The folder also holds a good, fresh sample: it must not be drilled in the newest one's place."""
    from datetime import datetime, timezone

    from test_defects_e2e import drill, open_dir

    work = open_dir(open_area, "dangling-newest")
    backups = work / "backups"
    backups.mkdir()
    good = sample_factory()
    shutil.copy(good, backups / good.name)
    newest = backups / f"backup_{datetime.now(timezone.utc):%Y%m%d_%H%M%S}.tar.gz"
    newest.symlink_to(work / "gone" / newest.name)

    result = drill(backups, work)

    assert result.returncode == 1, result.output
    assert result.summary()["outcome"] == "failed"
    message = result.checks("failed")["archive.found"]
    assert str(newest) in message and "dangling symlink" in message
    assert good.name.removesuffix(".tar.gz") not in result.stdout
    assert list(result.temp.iterdir()) == []
