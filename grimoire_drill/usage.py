"""How the CLI talks to a person who typed something wrong: one line, exit 2, what to type instead.

Why its own module: argparse's default prints a usage block and an error, a traceback reaches
the terminal for anything it did not foresee, and ``--help`` hid the choices behind metavars.
The operator at 3 a.m. needs one line that says what is wrong and what to type; the parser
class, the epilogs and the one-line rendering of an unexpected error live here, so ``cli.py``
only wires commands.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from .exit_codes import EXIT_HARNESS, EXIT_MEANINGS
from .text import clip


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, naming the --help to read; exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_HARNESS, f"{self.prog}: {message} — see: {self.prog} --help\n")


def exit_codes_epilog() -> str:
    """The exit codes, as the top parser's and ``run``'s --help end with them."""
    width = max(len(str(code)) for code, _ in EXIT_MEANINGS)
    return "exit codes:\n" + "\n".join(f"  {code:<{width}}  {meaning}" for code, meaning in EXIT_MEANINGS)


def choices_epilog(title: str, described: dict[str, str]) -> str:
    """``title:`` then one ``name  description`` line per choice (the defects of ``sample``)."""
    width = max(len(name) for name in described)
    return f"{title}:\n" + "\n".join(f"  {name:<{width}}  {text}" for name, text in described.items())


def with_choices(help_text: str, choices: Sequence[str] | None) -> str:
    """The help of an option followed by its choices, which a metavar would otherwise hide."""
    return help_text if not choices else f"{help_text} (one of: {', '.join(choices)})"


def unexpected_error_line(error: BaseException) -> str:
    """An error nobody foresaw, as one line: its type, its first line, and how to see the traceback."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    detail = f"{type(error).__name__}: {clip(first, 200)}" if first else type(error).__name__
    return f"unexpected error: {detail} — fix: re-run with -v for the traceback, and report it"


def os_error_line(error: OSError) -> str:
    """A file-system error (a folder that is a file, no permission, disk full) as one line naming the path."""
    where = f"{error.filename}: " if error.filename else ""
    reason = error.strerror or str(error)
    return f"{where}{reason} — fix: check the path, its permissions and the free space"


def say_error(line: str) -> None:
    print(f"grimoire-drill: {line}", file=sys.stderr)
