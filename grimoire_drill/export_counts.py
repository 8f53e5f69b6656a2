"""Count the JSON exports in a child process while the databases restore.

Why a process: parsing hundreds of megabytes of JSON is pure-Python work, and on a thread it
would hold the GIL the in-process MongoDB loader needs. Exports smaller than ``SMALL_BYTES`` in
total are counted in place when asked: starting an interpreter costs more than it saves.

The child is ``python -m grimoire_drill.export_counts [--max-export-element-chars N] FILE...``
(the run's own limit, so both sides judge a file alike). It prints one JSON line per file,
``{"file", "count"}`` or ``{"file", "what", "where", "fix"}`` (the DrillFailure it raised, or
any other exception the file's content caused, as a failure of that file), and carries the
run's tags in its environment so a janitor can tell whose it is; nothing else of the drill's
environment (``child_env``): it parses backup content.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from .child_env import child_env
from .engines.base import run_env
from .errors import DrillFailure
from .export_content import ExportComparison, as_result, count_and_compare, from_result
from .json_export import count_export
from .limits import Limits
from .text import quote

T = TypeVar("T")

SMALL_BYTES = 16 * 1024 * 1024
LIMIT_FLAG = "--max-export-element-chars"
LIMITS_FLAG = "--limits"       # the run's whole Limits as JSON (the content comparison reads BSON too)
DUMPS_FLAG = "--compare-with"  # JSON {export: [its collection's .bson, collection]}
FIX_EXPORT = "re-run the JSON export (mongoexport --jsonArray), or re-copy the archive"


def _python_path() -> dict[str, str]:
    """PYTHONPATH for the child: this package's parent first (a checkout run without installing
    still finds ``grimoire_drill``), then the caller's own entries (where its dependencies are)."""
    entries = [str(Path(__file__).resolve().parent.parent)]
    entries += [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(entries))}


class ExportCounts:
    """Export counts, started early and read later; ``close()`` always ends the child."""

    def __init__(self, paths: list[Path], run_id: str, background_from_bytes: int = SMALL_BYTES,
                 limits: Limits | None = None, dumps: dict[Path, tuple[Path, str]] | None = None):
        self._paths = [path for path in paths if path.is_file()]
        # export -> (its collection's .bson, the collection): compared with it in the same parse
        self._dumps = {str(export): (str(bson), name) for export, (bson, name) in (dumps or {}).items()}
        self._run_id = run_id
        self._limits = Limits() if limits is None else limits
        self._background_from_bytes = background_from_bytes
        self._child: subprocess.Popen | None = None
        self._results: dict[str, dict] | None = None

    def start(self) -> "ExportCounts":
        """Start counting in the background when the exports are big enough to be worth it."""
        if self._paths and sum(path.stat().st_size for path in self._paths) >= self._background_from_bytes:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "grimoire_drill.export_counts",
                 f"{LIMIT_FLAG}={self._limits.max_export_element_chars}",
                 f"{LIMITS_FLAG}={json.dumps(asdict(self._limits))}", f"{DUMPS_FLAG}={json.dumps(self._dumps)}",
                 *map(str, self._paths)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=child_env({**run_env(self._run_id), **_python_path()}))
        return self

    def count(self, path: Path) -> int:
        """Objects in the export at ``path``: the child's answer when it counted it, else counted here."""
        result = self._child_results().get(str(path))
        if result is None:
            return count_in_place(path, self._limits)
        if "count" in result:
            return int(result["count"])
        raise DrillFailure(result["what"], where=result["where"], fix=result["fix"])

    def content(self, path: Path) -> ExportComparison | None:
        """The export at ``path`` against its collection's dump: the child's answer, else compared here."""
        if str(path) not in self._dumps:
            return None
        result = self._child_results().get(str(path))
        if result is None:
            bson_path, collection = self._dumps[str(path)]
            return compare_in_place(path, Path(bson_path), collection, self._limits)[1]
        if "content" in result:
            return from_result(result["content"])
        failure = result.get("content_error", result)
        raise DrillFailure(failure["what"], where=failure["where"], fix=failure["fix"])

    def _child_results(self) -> dict[str, dict]:
        if self._results is None:
            self._results = {}
            if self._child is not None:
                stdout, _stderr = self._child.communicate()
                if self._child.returncode == 0:  # anything else (killed, crashed): count in place instead
                    for line in stdout.splitlines():
                        result = json.loads(line)
                        self._results[result["file"]] = result
        return self._results

    @property
    def in_background(self) -> bool:
        return self._child is not None

    def close(self) -> None:
        """End the child if it still runs (interrupt or early failure); safe to call twice."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.communicate()


def count_in_place(path: Path, limits: Limits) -> int:
    """``count_export``, with any exception the content causes made a DrillFailure naming the file."""
    return _failing_the_file(path, limits, lambda: count_export(path, limits))


def compare_in_place(path: Path, dump: Path, collection: str, limits: Limits) -> tuple[int, ExportComparison]:
    """``count_and_compare``, with any exception the content causes made a DrillFailure naming the file."""
    return _failing_the_file(path, limits, lambda: count_and_compare(path, dump, collection, limits))


def _failing_the_file(path: Path, limits: Limits, read: Callable[[], T]) -> T:
    """``read()``; the export is backup content, so whatever it raises fails that file in one line."""
    try:
        return read()
    except DrillFailure:
        raise
    except Exception as exc:  # noqa: BLE001 — the export is backup content: its oddities fail the file
        lines = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        raise DrillFailure(f"unreadable export: {quote(detail, limits.max_quoted_chars)}", where=str(path),
                           fix=FIX_EXPORT) from exc


def main(argv: list[str]) -> int:
    # Background work: on a small machine the restore (the drill's critical path) gets the cores first.
    os.nice(10)
    limits = Limits()
    files = []
    dumps: dict[str, list[str]] = {}
    for arg in argv:
        if arg.startswith(LIMIT_FLAG + "="):
            limits = Limits(max_export_element_chars=int(arg.partition("=")[2]))
        elif arg.startswith(LIMITS_FLAG + "="):
            limits = Limits(**json.loads(arg.partition("=")[2]))
        elif arg.startswith(DUMPS_FLAG + "="):
            dumps = json.loads(arg.partition("=")[2])
        else:
            files.append(arg)
    for file in files:
        try:
            if file in dumps:
                try:
                    count, comparison = compare_in_place(Path(file), Path(dumps[file][0]), dumps[file][1], limits)
                    result: dict = {"file": file, "count": count, "content": as_result(comparison)}
                except DrillFailure as failure:  # the export or the dump: count the export on its own
                    content_error = {"what": failure.what, "where": failure.where, "fix": failure.fix}
                    result = {"file": file, "count": count_in_place(Path(file), limits), "content_error": content_error}
            else:
                result = {"file": file, "count": count_in_place(Path(file), limits)}
        except DrillFailure as failure:
            result = {"file": file, "what": failure.what, "where": failure.where, "fix": failure.fix}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
