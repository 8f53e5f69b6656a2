"""Which checks a run was narrowed to, and how many the full drill has.

Why collect everything and deselect, rather than let pytest collect only what was named: the
verdict must say "12 of 46 checks", and 46 is only known if the whole drill is collected. So
node ids and test files given as pytest arguments (``drills/test_archive.py::test_fresh``),
and ``--ignore``/``--ignore-glob``, become a selection here: the run collects the whole drill,
then deselects what they leave out, through pytest's own ``pytest_deselected`` hook, like
``-k`` and ``--deselect`` do.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pytest


ARCHIVE_ONLY_PREFIX = "archive."  # checks that read the backup's files and need no restore


def needs_engines(check_ids: Iterable[str]) -> bool:
    """True when a check of the selection reads a restored database, so the engines must start."""
    return any(not check.startswith(ARCHIVE_ONLY_PREFIX) for check in check_ids)


@dataclass(frozen=True)
class NodeSelector:
    """One narrowing argument: a file or folder, and the node names below it (maybe none)."""

    text: str
    path: Path
    names: tuple[str, ...]

    def matches(self, item: pytest.Item) -> bool:
        item_path = Path(item.path).resolve()
        if self.path.is_dir():
            if self.path != item_path and self.path not in item_path.parents:
                return False
        elif item_path != self.path:
            return False
        item_names = item.nodeid.split("::")[1:]
        if len(self.names) > len(item_names):
            return False
        for index, name in enumerate(self.names):
            candidate = item_names[index]
            last = index == len(self.names) - 1
            if candidate != name and not (last and "[" not in name and candidate.split("[")[0] == name):
                return False
        return True


@dataclass(frozen=True)
class IgnoreRule:
    """``--ignore PATH`` or ``--ignore-glob GLOB``, applied as a deselection instead of at collection."""

    text: str
    path: Path | None = None
    glob: str | None = None

    def matches(self, item: pytest.Item) -> bool:
        item_path = Path(item.path).resolve()
        if self.path is not None:
            return item_path == self.path or self.path in item_path.parents
        return self.glob is not None and fnmatch.fnmatch(str(item_path), self.glob)


def take_ignore_options(config: pytest.Config) -> list[IgnoreRule]:
    """Move --ignore/--ignore-glob out of collection (so every check is counted) into rules."""
    rules = [IgnoreRule(f"--ignore {value}", path=Path(os.path.abspath(value)).resolve())
             for value in config.getoption("ignore", default=None) or []]
    rules += [IgnoreRule(f"--ignore-glob {value}", glob=os.path.abspath(value))
              for value in config.getoption("ignore_glob", default=None) or []]
    config.option.ignore, config.option.ignore_glob = [], []
    return rules


def split_narrowing_args(args: Sequence[str], invocation_dir: Path) -> tuple[list[str], list[NodeSelector]]:
    """(what to collect, what to select): a file or node id is collected as its whole folder."""
    collect: list[str] = []
    selectors: list[NodeSelector] = []
    for arg in args:
        path_text, *names = arg.split("::")
        path = Path(path_text)
        resolved = (path if path.is_absolute() else invocation_dir / path).resolve()
        if resolved.is_dir() and not names:
            target = str(resolved)
        elif resolved.exists():
            shown = "::".join([resolved.name, *names])  # short, the same however the path was written
            selectors.append(NodeSelector(shown, resolved, tuple(names)))
            target = str(resolved if resolved.is_dir() else resolved.parent)
        else:
            target = arg  # not there: pytest says so, in its own words
        if target not in collect:
            collect.append(target)
    return collect, selectors


def selection_text(config: pytest.Config, selectors: Sequence[NodeSelector | IgnoreRule]) -> str:
    """The narrowing options of this session, as a person would type them ('' when none)."""
    parts: list[str] = [selector.text for selector in selectors]
    keyword = config.getoption("keyword", default="")
    if keyword:
        parts.append(f"-k {keyword!r}" if " " in keyword else f"-k {keyword}")
    markexpr = config.getoption("markexpr", default="")
    if markexpr:
        parts.append(f"-m {markexpr!r}" if " " in markexpr else f"-m {markexpr}")
    for prefix in config.getoption("deselect", default=None) or []:
        parts.append(f"--deselect {prefix}")
    maxfail = config.getoption("maxfail", default=0) or 0
    if maxfail:
        parts.append("-x" if maxfail == 1 else f"--maxfail {maxfail}")
    return " ".join(parts)
