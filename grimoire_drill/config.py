"""One frozen DrillConfig, built from one table of options.

The same table feeds the CLI (``grimoire-drill run --max-age-hours``), the pytest plugin
(``pytest drills/ --drill-max-age-hours``, ini ``grimoire_drill_max_age_hours``), the
environment (``GRIMOIRE_DRILL_MAX_AGE_HOURS``) and the fields of ``DrillConfig`` itself, so
adding a setting is one line of ``OPTIONS``: every way of running shares one name, one type,
one default and one help text, and one precedence: flag (or ini) > environment > default.
"""

from __future__ import annotations

import os
import re
import typing
from dataclasses import dataclass, field, make_dataclass
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from pathlib import Path
from typing import Any, Callable, Optional

from .deadline import parse_seconds
from .errors import HarnessError
from .text import quote

ENGINE_KINDS = ("auto", "docker", "local", "external", "simulated")
ENV_PREFIX = "GRIMOIRE_DRILL_"
RUN_ID_PATTERN = re.compile(r"^[0-9]{14}[0-9a-f]{6}$")  # UTC YYYYmmddHHMMSS + 6 hex digits (engines.base.new_run_id)


@dataclass(frozen=True)
class Option:
    """One setting: its name, how to parse it (which is also its type), its default and its single help text."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    choices: tuple[str, ...] | None = None
    secret: bool = False
    flag: bool = False
    file: str | None = None  # the option naming a file that holds this (secret) value instead
    env_only: bool = False   # never a flag or ini value: a command line is visible in ps
    repeatable: bool = False  # the flag may be given several times; the values are joined by spaces for ``parse``

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def type(self) -> Any:
        """The field's type: what ``parse`` returns (``Path``, ``float``... or a parser's return annotation)."""
        kind = self.parse if isinstance(self.parse, type) else typing.get_type_hints(self.parse)["return"]
        return kind if self.default is not None else Optional[kind]


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _parse_zone(text: str) -> tzinfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HarnessError(f"unknown time zone {text!r}", fix="use an IANA name such as UTC or America/Toronto") from exc


def _parse_urls(text: str) -> tuple[str, ...]:
    """Notification URLs: several flags, or one variable with the URLs separated by spaces or newlines."""
    return tuple(text.split())


NOTIFY_WHEN = ("always", "failure", "change")


def _parse_now(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise HarnessError(f"--now {text!r} is not an ISO-8601 date", fix="use e.g. 2026-11-24T06:00:00+00:00") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class GenerationChoice:
    """Which backups of the folder ``--generations`` drills: ``all``, the ``N`` newest, or ``random:N``."""

    mode: str                 # "all" | "newest" | "random"
    count: int | None = None  # None for "all"

    def __str__(self) -> str:
        return {"all": "all", "newest": str(self.count), "random": f"random:{self.count}"}[self.mode]


def _parse_generations(text: str) -> GenerationChoice:
    value = text.strip().lower()
    if value == "all":
        return GenerationChoice("all")
    prefix, sep, number = value.partition(":")
    mode = "random" if sep and prefix == "random" else "newest" if not sep else ""
    if not sep:
        number = prefix
    if not mode or not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise ValueError(f"{quote(text, 40)!r} is not all, N or random:N with N a whole number of at least 1")
    return GenerationChoice(mode, int(number))


def _parse_run_id(text: str) -> str:
    if not RUN_ID_PATTERN.match(text):
        raise ValueError(f"{quote(text, 40)!r} is not a run id (UTC YYYYmmddHHMMSS and 6 hex digits)")
    return text


def parse_backups(text: str) -> Path | str:
    """A local path, or an off-site URL kept as text (``s3://b/p/`` must not become the path ``s3:/b/p``)."""
    scheme, sep, _rest = text.partition("://")
    return text if sep and scheme.lower() in REMOTE_SCHEMES else Path(text)


REMOTE_SCHEMES = ("s3", "sftp")  # archive.remote reads them; the config only keeps them as text

OPTIONS: tuple[Option, ...] = (
    Option("backups", "backups folder (newest backup_* inside), one .tar.gz[.gpg], an extracted backup_* folder, "
           "or an off-site s3://bucket/prefix/ or sftp://user@host[:port]/path/ (a folder or one archive)",
           parse_backups),
    Option("engine", "where to restore: auto picks per database (docker, else local, else simulated for MongoDB)",
           default="auto", choices=ENGINE_KINDS),
    Option("mongo_engine", "engine for MongoDB only (overrides --engine)", choices=ENGINE_KINDS),
    Option("postgres_engine", "engine for PostgreSQL only (overrides --engine)", choices=ENGINE_KINDS),
    Option("require_real", "fail with exit 2 rather than simulate a database", _parse_bool, False, flag=True),
    Option("mongo_uri", "external MongoDB: restore into a scratch db <db>_drill_<run id>, dropped afterwards "
           "(prefer --mongo-uri-file or env GRIMOIRE_DRILL_MONGO_URI: argv is visible in ps)",
           secret=True, file="mongo_uri_file"),
    Option("mongo_uri_file", "file holding the --mongo-uri (read once, whitespace stripped)", Path),
    Option("postgres_dsn", "external PostgreSQL: restore into a scratch database, dropped afterwards "
           "(prefer --postgres-dsn-file or env GRIMOIRE_DRILL_POSTGRES_DSN: argv is visible in ps)",
           secret=True, file="postgres_dsn_file"),
    Option("postgres_dsn_file", "file holding the --postgres-dsn (read once, whitespace stripped)", Path),
    Option("mongo_image", "MongoDB image for the docker engine", default="mongo:7.0"),
    Option("postgres_image", "PostgreSQL image for the docker engine", default="postgres:15-alpine"),
    Option("report_dir", "where outputs go (default reports/<backup id>/<run id>/, with "
           "reports/<backup id>/latest naming the newest full run)", Path),
    Option("history", "history file, one line per run (default reports/history.jsonl, "
           "or history.jsonl beside --report-dir)", Path),
    Option("keep_runs", "run folders kept per backup in the default reports/ layout; older ones are removed, "
           "never the one latest names (default 30)", int, 30),
    Option("prom_file", "also write the Prometheus textfile here, atomically (e.g. node_exporter's "
           "textfile collector folder)", Path),
    Option("max_age_hours", "newest backup may be at most this old (default from expectations.toml: 26)", float),
    Option("min_size_kb", "archive must be at least this big (default from expectations.toml: 100)", float),
    Option("backup_timezone", "time zone of the backup host's clock, which names the archives "
           "(backup-production.sh uses local `date`); default UTC", _parse_zone, timezone.utc),
    Option("now", "pretend the drill runs at this ISO-8601 time (for ages)", _parse_now),
    Option("passphrase_file", "file holding the GPG passphrase of .tar.gz.gpg archives "
           "(or env GRIMOIRE_DRILL_PASSPHRASE)", Path),
    Option("passphrase", "GPG passphrase (environment only, never a flag)", secret=True, env_only=True),
    Option("jobs", "parallel restore jobs (pg_restore -j, collections at once); default: CPU count", int),
    Option("timeout", "end the whole run after this many seconds: exit 2 naming the phase, everything cleaned up, "
           "outputs written (default: limits.run_timeout_s of expectations.toml, 6 h)", parse_seconds),
    Option("then", "pre-migration: run this command against the restored databases, then check again"),
    Option("then_timeout", "seconds the --then command may run before its whole process group is ended "
           "(default 3600)", float, 3600.0),
    Option("then_allow_simulated", "let --then run although MongoDB is simulated: the command gets no MongoDB "
           "URL, so it must not touch MongoDB (its own default could be anywhere)", _parse_bool, False, flag=True),
    Option("notify", "send the verdict and the report's path to this Apprise URL (json://, slack://, mailto://, "
           "ntfy://...); repeatable; env GRIMOIRE_DRILL_NOTIFY holds URLs separated by spaces. A secret: never printed",
           _parse_urls, secret=True, repeatable=True),
    Option("notify_on", "when to notify: always, failure (any verdict but a pass; default), or change "
           "(the verdict differs from the previous run's in the history)", default="failure", choices=NOTIFY_WHEN),
    Option("sign_key", "gpg key id: sign MANIFEST.sha256 into MANIFEST.sha256.asc (gpg --detach-sign --armor)"),
    Option("temp_dir", "parent of the run's temp dir (default: the system temp dir)", Path),
    Option("expectations", "expectations.toml to use instead of the packaged drills/expectations.toml", Path),
    Option("generations", "drill several backups of the BACKUPS folder, oldest first, each in a run of its own, "
           "listed on one index page: all (every backup_*), N (the N newest) or random:N (N at random, seeded; "
           "see --generations-seed)", _parse_generations),
    Option("generations_seed", "seed of --generations random:N, to replay an earlier choice (default: drawn from "
           "the run id, and printed)", int),
    Option("run_id", "this run's id, naming its folder and history line (UTC YYYYmmddHHMMSS + 6 hex digits); "
           "default: drawn at start (--generations gives one to each drill it runs)", _parse_run_id),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


class _DrillConfigBehaviour:
    """What a DrillConfig does with its settings; its fields come from ``OPTIONS`` (see ``DrillConfig``)."""

    __slots__ = ()

    def source_of(self, name: str) -> str:
        """Where setting ``name`` came from: "flag" (or ini), "env", "file" or "default" (also when built by hand)."""
        return dict(self.sources).get(name, "default")

    @property
    def mongo_kind(self) -> str:
        return self.engine if self.mongo_engine is None else self.mongo_engine

    @property
    def postgres_kind(self) -> str:
        return self.engine if self.postgres_engine is None else self.postgres_engine

    @property
    def job_count(self) -> int:
        """--jobs, else one per CPU (``os.cpu_count()`` is None where it cannot tell: then one)."""
        if self.jobs is not None:
            return max(1, self.jobs)
        cpus = os.cpu_count()
        return 1 if cpus is None else max(1, cpus)

    def read_passphrase(self) -> str | None:
        """Passphrase from --passphrase-file, else the environment; never from argv."""
        if self.passphrase_file is None:
            return self.passphrase
        try:
            return self.passphrase_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise HarnessError(f"cannot read passphrase file: {exc.strerror}", where=str(self.passphrase_file),
                               fix="check the path and its permissions") from exc

    def check(self) -> "DrillConfig":
        """Refuse contradictory settings early, with the fix."""
        for name, kind in (("mongo", self.mongo_kind), ("postgres", self.postgres_kind)):
            if kind not in ENGINE_KINDS:
                raise HarnessError(f"unknown engine {kind!r} for {name}", fix=f"use one of {', '.join(ENGINE_KINDS)}")
        if self.mongo_kind == "external" and not self.mongo_uri:
            raise HarnessError("--mongo-engine external needs --mongo-uri",
                               fix="pass --mongo-uri-file FILE or env GRIMOIRE_DRILL_MONGO_URI")
        if self.postgres_kind == "external" and not self.postgres_dsn:
            raise HarnessError("--postgres-engine external needs --postgres-dsn",
                               fix="pass --postgres-dsn-file FILE or env GRIMOIRE_DRILL_POSTGRES_DSN")
        if self.postgres_kind == "simulated":
            raise HarnessError("there is no simulated PostgreSQL: the drill always restores into a real server",
                               fix="use --postgres-engine auto|docker|local|external")
        if self.then_timeout <= 0:
            raise HarnessError(f"--then-timeout must be more than 0 seconds, not {self.then_timeout:g}",
                               fix="give the seconds the --then command may run, e.g. 3600")
        if self.keep_runs < 1:
            raise HarnessError(f"--keep-runs {self.keep_runs} would remove this run's own folder",
                               fix="keep at least 1 run")
        if self.require_real and self.mongo_kind == "simulated":
            raise HarnessError("--require-real contradicts --mongo-engine simulated", fix="drop one of them")
        if self.generations is not None and self.then is not None:
            raise HarnessError("--then cannot be combined with --generations: a migration is tried on one restore",
                               fix="drop --generations (the latest backup is drilled) or drop --then")
        if self.generations_seed is not None and (self.generations is None or self.generations.mode != "random"):
            raise HarnessError("--generations-seed only seeds --generations random:N",
                               fix="give --generations random:N too, or drop the seed")
        if self.generations is not None and self.run_id is not None:
            raise HarnessError("--run-id names one drill, and --generations runs several",
                               fix="drop --run-id: each generation's drill gets its own")
        return self


def _config_field(option: Option) -> tuple[str, Any, Any]:
    """One field of DrillConfig, as ``make_dataclass`` takes it; a secret never shows in ``repr``."""
    return option.name, option.type, field(default=option.default, repr=not option.secret)


DrillConfig = make_dataclass(
    "DrillConfig",
    [*(_config_field(option) for option in OPTIONS),
     # (name, where it came from) for each setting set by build_config: see source_of()
     ("sources", tuple[tuple[str, str], ...], field(default=(), repr=False, compare=False))],
    bases=(_DrillConfigBehaviour,), frozen=True, namespace={
        "__module__": __name__,
        "__doc__": "Everything a drill needs to know, decided once, before any work starts: one field per option."})


def given_value(option: Option, value: Any) -> Any:
    """A flag's raw value as ``parse`` takes it: a repeatable flag's list becomes one space-separated text."""
    if option.repeatable and isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value) if value else None
    return value


def _parsed(option: Option, get: Callable[[Option], Any], source: str) -> Any:
    """A setting's value, or a one-line HarnessError naming the setting when it does not parse."""
    try:
        return get(option)
    except (ValueError, TypeError) as exc:
        raise HarnessError(f"{source}: invalid value ({exc})", fix=option.help) from None


def _secret_from_file(option: Option, given: str | None, path: Path) -> str:
    """The secret held in ``path`` (read once, stripped); refused when also given directly."""
    file_option = OPTIONS_BY_NAME[option.file]
    if given is not None:
        raise HarnessError(f"both {option.cli} (or {option.env}) and {file_option.cli} are set",
                           where=str(path), fix=f"give the {option.name.replace('_', ' ')} one way only")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise HarnessError(f"cannot read the {file_option.cli} file: {exc.strerror or exc}", where=str(path),
                           fix="check the path and its permissions") from None
    except UnicodeDecodeError:
        raise HarnessError(f"the {file_option.cli} file is not UTF-8 text", where=str(path),
                           fix=f"write the {option.name.replace('_', ' ')} alone in it, as one line") from None
    if not value:
        raise HarnessError(f"the {file_option.cli} file is empty", where=str(path),
                           fix=f"write the {option.name.replace('_', ' ')} in it, as one line")
    return value


def argv_secret_warnings(on_command_line: Callable[[Option], bool],
                         flag: Callable[[Option], str] = lambda option: option.cli) -> list[str]:
    """One warning per secret that was typed as an argument: argv is shown by ps to every user.

    ``flag`` spells an option as the caller's command line does (``--drill-postgres-dsn`` in pytest).
    """
    return [f"{flag(option)} on the command line is visible in ps to every user of this host; "
            f"use {flag(OPTIONS_BY_NAME[option.file])} or {option.env}"
            for option in OPTIONS if option.secret and option.file is not None and on_command_line(option)]


def build_config(lookup: Callable[[Option], Any], environ: dict[str, str] | None = None) -> DrillConfig:
    """Resolve every option: ``lookup`` gives the flag/ini value (None when unset), then env, then default."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        value, source = (None if option.env_only else _parsed(option, lookup, option.cli)), "flag"
        if value is None and option.env in env and env[option.env] != "":
            value, source = _parsed(option, lambda o: o.parse(env[o.env]), option.env), "env"
        if value is None:
            value, source = option.default, "default"
        values[option.name], sources[option.name] = value, source
    for option in OPTIONS:
        if option.file is not None and values[option.file] is not None:
            values[option.name] = _secret_from_file(option, values[option.name], values[option.file])
            sources[option.name] = "file"
    return DrillConfig(**values, sources=tuple(sources.items())).check()
