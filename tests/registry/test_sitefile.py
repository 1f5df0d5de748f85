"""Site file: idempotent loading, a faithful export, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from custodian.cli import app
from registry import db
from registry.models import Device, JournalEntry
from registry.sitefile import SiteFileError, export, load
from tests.registry.conftest import EXAMPLE_SITE


def journal_size(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()


def test_loading_twice_changes_nothing(site: sessionmaker[Session]) -> None:
    before = journal_size(site)
    with db.transaction(site) as session:
        result = load(session, "site-loader", EXAMPLE_SITE)
    assert not result.changed_anything
    assert result.unchanged["items"] == 7 and result.unchanged["people"] == 14
    assert journal_size(site) == before


def test_export_round_trips(site: sessionmaker[Session], tmp_path: Path) -> None:
    with site() as session:
        first = export(session)
    exported = tmp_path / "exported.toml"
    exported.write_text(first)
    fresh = db.make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    db.upgrade(fresh)
    other = db.session_factory(fresh)
    with db.transaction(other) as session:
        load(session, "site-loader", exported)
    with other() as session:
        second = export(session)
    fresh.dispose()
    assert first == second
    assert 'register_number = "T-2026-001"' in first and "scbk_env" in first


def test_device_settings_and_antennas_are_kept(site: sessionmaker[Session]) -> None:
    with site() as session:
        reader = session.execute(select(Device).where(Device.name == "main-exit-reader")).scalar_one()
        assert [(a.number, a.side) for a in reader.antennas] == [(1, "inside"), (2, "outside"), (3, "ignore")]
        assert '"port": 5086' in reader.settings_json


BROKEN_CASES = [
    # (text in the example, its replacement, where the error must point, words in it, text of the named line)
    ('kind = "paper"\nlevel = "secret"', 'kind = "paper"\nlevel = "sekret"', "items[3].level", "sekret", "level ="),
    ('epc = "E28011700000020000000005"', 'epc = "E2801170000002000000000Z"', "items[4].epc", "hexadecimal", "epc ="),
    ('badges = ["20003"]', 'badges = ["20002"]', "people[11].badges", "person.badge_unique", "badges ="),
    ('inside = "archive"', 'inside = "archiv"', "portals[1].inside", "unknown reference", "inside ="),
    (
        "period_start = 2026-02-01",
        'period_start = "first of feb"',
        "items[3].period_start",
        "expected a date",
        "period_start =",
    ),
    (
        "address = 1\n",
        'address = 1\nscbk = "00112233445566778899AABBCCDDEEFF"\n',
        "devices[0].scbk",
        "secrets",
        "scbk =",
    ),
]


@pytest.mark.parametrize(("old", "new", "where", "words", "line_text"), BROKEN_CASES)
def test_a_broken_site_file_names_line_and_field_and_writes_nothing(
    factory: sessionmaker[Session], tmp_path: Path, old: str, new: str, where: str, words: str, line_text: str
) -> None:
    text = EXAMPLE_SITE.read_text()
    assert old in text
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace(old, new, 1))
    with pytest.raises(SiteFileError) as caught, db.transaction(factory) as session:
        load(session, "site-loader", broken)
    error = caught.value
    assert error.where == where and words in str(error)
    assert error.line is not None
    assert broken.read_text().splitlines()[error.line - 1].startswith(line_text)
    assert journal_size(factory) == 0


def test_cli_load_reports_a_typo_with_exit_code_2(tmp_path: Path) -> None:
    broken = tmp_path / "typo.toml"
    broken.write_text(EXAMPLE_SITE.read_text().replace('ceiling = "secret"', 'ceilng = "secret"', 1))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(app, ["site", "load", str(broken), "--db", url])
    assert result.exit_code == 2
    assert "typo.toml:" in result.output and "venues[0].ceilng: unknown key; did you mean ceiling?" in result.output
    status = CliRunner().invoke(app, ["status", "--db", url])
    assert "items 0" in status.output and "journal entries 0" in status.output


def test_cli_syntax_error_names_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "syntax.toml"
    broken.write_text('[[venues]]\ncode = "a"\nceiling = \n')
    result = CliRunner().invoke(app, ["site", "load", str(broken), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and "syntax.toml:3" in result.output


def test_cli_load_export_and_depart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["site", "load", str(EXAMPLE_SITE), "--db", url]).exit_code == 0
    again = runner.invoke(app, ["site", "load", str(EXAMPLE_SITE), "--db", url])
    assert again.exit_code == 0 and "created/updated nothing" in again.output
    out = tmp_path / "export.toml"
    assert runner.invoke(app, ["site", "export", "--db", url, "--out", str(out)]).exit_code == 0
    assert "[[approvals]]" in out.read_text()
    depart = runner.invoke(app, ["people", "depart", "alice", "--db", url])
    assert depart.exit_code == 2 and "T-2026-001/1" in depart.output
    listing = runner.invoke(app, ["items", "list", "--db", url, "--venue", "vault"])
    assert "T-2026-001/1" in listing.output and "S-2026-001" not in listing.output
