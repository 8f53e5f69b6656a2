"""Scratch databases on servers someone else runs: their names, and which drill made them.

Why: a drill killed with SIGKILL cannot drop its scratch database, a copy of production data
on a shared server. The next drill against that server must find it and tell whether its
owner is gone, so the name carries the run id and the database carries an owner record
(PostgreSQL: its ``COMMENT``; MongoDB: a document in ``_grimoire_drill_owner``) naming the drill
process by pid, start time and pid namespace (``base.owner_tag``) plus the kernel's boot id:
pids mean something only within one boot of one machine, and a server is shared by many.
Role names (a restore role per scratch database) are derived from ``scratch_name`` too.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import owner_tag

SCRATCH_MARK = "_drill_"
SCRATCH_NAME = re.compile(rf"^(?P<base>.+?){SCRATCH_MARK}(?P<run>[0-9]{{14}}[0-9a-f]{{6}})(?P<suffix>_[A-Za-z0-9_]+)?$")
OWNER_COLLECTION = "_grimoire_drill_owner"   # MongoDB: the owner record inside the scratch db
OWNER_DOCUMENT_ID = "owner"
COMMENT_PREFIX = "grimoire-drill owner "     # PostgreSQL: COMMENT ON DATABASE / ROLE
MAX_RECORD_CHARS = 1024                       # an owner record is ~150 characters; anything longer is not ours
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def scratch_name(base: str, run_id: str) -> str:
    """``<base>_drill_<run id>``: the one spelling of a scratch database (roles append ``_<suffix>``)."""
    return f"{base}{SCRATCH_MARK}{run_id}"


def scratch_run_id(name: str) -> str | None:
    """The run id in a name ``scratch_name`` made (or a role name derived from one); None otherwise."""
    match = SCRATCH_NAME.match(name)
    return match["run"] if match else None


def is_scratch_database(name: str) -> bool:
    """A database name exactly as ``scratch_name`` spells it (no role suffix)."""
    match = SCRATCH_NAME.match(name)
    return match is not None and match["suffix"] is None


SESSION_PREFIX = "grimoire-drill "


def session_name(run_id: str) -> str:
    """``application_name`` of the session an external engine holds open for its whole run.

    Why: CREATE DATABASE cannot share a transaction with its COMMENT, so a drill killed in
    between leaves a database without its record. The session is open from before the CREATE
    until after the DROP, so a scratch object of a run with no such session has lost its drill,
    and one with it is alive (any login sees application_name in pg_stat_activity).
    """
    return f"{SESSION_PREFIX}{run_id}"


def session_run_id(application_name: str) -> str | None:
    """The run id in a ``session_name``; None for any other application."""
    if not application_name.startswith(SESSION_PREFIX):
        return None
    run_id = application_name[len(SESSION_PREFIX):]
    return run_id if scratch_run_id(scratch_name("x", run_id)) == run_id else None


def boot_id() -> str:
    """This kernel's boot id: equal only for processes of one boot of one machine (containers included)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ScratchOwner:
    """Who made a scratch database: the drill process (``owner_tag``), its boot, its host (for messages)."""

    run_id: str
    owner: str
    boot: str
    host: str

    @classmethod
    def this_process(cls, run_id: str) -> "ScratchOwner":
        return cls(run_id=run_id, owner=owner_tag(), boot=boot_id(), host=socket.gethostname())

    def as_document(self) -> dict[str, str]:
        return {"run": self.run_id, "owner": self.owner, "boot": self.boot, "host": self.host}

    def as_comment(self) -> str:
        return COMMENT_PREFIX + json.dumps(self.as_document(), sort_keys=True)

    @classmethod
    def from_document(cls, document: Any) -> "ScratchOwner | None":
        """A record read back from a server; None when it is missing or not one of ours."""
        if not isinstance(document, dict):
            return None
        values = [document.get(key) for key in ("run", "owner", "boot", "host")]
        if not all(isinstance(value, str) and len(value) <= MAX_RECORD_CHARS for value in values):
            return None
        return cls(*values)

    @classmethod
    def from_comment(cls, comment: str | None) -> "ScratchOwner | None":
        if not comment or len(comment) > MAX_RECORD_CHARS or not comment.startswith(COMMENT_PREFIX):
            return None
        try:
            return cls.from_document(json.loads(comment[len(COMMENT_PREFIX):]))
        except ValueError:
            return None
