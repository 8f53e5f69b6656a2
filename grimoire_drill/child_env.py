"""The environment of every process the drill starts: an allow-list, never a copy of ours.

Why: the drill's own environment holds what it was given to reach production-like places (the
GPG passphrase, DSNs, cloud and CI tokens), and a database server restoring an attacker-shaped
backup can read its own environment (``/proc/self/environ``, ``COPY ... FROM PROGRAM`` in a
hostile dump if a sandbox fails). So a child gets the few variables that make a program run
the same (PATH, locale, time zone, temp dir) plus the extras its caller names for it, such as
the run tags the janitor uses to find strays (``engines.base.run_env``). A deny-list would miss
the next secret someone exports; an allow-list cannot.
"""

from __future__ import annotations

import functools
import os
from typing import Mapping

# What any program needs to behave as it does in our shell, and nothing that grants access.
PASSED_THROUGH = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR")
# POSIX and glibc locale categories, by name: "LC_*" as a pattern would pass LC_ANYTHING through.
LOCALE_CATEGORIES = ("LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_MONETARY", "LC_NUMERIC",
                     "LC_TIME", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT", "LC_NAME",
                     "LC_PAPER", "LC_TELEPHONE")
HOME = "HOME"


def child_env(extra: Mapping[str, str] | None = None, *, home: bool = False,
              environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process: the allow-listed part of ours, then ``extra`` on top.

    ``home``: also pass HOME, for a client that must find the caller's own files the way our
    in-process connection does (``~/.pgpass``, ``~/.pg_service.conf`` of an external server).
    ``environ`` is the environment to pick from (ours by default).
    """
    source = os.environ if environ is None else environ
    names = PASSED_THROUGH + LOCALE_CATEGORIES + ((HOME,) if home else ())
    env = {name: source[name] for name in names if name in source}
    env.update(extra or {})
    return env


def settle_platform_probe() -> None:
    """Ask ``platform`` for the processor name now, with ``uname -p`` run through ``child_env``.

    Why: the standard library answers that question by running ``uname -p`` with our whole
    environment, and pytest-metadata (under pytest-html) asks it in every drill session. The
    answer is cached on the ``platform.uname()`` result (a cached property), so once it is
    there nobody spawns uname again. A Python that caches it differently is left alone.
    """
    import platform
    import subprocess

    result = platform.uname()
    cached = getattr(result, "__dict__", None)
    if cached is None or "processor" in cached or not isinstance(getattr(type(result), "processor", None),
                                                                 functools.cached_property):
        return
    try:
        done = subprocess.run(["uname", "-p"], capture_output=True, text=True, check=False, env=child_env())
        answer = done.stdout.strip() if done.returncode == 0 else ""
    except OSError:
        answer = ""
    cached["processor"] = "" if answer == "unknown" else answer
