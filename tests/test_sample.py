"""Generated sample backups are real backups: real pg_dump files, mongodump trees, decodable images.

One clean sample is generated per module and read by most tests; each defect gets its own sample
from one shared SampleWriter (one PostgreSQL cluster), and a test proves the defect is really there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import struct
import subprocess
import tarfile
import time
import tomllib
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import bson
import psycopg
import pytest
from bson import json_util
from PIL import Image

from grimoire_drill import sample
from grimoire_drill.sample import data as sample_data
from grimoire_drill.sample import photos, schema_sql
from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir
from grimoire_drill.sample import DEFECTS, SampleWriter, write_generations, write_sample

WHEN = datetime(2026, 3, 14, 2, 0, 0, tzinfo=timezone.utc)
BACKUP_ID = "20260314_020000"
EXPECTATIONS = tomllib.loads((Path(__file__).parents[1] / "drills" / "expectations.toml").read_text())
COLLECTIONS = ("recipes", "ingredients", "categories")


# --- fixtures ---------------------------------------------------------------------------------------

# Clusters live in the system temp dir: pytest's 0700 tmp dirs are closed to the postgres OS user.
@pytest.fixture(scope="module")
def writer():
    with SampleWriter() as shared:
        yield shared


@pytest.fixture(scope="module")
def clean_archive(writer, tmp_path_factory) -> Path:
    return writer.write(tmp_path_factory.mktemp("clean"), when=WHEN)


@pytest.fixture(scope="module")
def clean_tree(clean_archive, tmp_path_factory) -> Path:
    return _extract(clean_archive, tmp_path_factory.mktemp("clean-x"))


@pytest.fixture(scope="module")
def restore_pg():
    with LocalPostgres(run_id="sampletest") as pg:
        yield pg


def _extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


def _bson_docs(path: Path) -> list[dict]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return bson.decode_all(raw)


def _metadata(path: Path) -> dict:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json_util.loads(raw)


def _pg_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(find_bindir() / tool), *args], capture_output=True, text=True, check=False)


def _restore(pg: LocalPostgres, dump: Path, dbname: str):
    pg.drop_database(dbname)
    pg.create_database(dbname)
    return pg.run_tool("pg_restore", ["--no-owner", "--exit-on-error", "-d", dbname, "{dump}"], {"dump": dump})


# --- the archive --------------------------------------------------------------------------------------

def test_archive_is_named_by_when_and_has_one_top_folder(clean_archive):
    assert clean_archive.name == f"backup_{BACKUP_ID}.tar.gz"
    with tarfile.open(clean_archive, "r:gz") as tar:
        names = tar.getnames()
    assert {name.split("/", 1)[0] for name in names} == {f"backup_{BACKUP_ID}"}
    assert 120 * 1024 <= clean_archive.stat().st_size <= 400 * 1024


def _member_digests(archive: Path) -> dict[str, tuple]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: (m.mtime, m.mode, m.uid, m.uname, m.gname,
                         hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else None)
                for m in tar}


def test_gnu_tar_reads_the_archive_and_the_same_seed_gives_the_same_content(writer, clean_archive, tmp_path):
    listed = subprocess.run(["tar", "-tzf", str(clean_archive)], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert subprocess.run(["gzip", "-t", str(clean_archive)], check=False).returncode == 0
    first = _member_digests(clean_archive)
    assert sorted(listed.stdout.split()) == sorted(name + ("/" if first[name][5] is None else "") for name in first)
    again = _member_digests(writer.write(tmp_path, when=WHEN))
    # pg_dump stamps its own run into the dumps (creation time, a random \restrict key): all else is equal.
    differ = {name for name in first if first[name] != again.get(name)}
    assert again.keys() == first.keys()
    assert differ <= {f"backup_{BACKUP_ID}/postgresql/database.backup", f"backup_{BACKUP_ID}/postgresql/database.sql"}


def test_layout_is_what_backup_production_sh_writes(clean_tree):
    assert sorted(p.name for p in clean_tree.iterdir()) == [
        "backup_info.txt", "ingredients_export.json", "mongodb", "postgresql", "recipes_export.json", "uploads"]
    assert sorted(p.name for p in (clean_tree / "postgresql").iterdir()) == ["database.backup", "database.sql"]
    assert sorted(p.name for p in (clean_tree / "mongodb").iterdir()) == ["admin", "legrimoire", "prelude.json"]
    assert json.loads((clean_tree / "mongodb" / "prelude.json").read_text()).keys() == {"ServerVersion", "ToolVersion"}


def test_backup_info_matches_the_script_format(clean_tree):
    text = (clean_tree / "backup_info.txt").read_text()
    assert text.startswith("Le Grimoire - Production Backup\n================================\n\n")
    fields = dict(re.findall(r"^(Backup Date|Backup ID|Environment|Host): (.*)$", text, re.M))
    assert fields["Backup ID"] == BACKUP_ID
    assert fields["Environment"] == "production"
    assert fields["Host"]
    shown = datetime.strptime(fields["Backup Date"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc)
    assert timedelta(0) <= shown - WHEN < timedelta(minutes=5)   # taken after the dumps
    assert f"scripts/restore-backup.sh backup_{BACKUP_ID}" in text


# --- PostgreSQL -------------------------------------------------------------------------------------------

def test_pg_restore_lists_the_app_tables_and_extension(clean_tree):
    listing = _pg_tool("pg_restore", "-l", str(clean_tree / "postgresql" / "database.backup"))
    assert listing.returncode == 0, listing.stderr
    tables = set(re.findall(r"TABLE DATA public (\w+) grimoire", listing.stdout))
    assert set(EXPECTATIONS["postgresql"]["tables"]) <= tables
    assert "EXTENSION - uuid-ossp" in listing.stdout
    assert "dbname: le_grimoire" in listing.stdout


def test_plain_sql_dump_is_the_same_database(clean_tree):
    text = (clean_tree / "postgresql" / "database.sql").read_text()
    assert text.startswith("--\n-- PostgreSQL database dump")
    for table in EXPECTATIONS["postgresql"]["tables"]:
        assert f"CREATE TABLE public.{table} (" in text
    assert re.search(rf"COPY public.alembic_version \(version_num\) FROM stdin;\n{schema_sql.ALEMBIC_HEAD}\n", text)


def test_custom_dump_restores_and_mirrors_mongodb(clean_tree, restore_pg):
    done = _restore(restore_pg, clean_tree / "postgresql" / "database.backup", "clean")
    assert done.ok, done.stderr
    recipes = _bson_docs(clean_tree / "mongodb" / "legrimoire" / "recipes.bson")
    with psycopg.connect(restore_pg.conninfo("clean")) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema_sql.ALEMBIC_HEAD,)]
        assert conn.execute("SELECT count(*) FROM recipes").fetchone()[0] == len(recipes)
        assert conn.execute("SELECT code FROM grocery_stores ORDER BY code").fetchall() == [("iga",), ("metro",)]
        for table in EXPECTATIONS["postgresql"]["tables"]:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        pg_images = {row[0] for row in conn.execute("SELECT image_url FROM recipes WHERE image_url IS NOT NULL")}
    assert pg_images == {doc["image_url"] for doc in recipes if doc["image_url"]}


# --- MongoDB ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("collection", ["recipes", "ingredients"])
def test_bson_decodes_and_matches_the_json_export(clean_tree, collection):
    docs = _bson_docs(clean_tree / "mongodb" / "legrimoire" / f"{collection}.bson")
    export = json.loads((clean_tree / f"{collection}_export.json").read_text(encoding="utf-8"))
    assert len(docs) == len(export) > 0
    assert all(isinstance(doc["_id"], bson.ObjectId) for doc in docs)
    assert all("_id" not in item and "id" not in item for item in export)
    assert [doc.get("created_at").strftime("%Y-%m-%d %H:%M:%S") for doc in docs] == \
           [item["created_at"][:19] for item in export]
    as_exported = getattr(sample_data, f"{collection.removesuffix('s')}_export")
    assert (clean_tree / f"{collection}_export.json").read_text(encoding="utf-8") == \
           json.dumps([as_exported(doc) for doc in docs], indent=2, ensure_ascii=False, default=str)


def test_documents_have_the_beanie_model_shapes(clean_tree):
    app = clean_tree / "mongodb" / "legrimoire"
    ingredients = _bson_docs(app / "ingredients.bson")
    off_ids = [doc["off_id"] for doc in ingredients]
    assert len(off_ids) == len(set(off_ids))
    assert {"fr", "en"} <= ingredients[0]["names"].keys() and ingredients[0]["custom"] is False
    assert any(doc["custom"] for doc in ingredients)
    categories = _bson_docs(app / "categories.bson")
    assert len({doc["off_id"] for doc in categories}) == len(categories) > 0
    recipes = _bson_docs(app / "recipes.bson")
    for doc in recipes:
        assert isinstance(doc["title"], str) and isinstance(doc["is_public"], bool)
        assert isinstance(doc["created_at"], datetime) and doc["category"] and doc["cuisine"]
        assert doc["image_url"] is None or re.fullmatch(r"/uploads/recipes/[0-9a-f-]{36}\.(jpg|png)", doc["image_url"])


def test_metadata_has_exactly_the_init_db_indexes(clean_tree):
    expected: dict[str, set] = {name: {((("_id", 1),), False)} for name in COLLECTIONS}
    for index in EXPECTATIONS["mongodb"]["indexes"]:
        expected[index["collection"]].add((tuple(map(tuple, index["key"])), index.get("unique", False)))
    for collection in COLLECTIONS:
        path = clean_tree / "mongodb" / "legrimoire" / f"{collection}.metadata.json"
        raw = path.read_text()
        assert raw.startswith('{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}')
        meta = _metadata(path)
        assert list(meta) == ["indexes", "uuid", "collectionName", "type"]
        assert re.fullmatch(r"[0-9a-f]{32}", meta["uuid"]) and meta["collectionName"] == collection
        got = {(tuple(ix["key"].items()), ix.get("unique", False)) for ix in meta["indexes"]}
        assert got == expected[collection]
        assert all(ix["name"] == "_".join(f"{f}_{d}" for f, d in ix["key"].items()) or ix["name"] == "_id_"
                   for ix in meta["indexes"])


def test_admin_database_is_dumped_too(clean_tree):
    admin = clean_tree / "mongodb" / "admin"
    docs = _bson_docs(admin / "system.version.bson")
    assert {"_id": "featureCompatibilityVersion", "version": "7.0"} in docs
    assert _metadata(admin / "system.version.metadata.json")["collectionName"] == "system.version"


# --- uploads ---------------------------------------------------------------------------------------------

def _png_chunks_valid(payload: bytes) -> bool:
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    offset = 8
    while offset < len(payload):
        length, kind = struct.unpack(">I4s", payload[offset:offset + 8])
        body = payload[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", payload[offset + 8 + length:offset + 12 + length])
        if zlib.crc32(kind + body) != crc:
            return False
        offset += 12 + length
        if kind == b"IEND":
            return offset == len(payload)
    return False


def test_every_recipe_image_exists_and_decodes(clean_tree):
    recipes = _bson_docs(clean_tree / "mongodb" / "legrimoire" / "recipes.bson")
    urls = [doc["image_url"] for doc in recipes if doc["image_url"]]
    assert {url.rsplit(".", 1)[1] for url in urls} == {"jpg", "png"}
    for url in urls:
        payload = (clean_tree / url.removeprefix("/")).read_bytes()
        if url.endswith(".png"):
            assert _png_chunks_valid(payload)
        else:
            assert payload[:3] == b"\xff\xd8\xff" and payload[-2:] == b"\xff\xd9"
        with Image.open(clean_tree / url.removeprefix("/")) as image:
            image.verify()
    others = [p for p in (clean_tree / "uploads").rglob("*") if p.is_file() and "recipes" not in p.parts]
    assert others, "uploads no recipe references (AI extraction, wines) are part of a real backup"


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_uploads_sharing_a_pooled_picture_differ_and_both_decode(fmt):
    pool = photos.PhotoPool(0, size=1)          # one picture: every upload shows it
    first, second = pool.photo("recipe", 0, fmt), pool.photo("recipe", 1, fmt)
    assert first != second
    pixels = []
    for payload in (first, second):
        if fmt == "png":
            assert _png_chunks_valid(payload)
        else:
            assert payload[:3] == b"\xff\xd8\xff" and payload[-2:] == b"\xff\xd9"
        assert 15 * 1024 <= len(payload) <= 60 * 1024     # grain keeps them photo-sized
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            pixels.append(image.tobytes())
    assert pixels[0] == pixels[1]                    # same picture, only the comment differs


def test_upload_bytes_are_a_function_of_seed_kind_and_index():
    pool = photos.PhotoPool(3)
    asked = [(kind, index, fmt) for kind in ("recipe", "other") for index in range(70) for fmt in ("jpg", "png")]
    made = {key: pool.photo(*key) for key in asked}
    again = photos.PhotoPool(3)
    assert all(again.photo(*key) == made[key] for key in reversed(asked))
    assert len(set(made.values())) == len(asked)
    assert photos.photo_bytes(3, "other", 5, "png") == made[("other", 5, "png")]
    assert photos.photo_bytes(4, "recipe", 0, "jpg") != made[("recipe", 0, "jpg")]


# --- options ---------------------------------------------------------------------------------------------

def test_gzip_dump_and_same_seed_give_the_same_bson(writer, clean_tree, tmp_path):
    folder = writer.write(tmp_path, when=WHEN, gzip_dump=True, as_archive=False)
    assert folder.name == f"backup_{BACKUP_ID}" and folder.is_dir()
    mongo = folder / "mongodb"
    assert (mongo / "prelude.json.gz").exists() and not (mongo / "prelude.json").exists()
    for collection in COLLECTIONS:
        zipped = mongo / "legrimoire" / f"{collection}.bson.gz"
        plain = clean_tree / "mongodb" / "legrimoire" / f"{collection}.bson"
        assert gzip.decompress(zipped.read_bytes()) == plain.read_bytes()
        meta = mongo / "legrimoire" / f"{collection}.metadata.json.gz"
        assert gzip.decompress(meta.read_bytes()) == (plain.parent / f"{collection}.metadata.json").read_bytes()


def test_another_seed_gives_other_data(writer, clean_tree, tmp_path):
    folder = writer.write(tmp_path, when=WHEN, seed=7, as_archive=False)
    for collection in COLLECTIONS:
        assert (folder / "mongodb" / "legrimoire" / f"{collection}.bson").read_bytes() != \
               (clean_tree / "mongodb" / "legrimoire" / f"{collection}.bson").read_bytes()


def test_scale_multiplies_the_counts(writer, clean_tree, tmp_path):
    folder = writer.write(tmp_path, when=WHEN, scale=3, as_archive=False)
    for collection in COLLECTIONS:
        big = _bson_docs(folder / "mongodb" / "legrimoire" / f"{collection}.bson")
        small = _bson_docs(clean_tree / "mongodb" / "legrimoire" / f"{collection}.bson")
        assert len(big) == 3 * len(small)
        assert len({doc["_id"] for doc in big}) == len(big)


def test_unknown_defect_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="missing-index"):
        write_sample(tmp_path, defect="no-such-defect")
    assert list(tmp_path.iterdir()) == []


def test_archive_defects_need_an_archive(writer, tmp_path):
    with pytest.raises(ValueError, match="as_archive"):
        writer.write(tmp_path, defect="corrupt-archive", as_archive=False)


def test_naive_when_is_refused(writer, tmp_path):
    with pytest.raises(ValueError, match="timezone"):
        writer.write(tmp_path, when=datetime(2026, 1, 1))


def test_an_existing_backup_folder_is_not_overwritten(writer, tmp_path):
    (tmp_path / f"backup_{BACKUP_ID}").mkdir()
    with pytest.raises(Exception, match="already exists"):
        writer.write(tmp_path, when=WHEN, as_archive=False)
    assert [p.name for p in tmp_path.iterdir()] == [f"backup_{BACKUP_ID}"]


def test_generations_are_nightly_and_newest_first(tmp_path):
    newest = datetime(2026, 3, 14, 2, 0, tzinfo=timezone.utc)
    paths = write_generations(tmp_path, count=3, newest=newest)
    assert [p.name for p in paths] == ["backup_20260314_020000.tar.gz", "backup_20260313_020000.tar.gz",
                                       "backup_20260312_020000.tar.gz"]
    mtimes = [p.stat().st_mtime for p in paths]
    assert mtimes == sorted(mtimes, reverse=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


# --- defects: each one is really there ---------------------------------------------------------------------

def _defect_tree(writer, tmp_path, name) -> tuple[Path, Path]:
    if sample.CATALOGUE[name].series is not None:    # a defect of the folder: (the folder, no tree)
        write_generations(tmp_path / "out", count=1, newest=WHEN, defect=name)
        return tmp_path / "out", Path()
    archive = writer.write(tmp_path / "out", when=WHEN, defect=name)
    if name in {"truncated-archive", "corrupt-archive"}:
        return archive, Path()
    return archive, _extract(archive, tmp_path / "x")


def _app(tree: Path) -> Path:
    return tree / "mongodb" / "legrimoire"


def check_duplicate_off_id(archive, tree, env):
    off_ids = [doc["off_id"] for doc in _bson_docs(_app(tree) / "ingredients.bson")]
    assert len(off_ids) - len(set(off_ids)) == 1
    unique = [ix for ix in _metadata(_app(tree) / "ingredients.metadata.json")["indexes"] if ix.get("unique")]
    assert [ix["name"] for ix in unique] == ["off_id_1"]


def check_missing_index(archive, tree, env):
    names = [ix["name"] for ix in _metadata(_app(tree) / "recipes.metadata.json")["indexes"]]
    assert "created_at_-1" not in names and {"title_1", "is_public_1", "category_1", "cuisine_1"} <= set(names)


def check_extra_index(archive, tree, env):
    names = [ix["name"] for ix in _metadata(_app(tree) / "recipes.metadata.json")["indexes"]]
    assert "source_url_1" in names and "created_at_-1" in names


def check_missing_collection(archive, tree, env):
    assert sorted(p.name for p in _app(tree).iterdir()) == [
        "ingredients.bson", "ingredients.metadata.json", "recipes.bson", "recipes.metadata.json"]


def check_export_count_mismatch(archive, tree, env):
    export = json.loads((tree / "ingredients_export.json").read_text(encoding="utf-8"))
    assert len(export) == len(_bson_docs(_app(tree) / "ingredients.bson")) - 1
    recipes = json.loads((tree / "recipes_export.json").read_text(encoding="utf-8"))
    assert len(recipes) == len(_bson_docs(_app(tree) / "recipes.bson"))


def check_emptied_collection(archive, tree, env):
    assert len(_bson_docs(_app(tree) / "recipes.bson")) == 2
    assert len(_bson_docs(_app(tree) / "ingredients.bson")) >= 200        # only recipes was emptied
    assert len(json.loads((tree / "recipes_export.json").read_text(encoding="utf-8"))) == 2
    assert archive.stat().st_size >= 100 * 1024                              # still big enough for archive.size


def check_older_data(archive, tree, env):
    newest = max(doc["updated_at"] for doc in _bson_docs(_app(tree) / "recipes.bson"))
    assert newest.replace(tzinfo=timezone.utc) <= WHEN - timedelta(days=3)   # content from 3 days before
    assert f"Backup ID: {BACKUP_ID}" in (tree / "backup_info.txt").read_text()  # under the newer name


def check_content_change(archive, tree, env):
    """One exported recipe's title is not the dump's; every other field, and the counts, agree."""
    export = json.loads((tree / "recipes_export.json").read_text(encoding="utf-8"))
    docs = _bson_docs(_app(tree) / "recipes.bson")
    assert len(export) == len(docs)
    differing = [(n, key) for n, (obj, doc) in enumerate(zip(export, docs)) for key in obj
                 if obj[key] != json.loads(json.dumps(doc.get(key), default=str))]
    assert differing == [(1, "title")]


def check_truncated_bson(archive, tree, env):
    with pytest.raises(bson.errors.InvalidBSON):
        list(bson.decode_file_iter((_app(tree) / "recipes.bson").open("rb")))


def check_malformed_metadata(archive, tree, env):
    with pytest.raises(ValueError):
        json.loads((_app(tree) / "ingredients.metadata.json").read_text())


def check_empty_mongodb(archive, tree, env):
    assert list((tree / "mongodb").iterdir()) == []
    assert not (tree / "recipes_export.json").exists() and not (tree / "ingredients_export.json").exists()


def check_missing_upload(archive, tree, env):
    urls = [doc["image_url"] for doc in _bson_docs(_app(tree) / "recipes.bson") if doc["image_url"]]
    missing = [url for url in urls if not (tree / url.removeprefix("/")).exists()]
    assert len(missing) == 1


def check_stale(archive, tree, env):
    assert archive.name == "backup_20260311_020000.tar.gz"
    assert "Backup ID: 20260311_020000" in (tree / "backup_info.txt").read_text()
    assert abs(archive.stat().st_mtime - time.time()) < 600


def check_too_small(archive, tree, env):
    assert archive.stat().st_size < 100 * 1024
    assert _pg_tool("pg_restore", "-l", str(tree / "postgresql" / "database.backup")).returncode == 0
    assert _bson_docs(_app(tree) / "recipes.bson")


def check_no_backup_info(archive, tree, env):
    assert not (tree / "backup_info.txt").exists() and (tree / "postgresql" / "database.backup").exists()


def check_backup_info_mismatch(archive, tree, env):
    text = (tree / "backup_info.txt").read_text()
    assert "Backup ID: 20260313_020000" in text and BACKUP_ID not in text.split("Contents:")[0]


def check_truncated_pg_dump(archive, tree, env):
    assert _pg_tool("pg_restore", "-f", "/dev/null", str(tree / "postgresql" / "database.backup")).returncode != 0


def check_corrupt_pg_dump(archive, tree, env):
    dump = str(tree / "postgresql" / "database.backup")
    assert _pg_tool("pg_restore", "-l", dump).returncode == 0          # header and TOC still read
    failed = _pg_tool("pg_restore", "-f", "/dev/null", dump)
    assert failed.returncode != 0 and "uncompress" in failed.stderr


def check_missing_pg_dump(archive, tree, env):
    assert list((tree / "postgresql").iterdir()) == []


def check_sql_errors(archive, tree, env):
    dump = tree / "postgresql" / "database.backup"
    assert _pg_tool("pg_restore", "-l", str(dump)).returncode == 0
    done = _restore(env["pg"], dump, "sqlerrors")
    assert not done.ok and "strip_accents" in done.stderr


def check_dangling_reference(archive, tree, env):
    categories = _bson_docs(_app(tree) / "categories.bson")
    off_ids = {doc["off_id"] for doc in categories}
    dangling = [(doc["off_id"], parent) for doc in categories for parent in doc["parents"] if parent not in off_ids]
    assert dangling == [(categories[-1]["off_id"], "en:discontinued-foods")]


def check_missing_night(folder, tree, env):
    """Seven nights up to WHEN's, the fourth (three days before the newest) without a backup."""
    assert sorted(p.name for p in folder.iterdir()) == [
        f"backup_202603{day:02d}_020000.tar.gz" for day in (8, 9, 10, 12, 13, 14)]


def test_a_folder_defect_is_refused_as_one_backup(writer, tmp_path):
    with pytest.raises(ValueError, match="write_generations"):
        writer.write(tmp_path, when=WHEN, defect="missing-night")
    assert list(tmp_path.iterdir()) == []


def test_generations_can_skip_nights_but_never_the_newest(tmp_path):
    with pytest.raises(ValueError, match="skip"):
        write_generations(tmp_path, count=3, skip=(0,))
    with pytest.raises(ValueError, match="skip"):
        write_generations(tmp_path, count=3, skip=(3,))


def _read_whole(archive: Path) -> None:
    """What ``tar -tzf`` does: the whole gzip stream (CRC included), then every member."""
    with gzip.open(archive) as stream:
        while stream.read(1 << 20):
            pass
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                tar.extractfile(member).read()


def check_truncated_archive(archive, tree, env):
    with pytest.raises((EOFError, tarfile.ReadError)):
        _read_whole(archive)


def check_corrupt_archive(archive, tree, env):
    with pytest.raises((zlib.error, gzip.BadGzipFile, tarfile.ReadError, EOFError)):
        _read_whole(archive)


CHECKS = {name: globals().get("check_" + name.replace("-", "_")) for name in DEFECTS}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_is_really_there(name, writer, restore_pg, tmp_path):
    assert CHECKS[name] is not None, f"defect {name!r} has no check_{name.replace('-', '_')} in this file"
    archive, tree = _defect_tree(writer, tmp_path, name)
    CHECKS[name](archive, tree, {"pg": restore_pg})


def test_every_defect_is_described():
    assert len(DEFECTS) >= 19
    assert all(description and "\n" not in description for description in DEFECTS.values())
    assert set(sample.CATALOGUE) == set(DEFECTS)
