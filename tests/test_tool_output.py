"""A tool's output is kept bounded: its head and tail within limits.max_tool_output_bytes, whatever it prints.

pg_restore and psql repeat what a dump makes the server say (a RAISE NOTICE in a loop is a few bytes of
dump and gigabytes of stderr), so the drill must never hold all of it.
"""

from __future__ import annotations

import sys
import threading

import pytest

from grimoire_drill.child_env import child_env
from grimoire_drill.engines.base import ToolProcesses
from grimoire_drill.errors import HarnessError

MIB = 1024 * 1024


def _tool_printing(megabytes: int) -> list[str]:
    """A real child that writes a first line, ``megabytes`` of filler, then a last line, to both streams."""
    code = ("import sys\n"
            "for stream in (sys.stdout, sys.stderr):\n"
            "    stream.write('FIRST LINE\\n')\n"
            f"    for _ in range({megabytes} * 16):\n"
            "        stream.write('n' * 65535 + '\\n')\n"
            "    stream.write('LAST LINE\\n')\n"
            "    stream.flush()\n"
            "sys.exit(3)\n")
    return [sys.executable, "-c", code]


def test_a_tool_that_prints_gigabytes_is_kept_to_its_head_and_tail():
    tools = ToolProcesses(threading.Event(), output_cap=1 * MIB)
    result = tools.run(_tool_printing(64), child_env(), timeout=120)
    assert result.returncode == 3
    for text in (result.stdout, result.stderr):
        assert len(text.encode()) < 1 * MIB + 1024, len(text)
        assert text.startswith("FIRST LINE\n") and text.rstrip().endswith("LAST LINE")
        assert "bytes of output left out: over limits.max_tool_output_bytes" in text


def test_a_tool_within_the_cap_is_kept_whole():
    tools = ToolProcesses(threading.Event(), output_cap=8 * MIB)
    result = tools.run(_tool_printing(1), child_env(), timeout=60)
    assert "left out" not in result.stderr
    assert result.stderr.count("\n") == 1 * 16 + 2


def test_a_tool_that_closes_its_output_and_runs_on_still_meets_its_timeout_and_is_killed():
    """The wait ends on the tool's pipes closing; one that closes them and keeps running is not let off its timeout."""
    tools = ToolProcesses(threading.Event())
    code = "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n"
    with pytest.raises(HarnessError, match="did not finish within 1s"):
        tools.run([sys.executable, "-c", code], child_env(), timeout=1)
    assert not tools._running  # killed and reaped, not left behind
