"""Find the newest Le Grimoire backup and unpack it safely, in one streaming pass.

Why one pass: archives run to many gigabytes, and reading one three times (hash, ``tar -tzf``,
extract) triples the drill's I/O. So the file is read once: every byte goes through a SHA-256
hasher, then (for ``.gpg``) through ``gpg --decrypt``, then through zlib-ng (checking each gzip
member's CRC and length trailer, which tarfile's own ``r|gz`` reader skips), then through
:mod:`tarfile`. Reading, hashing and inflating run on a thread of their own, beside the file
writes, as gzip runs beside ``tar -xzf``. Each member is judged *before* it is written.

Why so suspicious: a restore drill unpacks files it did not make, as root, on CI machines.
An archive must not be able to write outside the destination, plant device files or links
that escape, or fill the disk with a decompression bomb. tarfile's ``data_filter`` catches
most of this; the checks here add what it does not (absolute names are rejected rather than
re-rooted, one top folder named like the archive, duplicates, paths through symlinks,
sizes), because the Python this runs on may predate later tarfile fixes. A ``backup_*``
folder given instead of an archive is as untrusted: it is walked without following links.

One module per concern: :mod:`~grimoire_drill.archive.locate` (which backup),
:mod:`~grimoire_drill.archive.stream` (hash, inflate, the forward-only feed tarfile reads),
:mod:`~grimoire_drill.archive.gpg` (decryption), :mod:`~grimoire_drill.archive.guard` (the rules
each header and member meets), :mod:`~grimoire_drill.archive.writer` (the file writers),
:mod:`~grimoire_drill.archive.folder` (the project's one tree walker, a folder's digest),
:mod:`~grimoire_drill.archive.survey` (a look into an older backup: sizes and a few members, no unpacking),
:mod:`~grimoire_drill.archive.extraction` (the pass that wires them), and
:mod:`~grimoire_drill.archive.remote` (``s3://`` and ``sftp://`` sources, listed and streamed). Callers use the names
below, from here.
"""

from grimoire_drill.archive.extraction import extract, read_backup_info
from grimoire_drill.archive.folder import Extracted, folder_size, regular_files, tree_digest, walk_tree
from grimoire_drill.archive.locate import (BackupName, BackupRef, find_backups, locate, named_backups, parse_backup_name,
                                         series_ids)
from grimoire_drill.archive.remote import is_remote, shown_source
from grimoire_drill.archive.stream import Progress
from grimoire_drill.archive.survey import Survey, survey
from grimoire_drill.limits import Limits

__all__ = [
    "BackupName",
    "BackupRef",
    "Extracted",
    "Limits",
    "Progress",
    "extract",
    "find_backups",
    "folder_size",
    "is_remote",
    "locate",
    "named_backups",
    "parse_backup_name",
    "read_backup_info",
    "survey",
    "Survey",
    "regular_files",
    "series_ids",
    "shown_source",
    "tree_digest",
    "walk_tree",
]
