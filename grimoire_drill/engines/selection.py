"""Pick one engine per database and say why, in one line each.

``auto``: docker when a daemon answers and the image is here (or pullable), else local
binaries, else (MongoDB only) the simulated store — refused under --require-real.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import DrillConfig
from ..errors import HarnessError
from ..limits import Limits
from .contract import MongoEngine, PostgresEngine
from .local_mongo import find_mongod
from .local_postgres import find_bindir


@dataclass(frozen=True)
class Choice:
    """The engine picked for one database and the reason, shown to the user and in the report."""

    database: str  # "mongodb" | "postgresql"
    kind: str
    reason: str

    def line(self) -> str:
        return f"{self.database}: {self.kind} ({self.reason})"


def _docker_ready(image: str) -> tuple[bool, str]:
    from .docker import docker_status  # lazy: the docker SDK is only needed here

    ok, why = docker_status()
    if not ok:
        return False, why
    return _image_available(image)


def _image_available(image: str) -> tuple[bool, str]:
    """Present locally, or pullable now; a registry that cannot be reached means 'not available'."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    client = docker.from_env()
    try:
        client.images.get(image)
        return True, "present"
    except ImageNotFound:
        pass
    try:
        client.images.pull(image)
        return True, "pulled"
    except DockerException as exc:
        return False, f"image {image} absent and not pullable ({type(exc).__name__})"
    finally:
        client.close()


def choose_mongo(config: DrillConfig) -> Choice:
    kind = config.mongo_kind
    if kind != "auto":
        if kind == "simulated" and config.require_real:
            raise HarnessError("MongoDB would be simulated but --require-real was given", fix="choose a real engine")
        return Choice("mongodb", kind, "chosen explicitly")
    if config.mongo_uri:
        return Choice("mongodb", "external", "--mongo-uri given")
    reasons = []
    ready, why = _docker_ready(config.mongo_image)
    if ready:
        return Choice("mongodb", "docker", f"Docker answers and {config.mongo_image} is available")
    reasons.append(f"docker: {why}")
    if find_mongod():
        return Choice("mongodb", "local", "mongod found on PATH; " + "; ".join(reasons))
    reasons.append("local: no mongod on PATH")
    if config.require_real:
        raise HarnessError("no real MongoDB engine available (" + "; ".join(reasons) + ") and --require-real given",
                           fix="start Docker with a mongo:7.0 image, install mongod, or pass --mongo-uri")
    return Choice("mongodb", "simulated", "no real MongoDB: " + "; ".join(reasons))


def choose_postgres(config: DrillConfig) -> Choice:
    kind = config.postgres_kind
    if kind != "auto":
        return Choice("postgresql", kind, "chosen explicitly")
    if config.postgres_dsn:
        return Choice("postgresql", "external", "--postgres-dsn given")
    ready, why = _docker_ready(config.postgres_image)
    if ready:
        return Choice("postgresql", "docker", f"Docker answers and {config.postgres_image} is available")
    bindir = find_bindir()
    if bindir is not None:
        return Choice("postgresql", "local", f"PostgreSQL binaries in {bindir}; docker: {why}")
    raise HarnessError(f"no PostgreSQL engine available (docker: {why}; no initdb/pg_ctl found)",
                       fix="start Docker, install postgresql-15, or pass --postgres-dsn")


def build_mongo(choice: Choice, config: DrillConfig, run_id: str, temp_root: Path | None,
                limits: Limits = Limits()) -> MongoEngine:
    """A not-yet-started engine object for the choice (entered by the caller's ExitStack)."""
    factories: dict[str, Callable[[], MongoEngine]] = {
        "docker": lambda: _docker().DockerMongo(run_id=run_id, image=config.mongo_image,
                                                output_cap=limits.max_tool_output_bytes),
        "local": lambda: _local_mongo()(run_id=run_id, temp_root=temp_root, output_cap=limits.max_tool_output_bytes),
        "external": lambda: _external().ExternalMongo(run_id=run_id, uri=config.mongo_uri),
        "simulated": lambda: _simulated()(run_id=run_id),
    }
    return factories[choice.kind]()


def build_postgres(choice: Choice, config: DrillConfig, run_id: str, temp_root: Path | None,
                   superuser: str, limits: Limits = Limits()) -> PostgresEngine:
    factories: dict[str, Callable[[], PostgresEngine]] = {
        "docker": lambda: _docker().DockerPostgres(run_id=run_id, image=config.postgres_image, superuser=superuser,
                                                   output_cap=limits.max_tool_output_bytes),
        "local": lambda: _local_postgres()(run_id=run_id, temp_root=temp_root, superuser=superuser,
                                            output_cap=limits.max_tool_output_bytes),
        "external": lambda: _external().ExternalPostgres(run_id=run_id, dsn=config.postgres_dsn,
                                                         output_cap=limits.max_tool_output_bytes),
    }
    return factories[choice.kind]()


def preload(config: DrillConfig) -> None:
    """Import the module of every engine this run may choose (and so mongomock or the docker SDK) now.

    Why: call this on the main thread before the engine threads start. A Ctrl-C or SIGTERM that
    lands on the main thread in the middle of an import can leave that module's import lock held
    (CPython 3.11), and an engine thread importing the same module then waits for ever: the drill
    hangs instead of exiting 130. Imported up front, the engine threads import nothing. Only the
    kinds this run can end up with are imported (``auto`` may become any of them).
    """
    for database, kind in (("mongodb", config.mongo_kind), ("postgresql", config.postgres_kind)):
        for each in AUTO_CANDIDATES if kind == "auto" else (kind,):
            loader = _ENGINE_MODULES.get((database, each))
            if loader is not None:
                loader()


def _docker():
    from . import docker
    return docker


def _external():
    from . import external
    return external


def _local_mongo():
    from .local_mongo import LocalMongo
    return LocalMongo


def _local_postgres():
    from .local_postgres import LocalPostgres
    return LocalPostgres


def _simulated():
    from .simulated_mongo import SimulatedMongo
    return SimulatedMongo


AUTO_CANDIDATES = ("docker", "local", "simulated")   # what --engine auto may pick (simulated: MongoDB only)
_ENGINE_MODULES = {("mongodb", "docker"): _docker, ("mongodb", "local"): _local_mongo, ("mongodb", "external"): _external,
                   ("mongodb", "simulated"): _simulated, ("postgresql", "docker"): _docker,
                   ("postgresql", "local"): _local_postgres, ("postgresql", "external"): _external}
