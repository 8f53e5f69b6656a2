"""Named defects: small edits of the backup process, so every check can be shown to fail for the right reason.

Each is a plan (what to generate differently), an edit of the ``backup_<id>/`` tree before packing,
or an edit of the packed ``.tar.gz``: a backup that is wrong in exactly one way.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from .job import MONGO_DB, Plan
from .mongodump import drop_last_json_array_element


@dataclass(frozen=True)
class Series:
    """A defect of the folder, not of one backup: ``nights`` nightly backups, without the ``skip``ped ones.

    Night 0 is the newest; ``grimoire-drill sample --defect`` writes the series into the folder.
    """

    nights: int
    skip: tuple[int, ...] = ()


@dataclass(frozen=True)
class Defect:
    description: str
    plan: Plan = field(default_factory=Plan)
    tree: Callable[[Path], None] | None = None       # applied to backup_<id>/ before packing
    archive: Callable[[Path], None] | None = None    # applied to the .tar.gz after packing
    series: Series | None = None                     # a nightly series with nights missing (see write_generations)


def _dump_file(root: Path, db: str, name: str) -> Path:
    """A file of the mongodump tree, with or without mongodump --gzip's .gz."""
    plain = root / "mongodb" / db / name
    zipped = plain.with_name(plain.name + ".gz")
    return zipped if zipped.exists() else plain


def _read_maybe_gz(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _write_maybe_gz(path: Path, payload: bytes) -> None:
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)


def _edit_indexes(root: Path, collection: str, edit: Callable[[list], list]) -> None:
    path = _dump_file(root, MONGO_DB, f"{collection}.metadata.json")
    meta = json.loads(_read_maybe_gz(path))
    meta["indexes"] = edit(meta["indexes"])
    _write_maybe_gz(path, json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode())


def _drop_created_at_index(root: Path) -> None:
    _edit_indexes(root, "recipes", lambda indexes: [ix for ix in indexes if ix["name"] != "created_at_-1"])


def _add_unexpected_index(root: Path) -> None:
    extra = {"v": {"$numberInt": "2"}, "key": {"source_url": {"$numberInt": "1"}}, "name": "source_url_1",
             "background": True}
    _edit_indexes(root, "recipes", lambda indexes: indexes + [extra])


def _remove_categories(root: Path) -> None:
    for name in ("categories.bson", "categories.metadata.json"):
        _dump_file(root, MONGO_DB, name).unlink()


def _drop_last_export_element(root: Path) -> None:
    drop_last_json_array_element(root / "ingredients_export.json")


CHANGED_RECIPE = 1   # the export object (and recipes.bson document) content-change alters: the second


def _change_exported_title(root: Path) -> None:
    """One recipe's title differs between recipes_export.json and recipes.bson; counts stay equal."""
    path = root / "recipes_export.json"
    recipes = json.loads(path.read_text(encoding="utf-8"))
    recipes[CHANGED_RECIPE]["title"] += " (modifiée)"
    path.write_text(json.dumps(recipes, indent=2, ensure_ascii=False), encoding="utf-8")


def _truncate_recipes_bson(root: Path) -> None:
    path = _dump_file(root, MONGO_DB, "recipes.bson")
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(max(size - max(size // 10, 100), 1))


def _break_ingredients_metadata(root: Path) -> None:
    path = _dump_file(root, MONGO_DB, "ingredients.metadata.json")
    text = _read_maybe_gz(path)
    _write_maybe_gz(path, text[: len(text) // 2])


def _empty_mongodb(root: Path) -> None:
    """backup-production.sh with the MongoDB container down: empty mongodb/, no JSON exports."""
    for child in (root / "mongodb").iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for name in ("recipes_export.json", "ingredients_export.json"):
        (root / name).unlink()


def _remove_one_upload(root: Path) -> None:
    first = sorted((root / "uploads" / "recipes").iterdir())[0]
    first.unlink()


def _remove_backup_info(root: Path) -> None:
    (root / "backup_info.txt").unlink()


def _shift_backup_info(root: Path) -> None:
    """backup_info.txt of another night's backup (internally consistent, wrong for this folder)."""
    path = root / "backup_info.txt"
    backup_id = root.name.removeprefix("backup_")
    other = datetime.strptime(backup_id, "%Y%m%d_%H%M%S") - timedelta(days=1)
    lines = []
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("Backup ID: "):
            line = f"Backup ID: {other:%Y%m%d_%H%M%S}\n"
        elif line.startswith("Backup Date: "):
            shown = datetime.strptime(line.split(": ", 1)[1].strip(), "%Y-%m-%d %H:%M:%S %Z")
            line = f"Backup Date: {shown - timedelta(days=1):%Y-%m-%d %H:%M:%S} UTC\n"
        lines.append(line)
    path.write_text("".join(lines))


def _truncate_pg_dump(root: Path) -> None:
    path = root / "postgresql" / "database.backup"
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size * 6 // 10)


def _corrupt_pg_dump(root: Path) -> None:
    """Garble the table data near the end; the header and TOC at the front still read fine."""
    _overwrite_at(root / "postgresql" / "database.backup", 0.8, 512)


def _remove_pg_dumps(root: Path) -> None:
    """The PostgreSQL container was down: backup-production.sh leaves postgresql/ empty."""
    for name in ("database.backup", "database.sql"):
        (root / "postgresql" / name).unlink()


def _truncate_archive(archive: Path) -> None:
    with archive.open("r+b") as handle:
        handle.truncate(archive.stat().st_size * 85 // 100)


def _corrupt_archive(archive: Path) -> None:
    """Garble the deflate stream early, where the dumps are (the photos later are nearly stored)."""
    _overwrite_at(archive, 0.05, 4096)


def _overwrite_at(path: Path, where: float, length: int) -> None:
    """Flip the bits of ``length`` bytes at fraction ``where`` of a file (what a bad disk sector does)."""
    size = path.stat().st_size
    start = max(int(size * where) - length // 2, 0)
    with path.open("r+b") as handle:
        handle.seek(start)
        original = handle.read(length)
        handle.seek(start)
        handle.write(bytes((byte ^ 0xA5) for byte in original))


CATALOGUE: dict[str, Defect] = {
    "duplicate-off-id": Defect("two ingredients share an off_id although the unique off_id_1 index is in the metadata",
                                plan=Plan(duplicate_off_id=True)),
    "missing-index": Defect("recipes' created_at_-1 index is absent from recipes.metadata.json",
                             tree=_drop_created_at_index),
    "extra-index": Defect("recipes.metadata.json has an index (source_url_1) init-db.sh never creates",
                           tree=_add_unexpected_index),
    "missing-collection": Defect("legrimoire/categories.bson and its metadata are absent", tree=_remove_categories),
    "export-count-mismatch": Defect("ingredients_export.json has one element fewer than ingredients.bson",
                                     tree=_drop_last_export_element),
    "content-change": Defect("one recipe's title in recipes_export.json differs from recipes.bson (counts equal)",
                              tree=_change_exported_title),
    "truncated-bson": Defect("recipes.bson is cut off in the middle of a document", tree=_truncate_recipes_bson),
    "malformed-metadata": Defect("ingredients.metadata.json is not valid JSON (cut in half)",
                                  tree=_break_ingredients_metadata),
    "empty-mongodb": Defect("mongodb/ is empty and the JSON exports are missing (MongoDB container was down)",
                             tree=_empty_mongodb),
    "missing-upload": Defect("a recipe's image_url points to a file missing from uploads/recipes/",
                              tree=_remove_one_upload),
    "stale": Defect("name and backup_info are 3 days old while the file's mtime is now",
                     plan=Plan(age=timedelta(days=3))),
    "too-small": Defect("a structurally valid backup under 100 KB (almost no data, no uploads)",
                         plan=Plan(tiny=True)),
    "no-backup-info": Defect("backup_info.txt is missing", tree=_remove_backup_info),
    "backup-info-mismatch": Defect("backup_info.txt's Backup ID and Date are another night's",
                                    tree=_shift_backup_info),
    "truncated-pg-dump": Defect("postgresql/database.backup is cut off at 60 %", tree=_truncate_pg_dump),
    "corrupt-pg-dump": Defect("postgresql/database.backup has garbled bytes in its data", tree=_corrupt_pg_dump),
    "missing-pg-dump": Defect("postgresql/ is empty (PostgreSQL container was down)", tree=_remove_pg_dumps),
    "sql-errors": Defect("the PostgreSQL dump fails to restore: an index calls a function that needs search_path",
                          plan=Plan(search_path_trap=True)),
    "dangling-reference": Defect("a category's parent off_id (en:discontinued-foods) names no category",
                                  plan=Plan(dangling_parent=True)),
    "missing-night": Defect("a folder of 7 nightly backups where the fourth night (3 days before the newest) "
                             "has none", series=Series(nights=7, skip=(3,))),
    "emptied-collection": Defect("recipes keeps 2 documents (PostgreSQL 2 rows, their photos): valid, only the "
                                 "comparison with the previous generation catches it", plan=Plan(recipes=2)),
    "older-data": Defect("the databases' content is from 3 days before the backup's name (an old dump copied "
                         "under a new name): valid, only freshness catches it", plan=Plan(data_age=timedelta(days=3))),
    "truncated-archive": Defect("the .tar.gz is cut off (85 % of its bytes)", archive=_truncate_archive),
    "corrupt-archive": Defect("the .tar.gz has garbled bytes in the middle", archive=_corrupt_archive),
}

DEFECTS: dict[str, str] = {name: defect.description for name, defect in CATALOGUE.items()}


def find_defect(name: str | None) -> Defect | None:
    if name is None:
        return None
    if name not in CATALOGUE:
        raise ValueError(f"unknown defect {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    return CATALOGUE[name]
