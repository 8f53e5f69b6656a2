"""The archive itself: found, fresh, big enough, read to the end, consistent with backup_info.txt."""

from datetime import datetime, timedelta

import pytest

from grimoire_drill.text import quote


@pytest.mark.check("archive.found")
def test_backup_found(drill, evidence):
    ref = drill.located()
    evidence.message = f"{ref.name} found ({ref.kind})"
    evidence.data.update(path=str(ref.path), name=ref.name, taken_at=ref.taken_at.isoformat())


@pytest.mark.check("archive.fresh")
def test_backup_is_fresh(drill, thresholds, evidence):
    ref = drill.located()
    limit = thresholds.max_age_hours
    age = (drill.now - ref.taken_at).total_seconds() / 3600
    evidence.data.update(age_hours=round(age, 2), max_age_hours=limit, taken_at=ref.taken_at.isoformat(),
                         measured_from="archive name (file mtime ignored)")
    assert age >= -thresholds.future_tolerance_hours, (
        f"{ref.name}: taken {-age:.1f} h in the future — check the backup host's clock")
    assert age <= limit, f"{ref.name}: {age:.1f} h old, more than {limit:g} h — the nightly backup did not run"
    evidence.message = f"{ref.name} is {age:.1f} h old (limit {limit:g} h)"


@pytest.mark.check("archive.size")
def test_backup_is_big_enough(drill, thresholds, evidence):
    ref = drill.located()
    limit_kb = thresholds.min_size_kb
    evidence.data.update(size_bytes=ref.size_bytes, min_size_kb=limit_kb)
    assert ref.size_bytes >= limit_kb * 1024, (
        f"{ref.path.name}: {ref.size_bytes / 1024:.1f} KB, less than {limit_kb:g} KB — a dump step probably failed")
    evidence.message = f"{ref.path.name}: {ref.size_bytes / 1024:,.0f} KB (minimum {limit_kb:g} KB)"


@pytest.mark.check("archive.readable")
def test_archive_reads_to_the_end(drill, evidence):
    extracted = drill.extracted()
    evidence.data.update(sha256=extracted.sha256, members=extracted.members, bytes_extracted=extracted.bytes_extracted,
                         seconds=round(extracted.seconds, 3))
    evidence.message = (f"read whole: {extracted.members} members, {extracted.bytes_extracted:,} bytes, "
                        f"sha256 {extracted.sha256[:16]}…, every member inside the backup folder")


def _backup_date(text: str) -> datetime | None:
    """``date '+%Y-%m-%d %H:%M:%S %Z'`` as naive local time (the zone is the host's, as is the ID's)."""
    try:
        return datetime.strptime(text.strip()[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


@pytest.mark.check("archive.backup_info")
def test_backup_info_matches_name(drill, thresholds, evidence):
    """backup-production.sh writes Backup ID when it starts and Backup Date after the dumps, both local time."""
    ref = drill.located()
    info = drill.backup_info()
    evidence.data.update(info)
    assert info, f"{ref.name}: backup_info.txt missing or empty — the backup job did not finish its metadata step"
    backup_id = info.get("Backup ID")
    assert backup_id == ref.backup_id, (
        f"backup_info.txt says Backup ID {quote(repr(backup_id))} but the archive is named {ref.name} "
        "— renamed or mixed archives")
    shown = info.get("Backup Date")
    written = _backup_date(shown) if shown else None
    if written is not None:
        started = datetime.strptime(ref.backup_id, "%Y%m%d_%H%M%S")
        lag = written - started
        evidence.data.update(backup_date_lag_seconds=lag.total_seconds())
        early = timedelta(minutes=thresholds.backup_date_early_minutes)
        assert -early <= lag <= timedelta(hours=thresholds.backup_date_max_lag_hours), (
            f"backup_info.txt says Backup Date {quote(shown)} but the archive is named {ref.name} "
            f"({lag.total_seconds() / 3600:+.1f} h apart) — backup_info.txt belongs to another backup")
    evidence.message = (f"backup_info.txt: Backup ID {backup_id}, {quote(info.get('Environment', '?'))} "
                        f"on {quote(info.get('Host', '?'))}")
