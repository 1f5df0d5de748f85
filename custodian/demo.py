"""`custodian demo`: the example site with every device simulated, and people walking through it.

The traffic script acts only through the simulators, as people and devices would: cards presented on
OSDP panels, tags read by LLRP readers on their antennas, a tag placed on the destruction intake, a fire
alarm input raised. Everything else (decisions, doors, alarms, journal) is the real system at work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2

from controllers.bus import LiveKind
from custodian.wiring import RunningSite
from firmware_bridge.osdp.driver import DEFAULT_STALE_WINDOW_S
from firmware_bridge.osdp.simulator import PanelSimulator
from firmware_bridge.rfid.llrp_simulator import FieldTag, LlrpSimulator
from firmware_bridge.rfid.mercury_simulator import FieldTag as IntakeTag
from vision import synthetic
from vision.people import PeopleConfig, PeopleCounter, PortalLine

DECISION_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Walker:
    """Antenna layout of one portal's reader, as the site file declares it."""

    reader: str
    inside: tuple[int, ...]
    outside: tuple[int, ...]


PORTALS = {
    "archive-door": ("archive-door-panel", Walker("archive-door-reader", (1, 2), (3, 4))),
    "vault-dock": ("vault-dock-panel", Walker("vault-dock-reader", (1,), (2,))),
    "main-exit": ("main-exit-panel", Walker("main-exit-reader", (1,), (2,))),
}
CAMERAS = {"vault-dock": "vault-dock-camera", "main-exit": "main-exit-camera"}


@dataclass
class Traffic:
    """People at a running site's doors, acting only through its simulators. `portals`: portal code -> (its
    panel, its reader's antennas), as the site file declares them (default: the example site's)."""

    site: RunningSite
    log: Callable[[str], None] = print
    scenarios: list[str] = field(default_factory=list)
    portals: dict[str, tuple[str, Walker]] = field(default_factory=lambda: PORTALS)

    # ---- what people do ----
    # Tags are in the readers' fields while someone carries them there (`LlrpSimulator.place`): every present
    # tag answers every inventory round, the reader mode the engine's early allow assumes (tracking.engine).
    def approach(self, portal: str, epcs: list[str]) -> None:
        """Carry items up to the door and wait there: they are in the inside antennas' field until moved."""
        _panel, walker = self.portals[portal]
        reader = self._reader(walker.reader)
        for epc in epcs:
            for antenna in walker.inside:
                reader.place(FieldTag(epc, antenna, rssi_dbm=-52))

    def pass_through(self, portal: str, epcs: list[str], outside_s: float = 0.3) -> None:
        """Walk through the open door: the items leave the inside field, are read outside, then are gone."""
        _panel, walker = self.portals[portal]
        reader = self._reader(walker.reader)
        for epc in epcs:
            reader.remove(epc)
            for antenna in walker.outside:
                reader.place(FieldTag(epc, antenna, rssi_dbm=-50))
        time.sleep(outside_s)
        self.leave(portal, epcs)

    def leave(self, portal: str, epcs: list[str]) -> None:
        """Walk away from the door with the items (out of every antenna's field)."""
        reader = self._reader(self.portals[portal][1].reader)
        for epc in epcs:
            reader.remove(epc)

    def badge(self, portal: str, number: str) -> None:
        panel, _walker = self.portals[portal]
        self._panel(panel).present_card(f"{int(number):08x}", 32)

    def camera_sees(self, portal: str, people: int) -> int:
        """The portal camera films `people` walking up (a synthetic overhead scene); vision counts them."""
        scene = synthetic.portal_scene(people=people, seed=people * 7919 + len(self.scenarios))
        height = scene.frames[0][1].shape[0]
        counter = PeopleCounter(
            PeopleConfig(PortalLine((scene.line_x, 0.0), (scene.line_x, float(height))), scene.person_area_px)
        )
        counts = [(counter.update(t, frame).people, frame) for t, frame in scene.frames]
        seen, frame = max(counts, key=lambda pair: pair[0])
        ok, png = cv2.imencode(".png", frame)
        self.site.people_count(CAMERAS[portal], seen, png.tobytes() if ok else None)
        return seen

    def exit_attempt(self, portal: str, badges: list[str], epcs: list[str], people: int | None = None) -> bool:
        """Walk up, badge, stand at the door (tags read all the while) until it decides; walk through if it opens."""
        self._wait_for_panel(portal)
        if people is not None:
            self.camera_sees(portal, people)
        self.approach(portal, epcs)
        time.sleep(0.3)
        since = len(self._panel(self.portals[portal][0]).commands)
        decided = self._decisions(portal)
        for number in badges:
            self.badge(portal, number)
        self._wait(lambda: self._decisions(portal) >= decided + len(badges), DECISION_WAIT_S)
        opened = self._wait_door(portal, since)
        if opened:
            time.sleep(0.2)
            self.pass_through(portal, epcs)
        else:
            self.leave(portal, epcs)  # refused: they turn back with what they carry
        time.sleep(0.5)
        return opened

    # ---- the script ----
    def run(self) -> None:
        self.step("approved carry-out: bob takes the negotiation briefing out of the unit", self.approved_exit)
        self.step("unapproved exit: carol tries to take the backup disk", self.unapproved_exit)
        self.step("top secret with one badge: refused (two-person rule)", self.top_secret_alone)
        self.step("top secret with two cleared badges: allowed", self.top_secret_pair)
        self.step("tailgating: camera counts three people for two badges", self.tailgating)
        self.step("verified destruction of the backup disk", self.destruction)
        self.step("the destroyed disk's tag is seen at the main exit", self.destroyed_seen)
        self.step("an unregistered tag passes the main exit", self.unregistered)
        self.step("fire alarm: every door released, movements recorded", self.fire)
        self.step("archive reader unplugged: fail-secure refuses a secret exit", self.reader_unplugged)

    def step(self, title: str, action: Callable[[], object]) -> None:
        self.log(f"--- {title}")
        self.scenarios.append(title)
        result = action()
        if result is not None:
            self.log(f"    -> {result}")

    def approved_exit(self) -> str:
        inner = self.exit_attempt("archive-door", ["20003"], ["E28011700000020000000004"])
        time.sleep(3.0)  # down the corridor to the main exit
        outer = self.exit_attempt("main-exit", ["20003"], ["E28011700000020000000004"], people=1)
        return f"archive door opened: {inner}; main exit opened: {outer}"

    def unapproved_exit(self) -> str:
        opened = self.exit_attempt("archive-door", ["20004"], ["E28011700000020000000005"])
        return f"archive door opened: {opened}"

    def top_secret_alone(self) -> str:
        opened = self.exit_attempt("vault-dock", ["20001"], ["E28011700000020000000006"], people=1)
        return f"door opened: {opened}"

    def top_secret_pair(self) -> str:
        opened = self.exit_attempt("vault-dock", ["20001", "20002"], ["E28011700000020000000006"], people=2)
        return f"door opened: {opened}"

    def tailgating(self) -> str:
        opened = self.exit_attempt("vault-dock", ["20001", "20002"], ["E28011700000020000000006"], people=3)
        return f"door opened: {opened}"

    def destruction(self) -> str:
        intake = self.site.sims.mercury["destruction-intake"] if self.site.sims else None
        if intake is not None:
            intake.place(IntakeTag("E28011700000020000000005", 1, -45))
        outcomes = self.site.runtime.run_destruction("destruction-centre", ["S-2026-002"], "otto", "wendy")
        if intake is not None:
            intake.remove("E28011700000020000000005")
        return "; ".join(f"{o.item}: {'destroyed' if o.destroyed else 'NOT destroyed'} ({o.reason})" for o in outcomes)

    def destroyed_seen(self) -> None:
        self.approach("main-exit", ["E28011700000020000000005"])
        self._wait(lambda: any(e.title == "destroyed item seen" for e in self.site.bus.history()), 5.0)
        self.leave("main-exit", ["E28011700000020000000005"])

    def unregistered(self) -> None:
        self.approach("main-exit", ["E2801170000002000000BEEF"])
        self._wait(lambda: any(e.title == "unregistered tag" for e in self.site.bus.history()), 5.0)
        self.leave("main-exit", ["E2801170000002000000BEEF"])

    def fire(self) -> str:
        panel = self._panel("main-exit-panel")
        panel.raise_fire_alarm(True)
        released = self._wait(lambda: all(self._panel(p).strike_active for p, _w in self.portals.values()), 5.0)
        # Someone leaves through the released vault dock with a top-secret disk.
        self.approach("vault-dock", ["E28011700000020000000007"])
        time.sleep(0.3)
        self.pass_through("vault-dock", ["E28011700000020000000007"])
        time.sleep(1.5)
        panel.raise_fire_alarm(False)
        self._wait(lambda: not any(self._panel(p).strike_active for p, _w in self.portals.values()), 5.0)
        return f"all doors released during the alarm: {released}"

    def reader_unplugged(self) -> str:
        sim = self.site.sims.llrp["archive-door-reader"] if self.site.sims else None
        if sim is None:
            return "no simulated reader"
        sim.drop_link(refuse_for_s=4.0)
        time.sleep(1.5)
        opened = self.exit_attempt("archive-door", ["20003"], [])
        time.sleep(4.0)
        return f"door opened while the reader was away: {opened}"

    # ---- helpers ----
    def _reader(self, name: str) -> LlrpSimulator:
        assert self.site.sims is not None
        return self.site.sims.llrp[name]

    def _panel(self, name: str) -> PanelSimulator:
        assert self.site.sims is not None
        return self.site.sims.panels[name]

    def _decisions(self, portal: str) -> int:
        return sum(1 for e in self.site.bus.history() if e.source == portal and e.title.lower().startswith("exit"))

    def _wait_door(self, portal: str, since: int) -> bool:
        """True once the panel received a strike command after the badge (seen on the wire, not assumed)."""
        panel = self._panel(self.portals[portal][0])
        return self._wait(lambda: any(c.kind == "output" for c in panel.commands[since:]), 1.0)

    def _wait_for_panel(self, portal: str, timeout_s: float = 30.0) -> None:
        """People badge where the door's panel is on the line: a card read while it is away, or just back,
        is held or counted as replayed (the driver's promise, not this scenario's). On a starved machine a
        panel can drop for a moment; wait until it has been back for the stale window."""
        name = self.portals[portal][0]
        panel, deadline = self._panel(name), time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            door = next((d for d in self.site.runtime.doors() if d.portal == portal), None)
            changes = [e for e in self.site.bus.history() if e.kind == LiveKind.HEALTH and e.source == name]
            back_us = changes[-1].time_us if changes else 0
            settled = time.time_ns() // 1000 - back_us > DEFAULT_STALE_WINDOW_S * 1e6
            if door is not None and door.panel_online and panel.secure and settled:
                return
            time.sleep(0.05)

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return condition()


def summary(site: RunningSite, scenarios: list[str], seconds: float) -> dict[str, object]:
    events = site.bus.history()
    kinds: dict[str, int] = {}
    for event in events:
        kinds[str(event.kind)] = kinds.get(str(event.kind), 0) + 1
    allowed = [e for e in events if e.title.startswith("exit allowed")]
    blocked = [e for e in events if e.title.startswith("EXIT BLOCKED")]
    return {
        "seconds": round(seconds, 1),
        "scenarios": len(scenarios),
        "events": len(events),
        "by_kind": kinds,
        "decisions": site.runtime.portals.decisions,
        "exits_allowed": len(allowed),
        "exits_blocked": len(blocked),
        "alarms": sum(1 for e in events if e.kind == LiveKind.ALARM),
        "journal_records_written": site.runtime.recorder.written,
    }
