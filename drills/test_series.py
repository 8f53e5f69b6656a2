"""The BACKUPS folder as a series: one backup every night of the retention window, none long past it.

Judged from the names alone (grimoire_drill/nights.py has the date rule); the older archives are
never opened. One archive given as BACKUPS has no series: the check is off there (it keeps the
run full and says why). A warning (a backup that should have been pruned) passes, with ``WARNING:`` in the
message and the list in ``evidence.data["warnings"]``.
"""

import pytest

from grimoire_drill.check_outcome import check_off
from grimoire_drill.nights import judge_nights

SHOWN_DATES = 10   # dates named in one message; the evidence lists them all


def _dates(dates) -> str:
    shown = ", ".join(d.isoformat() for d in dates[:SHOWN_DATES])
    return shown + (f" and {len(dates) - SHOWN_DATES} more" if len(dates) > SHOWN_DATES else "")


@pytest.mark.check("generations.nights")
def test_every_night_has_a_backup(drill, thresholds, expectations, evidence):
    retention = thresholds.retention_days
    if retention is None:
        check_off("retention_days is off in expectations.toml ([generations] retention_days)")
    ids = drill.series()
    if ids is None:
        check_off("BACKUPS is one archive: no series of nights to check")
    if not ids:
        pytest.skip("no backup_* in the BACKUPS folder (archive.found reports it)")
    nights = judge_nights(ids, retention)
    examples = expectations.limits.max_reference_examples
    evidence.data.update(
        retention_days=retention, newest=f"backup_{nights.newest}", backups=len(ids),
        window=[nights.window_start.isoformat(), nights.window_end.isoformat()],
        nights_present=[d.isoformat() for d in nights.present], missing=[d.isoformat() for d in nights.missing],
        should_have_been_pruned=[f"backup_{i}" for i in nights.too_old], new_installation=nights.new_installation,
        date_rule="a backup belongs to the date of its name (YYYYMMDD, the host's local time), 00:30 included")
    assert not nights.missing, (
        f"{len(nights.missing)} night(s) without a backup in the {retention} days up to backup_{nights.newest}: "
        f"{_dates(nights.missing)} — the nightly backup did not run or its archive was lost")
    warnings = []
    if nights.too_old:
        listed = ", ".join(f"backup_{i}" for i in nights.too_old[:examples])
        more = f" and {len(nights.too_old) - examples} more" if len(nights.too_old) > examples else ""
        warnings.append(f"{len(nights.too_old)} backup(s) older than the {retention}-day retention should have been "
                        f"pruned: {listed}{more} (find -mtime +{retention} of backup-production.sh)")
    evidence.data["warnings"] = warnings
    if nights.new_installation:
        said = (f"{len(nights.present)} night{'s' if len(nights.present) > 1 else ''} of {retention} so far: new installation? "
                f"(oldest backup_{min(ids)}, newest backup_{nights.newest}, none missing)")
    else:
        said = f"every night of the {retention} days up to backup_{nights.newest} has a backup"
    evidence.message = said + "".join(f"; WARNING: {w}" for w in warnings)
