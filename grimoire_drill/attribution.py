"""Who ran the drill, how, and with what: the summary's ``attribution`` object.

Audit evidence must say which build of the harness produced it and on whose behalf, not only
what it found: host, OS user, the command line (secrets masked), the tool's version and build
(git commit and dirty flag from a checkout, else the installed distribution's RECORD hash),
Python and the libraries that shape a verdict, and the servers' versions and image ids.
Collected here, before the report layer, which only renders the plain values.
"""

from __future__ import annotations

import hashlib
import os
import platform
import pwd
import shlex
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import __version__
from .archive.remote import is_remote, shown_source
from .child_env import child_env
from .config import OPTIONS
from .report.html_parts import MASK, redact

DISTRIBUTION = "grimoire-drill"
LIBRARIES = ("pytest", "pytest-html", "psycopg", "pymongo", "mongomock", "testcontainers")
GIT_TIMEOUT_S = 10
SECRET_FLAGS = tuple(sorted({o.cli for o in OPTIONS if o.secret} | {"--drill-" + o.cli[2:] for o in OPTIONS if o.secret}))


def collect(argv: Sequence[str], program: str = "grimoire-drill") -> dict[str, Any]:
    """The attribution of a run started with ``argv`` (without the program name)."""
    return {
        "host": socket.gethostname(),
        "user": os_user(),
        "command_line": " ".join(_shell_word(arg) for arg in [program, *redact_argv(argv)]),
        "tool": {"name": DISTRIBUTION, "version": __version__, "build": build_identity()},
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def with_servers(attribution: Mapping[str, Any], engines: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``attribution`` plus each engine's kind, version and image id, as the run found them."""
    keep = ("kind", "version", "image", "image_id", "simulated")
    return {**attribution, "servers": {db: {k: e[k] for k in keep if k in e} for db, e in engines.items()}}


def os_user() -> str:
    """The effective user's name from the password database (not $USER, which anyone can set)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Arguments with secret options' values masked (``--postgres-dsn VALUE`` -> ``--postgres-dsn ***``,
    argparse abbreviations included) and credentials inside any other argument masked by ``redact``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        flag, eq, _value = arg.partition("=")
        if len(flag) > 2 and flag.startswith("--") and any(s.startswith(flag) for s in SECRET_FLAGS):
            out.append(f"{flag}={MASK}" if eq else flag)
            hide_next = not eq
            continue
        out.append(redact(shown_source(arg)) if is_remote(arg) else redact(arg))  # s3://, sftp://: no userinfo
    return out


def _shell_word(arg: str) -> str:
    """``shlex.quote``, leaving the mask bare so the line reads ``--postgres-dsn ***``."""
    placeholder = "GRIMOIREDRILLMASK"
    return shlex.quote(arg.replace(MASK, placeholder)).replace(placeholder, MASK)


def build_identity() -> dict[str, Any]:
    """What identifies this build: the checkout's commit (and dirty flag), else the wheel's RECORD hash."""
    package_dir = Path(__file__).resolve().parent
    checkout = _git_checkout(package_dir)
    if checkout is not None:
        return checkout
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return {"source": "unknown"}
    record = dist.read_text("RECORD")
    return {"source": "distribution", "version": dist.version,
            "record_sha256": hashlib.sha256(record.encode()).hexdigest() if record else None}


def _git_checkout(package_dir: Path) -> dict[str, Any] | None:
    """Commit and dirty flag when the package's own files are tracked by a git checkout, else None."""
    git = shutil.which("git")
    if git is None:
        return None
    env = child_env({"LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}, home=True)  # HOME: the user's git config

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run([git, "-C", str(package_dir), *args], env=env, capture_output=True, text=True,
                                  timeout=GIT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    # tracked, not merely inside some repository (a venv's site-packages below a project checkout)
    if run("ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None
    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    if commit is None or status is None:
        return None
    return {"source": "git", "commit": commit.strip(), "dirty": bool(status.strip())}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
