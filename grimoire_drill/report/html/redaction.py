"""Secrets masked out of every string a report shows: URL passwords, ``password=…``, ``"password": …``.

Why a module of its own: the CLI, attribution and --then's output use ``redact`` too, and the
patterns must stay linear on backup content (see the comment above them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


MASK = "***"
_SECRET_WORDS = r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|credentials?"
_SECRET_KEY = re.compile(rf"(?i)({_SECRET_WORDS})")
# Text masked here comes from the backup (names, values, tool output quoting dump content), so
# every pattern is linear: possessive runs that start only where a run starts, and the secret
# word looked for inside the key in Python. (The former one-regex forms backtracked in cubic
# time: 2,000 characters of "password" took 30 s.)
# scheme://user:password@host -> scheme://user:***@host. The password runs to the last "@"
# before the path, so an unencoded "@" inside it is masked too.
_SCHEME_RUN = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z0-9+.\-]++://")
_USERINFO = re.compile(r"[^\s:/?#@]*+:(?P<secret>[^\s/?#]*)@")
# password=... in libpq conninfo, query strings and env assignments (PGPASSWORD=...).
_KEY_EQUALS = re.compile(r"(?<![A-Za-z_])[A-Za-z_]++\s*+=\s*+")
_EQUALS_SECRET = re.compile(r"'(?:[^'\\]|\\.)*+'|\"(?:[^\"\\]|\\.)*+\"|[^\s&]++")
# "password": "..." in JSON-ish text, "Password: ..." in tool output.
_KEY_COLON = re.compile(r"(?<![A-Za-z_])[\"']?+[A-Za-z_]++[\"']?+\s*+:\s*+")
_COLON_SECRET = re.compile(r"\"(?:[^\"\\]|\\.)*+\"|'(?:[^'\\]|\\.)*+'|(?!//)[^\s,;}\]]++")


def redact(text: str) -> str:
    """Mask credentials: URL userinfo passwords, ``password=…`` and ``"password": …`` values."""
    masked = _mask_url_passwords(text)
    masked = _mask_after_keys(masked, _KEY_EQUALS, _EQUALS_SECRET)
    return _mask_after_keys(masked, _KEY_COLON, _COLON_SECRET)


def _mask_url_passwords(text: str) -> str:
    """``scheme://user:secret@`` -> ``scheme://user:***@``; the scheme starts at a word boundary, with a letter."""
    out: list[str] = []
    done = 0
    for run in _SCHEME_RUN.finditer(text):
        if run.start() < done or not _has_scheme(text, run.start(), run.end() - 3):
            continue
        userinfo = _USERINFO.match(text, run.end())
        if userinfo is None:
            continue
        out += [text[done:userinfo.start("secret")], MASK]
        done = userinfo.end("secret")
    return "".join(out) + text[done:] if out else text


def _has_scheme(text: str, start: int, end: int) -> bool:
    """Some letter in ``text[start:end]`` (scheme characters) begins a word: where ``\\b[A-Za-z]`` would match."""
    for index in range(start, end):
        char = text[index]
        if char.isascii() and char.isalpha():
            before = text[index - 1] if index else ""
            if not (before.isalnum() or before == "_"):
                return True
    return False


def _mask_after_keys(text: str, key: re.Pattern, secret: re.Pattern) -> str:
    """The value after every key (matched by ``key``) whose name holds a secret word, as ``***``."""
    out: list[str] = []
    done = position = 0
    while (head := key.search(text, position)) is not None:
        position = head.end()
        if not _SECRET_KEY.search(head.group()):
            continue
        value = secret.match(text, head.end())
        if value is None:
            continue
        out += [text[done:head.end()], MASK]
        done = position = value.end()
    return "".join(out) + text[done:] if out else text


def _mask_secret_keys(value: Any) -> Any:
    """Structured masking: a value under a key named like a secret is hidden whatever it holds."""
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and _SECRET_KEY.search(key) else _mask_secret_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_secret_keys(item) for item in value]
    return value
