"""``grimoire-drill inspect``: what a backup holds, read from its files alone (nothing restored)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from . import archive
from .child_env import child_env
from .dump import count_bson, count_export, pg_dump_format, scan_mongodump
from .engines.local_postgres import find_client_bindir
from .errors import DrillFailure
from .limits import Limits


def pg_table_of_contents(dump: Path) -> list[str]:
    """TABLE / TABLE DATA / EXTENSION / INDEX lines of ``pg_restore -l`` (custom dumps only)."""
    bindir = find_client_bindir()
    if bindir is None:
        return ["(pg_restore not available on this machine)"]
    done = subprocess.run([str(bindir / "pg_restore"), "-l", str(dump)], capture_output=True, text=True, check=False,
                          env=child_env())
    if done.returncode != 0:
        raise DrillFailure(f"pg_restore cannot read the table of contents: {done.stderr.strip().splitlines()[-1:]}",
                           where=str(dump), fix="the dump is truncated or corrupt: re-run the backup")
    kept = ("TABLE ", "TABLE DATA", "EXTENSION", "INDEX", "SEQUENCE", "CONSTRAINT")
    return [line.split(" ", 3)[-1] for line in done.stdout.splitlines()
            if not line.startswith(";") and any(k in line for k in kept)]


def inspect_backup(target: Path, temp: Path, *, passphrase: str | None = None, limits: Limits = Limits()) -> str:
    """What ``target`` holds, read within ``limits`` (the run's ``[limits]``: a backup is untrusted here too)."""
    ref = archive.locate(target)
    extracted = archive.extract(ref, temp / "x", passphrase=passphrase, limits=limits)
    root = extracted.root
    lines = [f"backup   {ref.name}  ({ref.kind}, {ref.size_bytes:,} bytes, sha256 {extracted.sha256})",
             f"taken    {ref.taken_at.isoformat()} (from the name)"]
    for key, value in archive.read_backup_info(root, limits=limits).items():
        lines.append(f"info     {key}: {value}")
    mongo_root = root / "mongodb"
    layout = scan_mongodump(mongo_root, limits=limits) if mongo_root.is_dir() else {}
    lines.append("mongodb" + ("" if layout else "  (empty: MongoDB was down at backup time?)"))
    for db, colls in sorted(layout.items()):
        for name, dump in sorted(colls.items()):
            count = count_bson(dump.bson_path, limits=limits) if dump.bson_path else 0
            indexes = ", ".join(f"{i.name}{' (unique)' if i.unique else ''}" for i in dump.indexes)
            lines.append(f"  {db}.{name:<20} {count:>10,} docs{' (gz)' if dump.gzipped else ''}  indexes: {indexes}")
    for export in sorted(root.glob("*_export.json")):
        lines.append(f"export   {export.name}: {count_export(export, limits=limits):,} objects")
    pg = root / "postgresql"
    for name in ("database.backup", "database.sql"):
        dump = pg / name
        if dump.is_file():
            lines.append(f"postgres {name} ({pg_dump_format(dump)}, {dump.stat().st_size:,} bytes)")
            if name == "database.backup":
                lines += [f"  {entry}" for entry in pg_table_of_contents(dump)]
    uploads = root / "uploads"
    files = sorted(archive.regular_files(uploads)) if uploads.is_dir() else []  # the drill's own count
    lines.append(f"uploads  {len(files)} files, {sum((uploads / name).stat().st_size for name in files):,} bytes")
    return "\n".join(lines)
