"""Reloading a site file cannot break a rule: every change goes through the services, and a change that
would break a rule is refused with the file, the line, the field and the rule, leaving the register as it
was. Scenarios written from domain-rules.md 3 (venues), 4 (portals and their antennas), 7 (people); each
runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from custodian.cli import app
from registry import db
from registry.models import Antenna, Approval, Badge, Device, Item, JournalEntry, Person, Portal, Venue
from registry.services import lookup, transfers, venues
from registry.sitefile import SiteFileError, export, load
from tests.registry.conftest import BACKENDS, EXAMPLE_SITE, fresh_register, utc

EXAMPLE = EXAMPLE_SITE.read_text()


def edited(*changes: tuple[str, str]) -> str:
    text = EXAMPLE
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def snapshot(factory: sessionmaker[Session]) -> tuple[object, ...]:
    """Everything a load could write: the exported site, row counts and the journal's head."""
    with factory() as session:
        count = lambda model: session.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
        head = session.execute(select(JournalEntry.seq, JournalEntry.hash).order_by(JournalEntry.seq.desc())).first()
        models = (Venue, Portal, Device, Antenna, Person, Badge, Item, Approval)
        return (export(session), tuple(count(m) for m in models), tuple(head) if head else None)


def reload(factory: sessionmaker[Session], tmp_path: Path, text: str) -> SiteFileError:
    """Load `text`; it must be refused and leave the register exactly as it was."""
    before = snapshot(factory)
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(SiteFileError) as caught, db.transaction(factory) as session:
        load(session, "site-loader", path)
    assert snapshot(factory) == before
    error = caught.value
    assert error.line is not None and error.where and error.message
    error.named_line = text.splitlines()[error.line - 1].strip()  # type: ignore[attr-defined]
    return error


@dataclass(frozen=True)
class Case:
    name: str
    changes: tuple[tuple[str, str], ...]
    rule: str | None
    where: str
    line_starts: str


VAULT = 'code = "vault"\nname = "Top-secret vault"\nceiling = "top_secret"\ntop_secret_designated = true\n'
READING = 'code = "reading-room"\nname = "Reading room"\nceiling = "confidential"'
VAULT_DOCK_ANTENNAS = 'antennas = [{ number = 1, side = "inside" }, { number = 2, side = "outside" }]'
NEW_PERSON = '\n[[people]]\nusername = "nora"\nname = "Nora New"\nclearance = "secret"\nbadges = ["{badge}"]\n'

RELOAD_CASES = [
    Case(
        "ceiling lowered under the items inside",
        ((READING, READING.replace('"confidential"', '"internal"')),),
        "venue.ceiling",
        "venues[1].ceiling",
        "ceiling =",
    ),
    Case(
        "top-secret designation dropped with top-secret items inside",
        ((VAULT, VAULT.replace("top_secret_designated = true\n", "")),),
        "venue.top_secret_designated",
        "venues[3].top_secret_designated",
        "[[venues]]",  # the key is no longer written: the venue's table is named
    ),
    Case(
        "designated for top secret with a lower ceiling",
        ((VAULT, VAULT.replace('ceiling = "top_secret"', 'ceiling = "secret"')),),
        None,
        "venues[3].ceiling",
        "ceiling =",
    ),
    Case(
        "a portal joining a venue to itself",
        (('inside = "archive"\noutside = "corridor"', 'inside = "archive"\noutside = "archive"'),),
        "portal.distinct_venues",
        "portals[1].outside",
        "outside =",
    ),
    Case(
        "a device at a portal and in a venue",
        (('portal = "vault-dock"\nsource', 'portal = "vault-dock"\nvenue = "vault"\nsource'),),
        "device.one_place",
        "devices[4].venue",
        "venue =",
    ),
    Case(
        "a device at no place",
        (
            (
                'name = "vault-dock-camera"\nkind = "camera"\nportal = "vault-dock"\n',
                'name = "vault-dock-camera"\nkind = "camera"\n',
            ),
        ),
        "device.one_place",
        "devices[4].portal",
        "[[devices]]",
    ),
    Case(
        "a door panel moved into a room",
        (('kind = "osdp_panel"\nportal = "archive-door"', 'kind = "osdp_panel"\nvenue = "archive"'),),
        "device.place_kind",
        "devices[0].venue",
        "venue =",
    ),
    Case(
        "a shredder put at a door",
        (
            (
                'kind = "modbus_shredder"\nvenue = "destruction-centre"',
                'kind = "modbus_shredder"\nportal = "destruction-door"',
            ),
        ),
        "device.place_kind",
        "devices[8].portal",
        "portal =",
    ),
    Case(
        "a second panel on one door",
        (
            (
                'name = "main-exit-panel"\nkind = "osdp_panel"\nportal = "main-exit"',
                'name = "main-exit-panel"\nkind = "osdp_panel"\nportal = "archive-door"',
            ),
        ),
        "portal.one_panel",
        "devices[5].portal",
        "portal =",
    ),
    Case(
        "an antenna number twice on one reader",
        ((VAULT_DOCK_ANTENNAS, VAULT_DOCK_ANTENNAS.replace("number = 2", "number = 1")),),
        "device.antenna_unique",
        "devices[3].antennas",
        "antennas =",
    ),
    Case(
        "antennas on a camera",
        (
            (
                'portal = "main-exit"\nsource = "synthetic"',
                'portal = "main-exit"\nsource = "synthetic"\nantennas = [{ number = 1, side = "inside" }]',
            ),
        ),
        "device.antenna_kind",
        "devices[7].antennas",
        "antennas =",
    ),
    Case(
        "a portal seeing one side only",
        ((VAULT_DOCK_ANTENNAS, VAULT_DOCK_ANTENNAS.replace('"outside"', '"inside"')),),
        "portal.antenna_sides",
        "devices[3].antennas",
        "antennas =",
    ),
    Case(
        "a badge already issued to someone else",
        (("\n[[items]]", NEW_PERSON.replace("{badge}", "20003") + "\n[[items]]"),),
        "person.badge_unique",
        "people[14].badges",
        "badges =",
    ),
    Case(
        "a registered person's clearance changed",
        (
            (
                'username = "carol"\nname = "Carol Researcher"\nclearance = "confidential"',
                'username = "carol"\nname = "Carol Researcher"\nclearance = "secret"',
            ),
        ),
        "site.person_changed",
        "people[12].clearance",
        "clearance =",
    ),
    Case(
        "a registered item's level changed",
        (('kind = "paper"\nlevel = "internal"', 'kind = "paper"\nlevel = "confidential"'),),
        "site.item_changed",
        "items[1].level",
        "level =",
    ),
    Case(
        "a registered approval given more uses",
        (("uses = 50\nreason", "uses = 500\nreason"),),
        "site.approval_changed",
        "approvals[0].uses",
        "uses =",
    ),
    Case(
        "a new secret item in a confidential room",
        (
            (
                "\n[[approvals]]",
                '\n[[items]]\nregister_number = "S-2026-009"\ntitle = "Memo"\nkind = "paper"\nlevel = "secret"\n'
                'period_start = 2026-01-01\nperiod_months = 12\noriginating_unit = "Unit"\n'
                'epc = "E28011700000020000000099"\nvenue = "reading-room"\n\n[[approvals]]',
            ),
        ),
        "venue.ceiling",
        "items[7].venue",
        "venue =",
    ),
    Case(
        "a request approved by its own requester",
        (
            (
                EXAMPLE[EXAMPLE.rindex("[[approvals]]") :],
                EXAMPLE[EXAMPLE.rindex("[[approvals]]") :]
                + '\n[[approvals]]\nref = "A-SELF"\nkind = "carry_out"\nrequester = "petra"\napprovers = ["petra"]\n'
                'items = ["C-2026-001"]\nvalid_from = 2026-01-01T00:00:00Z\nvalid_until = 2030-01-01T00:00:00Z\n',
            ),
        ),
        "approval.self_approval",
        "approvals[3].approvers",
        "approvers =",
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def loaded_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """The example site, loaded once per backend for every refused reload: each refusal must leave it as it
    was (`reload` checks), so the cases can share it."""
    with fresh_register(request.param, tmp_path_factory.mktemp("rules")) as engine:
        factory = db.session_factory(engine)
        with db.transaction(factory) as session:
            load(session, "site-loader", EXAMPLE_SITE)
        yield factory


@pytest.mark.parametrize("case", RELOAD_CASES, ids=[c.name for c in RELOAD_CASES])
def test_a_reload_that_would_break_a_rule_is_refused(
    loaded_once: sessionmaker[Session], tmp_path: Path, case: Case
) -> None:
    error = reload(loaded_once, tmp_path, edited(*case.changes))
    assert error.rule == case.rule, error
    if case.rule:
        assert f"[{case.rule}]" in str(error)
    assert error.where == case.where, error
    assert error.named_line.startswith(case.line_starts), (error, error.named_line)  # type: ignore[attr-defined]


def test_a_badge_of_a_person_missing_from_the_file_stays_theirs(site: sessionmaker[Session], tmp_path: Path) -> None:
    """The register, not the file, knows every badge issued: a smaller file cannot hand one out again."""
    text = edited(("\n[[items]]", NEW_PERSON.replace("{badge}", "90001") + "\n[[items]]"))
    start = text.index('[[people]]\nusername = "victor"')
    text = text[:start] + text[text.index("[[people]]", start + 1) :]
    error = reload(site, tmp_path, text)
    assert error.rule == "person.badge_unique" and "victor" in error.message
    assert error.where == "people[13].badges"


def test_a_ceiling_cannot_drop_under_an_item_on_its_way_there(site: sessionmaker[Session], tmp_path: Path) -> None:
    with db.transaction(site) as session:
        transfers.hand_over(session, "bob", receiver="petra", items=("S-2026-001",), to_venue="corridor")
    corridor = 'code = "corridor"\nname = "Secured corridor"\nceiling = "secret"'
    error = reload(site, tmp_path, edited((corridor, corridor.replace('"secret"', '"confidential"'))))
    assert error.rule == "venue.ceiling" and "S-2026-001/1" in error.message


def test_a_ceiling_cannot_drop_under_a_meeting_booked_there(site: sessionmaker[Session], tmp_path: Path) -> None:
    with db.transaction(site) as session:
        venues.create_meeting(
            session,
            "admin",
            venues.MeetingData(
                "Budget", "corridor", "secret", utc(2099, 1, 1, 9), utc(2099, 1, 1, 11), participants=("bob",)
            ),
        )
    corridor = 'code = "corridor"\nname = "Secured corridor"\nceiling = "secret"'
    error = reload(site, tmp_path, edited((corridor, corridor.replace('"secret"', '"confidential"'))))
    assert error.rule == "venue.ceiling" and "Budget" in error.message


def test_a_change_that_keeps_the_rules_goes_through_and_is_journaled(
    site: sessionmaker[Session], tmp_path: Path
) -> None:
    corridor = 'code = "corridor"\nname = "Secured corridor"\nceiling = "secret"'
    text = edited(
        (corridor, corridor.replace('"secret"', '"confidential"')),  # it holds only an unclassified item
        (VAULT_DOCK_ANTENNAS, VAULT_DOCK_ANTENNAS.replace("number = 2", "number = 4")),
        ("x_m = 10.0", "x_m = 12.5"),
    )
    path = tmp_path / "site.toml"
    path.write_text(text)
    with db.transaction(site) as session:
        result = load(session, "site-loader", path)
    assert (result.created["venues"], result.created["devices"], result.created["portals"]) == (1, 1, 1)
    with site() as session:
        assert lookup.venue(session, "corridor").ceiling == 2
        reader = lookup.device(session, "vault-dock-reader")
        assert [(a.number, a.side) for a in reader.antennas] == [(1, "inside"), (4, "outside")]
        actions = [e.action for e in session.execute(select(JournalEntry).order_by(JournalEntry.seq)).scalars()]
    assert actions[-3:] == ["venue.updated", "portal.updated", "device.updated"]
    before = snapshot(site)
    with db.transaction(site) as session:
        assert not load(session, "site-loader", path).changed_anything
    assert snapshot(site) == before


def test_the_same_rules_hold_when_the_services_are_called_directly(site: sessionmaker[Session]) -> None:
    """The administrator's pages call the same services: no way around the rules."""
    with pytest.raises(Exception) as lowered, db.transaction(site) as session:
        vault = lookup.venue(session, "vault")
        venues.update_venue(session, "admin", vault, venues.VenueData("vault", "Vault", "top_secret", ("storage",)))
    assert getattr(lowered.value, "rule", None) == "venue.top_secret_designated"
    with pytest.raises(Exception) as second, db.transaction(site) as session:
        venues.create_device(session, "admin", venues.DeviceData("spare-panel", "osdp_panel", "main-exit", None))
    assert getattr(second.value, "rule", None) == "portal.one_panel"
    # A camera or a people-counting sensor: the door has one people counter, whichever kind.
    with pytest.raises(Exception) as third, db.transaction(site) as session:
        venues.create_device(
            session, "admin", venues.DeviceData("door-3d", "mqtt_people_counter", "main-exit", None)
        )
    assert getattr(third.value, "rule", None) == "portal.one_camera"


def test_cli_refuses_a_reload_with_exit_2_and_writes_nothing(url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["site", "load", str(EXAMPLE_SITE), "--db", url]).exit_code == 0
    broken = tmp_path / "lowered.toml"
    broken.write_text(edited((READING, READING.replace('"confidential"', '"internal"'))))
    before = runner.invoke(app, ["site", "export", "--db", url]).output
    refused = runner.invoke(app, ["site", "load", str(broken), "--db", url])
    assert refused.exit_code == 2
    assert "lowered.toml:" in refused.output and "venues[1].ceiling" in refused.output
    assert "[venue.ceiling]" in refused.output and "C-2026-001/1" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert runner.invoke(app, ["site", "export", "--db", url]).output == before
    assert runner.invoke(app, ["journal", "verify", "--db", url]).exit_code == 0


def test_dates_in_the_file_are_checked_before_the_register_is_touched(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    before = snapshot(factory)
    path = tmp_path / "site.toml"
    path.write_text(
        edited(("period_start = 2026-01-10\nperiod_months = 360", "period_start = 9999-01-10\nperiod_months = 360"))
    )
    with pytest.raises(SiteFileError) as caught, db.transaction(factory) as session:
        load(session, "site-loader", path)
    assert caught.value.where == "items[6].period_months" and str(dt.MAXYEAR) in caught.value.message
    assert snapshot(factory) == before
