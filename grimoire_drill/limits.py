"""Every ceiling a backup could make the drill spend past: one frozen value, one table.

Why one place: a backup is untrusted input, so each resource it can make us use (bytes,
members, header sizes, line lengths, nesting, time) has a named limit. The name is what a
message quotes ("over the limits.max_line_chars of 65536") and what an operator sets in the
``[limits]`` table of ``expectations.toml`` when a real backup needs more.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

GIB = 1024**3
MIB = 1024**2
KIB = 1024


@dataclass(frozen=True)
class Limits:
    """Ceilings that turn a bomb or a runaway backup into a clear failure naming the limit.

    ``max_ratio`` compares the bytes the archive declares against the size of the file on
    disk; below ``ratio_floor_bytes`` of content the ratio is not judged, so tiny archives of
    repetitive test data are not called bombs.
    """

    # archive
    max_member_bytes: int = 64 * GIB
    max_total_bytes: int = 256 * GIB
    max_ratio: float = 200.0
    max_members: int = 2_000_000
    ratio_floor_bytes: int = 1 * MIB
    max_header_bytes: int = 64 * KIB           # one GNU long-name/long-link or PAX extended header
    max_trailing_bytes: int = 16 * MIB         # inflated bytes after the tar end-of-archive
    max_pax_records: int = 256                 # PAX records in force for one member (global ones too)
    max_extended_headers: int = 8              # GNU long-name/long-link and PAX headers before one member
    max_name_bytes: int = 4096                 # one member name or link target (PATH_MAX)
    max_path_depth: int = 64                   # folders in one member name
    # text read from the backup (backup_info.txt, metadata, JSON exports)
    max_line_chars: int = 64 * KIB
    max_text_file_bytes: int = 16 * MIB        # backup_info.txt, one .metadata.json
    max_export_element_chars: int = 64 * MIB   # one element of a JSON export (a document as JSON)
    # BSON
    max_bson_depth: int = 100                  # MongoDB's own limit for stored documents
    max_document_bytes: int = 16 * MIB + 16 * KIB  # BSON's 16 MiB, plus mongodump's slack
    # what a restore may make of a dump (PostgreSQL: pg_database_size while the tool runs)
    max_restored_ratio: float = 100.0          # restored bytes / dump bytes
    restored_floor_bytes: int = 1 * GIB        # ... but never judged below this
    # what the drill keeps of a tool's output (pg_restore, psql, mongorestore), head and tail
    max_tool_output_bytes: int = 16 * MIB
    # what outputs quote
    max_quoted_chars: int = 300                # one name or value from the backup; a message holds a few
    max_evidence_chars: int = 2000             # one string in a check's evidence
    max_evidence_items: int = 200              # entries of one list or table in a check's evidence
    max_evidence_depth: int = 12               # nesting of a check's evidence
    # a series of backups (the BACKUPS folder, names only) and references between documents
    max_series_backups: int = 100_000          # backup names listed in one folder (273 years of nights)
    max_reference_examples: int = 10           # dangling references quoted per reference, the rest counted
    # --then: what is kept of the command's output, and how much schema the before/after diff compares
    then_output_tail_bytes: int = 16 * KIB
    max_schema_objects: int = 100_000          # columns, indexes or constraints compared per kind
    max_listed_changes: int = 500              # changes listed per kind; the rest are counted
    # --generations: how many drills one command runs, and how much of each drill's summary.json it reads back
    max_generations: int = 1000                # backups drilled by one --generations command (almost 3 years of nights)
    max_summary_bytes: int = 64 * MIB          # one generation's summary.json, read back for the index
    # between generations: what a drill keeps of one backup to compare the next with (history.jsonl)
    max_generation_entries: int = 10_000       # collections, tables, dump files or index names kept per kind
    history_records_read: int = 10_000         # history lines read back to find the previous generation
    # content equality (dump = restored): on a mismatch only, the keyed pass that names the first
    # differing _id / primary key holds at most this many (key, digest) pairs per side in memory
    max_keyed_documents: int = 200_000
    # off-site sources (s3://, sftp://): how much of a listing is read, how a broken transfer is retried
    max_listing_entries: int = 1_000_000       # entries read from one remote listing, backups or not
    remote_retries: int = 5                    # ranged re-reads of one object after transfer errors, in all
    remote_retry_wait_s: float = 1.0           # wait before the first re-read; doubled each time, at most 30 s
    remote_timeout_s: float = 60.0             # connect, and a read that brings nothing, before it counts as an error
    # the whole run
    run_timeout_s: float = 6 * 3600.0
    report_dir_wait_s: float = 3600.0          # a second drill on one --report-dir waits this long, then writes beside it

    def name(self, field: str) -> str:
        """How messages name a limit: ``limits.<field> (<value>)``, the key in expectations.toml."""
        return f"limits.{field} ({getattr(self, field):,})"


def limits_from_table(table: Mapping[str, Any] | None, where: str) -> Limits:
    """The ``[limits]`` table of expectations.toml over the defaults; unknown keys are refused."""
    from .errors import HarnessError

    if not table:
        return Limits()
    known = {f.name: f for f in fields(Limits)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise HarnessError(f"unknown limit {key!r} in [limits]", where=where,
                               fix=f"use one of {', '.join(sorted(known))}")
        kind = float if known[key].type in ("float", float) else int
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise HarnessError(f"limit {key} must be a positive number, not {value!r}", where=where,
                               fix="give a number greater than 0")
        values[key] = kind(value)
    return Limits(**values)
