"""Behaviour of simulated destruction devices, independent of Modbus: a register image plus a state machine.

Time advances explicitly (`advance(now)`), so the models are testable without threads; the Modbus
simulator calls it before serving each request.
"""

from __future__ import annotations

import enum
import math
import threading

from firmware_bridge.modbus.profile import PointValue, Profile, Table


class Fault(enum.StrEnum):
    """Faults a drill or test can arm; each fires once, during the next cycle (bin_full at its start)."""

    JAM = "jam"
    DOOR_OPENED = "door_opened"
    BIN_FULL = "bin_full"
    WEAK_FIELD = "weak_field"


class DeviceModel:
    """A register image addressed by point name; subclasses add the machine's behaviour."""

    start_point = "cycle_start"

    def __init__(self, profile: Profile, cycle_s: float) -> None:
        self.profile = profile
        self.cycle_s = cycle_s
        self.tables: dict[Table, list[int]] = {t: [0] * profile.table_size(t) for t in Table}
        self.armed: set[Fault] = set()
        self.started_at: float | None = None
        self.lock = threading.RLock()

    def get(self, name: str) -> PointValue:
        point = self.profile.point(name)
        return point.decode(self.tables[point.table][point.address: point.address + point.words])

    def set(self, name: str, value: PointValue) -> None:
        point = self.profile.point(name)
        self.tables[point.table][point.address: point.address + point.words] = [
            int(v) for v in point.encode(value)]

    def write(self, table: Table, address: int, values: list[int], now: float) -> None:
        start = self.profile.point(self.start_point)
        rising = (table is start.table and address <= start.address < address + len(values)
                  and values[start.address - address] and not self.get(self.start_point))
        self.tables[table][address: address + len(values)] = [int(v) for v in values]
        if rising:
            self.on_start(now)

    def arm(self, fault: Fault) -> None:
        self.armed.add(fault)

    def _fire(self, fault: Fault) -> bool:
        if fault in self.armed:
            self.armed.discard(fault)
            return True
        return False

    def on_start(self, now: float) -> None:
        raise NotImplementedError

    def advance(self, now: float) -> None:
        raise NotImplementedError


class ShredderModel(DeviceModel):
    FAULT_JAM, FAULT_DOOR, FAULT_BIN = 1, 2, 3
    RUNNING_CURRENT_A = 8.0

    def __init__(self, profile: Profile, cycle_s: float = 0.3, cutting_size_mm: float = 2.0) -> None:
        super().__init__(profile, cycle_s)
        self.set("door_interlock", True)
        self.set("cutting_size", cutting_size_mm)

    def on_start(self, now: float) -> None:
        if self._fire(Fault.BIN_FULL):
            self.set("bin_full", True)
            self.set("fault_code", self.FAULT_BIN)
        if self.get("running") or self.get("jam") or self.get("bin_full") or not self.get("door_interlock"):
            return  # a PLC ignores start while it cannot run
        self.set("running", True)
        self.set("cycle_complete", False)
        self.set("fault_code", 0)
        self.started_at = now

    def advance(self, now: float) -> None:
        if self.started_at is None:
            return
        elapsed = now - self.started_at
        self.set("motor_current", self.RUNNING_CURRENT_A + 0.8 * math.sin(elapsed * 20))
        if elapsed >= self.cycle_s / 2 and Fault.JAM in self.armed:
            self._fire(Fault.JAM)
            self._halt(self.FAULT_JAM, "jam")
        elif elapsed >= self.cycle_s / 2 and Fault.DOOR_OPENED in self.armed:
            self._fire(Fault.DOOR_OPENED)
            self.set("door_interlock", False)
            self._halt(self.FAULT_DOOR)
        elif elapsed >= self.cycle_s:
            self.set("running", False)
            self.set("cycle_complete", True)
            self.set("cycle_counter", int(self.get("cycle_counter")) + 1)
            self.set("motor_current", 0)
            self.started_at = None

    def _halt(self, code: int, flag: str | None = None) -> None:
        if flag:
            self.set(flag, True)
        self.set("running", False)
        self.set("motor_current", 0)
        self.set("fault_code", code)
        self.started_at = None

    def clear(self) -> None:
        """The operator clears a jam, empties the bin and closes the door."""
        for name in ("jam", "bin_full"):
            self.set(name, False)
        self.set("door_interlock", True)
        self.set("fault_code", 0)


class DegausserModel(DeviceModel):
    start_point = "start_cycle"
    FAULT_WEAK, FAULT_DOOR = 1, 2

    def __init__(self, profile: Profile, cycle_s: float = 0.3, coil_rating_oe: int = 10000) -> None:
        super().__init__(profile, cycle_s)
        self.set("coil_rating", coil_rating_oe)
        self.set("ready", True)
        if "door_interlock" in profile.points:
            self.set("door_interlock", True)

    def _door_closed(self) -> bool:
        return "door_interlock" not in self.profile.points or bool(self.get("door_interlock"))

    def on_start(self, now: float) -> None:
        if not self.get("ready") or self.get("fault") or not self._door_closed():
            return
        self.set("ready", False)
        self.set("charging", True)
        self.set("cycle_complete", False)
        self.started_at = now

    def advance(self, now: float) -> None:
        if self.started_at is None:
            return
        elapsed = now - self.started_at
        if elapsed >= self.cycle_s / 2 and Fault.DOOR_OPENED in self.armed:
            self._fire(Fault.DOOR_OPENED)
            if "door_interlock" in self.profile.points:
                self.set("door_interlock", False)
            self.set("charging", False)
            self.set("fault", True)
            self._set_code(self.FAULT_DOOR)
            self.started_at = None
        elif elapsed >= self.cycle_s:
            rating = int(self.get("coil_rating"))
            # The capacitor bank discharges; a weak bank reaches only a fraction of the coil rating and the
            # machine does not notice: only comparing the measured field with the medium's need does.
            ratio = 0.3 if self._fire(Fault.WEAK_FIELD) else 0.97
            self.set("peak_field", round(rating * ratio))
            self.set("charging", False)
            self.set("cycle_complete", True)
            self.set("ready", True)
            self.set("cycle_counter", int(self.get("cycle_counter")) + 1)
            self.started_at = None

    def _set_code(self, code: int) -> None:
        if "fault_code" in self.profile.points:
            self.set("fault_code", code)

    def clear(self) -> None:
        self.set("fault", False)
        if "door_interlock" in self.profile.points:
            self.set("door_interlock", True)
        self._set_code(0)
        self.set("ready", True)
