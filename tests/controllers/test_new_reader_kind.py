"""A reader kind added in one place (a row of firmware_bridge.kinds and its backend) works end to end: the
register accepts it, the admin API's kind list has it, wiring simulates, opens and starts it as a portal
reader, and its reads reach the engine."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.schemas import DeviceCreate
from controllers.bus import LiveBus
from custodian.wiring import start_site
from firmware_bridge.rfid.mercury_simulator import FieldTag
from registry import db
from registry.services.venues import DeviceData, create_device
from tests.firmware_bridge.helpers import wait_for


def test_a_mercury_module_streams_at_a_portal(site: sessionmaker[Session], tmp_path: Path) -> None:
    assert DeviceCreate(name="gate-module", kind="mercury_portal", portal="main-exit").kind == "mercury_portal"
    with db.transaction(site) as session:
        create_device(session, "admin", DeviceData("gate-module", "mercury_portal", "main-exit", None,
                                                   antennas=((1, "inside"), (2, "outside"))))
    running = start_site(site, LiveBus(), tmp_path, simulate=True)
    try:
        reader = running.readers["gate-module"]
        assert wait_for(lambda: reader.health.health.value == "online", 20)
        running.sims.mercury["gate-module"].place(FieldTag("E28011700000020000000004", 1, -50))
        assert wait_for(lambda: reader.rounds_completed >= 4 and reader.tags_received >= 1, 20)
        assert wait_for(lambda: running.runtime.engine.stats["reads"] >= 1, 20)  # into the engine
    finally:
        running.stop()
