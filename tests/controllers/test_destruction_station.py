"""The destruction station end to end over real Modbus transports: the shredder on Modbus TCP (loopback),
the degausser on Modbus RTU over a pty pair, the output photographed and measured."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from controllers.destruction import DestructionStation, StationConfig
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.modbus.model import DegausserModel, Fault
from firmware_bridge.modbus.profile import load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator
from registry import journal
from registry.models import DestructionRecord, Item, JournalEntry
from vision import particles, synthetic

DISK_EPC = "E28011700000020000000005"  # S-2026-002, an HDD with an approved destruction request


@dataclass
class Machines:
    shredder_sim: ModbusSimulator
    degausser_sim: ModbusSimulator
    shredder: ModbusDevice
    degausser: ModbusDevice


@pytest.fixture
def machines() -> Iterator[Machines]:
    shredder_profile = load_profile("shredder_generic")
    degausser_profile = load_profile("degausser_generic")
    shredder_sim = ModbusSimulator(shredder_profile, transport="tcp", cycle_s=0.2).power_on()
    degausser_sim = ModbusSimulator(
        degausser_profile, transport="rtu", model=DegausserModel(degausser_profile, 0.2, coil_rating_oe=20000)
    ).power_on()
    shredder = ModbusDevice("shredder-1", shredder_sim.url, shredder_profile)
    degausser = ModbusDevice("degausser-1", degausser_sim.url, degausser_profile)
    try:
        yield Machines(shredder_sim, degausser_sim, shredder, degausser)
    finally:
        shredder.close()
        degausser.close()
        shredder_sim.close()
        degausser_sim.close()


def tray(oversized: bool) -> np.ndarray:
    extra = [(8.0, 30.0)] if oversized else []
    shot = synthetic.shred_tray(size_px=(2000, 1500), particle_mm=(1.5, 4.0), count=300, seed=3, oversized_mm=extra)
    return shot.image


def station(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path, *, intake: set[str], oversized: bool = False
) -> tuple[DestructionStation, LiveBus]:
    bus = LiveBus()
    config = StationConfig(
        "station-1",
        "Example Institute",
        "Destruction centre",
        tmp_path / "certificates",
        shredder=machines.shredder,
        degausser=machines.degausser,
    )
    return DestructionStation(
        config, site, bus, intake=lambda: intake, camera=lambda _level: tray(oversized), analyse=particles.analyse
    ), bus


def item_status(site: sessionmaker[Session], epc: str) -> tuple[str, str | None]:
    with site() as session:
        item = session.execute(select(Item).where(Item.epc == epc)).scalar_one()
        return item.status, item.custodian.username if item.custodian else None


def test_approved_destruction_is_verified_and_certified(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, bus = station(site, machines, tmp_path, intake={DISK_EPC})
    [outcome] = st.run(["S-2026-002"], "otto", "wendy")
    assert outcome.destroyed, outcome.reason
    assert item_status(site, DISK_EPC) == ("destroyed", None)
    [pdf] = (tmp_path / "certificates").glob("*.pdf")
    from controllers.certificate import sha256

    assert sha256(pdf.read_bytes()) == outcome.certificate_sha256
    with site() as session:
        record = session.execute(select(DestructionRecord)).scalar_one()
        entry = session.get(JournalEntry, record.journal_seq)
        assert entry is not None and outcome.certificate_sha256 in entry.payload
        assert '"peak_field_oe":"19400.0"' in record.parameters_json.replace(" ", "")
        assert journal.verify(session).ok
    assert any("destroyed and verified" in e.title for e in bus.history())


def test_weak_degausser_field_leaves_the_item_with_the_operator(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    machines.degausser_sim.inject(Fault.WEAK_FIELD)
    st, bus = station(site, machines, tmp_path, intake={DISK_EPC})
    [outcome] = st.run(["S-2026-002"], "otto", "wendy")
    assert not outcome.destroyed and "degausser-1" in outcome.reason
    assert item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    assert not list((tmp_path / "certificates").glob("*.pdf"))
    with site() as session:
        record = session.execute(select(DestructionRecord)).scalar_one()
        # The shredder never ran, so the record names the degausser alone; the witness who stood by is kept.
        assert record.device_name == "degausser-1" and record.witness_id is not None
    titles = [e.title for e in bus.history()]
    assert "S-2026-002/1: degausser-1 cycle started" in titles and not any("shredder-1" in t for t in titles)
    assert any(t.startswith("DESTRUCTION FAILED") for t in titles)


def test_an_oversized_particle_leaves_the_item_not_destroyed(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = station(site, machines, tmp_path, intake={DISK_EPC}, oversized=True)
    [outcome] = st.run(["S-2026-002"], "otto", "wendy")
    assert not outcome.destroyed and "particle analysis fail" in outcome.reason
    assert item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    [evidence] = (tmp_path / "certificates").glob("evidence-*.png")  # offenders outlined, kept as evidence
    assert evidence.read_bytes().startswith(b"\x89PNG")


def test_a_jammed_shredder_fails_the_cycle(site: sessionmaker[Session], machines: Machines, tmp_path: Path) -> None:
    machines.shredder_sim.inject(Fault.JAM)
    st, _bus = station(site, machines, tmp_path, intake={DISK_EPC})
    [outcome] = st.run(["S-2026-002"], "otto", "wendy")
    assert not outcome.destroyed and "shredder-1" in outcome.reason


def test_the_wrong_item_in_the_hopper_is_refused(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = station(site, machines, tmp_path, intake={"E28011700000020000000004"})
    [outcome] = st.run(["S-2026-002"], "otto", "wendy")
    assert not outcome.destroyed and "intake" in outcome.reason


def test_without_approval_or_second_person_nothing_starts(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = station(site, machines, tmp_path, intake={"E28011700000020000000007", DISK_EPC})
    [unapproved] = st.run(["T-2026-002"], "otto", "wendy")
    assert not unapproved.destroyed and "no approved destruction request" in unapproved.reason
    assert item_status(site, "E28011700000020000000007") == ("active", None)
    [alone] = st.run(["S-2026-002"], "otto", "otto")
    assert not alone.destroyed and "witness" in alone.reason
    assert item_status(site, DISK_EPC) == ("active", None)
