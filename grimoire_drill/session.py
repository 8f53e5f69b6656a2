"""Where ``DrillSession`` used to live: the pipeline is ``grimoire_drill.pipeline`` now."""

from .pipeline.session import DrillSession  # noqa: F401
