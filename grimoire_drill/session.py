"""The drill's pipeline: config → archive → engines → restore, each stage run once, timed, remembered.

The pytest plugin exposes these stages as session fixtures; checks only read what a stage
produced. A stage that failed re-raises the same failure to every check that needs it, so a
check that could not run is reported as not run, never as passed.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql

from . import archive
from .config import DrillConfig
from .deadline import RunDeadline
from .dump import CollectionDump, count_bson, scan_mongodump
from .engines.base import OWNER_FILE, owner_tag, run_env
from .engines.contract import MongoEngine, PostgresEngine
from .engines.pg_sandbox import ADMIN_ROLE
from .engines.selection import Choice, build_mongo, build_postgres, choose_mongo, choose_postgres
from .engines.selection import preload as preload_engines
from .errors import DrillFailure, GrimoireDrillError, HarnessError
from .expectations import Expectations
from .export_counts import ExportCounts
from .pg_source import source_row_counts
from .restore.mongo import MongoRestore, restore_mongo
from .restore.postgres import PostgresRestore, pick_dump, restore_postgres

Progress = Callable[..., None]  # (line, transient=False): transient lines may be overwritten or thinned
SIGNAL_CHECK_S = 0.2   # how soon the main thread sees Ctrl-C/SIGTERM while restore threads run
THREAD_STOP_WAIT_S = 120.0  # how long close() waits for the engine threads once they were told to stop


@dataclass
class PhaseRecord:
    name: str
    seconds: float
    status: str               # ok | failed | skipped
    detail: dict[str, Any] = field(default_factory=dict)
    started_s: float | None = None   # since the run began: phases overlap (engines start while the archive is read)


@dataclass
class Outcome:
    """A stage's value or the failure it raised (re-raised to every consumer)."""

    value: Any = None
    error: BaseException | None = None

    def get(self) -> Any:
        if self.error is not None:
            # a fresh traceback each time: re-raising one object would grow it with every check
            raise self.error.with_traceback(None) from None
        return self.value


def _wait_noticing_signals(futures: list[Future]) -> None:
    """Wait for the restore threads in short slices, then raise what they raised.

    Python runs signal handlers in the main thread only, and a signal the kernel hands to a
    restore thread does not wake the main thread's wait: with one long wait, Ctrl-C or SIGTERM
    would go unnoticed until a whole restore had finished. (Blocking the signals in the restore
    threads instead would block them in pg_restore too: children inherit the signal mask.)
    """
    while wait(futures, timeout=SIGNAL_CHECK_S).not_done:
        pass
    for future in futures:
        future.result()


@dataclass
class DatabaseState:
    """One database after the prepare step: its engine choice, engine and restore result."""

    choice: Choice | None = None
    engine: MongoEngine | PostgresEngine | None = None
    starting: MongoEngine | PostgresEngine | None = None  # the engine while it starts, so an interrupt can cancel it
    restore: Outcome = field(default_factory=Outcome)
    start_seconds: float = 0.0
    start_began: float | None = None  # perf_counter when its engine start began


class DrillSession:
    def __init__(self, config: DrillConfig, expectations: Expectations, run_id: str,
                 progress: Progress | None = None):
        self.config = config
        self.expectations = expectations
        self.run_id = run_id
        self.progress = progress
        self.started_at = datetime.now(timezone.utc)
        self.clock_start = time.perf_counter()    # the same moment on the monotonic clock phases use
        self.now = config.now if config.now is not None else self.started_at
        self.phases: list[PhaseRecord] = []
        self._running: list[str] = []             # phases under way now, in the order they began
        self._deadline: RunDeadline | None = None
        self.failures: list[GrimoireDrillError] = []
        self._stages: dict[str, Outcome] = {}
        self._lock = threading.RLock()            # stages (re-entrant: a stage may need another)
        self._records_lock = threading.Lock()     # phase records, appended from restore threads
        self._prepare_lock = threading.Lock()     # never held by the restore threads themselves
        self._engines: list[Any] = []             # started engines, stopped in reverse by close()
        self._engines_lock = threading.Lock()     # close() (main thread) against a start (restore thread)
        self._closed = False
        self._temp: Path | None = None
        self._temp_lock = threading.Lock()
        self._export_counts: ExportCounts | None = None
        self.mongo = DatabaseState()
        self.postgres = DatabaseState()
        self._prepared = False
        self._workers: ThreadPoolExecutor | None = None   # the two per-database threads: start, then restore
        self._work: list[Future] = []
        self._archive_ready = threading.Event()   # set once the extract stage has an outcome (or on close)
        self.prepared_at: float | None = None     # perf_counter when both databases were restored

    # -- plumbing --------------------------------------------------------------------------
    def say(self, line: str, transient: bool = False) -> None:
        if self.progress is not None:
            self.progress(line, transient=transient)

    def record(self, name: str, seconds: float, status: str, *, began: float | None = None, **detail: Any) -> None:
        """A phase that just ended after ``seconds`` (or that began at perf_counter ``began``)."""
        began = time.perf_counter() - seconds if began is None else began
        with self._records_lock:
            self.phases.append(PhaseRecord(name, round(seconds, 3), status, detail,
                                           round(max(0.0, began - self.clock_start), 3)))

    @contextmanager
    def running(self, phase: str):
        """Mark ``phase`` as under way while the block runs: what a timeout names."""
        with self._records_lock:
            self._running.append(phase)
        try:
            yield
        finally:
            with self._records_lock:
                self._running.remove(phase)

    def current_phase(self) -> str:
        """The phases under way (restores overlap), else checks once the backup was located, else setup.

        No lock: the timeout's signal handler calls this on the main thread, which may hold it.
        """
        running = list(dict.fromkeys(tuple(self._running)))  # one copy, atomic under the GIL
        if running:
            return ", ".join(running)
        return "checks" if self.has_stage("locate") else "setup"

    # -- the run's deadline --------------------------------------------------------------------
    def arm_deadline(self) -> None:
        """Start the run-wide timeout (``--timeout``, else ``limits.run_timeout_s``), counted from the run's start.

        Idempotent (pre-migration rounds share one session, and one deadline); ``close`` disarms it
        before cleaning up. Raises RunTimedOut at once when the time is already up.
        """
        if self._deadline is not None or self._closed:
            return
        seconds = self.config.timeout if self.config.timeout is not None else self.expectations.limits.run_timeout_s
        self._deadline = RunDeadline(seconds, self.current_phase)
        self._deadline.arm(elapsed=time.perf_counter() - self.clock_start)

    @property
    def timed_out(self) -> str | None:
        """The timeout's message once the deadline fired ("the drill timed out after … during …")."""
        return self._deadline.message if self._deadline is not None else None

    def _fail(self, failure: GrimoireDrillError) -> None:
        with self._records_lock:
            self.failures.append(failure)

    def _stage(self, name: str, compute: Callable[[], Any], phase: str | None = None) -> Any:
        """Run ``compute`` once; remember its value or its failure; time it as ``phase``."""
        with self._lock:
            if name not in self._stages:
                started = time.perf_counter()
                outcome = Outcome()
                try:
                    with self.running(phase) if phase is not None else nullcontext():
                        outcome.value = compute()
                except GrimoireDrillError as failure:
                    outcome.error = failure
                    self._fail(failure)
                if phase is not None:
                    self.record(phase, time.perf_counter() - started, "failed" if outcome.error else "ok")
                self._stages[name] = outcome
            return self._stages[name].get()

    def has_stage(self, name: str) -> bool:
        """True once a stage ran (whatever its outcome): summaries read only what was done."""
        return name in self._stages

    @property
    def temp_dir(self) -> Path:
        with self._temp_lock:  # engines start in their threads while the main thread extracts
            return self._make_temp_dir()

    def _make_temp_dir(self) -> Path:
        if self._temp is None:
            parent = self.config.temp_dir if self.config.temp_dir is not None else Path(tempfile.gettempdir())
            try:
                self._temp = Path(tempfile.mkdtemp(prefix=f"gd-{self.run_id}-", dir=parent))
                self._temp.chmod(0o711)  # the local PostgreSQL runs as another OS user below it
                (self._temp / OWNER_FILE).write_text(owner_tag() + "\n")  # killed? the next run's janitor sees it
            except OSError as exc:
                raise HarnessError(f"cannot create the run's temp dir: {exc.strerror}", where=str(parent),
                                   fix="pass --temp-dir pointing at a writable folder with free space") from None
        return self._temp

    def display(self, text: str) -> str:
        """Paths inside the run's temp copy shown from ``backup_<id>/`` on (the temp dir is gone afterwards)."""
        if self._temp is None:
            return text
        return text.replace(str(self._temp / "backup") + "/", "")

    def close(self) -> None:
        """Stop every engine and remove the temp dir, whatever happened before; safe to call twice.

        An engine still starting in a restore thread (a second Ctrl-C cut prepare's wait short)
        sees ``_closed`` when its start ends and stops itself (see ``_engine``).
        """
        if self._deadline is not None:
            self._deadline.disarm()  # a timeout must not cut the cleanup short
        with self._engines_lock:
            self._closed = True
            workers = self._workers
        if workers is not None:
            if any(not future.done() for future in self._work):
                self.cancel()  # interrupted, or no check ever needed the restore: end what they run
            self._archive_ready.set()
            stuck = wait(self._work, timeout=THREAD_STOP_WAIT_S).not_done
            workers.shutdown(wait=not stuck)
            if stuck:  # never hang the run on a thread that cannot end: the process exit takes it
                self.say(f"warning: {len(stuck)} engine thread(s) did not stop within {THREAD_STOP_WAIT_S:.0f}s; "
                         "leaving them to the process exit")
        with self._engines_lock:
            engines, self._engines = self._engines[::-1], []
        if self._export_counts is not None:
            self._export_counts.close()
        # The extracted backup (gigabytes, thousands of files) goes while the engines stop: unlinks
        # wait on the disk, not on the GIL.
        remover = None
        if self._temp is not None and (self._temp / "backup").is_dir():
            remover = threading.Thread(target=shutil.rmtree, args=(self._temp / "backup",),
                                       kwargs={"ignore_errors": True}, name="remove-extraction")
            remover.start()
        try:
            with ExitStack() as stack:
                for engine in engines:
                    stack.push(engine)  # each engine's __exit__, even if another one's raised
        finally:
            if remover is not None:
                remover.join()
            if self._temp is not None:
                shutil.rmtree(self._temp, ignore_errors=True)
                self._temp = None

    def cancel(self) -> None:
        """Interrupted (main thread): end the engines' running tools now, so restore threads return."""
        for state in (self.mongo, self.postgres):
            engine = state.engine if state.engine is not None else state.starting
            if engine is not None:
                engine.cancel()
        if self._export_counts is not None:
            self._export_counts.close()

    # -- stages ----------------------------------------------------------------------------
    def located(self) -> archive.BackupRef:
        def locate() -> archive.BackupRef:
            if self.config.backups is None:
                raise HarnessError("no BACKUPS given", fix="grimoire-drill run /path/to/backups (or --drill-backups)")
            ref = archive.locate(self.config.backups, self.config.backup_timezone)
            self.say(f"backup: {ref.name} ({ref.size_bytes:,} bytes) from {ref.path}")
            return ref
        return self._stage("locate", locate, "locate")

    def extracted(self) -> archive.Extracted:
        def extract() -> archive.Extracted:
            if self._closed:
                raise HarnessError("the archive was not read: the drill is stopping", fix="nothing to do: it was interrupted")
            ref = self.located()
            self.say(f"archive: verifying and extracting {ref.path.name}")
            result = archive.extract(ref, self.temp_dir / "backup", passphrase=self.config.read_passphrase(),
                                     limits=self.expectations.limits,
                                     progress=self._byte_progress, run_tags=run_env(self.run_id))
            return result
        try:
            return self._stage("extract", extract, "archive")
        finally:
            self._archive_ready.set()

    def _byte_progress(self, done: int, total: int) -> None:
        self.say(f"archive: {done / 1e6:,.1f} / {total / 1e6:,.1f} MB read", transient=True)

    def backup_info(self) -> dict[str, str]:
        return self._stage("backup_info", lambda: archive.read_backup_info(self.extracted().root,
                                                                            self.expectations.limits))

    def mongo_layout(self) -> dict[str, dict[str, CollectionDump]]:
        def scan() -> dict[str, dict[str, CollectionDump]]:
            root = self.extracted().root / "mongodb"
            if not root.is_dir():
                raise DrillFailure("no mongodb/ folder in the backup", where=str(self.located().path),
                                   fix="check the backup job's mongodump step")
            return scan_mongodump(root, self.expectations.limits)
        return self._stage("mongo_layout", scan)

    def export_counts(self) -> ExportCounts:
        """The JSON exports' object counts, started once (in the background when they are big)."""
        with self._lock:
            if self._export_counts is None:
                root = self.extracted().root
                self._export_counts = ExportCounts([root / name for name, _ in self.expectations.exports],
                                                   self.run_id, limits=self.expectations.limits).start()
            return self._export_counts

    def upload_files(self) -> frozenset[str]:
        """Regular files under uploads/, as paths relative to it: one walk serves the count and every lookup.

        A link to another upload is that upload; the walk is the archive's (never enters a link).
        """
        def walk() -> frozenset[str]:
            uploads = self.extracted().root / "uploads"
            return archive.regular_files(uploads) if uploads.is_dir() else frozenset()
        return self._stage("upload_files", walk)

    def postgres_dump(self) -> Path:
        return self._stage("postgres_dump", lambda: pick_dump(self.extracted().root / "postgresql"))

    # -- prepare: start engines and restore, both databases at once -------------------------
    def start_engines(self) -> None:
        """Start both engines in the background now; each restores as soon as the archive is extracted.

        An engine needs nothing from the archive, so its start (initdb, a container) runs while
        the archive is hashed and extracted instead of after it. Idempotent.
        """
        with self._engines_lock:
            if self._workers is not None or self._closed:
                return
            preload_engines()  # on this (main) thread: see engines.selection.preload
            self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepare")
            self._work = [self._workers.submit(self._prepare_mongo), self._workers.submit(self._prepare_postgres)]

    def prepare(self) -> None:
        with self._prepare_lock:
            if self._prepared:
                return
            self._prepared = True
            self.start_engines()
            try:
                self.extracted()
            except GrimoireDrillError:
                pass  # the restore threads see the failure and record it against both databases
            else:
                self.export_counts()  # counted by a child process while the restores run
            try:
                _wait_noticing_signals(self._work)
            except BaseException:  # Ctrl-C / SIGTERM: do not wait for a whole restore to finish
                self.cancel()
                raise
            self.prepared_at = time.perf_counter()
            start = max(self.mongo.start_seconds, self.postgres.start_seconds)
            failed = self.mongo.engine is None or self.postgres.engine is None
            began = [s.start_began for s in (self.mongo, self.postgres) if s.start_began is not None]
            self.record("start", start, "failed" if failed else "ok", began=min(began) if began else None)

    def _engine(self, state: DatabaseState, choose, build, database: str) -> bool:
        with self.running(f"start ({database})"):
            return self._start_engine(state, choose, build)

    def _start_engine(self, state: DatabaseState, choose, build) -> bool:
        started = state.start_began = time.perf_counter()
        try:
            state.choice = choose()
            self.say(f"engine {state.choice.line()}")
            engine = build(state.choice)
            state.starting = engine
            with self._engines_lock:
                closed = self._closed
            if closed:
                raise HarnessError("not started: the drill is stopping", fix="nothing to do: it was interrupted")
            engine.__enter__()  # on failure the engine has already removed what it started
            self._say_janitor(getattr(engine, "janitor", None))
            with self._engines_lock:
                if not self._closed:
                    self._engines.append(engine)
                    state.engine = engine
                    if engine.info.note.startswith("WARNING"):  # e.g. a superuser --postgres-dsn
                        self.say(f"engine {state.choice.database}: {engine.info.note}")
                    return True
            engine.__exit__(None, None, None)  # close() ran while we started: stop it here
            raise HarnessError("stopped right after starting: the drill is stopping",
                               fix="nothing to do: it was interrupted")
        except GrimoireDrillError as failure:
            state.restore.error = failure
            self._fail(failure)
            return False
        except Exception as exc:  # an engine library failing in an unforeseen way is a harness error
            failure = HarnessError(f"engine failed to start: {type(exc).__name__}: {exc}".splitlines()[0],
                                   fix="re-run with -v for the traceback")
            state.restore.error = failure
            self._fail(failure)
            return False
        finally:
            state.start_seconds = time.perf_counter() - started

    def _say_janitor(self, sweep: Any) -> None:
        """What an external engine's janitor removed (strays of killed runs) or had to leave, on the console."""
        for line in sweep.lines() if sweep is not None else ():
            self.say(line)

    def _restore(self, state: DatabaseState, phase: str, run: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            with self.running(phase):
                state.restore.value = run()
        except GrimoireDrillError as failure:
            state.restore.error = failure
            self._fail(failure)
        except Exception as exc:
            failure = HarnessError(f"{phase} crashed: {type(exc).__name__}: {exc}".splitlines()[0],
                                   fix="re-run with -v for the traceback")
            state.restore.error = failure
            self._fail(failure)
        value = state.restore.value
        ok = state.restore.error is None and getattr(value, "ok", False)
        detail = dict(getattr(value, "detail", {}) or {})
        seconds = time.perf_counter() - started
        for unit in ("documents", "dump_bytes"):
            if detail.get(unit) and seconds > 0:
                detail[f"{unit}_per_s"] = round(detail[unit] / seconds, 1)
        self.record(phase, seconds, "ok" if ok else "failed", **detail)

    def _archive_extracted(self, state: DatabaseState) -> bool:
        """In a restore thread: wait for the extract stage (the main thread runs it); False if it failed."""
        self._archive_ready.wait()
        outcome = self._stages.get("extract")
        if outcome is None or outcome.error is not None:  # None: closing before the archive was read
            state.restore.error = outcome.error if outcome is not None else HarnessError(
                "not restored: the drill is stopping", fix="nothing to do: it was interrupted")
            return False
        return True

    def _prepare_mongo(self) -> None:
        state = self.mongo
        if not self._engine(state, lambda: choose_mongo(self.config),
                            lambda c: build_mongo(c, self.config, self.run_id, self.temp_dir, self.expectations.limits),
                            "mongodb"):
            self.record("restore_mongodb", 0.0, "skipped")
            return
        if not self._archive_extracted(state):
            return
        def run() -> MongoRestore:
            layout = self.mongo_layout()
            skip = set(self.expectations.skip_databases)
            names = [f"{db}.{c}" for db, colls in sorted(layout.items()) if db not in skip for c in sorted(colls)]
            self.say("restore_mongodb: loading " + (", ".join(names) if names else "nothing"))
            result = restore_mongo(state.engine, self.extracted().root / "mongodb", layout,
                                   skip=self.expectations.skip_databases, jobs=self.config.job_count,
                                   limits=self.expectations.limits)
            self.say(f"restore_mongodb: {result.documents:,} documents via {result.method}"
                     + ("" if result.ok else f", {len(result.all_errors())} error(s)"))
            return result
        self._restore(state, "restore_mongodb", run)

    def _prepare_postgres(self) -> None:
        state = self.postgres
        if not self._engine(state, lambda: choose_postgres(self.config),
                            lambda c: build_postgres(c, self.config, self.run_id, self.temp_dir, ADMIN_ROLE,
                                                     self.expectations.limits),
                            "postgresql"):
            self.record("restore_postgresql", 0.0, "skipped")
            return
        if not self._archive_extracted(state):
            return
        def run() -> PostgresRestore:
            self.postgres_dump()
            self.say("restore_postgresql: loading " + self.postgres_dump().name)
            result = restore_postgres(state.engine, self.extracted().root / "postgresql",
                                      self.expectations.pg_database, jobs=self.config.job_count,
                                      owner=self.expectations.pg_user, extensions=self.expectations.extensions,
                                      work_dir=self.temp_dir, limits=self.expectations.limits)
            self.say(f"restore_postgresql: {result.tool} exited {result.returncode}"
                     + ("" if result.ok else f", {len(result.errors)} error(s)"))
            return result
        self._restore(state, "restore_postgresql", run)

    # -- what checks read --------------------------------------------------------------------
    def mongo_restore(self) -> MongoRestore:
        self.prepare()
        return self.mongo.restore.get()

    def postgres_restore(self) -> PostgresRestore:
        self.prepare()
        return self.postgres.restore.get()

    def mongo_database(self, name: str):
        """The restored database (a scratch name on external servers) as a pymongo Database."""
        self.mongo_restore()
        return self.mongo.engine.client()[self.mongo.engine.database_name(name)]

    def postgres_connect(self) -> psycopg.Connection:
        result = self.postgres_restore()
        return psycopg.connect(self.postgres.engine.conninfo(result.database), autocommit=True)

    def mongo_source_counts(self) -> dict[str, dict[str, int | None]]:
        """Documents per collection in the BSON dump, and objects in its JSON export.

        Each database is counted on its own, so a broken MongoDB dump never hides PostgreSQL's counts.
        """
        def mongo() -> dict[str, dict[str, int | None]]:
            root = self.extracted().root
            counts: dict[str, dict[str, int | None]] = {}
            exports = {collection: name for name, collection in self.expectations.exports}
            loaded = self._counted_by_loader()
            for db, colls in sorted(self.mongo_layout().items()):
                if db in self.expectations.skip_databases:
                    continue
                for name, dump in sorted(colls.items()):
                    namespace = f"{db}.{name}"
                    entry: dict[str, int | None] = {"dump": None}
                    if namespace in loaded:
                        entry["dump"] = loaded[namespace]
                    elif dump.bson_path is not None:
                        entry["dump"] = count_bson(dump.bson_path, self.expectations.limits)
                    if db == self.expectations.mongo_database and name in exports:
                        export = root / exports[name]
                        entry["export"] = self.export_counts().count(export) if export.is_file() else None
                    counts[namespace] = entry
            return counts
        return self._stage("source_counts_mongodb", mongo)

    def _counted_by_loader(self) -> dict[str, int]:
        """Documents the native loader read whole from each dump file: the same count, without a second read."""
        restore = self.mongo.restore
        if self.prepared_at is None or restore.error is not None or restore.value is None:
            return {}
        return {c.namespace: c.source_documents for c in restore.value.collections if c.source_documents is not None}

    def postgres_source_counts(self) -> dict[str, int] | None:
        """Rows per table in the restored dump's COPY blocks (None: unreadable without a server)."""
        return self._stage("source_counts_postgresql", lambda: source_row_counts(self.postgres_dump(), self.expectations.limits))

    def source_counts_or_none(self) -> dict[str, Any]:
        """What could be counted, for the summary: a database whose dump is unreadable gives None."""
        counts: dict[str, Any] = {}
        for database, stage in (("mongodb", "source_counts_mongodb"), ("postgresql", "source_counts_postgresql")):
            try:
                counts[database] = self._stages[stage].get() if stage in self._stages else None
            except GrimoireDrillError:
                counts[database] = None
        return counts

    def new_round(self) -> None:
        """Forget what a check round measured (counts), keep the restore: for re-checking after --then."""
        with self._lock:
            self._stages.pop("restored_counts", None)

    def settle_counts(self) -> None:
        """Count while the engines still run, for the summary, even if no check asked for counts.

        Only after a restore: a run of the archive checks alone (``-k archive``) must not start
        servers and restore everything just to fill the summary's counts.
        """
        if not self.has_stage("extract") or self._closed or not self._prepared:  # closed: interrupted
            return
        for stage in (self.mongo_source_counts, self.postgres_source_counts, self.restored_counts):
            try:
                stage()
            except GrimoireDrillError:
                pass  # a broken dump is reported by its checks; count what can be counted

    def restored_counts(self) -> dict[str, Any]:
        def count() -> dict[str, Any]:
            counts: dict[str, Any] = {"mongodb": {}, "postgresql": {}}
            if self.mongo.restore.error is None and self.mongo.restore.value is not None:
                for coll in self.mongo.restore.value.collections:
                    db_name, _, name = coll.target.partition(".")
                    counts["mongodb"][coll.namespace] = self.mongo.engine.document_count(db_name, name)
            if self.postgres.restore.error is None and self.postgres.restore.value is not None:
                with self.postgres_connect() as conn:
                    tables = [row[0] for row in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
                    for table in tables:
                        counts["postgresql"][table] = conn.execute(
                            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            counts["uploads_files"] = len(self.upload_files())
            return counts
        self.prepare()
        return self._stage("restored_counts", count)
