"""``uploads/``: every photo a recipe's image_url names, plus files no recipe references."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from . import data
from .job import Job
from .photos import PhotoPool


def write_uploads(uploads: Path, job: Job) -> None:
    """Every recipe photo its image_url names, plus uploads no recipe references."""
    seed, counts = job.seed, job.counts
    photos = PhotoPool(seed)
    recipes_dir = uploads / "recipes"
    for index in range(counts.recipes):
        ext = counts.recipe_image_ext(index)
        if ext is None:
            continue
        facts = data.recipe_facts(seed, index, counts, job.content_time)
        assert facts.image_url is not None
        path = uploads.parent / facts.image_url.removeprefix("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photos.photo("recipe", index, ext))
        os.utime(path, (facts.created_at.timestamp(), facts.created_at.timestamp()))
    recipes_dir.mkdir(exist_ok=True)
    for k, name in enumerate(data.other_upload_names(seed, counts)):
        path = uploads / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photos.photo("other", k, "jpg"))
        uploaded = job.content_time - timedelta(days=3 + 11 * k % 200, minutes=37 * k % 1440)
        os.utime(path, (uploaded.timestamp(), uploaded.timestamp()))
