"""What a good restore must have, read from ``drills/expectations.toml`` (data, not code)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import HarnessError
from .limits import Limits, limits_from_table


@dataclass(frozen=True)
class ExpectedIndex:
    collection: str
    key: tuple[tuple[str, int], ...]
    unique: bool

    @property
    def name(self) -> str:
        """The name MongoDB gives an index by default: ``field_dir`` joined with ``_``."""
        return "_".join(f"{field}_{direction}" for field, direction in self.key)

    @property
    def check_id(self) -> str:
        return f"{self.collection}.{self.name}"


@dataclass(frozen=True)
class ExpectedReference:
    """``[[references]]``: documents of one collection name others by a field (``categories.parents`` →
    ``categories.off_id``). ``required``: the app relies on it, a dangling one fails; else it is counted."""

    source_collection: str
    source_field: str
    target_collection: str
    target_field: str
    required: bool

    @property
    def check_id(self) -> str:
        return f"{self.source_collection}.{self.source_field}"

    @property
    def target(self) -> str:
        return f"{self.target_collection}.{self.target_field}"


def _reference(table: dict) -> ExpectedReference:
    """One ``[[references]]`` entry: ``from`` and ``to`` are ``collection.field``; ``required`` a boolean."""
    unknown = set(table) - {"from", "to", "required"}
    if unknown:
        raise ValueError(f"[[references]] has unknown key(s) {', '.join(sorted(unknown))}")
    parts = []
    for key in ("from", "to"):
        collection, _, field = str(table[key]).partition(".")
        if not collection or not field:
            raise ValueError(f"[[references]] {key} = {table[key]!r}: write collection.field")
        parts += [collection, field]
    if not isinstance(table.get("required"), bool):
        raise ValueError(f"[[references]] from = {table['from']!r}: required = true or false")
    return ExpectedReference(*parts, required=table["required"])


OFF = "off"  # TOML has no null: a threshold set to "off" turns its check off


@dataclass(frozen=True)
class GenerationRules:
    """``[generations]``: what a backup must keep of the one before it. ``None`` = the check is off."""

    max_drop_percent: float | None = 20.0
    max_data_lag_hours: float | None = None  # off by default: a quiet app can go weeks without a write
    retention_days: int | None = 7           # BACKUP_RETENTION_DAYS in backup-production.sh
    # [generations.freshness]: "collection.field" / "table.column" whose newest value must not go back in time
    freshness_mongodb: tuple[str, ...] = ()
    freshness_postgresql: tuple[str, ...] = ()

    def freshness_fields(self) -> tuple[tuple[str, str, str], ...]:
        """(database kind, "collection"/"table", "field"/"column") of each named timestamp field."""
        return tuple((kind, *name.split(".", 1)) for kind, names in
                     (("mongodb", self.freshness_mongodb), ("postgresql", self.freshness_postgresql))
                     for name in names)


def _threshold(table: dict, key: str, default: float | None, kind: type = float) -> float | None:
    """A threshold from a TOML table: absent → ``default``, ``"off"`` → ``None``, else a number >= 0."""
    if key not in table:
        return default
    value = table[key]
    if value == OFF:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"[generations] {key} = {value!r}: a number >= 0, or \"off\"")
    return kind(value)


def _fields(table: dict, key: str) -> tuple[str, ...]:
    """``[generations.freshness] key = ["name.field", ...]``: each a "collection.field" or "table.column"."""
    names = table.get(key, [])
    if not isinstance(names, list) or not all(isinstance(n, str) and "." in n.strip(".") for n in names):
        raise ValueError(f"[generations.freshness] {key} = {names!r}: a list of \"name.field\" strings")
    return tuple(names)


def generation_rules(table: dict | None) -> GenerationRules:
    table = {} if table is None else table
    default = GenerationRules()
    unknown = set(table) - {"max_drop_percent", "max_data_lag_hours", "retention_days", "freshness"}
    if unknown:
        raise ValueError(f"[generations] has unknown key(s) {', '.join(sorted(unknown))}")
    freshness = table.get("freshness", {})
    if not isinstance(freshness, dict) or set(freshness) - {"mongodb", "postgresql"}:
        raise ValueError("[generations.freshness] takes only mongodb = [...] and postgresql = [...]")
    return GenerationRules(
        max_drop_percent=_threshold(table, "max_drop_percent", default.max_drop_percent),
        max_data_lag_hours=_threshold(table, "max_data_lag_hours", default.max_data_lag_hours),
        retention_days=_threshold(table, "retention_days", default.retention_days, int),
        freshness_mongodb=_fields(freshness, "mongodb"),
        freshness_postgresql=_fields(freshness, "postgresql"),
    )


@dataclass(frozen=True)
class ContentRules:
    """``[content]``: how much of every collection and table is compared byte for byte with the dump.

    ``sample`` is the fraction compared (1.0: everything), chosen by a hash of each document's
    ``_id`` (a row's first column), so both sides pick the same ones. ``postgres_timezone`` is
    the TimeZone the restored server renders ``timestamptz`` in for the comparison: the one the
    production pg_dump ran in, so a value compares as it was dumped.
    """

    sample: float = 1.0
    postgres_timezone: str = "UTC"


def content_rules(table: dict | None) -> ContentRules:
    table = {} if table is None else table
    default = ContentRules()
    unknown = set(table) - {"sample", "postgres_timezone"}
    if unknown:
        raise ValueError(f"[content] has unknown key(s) {', '.join(sorted(unknown))}")
    sample = table.get("sample", default.sample)
    if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 1:
        raise ValueError(f"[content] sample = {sample!r}: a fraction in (0, 1]")
    timezone = table.get("postgres_timezone", default.postgres_timezone)
    if not isinstance(timezone, str) or not timezone or len(timezone) > 64:
        raise ValueError(f"[content] postgres_timezone = {timezone!r}: a time zone name such as \"UTC\"")
    return ContentRules(sample=float(sample), postgres_timezone=timezone)


@dataclass(frozen=True)
class Expectations:
    max_age_hours: float
    min_size_kb: float
    mongo_database: str
    collections: tuple[str, ...]
    skip_databases: tuple[str, ...]
    indexes: tuple[ExpectedIndex, ...]
    exports: tuple[tuple[str, str], ...]      # (file name, collection)
    pg_database: str
    pg_user: str
    tables: tuple[str, ...]
    extensions: tuple[str, ...]
    counted_tables: tuple[str, ...]
    uploads_prefix: str
    limits: Limits = Limits()
    generations: GenerationRules = GenerationRules()
    references: tuple[ExpectedReference, ...] = ()
    content: ContentRules = ContentRules()

    @property
    def unique_indexes(self) -> tuple[ExpectedIndex, ...]:
        return tuple(index for index in self.indexes if index.unique)


def packaged_path() -> Path:
    return Path(str(resources.files("grimoire_drill.drills").joinpath("expectations.toml")))


def load_expectations(path: Path | None = None) -> Expectations:
    source = packaged_path() if path is None else path
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"cannot read expectations: {exc}", where=str(source),
                           fix="fix the TOML or point --expectations at a valid file") from exc
    try:
        mongo, pg = data["mongodb"], data["postgresql"]
        return Expectations(
            max_age_hours=float(data["archive"]["max_age_hours"]),
            min_size_kb=float(data["archive"]["min_size_kb"]),
            mongo_database=mongo["database"],
            collections=tuple(mongo["collections"]),
            skip_databases=tuple(mongo.get("skip_databases", ())),
            indexes=tuple(ExpectedIndex(i["collection"], tuple((f, d) for f, d in i["key"]), bool(i.get("unique", False)))
                          for i in mongo.get("indexes", ())),
            exports=tuple(data.get("exports", {}).items()),
            pg_database=pg["database"], pg_user=pg["user"], tables=tuple(pg["tables"]),
            extensions=tuple(pg.get("extensions", ())), counted_tables=tuple(pg.get("counted_tables", ())),
            uploads_prefix=data.get("uploads", {}).get("url_prefix", "/uploads/"),
            limits=limits_from_table(data.get("limits"), str(source)),
            generations=generation_rules(data.get("generations")),
            references=tuple(_reference(r) for r in data.get("references", ())),
            content=content_rules(data.get("content")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"expectations file lacks or mistypes {exc}", where=str(source),
                           fix="compare with the packaged drills/expectations.toml") from exc
