"""What every engine hands to the restore layer: plain descriptions and a way to run tools.

Engines differ in *where* a tool runs (host binary, inside a container), not in *what* the
restore does, so the restore layer builds the argv and an engine executes it.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_LABEL = "grimoire-drill.run"
RUN_ENV = "GRIMOIRE_DRILL_RUN_ID"


def new_run_id() -> str:
    """Sortable, unique per run, safe in container names, db names and paths."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(3)


def free_port() -> int:
    """A TCP port free right now on loopback (callers retry if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class EngineInfo:
    """What the report says about an engine. Never holds a secret."""

    kind: str
    version: str = "unknown"
    simulated: bool = False
    image: str | None = None
    image_id: str | None = None
    tools: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        data = {"kind": self.kind, "version": self.version, "simulated": self.simulated}
        if self.image:
            data["image"] = self.image
        if self.image_id:
            data["image_id"] = self.image_id
        if self.tools:
            data["tools"] = dict(self.tools)
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class ToolResult:
    """Outcome of a dump tool (pg_restore, mongorestore) wherever it ran."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def tool_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment for a host tool: secrets travel here, never in argv."""
    env = dict(os.environ)
    env.update(extra)
    return env


def tail(text: str, lines: int = 8) -> str:
    """Last lines of a tool's output, for one-line errors and report evidence."""
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_dir_owned(path: Path, uid: int, gid: int) -> None:
    """Hand a directory to the unprivileged server user (initdb refuses root)."""
    os.chown(path, uid, gid)
    path.chmod(0o700)
