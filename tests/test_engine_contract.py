"""Every engine class keeps the contract the restore layer, the session and the checks rely on.

``engines/contract.py`` lists what they call; these tests check that each of the seven engine
classes has every member with a signature that accepts the contract's calls, that the
lifecycle base stops what a failed start began, and that every engine says "not running" in the
same words. No server is needed: the engines are built, not started (a start that fails is real:
a connection refused by a closed port).
"""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest

from grimoire_drill.engines.base import EngineInfo, new_run_id
from grimoire_drill.engines.contract import Engine, MongoEngine, PostgresEngine
from grimoire_drill.engines.docker import DockerMongo, DockerPostgres
from grimoire_drill.engines.external import ExternalMongo, ExternalPostgres
from grimoire_drill.engines.lifecycle import NOT_RUNNING_FIX, EngineLifecycle
from grimoire_drill.engines.local_mongo import LocalMongo
from grimoire_drill.engines.local_postgres import LocalPostgres
from grimoire_drill.engines.simulated_mongo import SimulatedMongo
from grimoire_drill.errors import HarnessError


def _closed_port() -> int:
    """A loopback port nothing listens on (bound then released): a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mongo_engines() -> dict[str, object]:
    run_id = new_run_id()
    return {
        "local": LocalMongo(run_id=run_id, mongod="/nonexistent/mongod"),  # built, never started
        "docker": DockerMongo(run_id, image="mongo:7.0"),
        "external": ExternalMongo(run_id=run_id, uri=f"mongodb://127.0.0.1:{_closed_port()}/"),
        "simulated": SimulatedMongo(run_id=run_id),
    }


def _postgres_engines() -> dict[str, object]:
    run_id = new_run_id()
    return {
        "local": LocalPostgres(run_id=run_id, bindir=Path("/nonexistent/bin")),  # built, never started
        "docker": DockerPostgres(run_id, image="postgres:15-alpine"),
        "external": ExternalPostgres(run_id=run_id, dsn=f"postgresql://drill:secret@127.0.0.1:{_closed_port()}/postgres"),
    }


def _members(protocol: type) -> list[str]:
    """The members a Protocol declares, its own and its bases' (``__enter__``/``__exit__`` included)."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass.__module__ != "grimoire_drill.engines.contract":
            continue  # Protocol, Generic, object
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {name for name in vars(klass) if not name.startswith("_") or name in {"__enter__", "__exit__"}}
    return sorted(names)


def _call_shape(function) -> list[tuple[str, inspect._ParameterKind, bool]]:
    parameters = list(inspect.signature(function).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty) for p in parameters]


def _accepts(contract_fn, engine_fn) -> list[str]:
    """What a call written against ``contract_fn`` would get wrong on ``engine_fn`` (empty: nothing)."""
    wanted = {name: (kind, has_default) for name, kind, has_default in _call_shape(contract_fn)}
    offered = {name: (kind, has_default) for name, kind, has_default in _call_shape(engine_fn)}
    problems = []
    for name, (kind, has_default) in wanted.items():
        if name not in offered:
            problems.append(f"no parameter {name}")
        elif offered[name][0] != kind:
            problems.append(f"{name} is {offered[name][0].description}, the contract has {kind.description}")
        elif has_default and not offered[name][1]:
            problems.append(f"{name} has no default")
    for name, (kind, has_default) in offered.items():
        if name not in wanted and not has_default and kind not in {inspect.Parameter.VAR_POSITIONAL,
                                                                   inspect.Parameter.VAR_KEYWORD}:
            problems.append(f"extra required parameter {name}")
    return problems


@pytest.mark.parametrize(("protocol", "engines"), [(MongoEngine, _mongo_engines), (PostgresEngine, _postgres_engines)],
                         ids=["mongo", "postgres"])
def test_every_engine_class_has_every_member_of_its_contract(protocol, engines):
    for kind, engine in engines().items():
        assert isinstance(engine, protocol), f"{type(engine).__name__} is not a {protocol.__name__}"
        assert isinstance(engine, EngineLifecycle), f"{type(engine).__name__} is not on the lifecycle base"
        for name in _members(protocol):
            declared = inspect.getattr_static(protocol, name, None)
            offered = inspect.getattr_static(type(engine), name, None)
            if declared is None:  # a data attribute (``info``): set by the engine itself
                assert isinstance(getattr(engine, name), EngineInfo), f"{kind}: {type(engine).__name__}.{name}"
            elif callable(declared) and not isinstance(declared, property):
                assert callable(offered), f"{kind}: {type(engine).__name__}.{name} is not a method"
                problems = _accepts(declared, offered)
                assert problems == [], f"{kind}: {type(engine).__name__}.{name}: {'; '.join(problems)}"
            elif isinstance(declared, property):
                assert isinstance(offered, property), f"{kind}: {type(engine).__name__}.{name} is not a property"


def test_the_contract_is_not_vacuous():
    """An engine of the other database is not taken for one of this: the check looks at members."""
    mongo, postgres = _mongo_engines(), _postgres_engines()
    assert not any(isinstance(engine, PostgresEngine) for engine in mongo.values())
    assert not any(isinstance(engine, MongoEngine) for engine in postgres.values())
    assert not isinstance(object(), Engine)
    assert {"client", "document_count", "has_tool", "run_tool", "cancel", "info", "url"} <= set(_members(MongoEngine))
    assert {"conninfo", "create_sandbox", "run_tool", "database_name", "__enter__"} <= set(_members(PostgresEngine))


def test_every_engine_says_not_running_in_the_same_words():
    messages = {}
    for kind, engine in _mongo_engines().items():
        with pytest.raises(HarnessError) as caught:
            engine.client()
        messages[f"mongo {kind}"] = caught.value
    for kind, engine in _postgres_engines().items():
        with pytest.raises(HarnessError) as caught:
            engine.conninfo("postgres")
        messages[f"postgres {kind}"] = caught.value
    titles = {type(engine).title for engine in [*_mongo_engines().values(), *_postgres_engines().values()]}
    for where, error in messages.items():
        assert error.what in {f"{title} is not running" for title in titles}, where
        assert error.fix == NOT_RUNNING_FIX, where
    assert len(titles) == 7  # each engine named in its own words, the sentence the same


def test_cancel_before_start_is_seen_by_every_engine():
    for engine in [*_mongo_engines().values(), *_postgres_engines().values()]:
        assert not engine.cancelled
        engine.cancel()
        engine.cancel()  # idempotent
        assert engine.cancelled, type(engine).__name__


class _Recorder(EngineLifecycle):
    """An engine whose start begins something real (a file) and then fails the way it is told."""

    kind = "test"
    title = "the test engine"

    def __init__(self, marker: Path, failure: BaseException):
        super().__init__(new_run_id())
        self.marker = marker
        self.failure = failure

    def start(self) -> None:
        self.marker.write_text("started")
        raise self.failure

    def stop(self) -> None:
        self.marker.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.marker.exists()


@pytest.mark.parametrize("failure", [HarnessError("boom", fix="none"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_failed_start_stops_what_it_began_before_raising(tmp_path, failure):
    engine = _Recorder(tmp_path / "server", failure)
    with pytest.raises(type(failure)):
        with engine:
            pytest.fail("the block must not run after a failed start")
    assert not (tmp_path / "server").exists()
    with pytest.raises(HarnessError, match="the test engine is not running"):
        engine._require_running()


def test_an_external_engine_that_cannot_connect_keeps_nothing_open():
    """Real failed starts (connection refused): the error names the server, and nothing stays open."""
    postgres = _postgres_engines()["external"]
    with pytest.raises(HarnessError, match="did not answer") as caught:
        with postgres:
            pass
    assert "secret" not in caught.value.line()
    assert not postgres.running and postgres._presence is None
