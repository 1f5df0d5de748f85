"""The destruction station end to end over real Modbus transports: the shredder on Modbus TCP (loopback),
the degausser on Modbus RTU over a pty pair, the output photographed and measured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from controllers.destruction import MAX_FRAMES, DestructionStation, StationConfig
from custodian.wiring import SimulatedOutputTray
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.modbus.model import DegausserModel, Fault
from firmware_bridge.modbus.profile import load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator
from registry import journal
from registry.errors import RuleViolation
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


def station_config(machines: Machines, tmp_path: Path) -> StationConfig:
    return StationConfig(
        "station-1",
        "Example Institute",
        "Destruction centre",
        tmp_path / "certificates",
        shredder=machines.shredder,
        degausser=machines.degausser,
    )


def station(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path, *, intake: set[str], oversized: bool = False
) -> tuple[DestructionStation, LiveBus]:
    bus = LiveBus()
    config = station_config(machines, tmp_path)
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


# ---------------------------------------------------------------- a lot not verified, imaged again


class UnspreadTray(SimulatedOutputTray):
    """The operator asks for another image without touching the tray: the lot lies as it fell."""

    def photograph(self, level: str, *, frame: int = 1) -> np.ndarray:
        return super().photograph(level) if frame == 1 else self._again(level)

    def _again(self, level: str) -> np.ndarray:
        lot, self.next_lot = self._lot, self._lot[0]
        image = super().photograph(level)  # the same lot, unspread, drawn afresh
        self._lot = lot
        return image


class UncoveringTray(SimulatedOutputTray):
    """Spreading the pieces uncovers an oversized strip that lay under them."""

    def photograph(self, level: str, *, frame: int = 1) -> np.ndarray:
        if frame == 1:
            return super().photograph(level)
        return synthetic.shred_tray(
            size_px=(2400, 1800), px_per_mm=15.0, particle_mm=(0.95, 6.3), count=300, oversized_mm=[(8.0, 30.0)]
        ).image


def touching_station(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path, tray: SimulatedOutputTray
) -> tuple[DestructionStation, LiveBus]:
    """The site's own simulated output tray, its next lot with pieces touching end to side."""
    tray.next_lot = "touching"
    bus = LiveBus()
    config = station_config(machines, tmp_path)
    return DestructionStation(
        config,
        site,
        bus,
        intake=lambda: {DISK_EPC},
        camera=tray.photograph,
        analyse=particles.analyse,
        analyse_lot=particles.judge_frames,
    ), bus


def journal_actions(site: sessionmaker[Session]) -> list[str]:
    with site() as session:
        return list(session.execute(select(JournalEntry.action).order_by(JournalEntry.seq)).scalars())


def test_a_lot_not_verified_is_imaged_again_spread_and_destroyed_with_one_cycle(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, bus = touching_station(site, machines, tmp_path, SimulatedOutputTray())
    [first] = st.run(["S-2026-002"], "otto", "wendy")
    assert not first.destroyed and first.verification_pending, first.reason
    assert "touching end to side" in first.reason
    # Until then it is "destruction failed", in the operator's custody: a stop now loses nothing.
    assert item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    pending = st.pending()
    assert pending is not None and pending.frames == 1 and pending.witness == "wendy"
    assert (tmp_path / "certificates" / f"evidence-{pending.evidence_image_sha256[:16]}.png").is_file()
    second = st.reimage("otto", "wendy")
    assert second.destroyed, second.reason
    assert item_status(site, DISK_EPC) == ("destroyed", None)
    assert st.pending() is None
    with site() as session:
        records = list(session.execute(select(DestructionRecord).order_by(DestructionRecord.id)).scalars())
        assert [r.outcome for r in records] == ["failed", "destroyed"]
        parameters = json.loads(records[1].parameters_json)
        frames = parameters["evidence_frames_sha256"].split()
        assert len(frames) == 2 and frames[0] == pending.evidence_image_sha256 and parameters["particle_frames"] == "2"
        # One shredder cycle for both frames: the counter moved once.
        before, after = (int(v) for v in parameters["shredder-1_counter"].split(" -> "))
        assert after == before + 1
        reimaged = session.execute(
            select(JournalEntry).where(JournalEntry.action == "item.destruction_reimaged")
        ).scalar_one()
        assert frames[1] in reimaged.payload and '"witness":"wendy"' in reimaged.payload.replace(" ", "")
        assert journal.verify(session).ok
    [pdf] = (tmp_path / "certificates").glob("*.pdf")
    from controllers.certificate import sha256

    assert sha256(pdf.read_bytes()) == second.certificate_sha256
    assert any("another image requested" in e.title for e in bus.history())


def test_spreading_that_uncovers_an_oversized_strip_fails(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = touching_station(site, machines, tmp_path, UncoveringTray())
    [first] = st.run(["S-2026-002"], "otto", "wendy")
    assert first.verification_pending, first.reason
    second = st.reimage("otto", "wendy")
    assert not second.destroyed and not second.verification_pending
    assert "particle analysis fail from 2 frames" in second.reason
    assert item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    assert st.pending() is None
    with site() as session:
        outcomes = list(session.execute(select(DestructionRecord.outcome)).scalars())
    assert outcomes == ["failed", "failed"]


def test_the_operator_may_give_up_and_images_are_bounded(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = touching_station(site, machines, tmp_path, UnspreadTray())
    [first] = st.run(["S-2026-002"], "otto", "wendy")
    assert first.verification_pending
    again = st.reimage("otto", "wendy")  # nothing moved: the contact is still uncertain
    assert again.verification_pending and not again.destroyed, again.reason
    assert st.pending().frames == 2  # type: ignore[union-attr]
    gave_up = st.give_up("otto")
    assert not gave_up.destroyed and "gave up" in gave_up.reason
    assert item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    with pytest.raises(RuleViolation):
        st.reimage("otto", "wendy")  # nothing waits any more
    # A second run of the same item: its images run out at MAX_FRAMES, then destruction failed.
    st2, _ = touching_station(site, machines, tmp_path, UnspreadTray())
    [first] = st2.run(["S-2026-002"], "otto", "wendy")
    outcomes = [st2.reimage("otto", "wendy") for _ in range(MAX_FRAMES - 1)]
    assert [o.verification_pending for o in outcomes] == [True] * (MAX_FRAMES - 2) + [False]
    assert "no image left to take" in outcomes[-1].reason and not outcomes[-1].destroyed
    assert st2.pending() is None
    with site() as session:
        assert (
            session.execute(select(DestructionRecord).where(DestructionRecord.outcome == "destroyed")).first() is None
        )


def test_only_the_runs_operator_and_witness_may_reimage(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = touching_station(site, machines, tmp_path, SimulatedOutputTray())
    [first] = st.run(["S-2026-002"], "otto", "wendy")
    assert first.verification_pending
    with pytest.raises(RuleViolation, match="otto's run"):
        st.reimage("wendy", "otto")
    with pytest.raises(RuleViolation, match="another person"):
        st.reimage("otto", "otto")
    with pytest.raises(RuleViolation, match="otto's run"):
        st.give_up("wendy")
    assert st.pending() is not None and item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    assert "item.destruction_reimaged" not in journal_actions(site)


def test_a_stop_while_waiting_leaves_the_item_destruction_failed(
    site: sessionmaker[Session], machines: Machines, tmp_path: Path
) -> None:
    st, _bus = touching_station(site, machines, tmp_path, SimulatedOutputTray())
    [first] = st.run(["S-2026-002"], "otto", "wendy")
    assert first.verification_pending
    # The process stops: the station starts afresh on the same register, with nothing waiting.
    restarted, _ = touching_station(site, machines, tmp_path, SimulatedOutputTray())
    assert restarted.pending() is None
    with pytest.raises(RuleViolation, match="no lot is waiting"):
        restarted.reimage("otto", "wendy")
    assert item_status(site, DISK_EPC) == ("destruction_failed", "otto")
    with site() as session:
        assert list(session.execute(select(DestructionRecord.outcome)).scalars()) == ["failed"]
        assert journal.verify(session).ok


def test_a_new_run_ends_the_wait(site: sessionmaker[Session], machines: Machines, tmp_path: Path) -> None:
    st, _bus = touching_station(site, machines, tmp_path, SimulatedOutputTray())
    [first] = st.run(["S-2026-002"], "otto", "wendy")
    assert first.verification_pending
    st.run(["T-2026-002"], "otto", "wendy")  # new shred may fall into the tray: the old lot is no longer alone
    assert st.pending() is None
    with pytest.raises(RuleViolation):
        st.reimage("otto", "wendy")
    with site() as session:
        reasons = list(session.execute(select(DestructionRecord.reason).order_by(DestructionRecord.id)).scalars())
    assert "a new run started" in reasons[-1]
