"""Parametrise the drill's checks from expectations.toml, so each item is its own check id."""

from __future__ import annotations

import pytest

from grimoire_drill.plugin import DrillRun, Evidence, find_run

PARAMETERS = {
    "collection": lambda e: [(c, c) for c in e.collections],
    "expected_index": lambda e: [(i, i.check_id) for i in e.indexes],
    "unique_index": lambda e: [(i, i.check_id) for i in e.unique_indexes],
    "table": lambda e: [(t, t) for t in e.tables],
    "extension": lambda e: [(x, x) for x in e.extensions],
    "export": lambda e: [(pair, pair[1]) for pair in e.exports],
    "counted_collection": lambda e: [(c, c) for c in e.collections],
    "counted_table": lambda e: [(t, t) for t in e.counted_tables],
    "reference": lambda e: [(r, r.check_id) for r in e.references],
    "freshness_field": lambda e: [(f, ".".join(f)) for f in e.generations.freshness_fields()],
}


NEEDS_BACKUP = "the drill needs a backup: pytest drills/ --drill-backups PATH (or grimoire-drill run PATH)"


def pytest_configure(config: pytest.Config) -> None:
    if find_run(config) is None:
        raise pytest.UsageError(NEEDS_BACKUP)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    run = find_run(metafunc.config)
    if run is None:
        raise pytest.UsageError(NEEDS_BACKUP)
    for name, values in PARAMETERS.items():
        if name in metafunc.fixturenames:
            pairs = values(run.expectations)
            metafunc.parametrize(name, [v for v, _ in pairs], ids=[i for _, i in pairs])


def _run(config: pytest.Config) -> DrillRun:
    run = find_run(config)
    if run is None:
        raise pytest.UsageError(NEEDS_BACKUP)
    return run


@pytest.fixture(scope="session")
def drill(request):
    """What checks read of the pipeline (grimoire_drill.pipeline.check_view.CheckView): each stage runs once, on first need."""
    run = _run(request.config)
    try:
        yield run.check_view()
    finally:
        run.checks_done()


@pytest.fixture(scope="session")
def expectations(request):
    """What Le Grimoire's backups must hold (drills/expectations.toml, or --drill-expectations)."""
    return _run(request.config).expectations


@pytest.fixture(scope="session")
def thresholds(request):
    """What the checks judge against (max age, min size...), resolved once from flags, env and expectations."""
    return _run(request.config).thresholds


@pytest.fixture
def evidence() -> Evidence:
    """Filled by a check: its one-line message and the data the report shows."""
    return Evidence()
