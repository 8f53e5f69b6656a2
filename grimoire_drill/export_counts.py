"""Count the JSON exports in a child process while the databases restore.

Why a process: parsing hundreds of megabytes of JSON is pure-Python work, and on a thread it
would hold the GIL the in-process MongoDB loader needs. Exports smaller than ``SMALL_BYTES`` in
total are counted in place when asked: starting an interpreter costs more than it saves.

The child is ``python -m grimoire_drill.export_counts FILE...``. It prints one JSON line per
file, ``{"file", "count"}`` or ``{"file", "what", "where", "fix"}`` (the DrillFailure it
raised), and carries the run's tags in its environment so a janitor can tell whose it is;
nothing else of the drill's environment (``child_env``): it parses backup content.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .dump import count_export
from .child_env import child_env
from .engines.base import run_env
from .errors import DrillFailure

SMALL_BYTES = 16 * 1024 * 1024


def _python_path() -> dict[str, str]:
    """PYTHONPATH for the child: this package's parent first (a checkout run without installing
    still finds ``grimoire_drill``), then the caller's own entries (where its dependencies are)."""
    entries = [str(Path(__file__).resolve().parent.parent)]
    entries += [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(entries))}


class ExportCounts:
    """Export counts, started early and read later; ``close()`` always ends the child."""

    def __init__(self, paths: list[Path], run_id: str, background_from_bytes: int = SMALL_BYTES):
        self._paths = [path for path in paths if path.is_file()]
        self._run_id = run_id
        self._background_from_bytes = background_from_bytes
        self._child: subprocess.Popen | None = None
        self._results: dict[str, dict] | None = None

    def start(self) -> "ExportCounts":
        """Start counting in the background when the exports are big enough to be worth it."""
        if self._paths and sum(path.stat().st_size for path in self._paths) >= self._background_from_bytes:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "grimoire_drill.export_counts", *map(str, self._paths)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=child_env({**run_env(self._run_id), **_python_path()}))
        return self

    def count(self, path: Path) -> int:
        """Objects in the export at ``path``: the child's answer when it counted it, else counted here."""
        result = self._child_results().get(str(path))
        if result is None:
            return count_export(path)
        if "count" in result:
            return int(result["count"])
        raise DrillFailure(result["what"], where=result["where"], fix=result["fix"])

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


def main(files: list[str]) -> int:
    # Background work: on a small machine the restore (the drill's critical path) gets the cores first.
    os.nice(10)
    for file in files:
        try:
            result: dict = {"file": file, "count": count_export(Path(file))}
        except DrillFailure as failure:
            result = {"file": file, "what": failure.what, "where": failure.where, "fix": failure.fix}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
