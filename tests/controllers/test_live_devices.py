"""A running simulated site follows the register's devices: a portal given a panel and a reader while the site
runs comes online and decides exits; a device removed from the register is closed; a probe asks the live
driver what it is."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from custodian.wiring import RunningSite, start_site
from firmware_bridge.osdp.simulator import PanelSimulator
from registry import db
from registry.services import lookup, venues

WAIT_S = 20.0


@pytest.fixture
def running(site: sessionmaker[Session], tmp_path: Path) -> Iterator[RunningSite]:
    running = start_site(site, LiveBus(), tmp_path / "state", simulate=True)
    try:
        assert running.wait_ready()
        yield running
    finally:
        running.stop()


def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.05)


def health(running: RunningSite, device: str) -> str:
    return next((d.health for d in running.runtime.devices() if d.name == device), "absent")


def add_annex_door(factory: sessionmaker[Session]) -> None:
    with db.transaction(factory) as session:
        portal = venues.PortalData("annex-door", "Annex door", "reading-room", "corridor")
        venues.create_portal(session, "admin", portal)
        venues.create_device(
            session, "admin", venues.DeviceData("annex-panel", "osdp_panel", "annex-door", None, (("address", 5),))
        )
        venues.create_device(
            session,
            "admin",
            venues.DeviceData(
                "annex-reader", "llrp_reader", "annex-door", None, (("port", 5099),), ((1, "inside"), (2, "outside"))
            ),
        )


def test_a_portal_equipped_while_running_comes_online_and_decides(running: RunningSite) -> None:
    add_annex_door(running.runtime.factory)
    until(lambda: health(running, "annex-panel") == "online", "the new panel online (Secure Channel)")
    until(lambda: health(running, "annex-reader") == "online", "the new reader online")
    door = next(d for d in running.runtime.doors() if d.portal == "annex-door")
    assert door.locked and door.panel_online and door.readers_online

    panel = running.added_sims["annex-panel"].devices["annex-panel"]
    assert isinstance(panel, PanelSimulator) and panel.secure
    time.sleep(1.0)  # a card read within the stale window of the panel coming online counts as replayed
    since = len(panel.commands)
    panel.present_card(f"{20004:08x}", 32)  # carol, carrying nothing: the door opens
    until(lambda: any(c.kind == "output" for c in panel.commands[since:]), "the strike pulsed at the new door")
    assert any(e.source == "annex-door" and e.title == "exit allowed: carol" for e in running.bus.history())

    probe = running.runtime.probe("annex-panel")
    assert probe.health == "online" and probe.identity.startswith("OSDP vendor"), probe
    reader = running.runtime.probe("annex-reader")
    assert reader.health == "online" and reader.identity, reader


def test_a_device_removed_from_the_register_is_closed(running: RunningSite) -> None:
    add_annex_door(running.runtime.factory)
    until(lambda: "annex-reader" in running.readers, "the new reader opened")
    with db.transaction(running.runtime.factory) as session:
        session.delete(lookup.device(session, "annex-reader"))
    until(lambda: "annex-reader" not in running.readers, "the removed reader closed")
    assert health(running, "annex-reader") == "absent"
    with pytest.raises(KeyError):
        running.runtime.probe("annex-reader")


def test_a_device_that_cannot_be_opened_stays_closed_and_its_probe_says_why(running: RunningSite) -> None:
    with db.transaction(running.runtime.factory) as session:
        settings = (("transport", "/dev/ttyNOSUCHPORT"),)  # a real line, and no Secure Channel key named
        venues.create_device(
            session, "admin", venues.DeviceData("reading-panel", "osdp_panel", "reading-door", None, settings)
        )
    until(lambda: "reading-panel" in running.not_opened, "the refusal to open the panel")
    probe = running.runtime.probe("reading-panel")
    assert probe.health == "offline" and "scbk_env" in probe.detail, probe
    assert "reading-panel" not in running.lines
