"""``grimoire-drill inspect``: what a backup holds, read from its files alone (nothing restored).

One ``inspect@1`` document (``schemas/inspect.schema.json``) is built, and the text a person
reads is drawn from it, so ``--json`` and the table never disagree. The backup is untrusted
here too: every read is bounded by the run's ``[limits]``, and text from it is quoted
(``text.quote``) before it reaches a terminal.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import archive
from .child_env import child_env
from .dump import count_bson, count_export, pg_dump_format, scan_mongodump
from .engines.local_postgres import find_client_bindir
from .errors import DrillFailure, HarnessError
from .limits import Limits
from .pg_source import bounded_lines, source_row_counts
from .text import quote

INSPECT_SCHEMA = "grimoire-drill/inspect@1"
PG_DUMPS = ("database.backup", "database.sql")  # the restore prefers the first (restore.postgres.pick_dump)
TOC_KINDS = ("TABLE ", "TABLE DATA", "EXTENSION", "INDEX", "SEQUENCE", "CONSTRAINT")
STDERR_TAIL_BYTES = 4096


def pg_table_of_contents(dump: Path, work: Path, limits: Limits = Limits()) -> tuple[list[str] | None, int]:
    """(TABLE / TABLE DATA / EXTENSION / INDEX … entries of ``pg_restore -l``, entries not listed).

    Custom dumps only; None when pg_restore is not on this machine. At most
    ``limits.max_evidence_items`` entries are kept and each line is read within
    ``limits.max_line_chars``: a dump's table of contents is as long as whoever made it wanted.
    """
    bindir = find_client_bindir()
    if bindir is None:
        return None, 0
    entries: list[str] = []
    more = 0
    with tempfile.TemporaryFile(dir=work) as errors:
        with subprocess.Popen([str(bindir / "pg_restore"), "-l", str(dump)], stdout=subprocess.PIPE, stderr=errors,
                              env=child_env()) as proc:
            for head, _tail in bounded_lines(proc.stdout, limits.max_line_chars):  # type: ignore[arg-type]
                line = head.decode("utf-8", "replace")
                if line.startswith(";") or not any(kind in line for kind in TOC_KINDS):
                    continue
                if len(entries) < limits.max_evidence_items:
                    entries.append(line.split(" ", 3)[-1])
                else:
                    more += 1
        if proc.returncode != 0:
            errors.seek(max(0, errors.seek(0, 2) - STDERR_TAIL_BYTES))
            said = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise DrillFailure(f"pg_restore cannot read the table of contents: {quote(said[-1]) if said else 'no reason given'}",
                               where=str(dump), fix="the dump is truncated or corrupt: re-run the backup")
    return entries, more


def inspect_document(target: Path | str, temp: Path, *, passphrase: str | None = None,
                     limits: Limits = Limits()) -> dict[str, Any]:
    """The ``inspect@1`` document of ``target`` (a path, or an ``s3://`` / ``sftp://`` URL), read within ``limits``."""
    if not archive.is_remote(target) and not target.exists() and not target.is_symlink():
        raise HarnessError("no such file or folder", where=str(target),
                           fix="grimoire-drill inspect /path/to/backup_YYYYMMDD_HHMMSS.tar.gz[.gpg] (or a backup_* folder)")
    ref = archive.locate(target, limits=limits)
    if ref.kind == "tar.gz.gpg" and passphrase is None:
        raise HarnessError("the archive is encrypted and no passphrase is set", where=ref.where,
                           fix="set GRIMOIRE_DRILL_PASSPHRASE or pass --passphrase-file FILE")
    extracted = archive.extract(ref, temp / "x", passphrase=passphrase, limits=limits)
    root = extracted.root
    return {
        "schema": INSPECT_SCHEMA,
        "backup": {"name": ref.name, "backup_id": ref.backup_id, "path": _shown_path(ref), "kind": ref.kind,
                   "size_bytes": ref.size_bytes, "sha256": extracted.sha256, "taken_at": ref.taken_at.isoformat()},
        "backup_info": dict(archive.read_backup_info(root, limits=limits)),
        "mongodb": _mongodb(root / "mongodb", limits),
        "exports": [{"file": export.name, "objects": count_export(export, limits=limits)}
                    for export in sorted(root.glob("*_export.json"))],
        "postgresql": _postgresql(root / "postgresql", temp, limits),
        "uploads": _uploads(root / "uploads"),
    }


def _shown_path(ref: archive.BackupRef) -> str:
    """Where the backup is: its absolute path, or the URL of an off-site object (without userinfo)."""
    return ref.where if ref.remote is not None else str(ref.path.resolve())


def _mongodb(mongo_root: Path, limits: Limits) -> list[dict[str, Any]]:
    layout = scan_mongodump(mongo_root, limits=limits) if mongo_root.is_dir() else {}
    return [{"database": db, "collection": name,
             "documents": count_bson(dump.bson_path, limits=limits) if dump.bson_path else 0,
             "gzipped": dump.gzipped,
             "indexes": [{"name": index.name, "unique": index.unique} for index in dump.indexes]}
            for db, collections in sorted(layout.items()) for name, dump in sorted(collections.items())]


def _postgresql(pg: Path, work: Path, limits: Limits) -> dict[str, Any]:
    """The dumps, the rows per table of the one the drill restores (its COPY blocks), and a custom dump's contents."""
    dumps = [pg / name for name in PG_DUMPS if (pg / name).is_file()]
    contents, more = (None, 0)
    if dumps and dumps[0].name == "database.backup":
        contents, more = pg_table_of_contents(dumps[0], work, limits)
    rows = source_row_counts(dumps[0], limits) if dumps else None
    return {"dumps": [{"file": dump.name, "format": pg_dump_format(dump), "size_bytes": dump.stat().st_size}
                      for dump in dumps],
            "rows_from": dumps[0].name if dumps and rows is not None else None,
            "rows": None if rows is None else dict(sorted(rows.items())),
            "contents": contents, "contents_not_listed": more}


def _uploads(uploads: Path) -> dict[str, int]:
    files = sorted(archive.regular_files(uploads)) if uploads.is_dir() else []  # the drill's own count
    return {"files": len(files), "bytes": sum((uploads / name).stat().st_size for name in files)}


def inspect_lines(document: dict[str, Any], limits: Limits = Limits()) -> list[str]:
    """What a person reads: the document as aligned lines, every name and value from the backup quoted."""
    backup = document["backup"]
    lines = [f"backup   {backup['name']}  ({backup['kind']}, {backup['size_bytes']:,} bytes, sha256 {backup['sha256']})",
             f"taken    {backup['taken_at']} (from the name)"]
    lines += [f"info     {quote(key)}: {quote(value)}" for key, value in document["backup_info"].items()]
    collections = document["mongodb"]
    lines.append("mongodb" + ("" if collections else "  (empty: MongoDB was down at backup time?)"))
    for each in collections:
        indexes = ", ".join(f"{quote(i['name'])}{' (unique)' if i['unique'] else ''}" for i in each["indexes"])
        lines.append(f"  {quote(each['database'] + '.' + each['collection']):<32} {each['documents']:>10,} docs"
                     f"{' (gz)' if each['gzipped'] else ''}  indexes: {indexes}")
    lines += [f"export   {quote(export['file'])}: {export['objects']:,} objects" for export in document["exports"]]
    pg = document["postgresql"]
    if not pg["dumps"]:
        lines.append("postgres (no dump: PostgreSQL was down or pg_dump failed at backup time?)")
    for dump in pg["dumps"]:
        lines.append(f"postgres {dump['file']} ({dump['format']}, {dump['size_bytes']:,} bytes)")
    if pg["rows"] is not None:
        lines.append(f"rows     per table of {pg['rows_from']} (its COPY blocks):")
        width = max((len(quote(table)) for table in pg["rows"]), default=0)
        lines += [f"  {quote(table):<{width}} {count:>12,}" for table, count in pg["rows"].items()]
    elif pg["dumps"]:
        lines.append("rows     (not counted: pg_restore is not available on this machine)")
    if pg["contents"] is not None:
        lines.append(f"contents of {PG_DUMPS[0]} (pg_restore -l):")
        lines += [f"  {quote(entry)}" for entry in pg["contents"]]
        if pg["contents_not_listed"]:
            lines.append(f"  … and {pg['contents_not_listed']:,} more entries ({limits.name('max_evidence_items')})")
    uploads = document["uploads"]
    lines.append(f"uploads  {uploads['files']} files, {uploads['bytes']:,} bytes")
    return lines
