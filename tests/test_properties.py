"""Property-based tests: damaged input is either still valid or a DrillFailure, never anything else.

For every reader of archive/ and dump.py, arbitrary truncations and byte flips of real files
must end in accepted-and-valid data or a one-line DrillFailure: never another exception, and
never a silently shortened count.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from unittest import mock

import bson
import pytest
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.json_util import CANONICAL_JSON_OPTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grimoire_drill import dump, json_export
from grimoire_drill.archive import extract, locate
from grimoire_drill.dump import count_bson, count_export, iter_export, iter_raw_bson, pg_dump_format, scan_mongodump
from grimoire_drill.engines.base import new_run_id
from grimoire_drill.errors import DrillFailure

NAME = "backup_20261124_020000"
ANY_DATE = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)  # far dates are valid BSON
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------- strategies

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
keys = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), text,
    st.binary(max_size=20),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 1, 1)).map(lambda d: d.replace(microsecond=0)),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=8)
documents = st.lists(st.dictionaries(keys, values, max_size=5), min_size=0, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8)
json_objects = st.lists(st.dictionaries(text, json_values, max_size=4), max_size=12)


def flip(data: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(data)
    changed[position % len(changed)] ^= mask
    return bytes(changed)


def scratch() -> tempfile.TemporaryDirectory:
    """Per-example folder (hypothesis runs many examples inside one pytest test)."""
    return tempfile.TemporaryDirectory(prefix="gd-prop-")


# --------------------------------------------------------------------------- BSON


@PROPERTY_SETTINGS
@given(docs=documents, gz=st.booleans())
def test_generated_documents_are_all_counted(docs, gz):
    data = b"".join(bson.encode(doc) for doc in docs)
    with scratch() as folder:
        path = Path(folder) / ("c.bson.gz" if gz else "c.bson")
        path.write_bytes(gzip.compress(data) if gz else data)
        assert count_bson(path) == len(docs)
        assert b"".join(iter_raw_bson(path)) == data


@PROPERTY_SETTINGS
@given(docs=documents.filter(bool), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_bson_is_never_silently_short(docs, cut):
    encoded = [bson.encode(doc) for doc in docs]
    data = b"".join(encoded)
    size = int(len(data) * cut)
    boundaries = {sum(len(e) for e in encoded[:n]): n for n in range(len(encoded) + 1)}
    with scratch() as folder:
        path = Path(folder) / "c.bson"
        path.write_bytes(data[:size])
        if size in boundaries:
            assert count_bson(path) == boundaries[size]
        else:
            with pytest.raises(DrillFailure, match="truncated mid-document"):
                count_bson(path)


@PROPERTY_SETTINGS
@given(docs=documents.filter(bool), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_gzip_bson_always_fails(docs, cut):
    data = gzip.compress(b"".join(bson.encode(doc) for doc in docs))
    with scratch() as folder:
        path = Path(folder) / "c.bson.gz"
        path.write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(DrillFailure):
            count_bson(path)


@PROPERTY_SETTINGS
@given(docs=documents.filter(bool), position=st.integers(0, 2**20), mask=st.integers(1, 255), gz=st.booleans())
def test_flipped_bson_is_valid_or_a_drill_failure(docs, position, mask, gz):
    data = b"".join(bson.encode(doc) for doc in docs)
    stored = flip(gzip.compress(data) if gz else data, position, mask)
    with scratch() as folder:
        path = Path(folder) / ("c.bson.gz" if gz else "c.bson")
        path.write_bytes(stored)
        try:
            raw = list(iter_raw_bson(path))
        except DrillFailure as failure:
            assert failure.where == str(path) and failure.what
            return
        for document in raw:
            bson.decode(document, codec_options=ANY_DATE)  # whatever was accepted really is BSON
        if not gz:
            assert b"".join(raw) == stored  # every byte accounted for


# --------------------------------------------------------------------------- metadata


def metadata_bytes() -> bytes:
    metadata = {"indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"},
                            {"v": 2, "key": {"off_id": 1}, "name": "off_id_1", "unique": True},
                            {"v": 2, "key": {"names.fr": 1.0}, "name": "names.fr_1"}],
                "uuid": "0123456789abcdef0123456789abcdef", "collectionName": "ingredients", "type": "collection"}
    return json_util.dumps(metadata, json_options=CANONICAL_JSON_OPTIONS).encode()


@PROPERTY_SETTINGS
@given(position=st.integers(0, 2**16), mask=st.integers(1, 255), cut=st.integers(0, 2**16), gz=st.booleans())
def test_damaged_metadata_is_valid_or_a_drill_failure(position, mask, cut, gz):
    data = flip(metadata_bytes(), position, mask)[:cut]
    with scratch() as folder:
        db = Path(folder) / "legrimoire"
        db.mkdir()
        name = "ingredients.metadata.json" + (".gz" if gz else "")
        (db / name).write_bytes(gzip.compress(data) if gz else data)
        try:
            tree = scan_mongodump(Path(folder))
        except DrillFailure as failure:
            assert failure.where == str(db / name)
            return
        for collection in tree["legrimoire"].values():
            assert all(index.key and isinstance(index.name, str) for index in collection.indexes)


GZIP_METADATA = gzip.compress(metadata_bytes(), mtime=0)


@PROPERTY_SETTINGS
@given(cut=st.integers(0, len(GZIP_METADATA) - 1))
def test_truncated_gzip_metadata_fails(cut):
    data = GZIP_METADATA
    with scratch() as folder:
        path = Path(folder) / "x.metadata.json.gz"
        path.write_bytes(data[:cut])
        with pytest.raises(DrillFailure):
            dump.read_metadata(path)


# --------------------------------------------------------------------------- JSON exports


@PROPERTY_SETTINGS
@given(records=json_objects, indent=st.sampled_from([None, 2]), chunk=st.sampled_from([1, 7, 64, 1 << 20]))
def test_generated_exports_are_counted_whatever_the_chunk_size(records, indent, chunk):
    with scratch() as folder:
        path = Path(folder) / "recipes_export.json"
        path.write_text(json.dumps(records, indent=indent, ensure_ascii=False), encoding="utf-8")
        with mock.patch.object(json_export, "CHUNK", chunk):
            assert count_export(path) == len(records)
            assert list(iter_export(path)) == records


@PROPERTY_SETTINGS
@given(records=json_objects.filter(bool), cut=st.floats(0, 1, exclude_max=True), chunk=st.sampled_from([7, 1 << 20]))
def test_truncated_export_always_fails(records, cut, chunk):
    data = json.dumps(records, indent=2).encode()
    with scratch() as folder:
        path = Path(folder) / "recipes_export.json"
        path.write_bytes(data[: int(len(data) * cut)])
        with mock.patch.object(json_export, "CHUNK", chunk), pytest.raises(DrillFailure):
            count_export(path)


@PROPERTY_SETTINGS
@given(records=json_objects.filter(bool), position=st.integers(0, 2**16), mask=st.integers(1, 255),
       chunk=st.sampled_from([7, 1 << 20]))
def test_flipped_export_is_valid_or_a_drill_failure(records, position, mask, chunk):
    stored = flip(json.dumps(records).encode(), position, mask)
    with scratch() as folder:
        path = Path(folder) / "recipes_export.json"
        path.write_bytes(stored)
        with mock.patch.object(json_export, "CHUNK", chunk):
            try:
                counted = count_export(path)
            except DrillFailure as failure:
                assert failure.where == str(path)
                return
        assert counted == len(json.loads(stored.decode("utf-8-sig")))


# --------------------------------------------------------------------------- tar.gz archives


def backup_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("backup_info.txt", b"Backup ID: 20261124_020000\n"),
                           ("mongodb/legrimoire/recipes.bson", bson.encode({"title": "tarte"}) * 40),
                           ("uploads/recipes/crème brûlée.jpg", bytes(range(256)) * 8)]:
            info = tarfile.TarInfo(f"{NAME}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{NAME}/uploads/latest.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "recipes/crème brûlée.jpg"
        tar.addfile(link)
    return buffer.getvalue()


BACKUP_TAR = backup_tar()
# Where the end-of-archive marker (two zero blocks) starts: everything before it is members.
LAST_MEMBER = list(tarfile.open(fileobj=io.BytesIO(BACKUP_TAR)))[-1]
END_MARKER = LAST_MEMBER.offset_data + -(-LAST_MEMBER.size // 512) * 512
BACKUP_TAR_GZ = gzip.compress(BACKUP_TAR, mtime=0)


def extract_damaged(stored: bytes, *, accept_ok: bool) -> None:
    """Extract ``stored`` as an archive; it must succeed (when allowed) or fail as a DrillFailure."""
    with scratch() as folder:
        folder = Path(folder)
        archive = folder / f"{NAME}.tar.gz"
        archive.write_bytes(stored)
        before = sorted(os.listdir(folder))
        try:
            result = extract(locate(archive), folder / "dest")
        except DrillFailure as failure:
            assert failure.what
        else:
            assert accept_ok, "a damaged archive was accepted"
            assert result.root == folder / "dest" / NAME
        assert sorted(set(os.listdir(folder)) - {"dest"}) == before  # nothing written beside dest


@PROPERTY_SETTINGS
@given(cut=st.integers(0, len(BACKUP_TAR_GZ) - 1))
def test_truncated_tar_gz_always_fails(cut):
    extract_damaged(BACKUP_TAR_GZ[:cut], accept_ok=False)


@PROPERTY_SETTINGS
@given(position=st.integers(0, len(BACKUP_TAR_GZ) - 1), mask=st.integers(1, 255))
def test_flipped_tar_gz_is_valid_or_a_drill_failure(position, mask):
    # Flips in the gzip header's mtime/flags/OS bytes can leave a valid archive.
    extract_damaged(flip(BACKUP_TAR_GZ, position, mask), accept_ok=True)


@PROPERTY_SETTINGS
@given(position=st.integers(0, len(BACKUP_TAR) - 1), mask=st.integers(1, 255))
def test_flipped_tar_inside_valid_gzip_is_valid_or_a_drill_failure(position, mask):
    extract_damaged(gzip.compress(flip(BACKUP_TAR, position, mask)), accept_ok=True)


@PROPERTY_SETTINGS
@given(cut=st.integers(0, END_MARKER + 1024 - 1))
def test_tar_cut_short_inside_valid_gzip_always_fails(cut):
    """The tar stream stops before its end-of-archive marker; the gzip around it is fine."""
    extract_damaged(gzip.compress(BACKUP_TAR[:cut]), accept_ok=False)


# --------------------------------------------------------------------------- PostgreSQL custom dump header


@pytest.fixture(scope="module")
def custom_dump_head(tmp_path_factory) -> bytes:
    """The first 4 KiB of a real ``pg_dump -F c -b`` archive."""
    from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir

    if find_bindir() is None:
        pytest.skip("PostgreSQL binaries not installed")
    out = tmp_path_factory.mktemp("pgdump")
    out.chmod(0o777)
    target = out / "database.backup"
    with LocalPostgres(run_id=new_run_id()) as pg:
        pg.create_database("le_grimoire")
        done = pg.run_tool("pg_dump", ["-F", "c", "-b", "-f", "{out}", "le_grimoire"], {"out": target})
        assert done.returncode == 0, done.stderr
    return target.read_bytes()[:4096]


@PROPERTY_SETTINGS
@given(position=st.integers(0, 63), mask=st.integers(1, 255), cut=st.integers(0, 4096))
def test_damaged_custom_dump_header_is_recognised_or_a_drill_failure(custom_dump_head, position, mask, cut):
    stored = flip(custom_dump_head, position, mask)[:cut]
    with scratch() as folder:
        path = Path(folder) / "database.backup"
        path.write_bytes(stored)
        try:
            kind = pg_dump_format(path)
        except DrillFailure as failure:
            assert failure.where == str(path)
            return
        assert kind in ("custom", "plain")
        if position >= 11 and cut >= 11:
            assert kind == "custom"  # damage past the fixed header is pg_restore's business
