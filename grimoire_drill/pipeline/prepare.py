"""Prepare both databases at once: start each engine on its own thread, restore once the archive is in.

Why threads: an engine needs nothing from the archive, so its start (initdb, a container) runs
while the main thread hashes and extracts the archive, and the two restores overlap. Why the
care around stopping: Ctrl-C, SIGTERM or the run's deadline may land at any point, and every
engine that was started, or is still starting, must be stopped and nothing may hang the run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg

from ..config import DrillConfig
from ..engines.contract import MongoEngine, PostgresEngine
from ..engines.pg_sandbox import ADMIN_ROLE
from ..engines.selection import Choice, build_mongo, build_postgres, choose_mongo, choose_postgres
from ..engines.selection import preload as preload_engines
from ..errors import GrimoireDrillError, HarnessError
from ..expectations import Expectations
from ..restore.mongo import MongoRestore, restore_mongo
from ..restore.postgres import PostgresRestore, restore_postgres
from .backup import BackupStages, Say
from .stages import Outcome, StageRunner

SIGNAL_CHECK_S = 0.2   # how soon the main thread sees Ctrl-C/SIGTERM while restore threads run
THREAD_STOP_WAIT_S = 120.0  # how long close() waits for the engine threads once they were told to stop


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


class EnginePreparer:
    """The two engines and their restores: started once, cancelled on interrupt, stopped by ``close``."""

    def __init__(self, config: DrillConfig, expectations: Expectations, run_id: str, stages: StageRunner,
                 backup: BackupStages, say: Say, choices: tuple[Choice, Choice] | None = None):
        """``choices``: (MongoDB, PostgreSQL) as the preflight chose them; None: chosen when each engine starts."""
        self.config = config
        self.choices = choices
        self.expectations = expectations
        self.run_id = run_id
        self.stages = stages
        self.backup = backup
        self.say = say
        self.mongo = DatabaseState()
        self.postgres = DatabaseState()
        self.prepared = False
        self.prepared_at: float | None = None     # perf_counter when both databases were restored
        self.closed = False
        self._prepare_lock = threading.Lock()     # never held by the restore threads themselves
        self._engines: list[Any] = []             # started engines, stopped in reverse by close()
        self._engines_lock = threading.Lock()     # close() (main thread) against a start (restore thread)
        self._workers: ThreadPoolExecutor | None = None   # the two per-database threads: start, then restore
        self._work: list[Future] = []
        self._active = 0                          # engine threads at work: close() waits for these, not the futures
        self._idle = threading.Condition(self._engines_lock)

    # -- start and restore -----------------------------------------------------------------------
    def start_engines(self) -> None:
        """Start both engines in the background now; each restores as soon as the archive is extracted.

        Idempotent.
        """
        if self._unlocatable() is not None:
            return  # nothing to restore: the checks report why, and no server is started for it
        with self._engines_lock:
            if self._workers is not None or self.closed:
                return
            preload_engines(self.config)  # on this (main) thread: see engines.selection.preload
            self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepare")
            self._work = [self._workers.submit(self._counted, self._prepare_mongo),
                          self._workers.submit(self._counted, self._prepare_postgres)]

    def _counted(self, job: Callable[[], None]) -> None:
        """One engine thread's work, counted by the thread itself, so ``close`` waits for it.

        Why not the futures: a Ctrl-C can land in ``start_engines`` after a thread started but
        before its future was stored (or inside ``submit``, before the pool knows its thread),
        and close() then waited for nothing while an initdb ran on. A thread that starts
        after close() does nothing.
        """
        with self._idle:
            if self.closed:
                return
            self._active += 1
        try:
            job()
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def prepare(self) -> None:
        with self._prepare_lock:
            if self.prepared:
                return
            self.prepared = True
            missing = self._unlocatable()
            if missing is not None:
                for state in (self.mongo, self.postgres):
                    state.restore.error = missing
                return
            self.start_engines()
            try:
                self.backup.extracted()
            except GrimoireDrillError:
                pass  # the restore threads see the failure and record it against both databases
            else:
                self.backup.export_counts()  # counted by a child process while the restores run
            try:
                _wait_noticing_signals(self._work)
            except BaseException:  # Ctrl-C / SIGTERM: do not wait for a whole restore to finish
                self.cancel()
                raise
            self.prepared_at = time.perf_counter()
            start = max(self.mongo.start_seconds, self.postgres.start_seconds)
            failed = self.mongo.engine is None or self.postgres.engine is None
            began = [s.start_began for s in (self.mongo, self.postgres) if s.start_began is not None]
            self.stages.record("start", start, "failed" if failed else "ok", began=min(began) if began else None)

    def _unlocatable(self) -> GrimoireDrillError | None:
        """Why the backup cannot be located (the locate stage's failure), or None when it was found."""
        try:
            self.backup.located()
        except GrimoireDrillError as failure:
            return failure
        return None

    def _engine(self, state: DatabaseState, choose, build, database: str) -> bool:
        with self.stages.running(f"start ({database})"):
            return self._start_engine(state, choose, build)

    def _failed(self, state: DatabaseState, failure: GrimoireDrillError) -> None:
        state.restore.error = failure
        self.stages.fail(failure)

    def _start_engine(self, state: DatabaseState, choose, build) -> bool:
        started = state.start_began = time.perf_counter()
        try:
            state.choice = choose()
            self.say(f"engine {state.choice.line()}")
            engine = build(state.choice)
            state.starting = engine
            with self._engines_lock:
                closed = self.closed
            if closed:
                raise HarnessError("not started: the drill is stopping", fix="nothing to do: it was interrupted")
            engine.__enter__()  # on failure the engine has already removed what it started
            self._say_janitor(getattr(engine, "janitor", None))
            with self._engines_lock:
                if not self.closed:
                    self._engines.append(engine)
                    state.engine = engine
                    if engine.info.note.startswith("WARNING"):  # e.g. a superuser --postgres-dsn
                        self.say(f"engine {state.choice.database}: {engine.info.note}")
                    return True
            engine.__exit__(None, None, None)  # close() ran while we started: stop it here
            raise HarnessError("stopped right after starting: the drill is stopping",
                               fix="nothing to do: it was interrupted")
        except GrimoireDrillError as failure:
            self._failed(state, failure)
            return False
        except Exception as exc:  # an engine library failing in an unforeseen way is a harness error
            self._failed(state, HarnessError(f"engine failed to start: {type(exc).__name__}: {exc}".splitlines()[0],
                                             fix="re-run with -v for the traceback"))
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
            with self.stages.running(phase):
                state.restore.value = run()
        except GrimoireDrillError as failure:
            self._failed(state, failure)
        except Exception as exc:
            self._failed(state, HarnessError(f"{phase} crashed: {type(exc).__name__}: {exc}".splitlines()[0],
                                             fix="re-run with -v for the traceback"))
        value = state.restore.value
        ok = state.restore.error is None and getattr(value, "ok", False)
        detail = dict(getattr(value, "detail", {}) or {})
        seconds = time.perf_counter() - started
        for unit in ("documents", "dump_bytes"):
            if detail.get(unit) and seconds > 0:
                detail[f"{unit}_per_s"] = round(detail[unit] / seconds, 1)
        self.stages.record(phase, seconds, "ok" if ok else "failed", **detail)

    def _archive_extracted(self, state: DatabaseState) -> bool:
        """In a restore thread: wait for the extract stage (the main thread runs it); False if it failed."""
        self.backup.extract_done.wait()
        outcome = self.stages.outcome("extract")
        if outcome is None or outcome.error is not None:  # None: closing before the archive was read
            state.restore.error = outcome.error if outcome is not None else HarnessError(
                "not restored: the drill is stopping", fix="nothing to do: it was interrupted")
            return False
        return True

    def _prepare_mongo(self) -> None:
        state, backup, expectations = self.mongo, self.backup, self.expectations
        if not self._engine(state, lambda: self.choices[0] if self.choices else choose_mongo(self.config),
                            lambda c: build_mongo(c, self.config, self.run_id, backup.temp_dir, expectations.limits),
                            "mongodb"):
            self.stages.record("restore_mongodb", 0.0, "skipped")
            return
        if not self._archive_extracted(state):
            return
        def run() -> MongoRestore:
            layout = backup.mongo_layout()
            skip = set(expectations.skip_databases)
            names = [f"{db}.{c}" for db, colls in sorted(layout.items()) if db not in skip for c in sorted(colls)]
            self.say("restore_mongodb: loading " + (", ".join(names) if names else "nothing"))
            result = restore_mongo(state.engine, backup.extracted().root / "mongodb", layout,
                                   skip=expectations.skip_databases, jobs=self.config.job_count,
                                   limits=expectations.limits, content_sample=expectations.content.sample)
            self.say(f"restore_mongodb: {result.documents:,} documents via {result.method}"
                     + ("" if result.ok else f", {len(result.all_errors())} error(s)"))
            return result
        self._restore(state, "restore_mongodb", run)

    def _prepare_postgres(self) -> None:
        state, backup, expectations = self.postgres, self.backup, self.expectations
        if not self._engine(state, lambda: self.choices[1] if self.choices else choose_postgres(self.config),
                            lambda c: build_postgres(c, self.config, self.run_id, backup.temp_dir, ADMIN_ROLE,
                                                     expectations.limits),
                            "postgresql"):
            self.stages.record("restore_postgresql", 0.0, "skipped")
            return
        if not self._archive_extracted(state):
            return
        def run() -> PostgresRestore:
            backup.postgres_dump()
            self.say("restore_postgresql: loading " + backup.postgres_dump().name)
            result = restore_postgres(state.engine, backup.extracted().root / "postgresql",
                                      expectations.pg_database, jobs=self.config.job_count,
                                      owner=expectations.pg_user, extensions=expectations.extensions,
                                      work_dir=backup.temp_dir, limits=expectations.limits)
            self.say(f"restore_postgresql: {result.tool} exited {result.returncode}"
                     + ("" if result.ok else f", {len(result.errors)} error(s)"))
            return result
        self._restore(state, "restore_postgresql", run)

    # -- what checks read ------------------------------------------------------------------------
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

    def in_process_documents(self, name: str):
        """``collection -> decoded documents`` when MongoDB is the in-process store, else None.

        The store already holds every document in this process, so reading it there costs no copy
        (mongomock's ``find`` deep-copies each document: seconds per 10,000 ingredients).
        """
        self.mongo_restore()
        engine = self.mongo.engine
        if not engine.info.simulated:
            return None
        import bson

        database = engine.database_name(name)
        return lambda collection: (bson.decode(body) for body in engine.stored_documents(database, collection))

    def postgres_connect(self) -> psycopg.Connection:
        result = self.postgres_restore()
        return psycopg.connect(self.postgres.engine.conninfo(result.database), autocommit=True)

    # -- stopping --------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Interrupted (main thread): end the engines' running tools now, so restore threads return."""
        for state in (self.mongo, self.postgres):
            engine = state.engine if state.engine is not None else state.starting
            if engine is not None:
                engine.cancel()
        self.backup.stop_export_counts()

    def close(self) -> None:
        """Stop every engine and remove the temp dir, whatever happened before; safe to call twice.

        An engine still starting in a restore thread (a second Ctrl-C cut prepare's wait short)
        sees ``closed`` when its start ends and stops itself (see ``_start_engine``).
        """
        with self._engines_lock:
            self.closed = self.backup.closed = True
            workers = self._workers
        if workers is not None:
            if self._active:
                self.cancel()  # interrupted, or no check ever needed the restore: end what they run
            self.backup.extract_done.set()
            with self._idle:
                ended = self._idle.wait_for(lambda: self._active == 0, timeout=THREAD_STOP_WAIT_S)
            workers.shutdown(wait=ended)
            if not ended:  # never hang the run on a thread that cannot end: the process exit takes it
                self.say(f"warning: {self._active} engine thread(s) did not stop within {THREAD_STOP_WAIT_S:.0f}s; "
                         "leaving them to the process exit")
        with self._engines_lock:
            engines, self._engines = self._engines[::-1], []
        remover = self.backup.start_removing_extraction()  # while the engines stop
        try:
            with ExitStack() as stack:
                for engine in engines:
                    stack.push(engine)  # each engine's __exit__, even if another one's raised
        finally:
            if remover is not None:
                remover.join()
            self.backup.remove_temp_dir()
