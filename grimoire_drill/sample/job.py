"""What one sample backup is made from: the app's names, init-db.sh's indexes, a defect's plan, the job."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import data

MONGO_DB = "legrimoire"
PG_DB = "le_grimoire"
PG_USER = "grimoire"
HOST = "legrimoire-prod"
MONGO_SERVER_VERSION = "7.0.24"      # mongo:7.0
MONGO_TOOLS_VERSION = "100.12.2"     # the database tools shipped in that image (these write prelude.json)
ARCHIVE_OWNER = (1000, "legrimoire")  # the account backup-production.sh runs as

# init-db.sh's createIndex calls, in order: (collection, key, unique).
MONGO_INDEXES: tuple[tuple[str, tuple[tuple[str, int], ...], bool], ...] = (
    ("ingredients", (("off_id", 1),), True),
    ("ingredients", (("names.fr", 1),), False),
    ("ingredients", (("names.en", 1),), False),
    ("ingredients", (("custom", 1),), False),
    ("categories", (("off_id", 1),), True),
    ("categories", (("names.fr", 1),), False),
    ("categories", (("names.en", 1),), False),
    ("recipes", (("title", 1),), False),
    ("recipes", (("created_at", -1),), False),
    ("recipes", (("is_public", 1),), False),
    ("recipes", (("category", 1),), False),
    ("recipes", (("cuisine", 1),), False),
)


@dataclass(frozen=True)
class Plan:
    """What a defect changes before anything is generated."""

    duplicate_off_id: bool = False
    tiny: bool = False
    age: timedelta = timedelta(0)
    search_path_trap: bool = False
    dangling_parent: bool = False   # the last category's parent off_id names no category
    recipes: int | None = None            # keep only this many recipes (both databases, their photos)
    data_age: timedelta = timedelta(0)    # the content is this much older than the backup's name says


@dataclass(frozen=True)
class Job:
    """Everything one backup is made from."""

    seed: int
    started: datetime          # when backup-production.sh ran: the name, the Backup ID
    counts: data.SampleCounts
    plan: Plan
    gzip_dump: bool
    scale: int

    @property
    def backup_id(self) -> str:
        return f"{self.started:%Y%m%d_%H%M%S}"

    @property
    def content_time(self) -> datetime:
        """The moment the databases' content is generated for: the backup's start, unless a defect ages it."""
        return self.started - self.plan.data_age

    @property
    def finished(self) -> datetime:
        """backup_info.txt's date is taken after the dumps, a few seconds after the Backup ID."""
        return self.started + timedelta(seconds=4 + math.ceil(2 * math.sqrt(self.scale)))
