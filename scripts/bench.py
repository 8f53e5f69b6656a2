"""Benchmark: the drill against the bare manual procedure it replaces, side by side, at real sizes.

``python scripts/bench.py [--sizes 10MB,100MB,1GB] [--out bench.json] [--keep DIR] [--repeat N] [--archive-pairs K]``

For each size it generates a sample archive of about that size (``write_sample(scale=N)``, N found
by measuring bytes per scale unit first) and times, in the same run on the same machine:

(a) the drill: ``grimoire-drill run ARCHIVE --mongo-engine simulated --postgres-engine local`` as a
    child process; per-phase seconds from its summary.json; the drill process's own peak RSS
    (``VmHWM`` polled from /proc, cross-checked with ``wait4``'s ru_maxrss). PostgreSQL servers are
    other processes and are not counted; the simulated store lives inside the drill, so its size is
    measured separately (the bare MongoDB load below runs in its own process and reports its RSS
    growth) and subtracted to give the harness's own memory.
(b) the bare procedure: ``sha256sum`` + ``tar -xzf`` + a fresh LocalPostgres cluster + ``pg_restore
    -j`` (same jobs as the drill) + a plain batched ``insert_many`` (1000 decoded documents a batch)
    of every .bson into the same simulated engine (mongomock), then the metadata's indexes, as
    mongorestore does. Nothing is slowed down: each step is the tool at its normal speed.
(c) ``tar -xzf`` alone, the yardstick of the drill's archive phase, timed back to back with the
    drill reading the archive alone (``run -k archive``), ``--repeat`` + ``--archive-pairs`` times;
    the target compares the median of the pairs' ratios.

Every measurement reads the archive from the page cache (it is read once before the first one), so
no contender pays the disk for the others. Prints a table with PASS/FAIL per target of issue 7 and
writes bench.json with every raw number and the machine's facts. Exit 0 when everything was measured
(targets may still FAIL: the table says which), 1 when a measurement itself failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing

SCHEMA = "grimoire-drill/bench@1"
DEFAULT_SIZES = "10MB,100MB,1GB"
UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "K": 10**3, "M": 10**6, "G": 10**9, "B": 1}
CALIBRATION_SCALES = (1, 8)
BATCH_DOCS = 1000
POLL_S = 0.05
STOP_GRACE_S = 120
RSS_EVERY_S = 1.0
GROWTH_MIN_PHASE_S = 1.0
MB = 10**6
ARCHIVE_PAIRS = 4   # extra (tar, archive read) pairs: cheap next to a drill, and they steady a 5 % target

# Issue 7's targets: name -> (limit, what is compared).
TARGETS = {
    "drill_vs_bare": (1.15, "drill wall time / bare procedure wall time"),
    "archive_vs_tar": (1.05, "archive phase of the drill reading the archive alone (run -k archive: no engine "
                              "starting beside it) / tar -xzf alone, run back to back: the median of the pairs' "
                              "ratios; the full drill's archive phase is reported too"),
    "checks_share": (0.10, "drill checks phase / drill wall time"),
    "harness_rss_mb": (300.0, "drill process peak RSS minus the simulated store, MB (target at 1 GB)"),
    "growth_exponent": (1.10, "log(t2/t1)/log(size2/size1) between consecutive sizes, of the drill's wall time "
                              "and of each phase taking at least 1 s"),
}


# --- sizes and machine ------------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """``10MB`` -> 10_000_000 (decimal units, as disk sizes are quoted)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]?B?)\s*", text.upper())
    if match is None or (match.group(2) not in UNITS and match.group(2) != ""):
        raise ValueError(f"not a size: {text!r} (use e.g. 10MB, 1GB)")
    unit = UNITS[match.group(2)] if match.group(2) else 1
    return int(float(match.group(1)) * unit)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _tool_version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def machine_facts() -> dict[str, Any]:
    """What a reader needs to compare this run with theirs."""
    import bson
    import mongomock
    import pymongo

    from grimoire_drill.engines.local_postgres import find_bindir

    cpu = re.search(r"^model name\s*:\s*(.+)$", _read_text("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read_text("/proc/meminfo"), re.M)
    bindir = find_bindir()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu.group(1).strip() if cpu else platform.processor(),
        "cores": os.cpu_count(),
        "ram_mb": round(int(mem.group(1)) / 1024) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": _tool_version([str(bindir / "pg_restore"), "--version"]) if bindir else None,
        "tar": _tool_version(["tar", "--version"]),
        "mongomock": mongomock.__version__,
        "pymongo": pymongo.__version__,
        "bson_c_extension": bson.has_c(),
        "git_commit": commit,
        "load_average": os.getloadavg(),
    }


# --- processes ----------------------------------------------------------------------------------------

@dataclass
class Measured:
    """One child process: how it ended, how long it took, how much memory it held at most."""

    returncode: int
    seconds: float
    peak_rss_bytes: int | None       # VmHWM of the child itself, polled
    rusage_maxrss_bytes: int         # wait4: the child and the children it waited for
    timed_out: bool = False
    stuck_in: str | None = None      # py-spy dump taken when it timed out
    rss_timeline: list[tuple[float, int]] = field(default_factory=list)   # (seconds, VmRSS bytes), ~1/s


def _vm_status(pid: int) -> tuple[int | None, int | None]:
    """(VmHWM, VmRSS) of a process in bytes; None once it is gone."""
    status = _read_text(f"/proc/{pid}/status")
    found = [re.search(rf"^{key}:\s*(\d+) kB", status, re.M) for key in ("VmHWM", "VmRSS")]
    hwm, rss = (int(match.group(1)) * 1024 if match else None for match in found)
    return hwm, rss


def _py_spy_dump(pid: int) -> str | None:
    """Where a Python child is right now (py-spy next to our interpreter), to say why it was slow."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        return None
    done = subprocess.run([str(py_spy), "dump", "--pid", str(pid)], capture_output=True, text=True, check=False,
                          timeout=60)
    return done.stdout[-6000:] if done.returncode == 0 else None


def run_measured(argv: list[str], *, stdout: Path, stderr: Path, env: dict[str, str] | None = None,
                 timeout: float | None = None) -> Measured:
    """Run ``argv`` to completion, polling its own peak RSS, then reap it with wait4 for its rusage.

    Past ``timeout`` the child is dumped with py-spy, then asked to stop with SIGTERM (the drill
    cleans up its engines on it), and killed only if it does not stop within STOP_GRACE_S.
    """
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        peak: int | None = None
        stuck_in: str | None = None
        stopped_at: float | None = None
        timeline: list[tuple[float, int]] = []
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            hwm, rss = _vm_status(proc.pid)
            elapsed = time.perf_counter() - started
            if hwm is not None:
                peak = hwm if peak is None else max(peak, hwm)
            if rss is not None and (not timeline or elapsed - timeline[-1][0] >= RSS_EVERY_S):
                timeline.append((round(elapsed, 1), rss))
            if timeout is not None and stopped_at is None and elapsed > timeout:
                stopped_at = elapsed
                stuck_in = _py_spy_dump(proc.pid)
                os.kill(proc.pid, signal.SIGTERM)
            elif stopped_at is not None and elapsed > stopped_at + STOP_GRACE_S:
                os.kill(proc.pid, signal.SIGKILL)
            time.sleep(POLL_S)
        seconds = time.perf_counter() - started if stopped_at is None else stopped_at
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, seconds, peak, usage.ru_maxrss * 1024, stopped_at is not None, stuck_in,
                    timeline)


def _tail(path: Path, lines: int = 6) -> str:
    return "\n".join(_read_text(str(path)).strip().splitlines()[-lines:])


class MeasurementError(Exception):
    """A contender did not finish its work: its time would mean nothing."""


def _timed_tool(argv: list[str], log_dir: Path, name: str) -> float:
    done = run_measured(argv, stdout=log_dir / f"{name}.out", stderr=log_dir / f"{name}.err")
    if done.returncode != 0:
        raise MeasurementError(f"{name} exited {done.returncode}: {_tail(log_dir / f'{name}.err')}")
    return done.seconds


def warm_page_cache(path: Path) -> float:
    """Read the archive once so every contender finds it in memory, none pays the disk for the others."""
    started = time.perf_counter()
    with open(path, "rb") as handle:
        while handle.read(1 << 20):
            pass
    return time.perf_counter() - started


# --- samples -----------------------------------------------------------------------------------------------

def calibrate(writer, work: Path) -> dict[str, float]:
    """Archive bytes as a straight line of scale: bytes = fixed + per_unit * scale."""
    sizes = {}
    for scale in CALIBRATION_SCALES:
        target = work / f"calibrate-{scale}"
        archive = writer.write(target, scale=scale)
        sizes[scale] = archive.stat().st_size
        shutil.rmtree(target, ignore_errors=True)
    low, high = CALIBRATION_SCALES
    per_unit = (sizes[high] - sizes[low]) / (high - low)
    return {"bytes_per_unit": per_unit, "fixed_bytes": sizes[low] - per_unit * low,
            "measured": {str(k): v for k, v in sizes.items()}}


def scale_for(size: int, calibration: dict[str, float]) -> int:
    return max(1, round((size - calibration["fixed_bytes"]) / calibration["bytes_per_unit"]))


def sample_for(writer, scale: int, samples: Path) -> tuple[Path, float | None]:
    """The archive at ``scale``: reused from ``samples/scale-N/`` when a kept one is there."""
    folder = samples / f"scale-{scale}"
    found = sorted(folder.glob("backup_*.tar.gz")) if folder.is_dir() else []
    if found:
        return found[-1], None
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    archive = writer.write(folder, scale=scale)
    return archive, time.perf_counter() - started


def backup_time(archive: Path) -> datetime:
    """When the backup was taken, read from its name exactly as the drill reads it."""
    from grimoire_drill.archive import parse_backup_name

    parsed = parse_backup_name(archive.name)
    assert parsed is not None, archive
    return parsed[1]


# --- (c) tar alone, (b) the bare procedure, (a) the drill --------------------------------------------------------

def measure_tar(archive: Path, work: Path) -> dict[str, float]:
    dest = work / "tar-alone"
    dest.mkdir()
    try:
        return {"seconds": _timed_tool(["tar", "-xzf", str(archive), "-C", str(dest)], work, "tar-alone")}
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def load_mongo_bare(mongodb_dir: Path) -> dict[str, Any]:
    """The plain way: decode every .bson, insert_many in batches of 1000, then the metadata's indexes.

    Runs in its own process (``--load-mongo``) so the store's memory can be read off its RSS.
    """
    import bson
    import mongomock
    from bson import json_util

    from grimoire_drill.expectations import load_expectations

    skip = set(load_expectations().skip_databases)   # the databases the drill skips, skipped here too
    rss_before = _vm_rss()
    client = mongomock.MongoClient()
    documents = 0
    started = time.perf_counter()
    collections = []
    for db_dir in sorted(p for p in mongodb_dir.iterdir() if p.is_dir() and p.name not in skip):
        for data in sorted(db_dir.glob("*.bson")):
            collection = client[db_dir.name][data.name.removesuffix(".bson")]
            collections.append((collection, db_dir / data.name.replace(".bson", ".metadata.json")))
            batch: list = []
            with open(data, "rb") as handle:
                for doc in bson.decode_file_iter(handle):
                    batch.append(doc)
                    if len(batch) == BATCH_DOCS:
                        collection.insert_many(batch)
                        documents += len(batch)
                        batch = []
            if batch:
                collection.insert_many(batch)
                documents += len(batch)
    inserted = time.perf_counter()
    indexes = 0
    for collection, metadata in collections:
        if not metadata.is_file():
            continue
        for index in json_util.loads(metadata.read_text())["indexes"]:
            if index["name"] == "_id_":
                continue
            collection.create_index(list(index["key"].items()), name=index["name"],
                                    unique=bool(index.get("unique", False)))
            indexes += 1
    finished = time.perf_counter()
    rss_after = _vm_rss()
    return {"documents": documents, "indexes": indexes, "insert_seconds": inserted - started,
            "index_seconds": finished - inserted, "store_rss_bytes": rss_after - rss_before,
            "rss_after_bytes": rss_after}


def _vm_rss() -> int:
    match = re.search(r"^VmRSS:\s*(\d+) kB", _read_text("/proc/self/status"), re.M)
    return int(match.group(1)) * 1024 if match else 0


def measure_bare(archive: Path, work: Path, jobs: int) -> dict[str, Any]:
    """sha256sum, tar -xzf, fresh cluster + pg_restore -j, plain insert_many: each step as fast as the tool."""
    from grimoire_drill.engines.base import new_run_id
    from grimoire_drill.engines.local_postgres import LocalPostgres
    from grimoire_drill.sample import PG_DB, PG_USER

    dest = work / "bare"
    dest.mkdir()
    steps: dict[str, Any] = {}
    try:
        steps["sha256sum_s"] = _timed_tool(["sha256sum", str(archive)], work, "bare-sha256sum")
        steps["tar_s"] = _timed_tool(["tar", "-xzf", str(archive), "-C", str(dest)], work, "bare-tar")
        root = next(dest.glob("backup_*"))
        started = time.perf_counter()
        with LocalPostgres(run_id=new_run_id(), superuser=PG_USER, temp_root=work) as pg:
            pg.create_database(PG_DB)
            steps["postgres_start_s"] = time.perf_counter() - started
            started = time.perf_counter()
            done = pg.run_tool("pg_restore", ["-d", PG_DB, "--no-password", f"--jobs={jobs}", "{dump}"],
                               {"dump": root / "postgresql" / "database.backup"})
            steps["pg_restore_s"] = time.perf_counter() - started
            if done.returncode != 0:
                raise MeasurementError(f"pg_restore exited {done.returncode}: {done.stderr.strip()[-400:]}")
            steps["rows"] = _count_rows(pg.conninfo(PG_DB))   # after the clock: not part of the procedure
        loaded = run_measured([sys.executable, str(Path(__file__).resolve()), "--load-mongo", str(root / "mongodb")],
                              stdout=work / "bare-mongo.out", stderr=work / "bare-mongo.err")
        if loaded.returncode != 0:
            raise MeasurementError(f"bare MongoDB load exited {loaded.returncode}: {_tail(work / 'bare-mongo.err')}")
        steps["mongo_load_s"] = loaded.seconds
        steps["mongo"] = json.loads(_read_text(str(work / "bare-mongo.out")))
        steps["mongo_peak_rss_bytes"] = loaded.peak_rss_bytes
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    steps["total_s"] = sum(steps[k] for k in ("sha256sum_s", "tar_s", "postgres_start_s", "pg_restore_s", "mongo_load_s"))
    return steps


def _count_rows(conninfo: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                   for t in tables)


def drill_command() -> list[str]:
    script = Path(sys.executable).parent / "grimoire-drill"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from grimoire_drill.cli import console_main; console_main()"]


def measure_drill(archive: Path, work: Path, jobs: int, timeout: float | None = None,
                  extra_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """The drill as a user runs it; a run past ``timeout`` is stopped and reported as a lower bound."""
    report = work / "drill-report"
    temp = work / "drill-temp"
    temp.mkdir()
    now = backup_time(archive) + timedelta(hours=1)   # a kept sample stays fresh for the freshness check
    argv = drill_command() + [
        "run", str(archive), "--mongo-engine", "simulated", "--postgres-engine", "local",
        "--report-dir", str(report), "--history", str(work / "history.jsonl"), "--jobs", str(jobs),
        "--temp-dir", str(temp), "--now", now.isoformat(), "--quiet", *extra_args]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        done = run_measured(argv, stdout=work / "drill.out", stderr=work / "drill.err", env=env, timeout=timeout)
        summary_path = report / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        if done.timed_out:
            return _timed_out_drill(done, summary)
        if summary is None:
            raise MeasurementError(f"the drill exited {done.returncode} without a summary.json: "
                                   f"{_tail(work / 'drill.err')}")
        if summary["outcome"] != "passed" or done.returncode != 0:
            failed = [c["id"] + ": " + c["message"] for c in summary["checks"] if c["status"] in ("failed", "error")]
            raise MeasurementError(f"the drill did not pass ({summary['outcome']}, exit {done.returncode}): "
                                   + "; ".join(failed[:3]) + " " + _tail(work / "drill.err", 3))
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    counts = summary["counts"]
    return {
        "timed_out": False, "total_s": done.seconds, "rto_s": summary["rto_seconds"],
        "phases_s": {p["name"]: p["seconds"] for p in summary["phases"]},
        "phase_status": {p["name"]: p["status"] for p in summary["phases"]},
        "documents": sum(counts["mongodb"].values()), "rows": sum(counts["postgresql"].values()),
        "uploads_files": counts["uploads_files"], "checks": summary["totals"],
        "peak_rss_bytes": done.peak_rss_bytes, "rusage_maxrss_bytes": done.rusage_maxrss_bytes,
        "engines": {k: v.get("version") for k, v in summary["engines"].items()},
        "stuck_in": None, "rss_timeline": done.rss_timeline,
    }


def _timed_out_drill(done: Measured, summary: dict[str, Any] | None) -> dict[str, Any]:
    """What is known of a drill stopped at the timeout: the phases it finished, where it was stuck."""
    phases = {p["name"]: p["seconds"] for p in summary["phases"]} if summary is not None else {}
    return {
        "timed_out": True, "total_s": done.seconds, "rto_s": None, "phases_s": phases,
        "phase_status": {p["name"]: p["status"] for p in summary["phases"]} if summary is not None else {},
        "documents": None, "rows": None, "uploads_files": None,
        "checks": summary["totals"] if summary is not None else None,
        "peak_rss_bytes": done.peak_rss_bytes, "rusage_maxrss_bytes": done.rusage_maxrss_bytes,
        "engines": {k: v.get("version") for k, v in summary["engines"].items()} if summary is not None else {},
        "stuck_in": done.stuck_in, "rss_timeline": done.rss_timeline,
    }


# --- one size --------------------------------------------------------------------------------------------

def _median_runs(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median (a whole run, so its raw numbers stay consistent)."""
    ordered = sorted(runs, key=lambda run: run[key])
    return ordered[(len(ordered) - 1) // 2]


def _median_phases(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each phase's median over the runs: one slow phase in one run does not pick the whole run."""
    names = {name for run in runs for name in run["phases_s"]}
    return {name: statistics.median(run["phases_s"][name] for run in runs if name in run["phases_s"])
            for name in sorted(names)}


def bench_size(label: str, size: int, scale: int, archive: Path, generation_s: float | None, work: Path,
               jobs: int, repeat: int, archive_pairs: int, drill_timeout: float | None,
               drill_args: tuple[str, ...], say: Callable[[str], None]) -> dict[str, Any]:
    """Time tar, bare and drill ``repeat`` times (order rotated) and keep the median of each.

    tar and the archive read always run back to back (which goes first alternates), and
    ``archive_pairs`` more such pairs follow: on a virtual machine the kernel's cost of writing
    files drifts by a third between minutes, so the archive target is judged on the median of
    the per-pair ratios, each taken under the same conditions. Dirty pages are flushed before
    each contender (``sync``), so none pays for another's writeback.
    """
    warm_s = warm_page_cache(archive)
    runs: dict[str, list[dict[str, Any]]] = {"tar": [], "bare": [], "drill": [], "read": []}
    measures: dict[str, Callable[[Path], dict[str, Any]]] = {
        "tar": lambda run_dir: measure_tar(archive, run_dir),
        "bare": lambda run_dir: measure_bare(archive, run_dir, jobs),
        "drill": lambda run_dir: measure_drill(archive, run_dir, jobs, drill_timeout, drill_args),
        # the archive checks alone: the archive phase with no engine start competing for the cores
        "read": lambda run_dir: measure_drill(archive, run_dir, jobs, drill_timeout, ("-k", "archive")),
    }

    def run(name: str, attempt: int, of: int) -> None:
        run_dir = work / f"{name}-{attempt}"
        run_dir.mkdir()
        run_dir.chmod(0o711)   # the local PostgreSQL runs as another OS user below it
        say(f"{label}: {name} (run {attempt + 1}/{of})")
        os.sync()
        runs[name].append(measures[name](run_dir))

    def run_pair(attempt: int, of: int) -> None:
        for name in ("tar", "read") if attempt % 2 == 0 else ("read", "tar"):
            run(name, attempt, of)

    steps: list[Callable[[int, int], None]] = [run_pair, lambda a, n: run("bare", a, n), lambda a, n: run("drill", a, n)]
    load = {"before": os.getloadavg()}
    for attempt in range(repeat):
        for step in steps[attempt % len(steps):] + steps[:attempt % len(steps)]:
            step(attempt, repeat)
    for attempt in range(repeat, repeat + archive_pairs):
        run_pair(attempt, repeat + archive_pairs)
    load["after"] = os.getloadavg()
    tar = _median_runs(runs["tar"], "seconds")
    bare = _median_runs(runs["bare"], "total_s")
    drill = dict(_median_runs(runs["drill"], "total_s"), phases_s=_median_phases(runs["drill"]))
    read = {"archive_s": _median_phases(runs["read"]).get("archive"),
            "pair_ratios": [_ratio(r["phases_s"].get("archive"), t["seconds"]) for t, r in zip(runs["tar"], runs["read"])]}
    derived = _derive(tar, bare, drill, read)
    timed_out = drill["timed_out"]
    targets = {name: _verdict(derived[name], TARGETS[name][0]) for name in
               ("drill_vs_bare", "archive_vs_tar", "checks_share", "harness_rss_mb")}
    if timed_out:   # what did not finish is unknown; a ratio past its limit already fails
        targets = {name: verdict if verdict == "FAIL" else "n/a" for name, verdict in targets.items()}
    return {
        "size": label, "size_bytes_target": size, "scale": scale, "archive": str(archive),
        "archive_bytes": archive.stat().st_size, "generation_s": generation_s, "warm_read_s": warm_s,
        "jobs": jobs, "repeat": repeat, "archive_pairs": archive_pairs, "load_average": load,
        "tar": tar, "bare": bare, "drill": drill, "read": read, "derived": derived, "runs": runs, "targets": targets,
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def _median_ratio(ratios: list[float | None]) -> float | None:
    known = [ratio for ratio in ratios if ratio is not None]
    return statistics.median(known) if known else None


def _derive(tar: dict[str, Any], bare: dict[str, Any], drill: dict[str, Any], read: dict[str, Any]) -> dict[str, Any]:
    """The numbers the targets compare. For a timed-out drill, drill_vs_bare is a lower bound."""
    store = bare["mongo"]["store_rss_bytes"]
    phases = drill["phases_s"]
    peak = drill["peak_rss_bytes"] if drill["peak_rss_bytes"] is not None else drill["rusage_maxrss_bytes"]
    mongo = bare["mongo"]
    return {
        "drill_vs_bare": _ratio(drill["total_s"], bare["total_s"]),
        "drill_vs_bare_is_lower_bound": drill["timed_out"],
        "archive_vs_tar": _median_ratio(read["pair_ratios"]),
        "archive_in_drill_vs_tar": _ratio(phases.get("archive"), tar["seconds"]),
        "checks_share": None if drill["timed_out"] else _ratio(phases.get("checks"), drill["total_s"]),
        "harness_rss_mb": (peak - store) / MB,
        # same archive, same data: a drill stopped before counting restored what the bare load counted
        "documents_per_s": _ratio(mongo["documents"] if drill["documents"] is None else drill["documents"],
                                  phases.get("restore_mongodb")),
        "rows_per_s": _ratio(bare["rows"] if drill["rows"] is None else drill["rows"], phases.get("restore_postgresql")),
        "bare_documents_per_s": _ratio(mongo["documents"], mongo["insert_seconds"] + mongo["index_seconds"]),
        "bare_rows_per_s": _ratio(bare["rows"], bare["pg_restore_s"]),
        "drill_peak_rss_mb": peak / MB,
        "simulated_store_mb": store / MB,
    }


def _verdict(value: float | None, limit: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "PASS" if value <= limit else "FAIL"


def growth(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exponent of time against archive size between consecutive sizes: 1 is linear, below is better.

    Fixed costs (engine start, interpreter) flatten the total's exponent, so each phase is judged
    too: any phase of at least GROWTH_MIN_PHASE_S at the larger size growing faster than the limit
    fails the target. A timed-out drill at the larger size gives lower bounds.
    """
    limit = TARGETS["growth_exponent"][0]
    pairs = []
    for small, large in zip(results, results[1:]):
        ratio = math.log(large["archive_bytes"] / small["archive_bytes"])
        if ratio <= 0 or small["drill"]["timed_out"]:
            continue

        def exponent(pick: Callable[[dict[str, Any]], float | None]) -> float | None:
            a, b = pick(small), pick(large)
            return math.log(b / a) / ratio if a and b and a > 0 and b > 0 else None

        drill_exp = exponent(lambda r: r["drill"]["total_s"])
        per_phase = {name: exponent(lambda r, n=name: r["drill"]["phases_s"].get(n))
                     for name in large["drill"]["phases_s"]}
        judged = {name: value for name, value in per_phase.items()
                  if value is not None and large["drill"]["phases_s"][name] >= GROWTH_MIN_PHASE_S}
        steepest = max(judged, key=judged.get) if judged else None
        worst = max([v for v in (drill_exp, judged.get(steepest)) if v is not None], default=None)
        verdict = _verdict(worst, limit)
        if large["drill"]["timed_out"] and verdict == "PASS":
            verdict = "n/a"
        pairs.append({"from": small["size"], "to": large["size"], "drill": drill_exp,
                      "drill_is_lower_bound": large["drill"]["timed_out"],
                      "bare": exponent(lambda r: r["bare"]["total_s"]), "drill_phases": per_phase,
                      "steepest_phase": steepest, "steepest_phase_exponent": judged.get(steepest),
                      "verdict": verdict})
    return pairs


# --- output -----------------------------------------------------------------------------------------------

COLUMNS = ("size", "archive MB", "drill s", "bare s", "drill/bare", "archive s", "tar s", "arch/tar",
           "in drill", "checks %", "peak RSS MB", "store MB", "harness MB", "docs/s", "rows/s")


def _num(value: float | None, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, pattern)


def table(results: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        d, t, drill = r["derived"], r["targets"], r["drill"]
        over = ">" if drill["timed_out"] else ""
        rows.append((
            r["size"], _num(r["archive_bytes"], ".1f", 1 / MB), over + _num(drill["total_s"], ".1f"),
            _num(r["bare"]["total_s"], ".1f"), f"{over}{_num(d['drill_vs_bare'], '.2f')} {t['drill_vs_bare']}",
            _num(r["read"]["archive_s"], ".2f"), _num(r["tar"]["seconds"], ".2f"),
            f"{_num(d['archive_vs_tar'], '.2f')} {t['archive_vs_tar']}",
            f"{_num(drill['phases_s'].get('archive'), '.2f')}s {_num(d['archive_in_drill_vs_tar'], '.2f')}x",
            f"{_num(d['checks_share'], '.1f', 100)} {t['checks_share']}", _num(d["drill_peak_rss_mb"], ".0f"),
            _num(d["simulated_store_mb"], ".0f"), f"{_num(d['harness_rss_mb'], '.0f')} {t['harness_rss_mb']}",
            _num(d["documents_per_s"], ",.0f"), _num(d["rows_per_s"], ",.0f"),
        ))
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(COLUMNS)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)),
             "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    for pair in pairs:
        bound = ">=" if pair["drill_is_lower_bound"] else ""
        steepest = (f", steepest phase {pair['steepest_phase']} ^{bound}{_num(pair['steepest_phase_exponent'], '.2f')}"
                    if pair["steepest_phase"] else "")
        lines.append(f"growth {pair['from']} -> {pair['to']}: drill time ~ size^{bound}{_num(pair['drill'], '.2f')}"
                     f"{steepest} (bare ^{_num(pair['bare'], '.2f')}) {pair['verdict']} "
                     f"(linear is 1.00, target <= {TARGETS['growth_exponent'][0]} for the total and every phase)")
    for r in results:
        if r["drill"]["timed_out"]:
            lines.append(f"{r['size']}: the drill was stopped after {r['drill']['total_s']:.0f}s (--drill-timeout); "
                         "bench.json has where it was (results[].drill.stuck_in)")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    from grimoire_drill.sample import SampleWriter

    def say(line: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    sizes = [(text.strip(), parse_size(text)) for text in args.sizes.split(",") if text.strip()]
    jobs = args.jobs if args.jobs is not None else max(1, os.cpu_count() or 1)
    keep = args.keep.resolve() if args.keep is not None else None
    base = keep if keep is not None else Path(tempfile.mkdtemp(prefix="grimoire-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o711)
    samples = base / "samples"
    samples.mkdir(exist_ok=True)
    results: list[dict[str, Any]] = []
    facts = machine_facts()
    calibration: dict[str, Any] | None = None
    failure: str | None = None
    try:
        with SampleWriter(temp_root=base) as writer:
            say("calibrating: bytes per scale unit")
            calibration = calibrate(writer, base)
            say(f"calibration: {calibration['bytes_per_unit'] / 1e3:.0f} KB per scale unit "
                f"+ {calibration['fixed_bytes'] / 1e3:.0f} KB")
            planned = []
            for label, size in sizes:
                scale = scale_for(size, calibration)
                say(f"{label}: sample at scale {scale}")
                archive, generation_s = sample_for(writer, scale, samples)
                say(f"{label}: {archive.stat().st_size / MB:.1f} MB"
                    + (f" generated in {generation_s:.1f}s" if generation_s is not None else " (kept sample)"))
                planned.append((label, size, scale, archive, generation_s))
        for label, size, scale, archive, generation_s in planned:
            work = Path(tempfile.mkdtemp(prefix=f"run-{label}-", dir=base))
            work.chmod(0o711)
            try:
                results.append(bench_size(label, size, scale, archive, generation_s, work, jobs, args.repeat,
                                          args.archive_pairs, args.drill_timeout, tuple(args.drill_arg), say))
            finally:
                if keep is None:
                    shutil.rmtree(work, ignore_errors=True)
    except MeasurementError as exc:
        failure = str(exc)
        say(f"measurement failed: {failure}")
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)
    pairs = growth(results)
    verdicts = [v for r in results for v in r["targets"].values()] + [p["verdict"] for p in pairs]
    document = {
        "schema": SCHEMA, "machine": facts,
        "settings": {"sizes": [label for label, _ in sizes], "jobs": jobs, "repeat": args.repeat,
                     "archive_pairs": args.archive_pairs,
                     "drill_timeout_s": args.drill_timeout, "drill_args": list(args.drill_arg),
                     "mongo_engine": "simulated", "postgres_engine": "local", "batch_docs": BATCH_DOCS,
                     "kept_in": str(keep) if keep is not None else None},
        "calibration": calibration,
        "targets": {name: {"limit": limit, "means": means} for name, (limit, means) in TARGETS.items()},
        "results": results, "growth": pairs,
        "all_targets_pass": bool(verdicts) and all(v == "PASS" for v in verdicts if v != "n/a"),
        "failure": failure,
    }
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(table(results, pairs))
    print(f"machine: {facts['cpu_model']}, {facts['cores']} cores, {facts['ram_mb']} MB RAM, "
          f"Python {facts['python']}, {facts['postgresql']}; wrote {args.out}")
    return 1 if failure is not None else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"archive sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="raw numbers (default bench.json)")
    parser.add_argument("--keep", type=Path, help="keep samples and run folders here; reuse kept samples")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender; the median is kept")
    parser.add_argument("--archive-pairs", type=int, default=ARCHIVE_PAIRS,
                        help=f"extra back-to-back runs of tar and the archive read (default {ARCHIVE_PAIRS}); "
                        "the archive target is the median of the per-pair ratios")
    parser.add_argument("--jobs", type=int, help="pg_restore -j and drill --jobs (default: CPU count)")
    parser.add_argument("--drill-timeout", type=float, help="stop a drill after this many seconds and report a "
                        "lower bound plus where it was (py-spy dump)")
    parser.add_argument("--drill-arg", action="append", default=[], help="extra argument for grimoire-drill run "
                        "(repeatable; e.g. --drill-arg=-k --drill-arg='not unique_keys' for a what-if run)")
    parser.add_argument("--load-mongo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_mongo is not None:
        print(json.dumps(load_mongo_bare(args.load_mongo)))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.archive_pairs < 0:
        parser.error("--archive-pairs cannot be negative")
    try:
        sizes = [parse_size(text) for text in args.sizes.split(",") if text.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if not sizes:
        parser.error("--sizes names no size")
    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
