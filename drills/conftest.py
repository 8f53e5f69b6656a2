"""Parametrise the drill's checks from expectations.toml, so each item is its own check id."""

from __future__ import annotations

import pytest

from grimoire_drill.plugin import find_run

PARAMETERS = {
    "collection": lambda e: [(c, c) for c in e.collections],
    "expected_index": lambda e: [(i, i.check_id) for i in e.indexes],
    "unique_index": lambda e: [(i, i.check_id) for i in e.unique_indexes],
    "table": lambda e: [(t, t) for t in e.tables],
    "extension": lambda e: [(x, x) for x in e.extensions],
    "export": lambda e: [(pair, pair[1]) for pair in e.exports],
    "counted_collection": lambda e: [(c, c) for c in e.collections],
    "counted_table": lambda e: [(t, t) for t in e.counted_tables],
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
