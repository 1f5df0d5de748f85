"""Driver for a destruction device on Modbus (TCP via `socket://host:port`, RTU via a serial path).

Reads and writes named points of its profile, tracks health, and runs one destruction cycle into a
CycleReport: the evidence a destruction certificate needs (counter before/after, measured parameters,
faults) and a verdict with reasons. Library errors are translated to firmware_bridge errors here only:
a device's exception reply becomes `DeviceRefused` named by its Modbus exception code (`DeviceBusy` for
SERVER DEVICE BUSY, which a cycle retries within its time budget), silence becomes `DeviceTimeout`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlparse

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import (
    DeviceBusy,
    DeviceOffline,
    DeviceRefused,
    DeviceTimeout,
    NoIdentification,
    ProfileError,
    ProtocolError,
    TransportError,
)
from firmware_bridge.events import HealthEvent
from firmware_bridge.health import HealthTracker, now_us
from firmware_bridge.kinds import require_module
from firmware_bridge.modbus.profile import Point, PointValue, Profile, Table

pymodbus_client = require_module("pymodbus.client", "Modbus devices (pip package pymodbus)")
pymodbus_exceptions = require_module("pymodbus.exceptions", "Modbus devices (pip package pymodbus)")
from pymodbus.pdu import ModbusPDU  # noqa: E402  (after the check that pymodbus is there)

T = TypeVar("T")
READ_METHODS = {Table.COIL: "read_coils", Table.DISCRETE: "read_discrete_inputs",
                Table.HOLDING: "read_holding_registers", Table.INPUT: "read_input_registers"}
SHREDDER_FAULT_FLAGS = {"jam": "jam", "bin_full": "bin full"}
DEGAUSSER_FAULT_FLAGS = {"fault": "device fault"}
# Modbus exception codes by their names in the Modbus Application Protocol specification.
EXCEPTION_NAMES = {
    0x01: "ILLEGAL FUNCTION",
    0x02: "ILLEGAL DATA ADDRESS",
    0x03: "ILLEGAL DATA VALUE",
    0x04: "SERVER DEVICE FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SERVER DEVICE BUSY",
    0x08: "MEMORY PARITY ERROR",
    0x0A: "GATEWAY PATH UNAVAILABLE",
    0x0B: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}
DEVICE_BUSY = 0x06


def exception_name(code: int) -> str:
    return EXCEPTION_NAMES.get(code, f"exception code {code:#04x}")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a device says about itself (Modbus Read Device Identification, basic objects)."""

    vendor: str
    product_code: str
    revision: str


@dataclass(frozen=True, slots=True)
class CycleReport:
    """One destruction cycle as the device reported it, with Custodian's verdict.

    `ok` is True only if the cycle was started, completed, the counter advanced by exactly one, no fault
    was seen, and the measured parameter met the requirement given to `run_cycle`; `reasons` lists
    every failed condition in operator's words.
    """

    device: str
    kind: str
    started_us: int
    ended_us: int
    counter_before: int | None
    counter_after: int | None
    peak_field_oe: float | None
    coil_rating_oe: float | None
    cut_size_mm: float | None
    max_motor_current_a: float | None
    faults: tuple[str, ...]
    ok: bool
    reasons: tuple[str, ...]


class ModbusDevice:
    """One shredder or degausser described by `profile`, reached at `url`."""

    def __init__(
        self,
        name: str,
        url: str,
        profile: Profile,
        *,
        unit_id: int = 1,
        timeout_s: float = 1.0,
        baudrate: int = 115200,
        backoff: Backoff | None = None,
        on_health: Callable[[HealthEvent], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.profile = profile
        self.unit_id = unit_id
        self.health = HealthTracker(name, on_health or (lambda _event: None))
        self._retry = RetrySchedule(backoff or Backoff(0.2, 10.0))
        if url.startswith("socket://"):
            parsed = urlparse(url)
            self._client = pymodbus_client.ModbusTcpClient(parsed.hostname or "127.0.0.1",
                                                           port=parsed.port or 502,
                                                           timeout=timeout_s, retries=0)
        else:
            self._client = pymodbus_client.ModbusSerialClient(url, baudrate=baudrate, timeout=timeout_s,
                                                              retries=0)

    # ----- connection -----

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ModbusDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, request: Callable[[], ModbusPDU]) -> ModbusPDU:
        """Run one request; the single place where pymodbus outcomes become health and our errors."""
        if not self._client.connected:
            if not self._retry.due():
                raise DeviceOffline(f"{self.name} is offline: {self.health.reason}")
            if not self._client.connect():
                self._retry.failed()
                self.health.offline(f"cannot connect to {self.url}")
                raise TransportError(f"{self.name}: cannot connect to {self.url}")
        try:
            response = request()
        except pymodbus_exceptions.ModbusIOException as exc:
            self._lost(f"no reply to {what}")
            raise DeviceTimeout(f"{self.name}: no reply to {what}: {exc}") from exc
        except (pymodbus_exceptions.ConnectionException, OSError) as exc:
            # pymodbus lets a reset socket's OSError (ECONNRESET, EPIPE) through unwrapped
            self._lost(f"connection lost during {what}")
            raise TransportError(f"{self.name}: connection lost during {what}: {exc}") from exc
        except pymodbus_exceptions.ModbusException as exc:
            self.health.count("protocol_errors")
            raise ProtocolError(f"{self.name}: {what}: {exc}") from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = exception_name(code)
            self.health.count("exception_replies")
            self._retry.succeeded()  # it answered: the link is fine
            if code == DEVICE_BUSY:
                self.health.count("busy_replies")
                raise DeviceBusy(f"{self.name}: {what}: {name}", code=code, name=name)
            self.health.degraded(f"device refused {what}: {name}")
            raise DeviceRefused(f"{self.name}: {what}: {name}", code=code, name=name)
        self._retry.succeeded()
        self.health.online()
        return response

    def _lost(self, reason: str) -> None:
        self.health.count("comm_failures")
        self._client.close()
        self._retry.failed()
        self.health.offline(reason)

    # ----- points -----

    def read(self, point_name: str) -> PointValue:
        point = self.profile.point(point_name)
        return point.decode(self._read_raw(point))

    def _read_raw(self, point: Point) -> list[int] | list[bool]:
        method = getattr(self._client, READ_METHODS[point.table])
        response = self._call(f"read {point.name}",
                              lambda: method(point.address, count=point.words, device_id=self.unit_id))
        return list(response.bits[: point.words]) if point.table.is_bit else list(response.registers)

    def write(self, point_name: str, value: PointValue) -> None:
        point = self.profile.point(point_name)
        if not point.table.writable:
            raise ProfileError(f"{point_name} is a {point.table}, which cannot be written")
        raw = point.encode(value)
        what = f"write {point_name}"
        if point.table is Table.COIL:
            self._call(what, lambda: self._client.write_coil(point.address, bool(raw[0]), device_id=self.unit_id))
        else:
            self._call(what, lambda: self._client.write_registers(point.address, [int(v) for v in raw],
                                                                 device_id=self.unit_id))

    def read_all(self) -> dict[str, PointValue]:
        return {name: self.read(name) for name in self.profile.points}

    def identify(self) -> DeviceInfo:
        """Vendor, product code and revision (Read Device Identification, basic objects 0-2).

        Raises NoIdentification for a device that answers but has none (many PLCs do not implement
        function 43/14, and answer ILLEGAL FUNCTION).
        """
        what = "read device identification"
        try:
            response = self._call(what, lambda: self._client.read_device_information(device_id=self.unit_id))
        except DeviceRefused as exc:
            if exc.code in (0x01, 0x02):
                raise NoIdentification(f"{self.name}: no identification objects ({exc.name})") from exc
            raise
        info: dict[int, bytes | str] = getattr(response, "information", {})

        def text(key: int) -> str:
            value = info.get(key, b"")
            return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)

        found = DeviceInfo(text(0), text(1), text(2))
        if not (found.vendor or found.product_code or found.revision):
            raise NoIdentification(f"{self.name}: the device reported no identification objects")
        return found

    # ----- the cycle -----

    def run_cycle(
        self,
        *,
        timeout_s: float = 30.0,
        poll_s: float = 0.05,
        cut_size_mm: float | None = None,
        max_cut_size_mm: float | None = None,
        min_field_oe: float | None = None,
        contact_grace_s: float = 3.0,
    ) -> CycleReport:
        """Run one cycle and report it. Never raises for device trouble: that goes into the report.

        Shredder: `cut_size_mm` sets the cutting size first; `max_cut_size_mm` is the largest allowed.
        Degausser: `min_field_oe` is the field the medium needs (e.g. 2-3x its coercivity).
        A lost reply is retried; contact counts as lost after `contact_grace_s` without an answer.
        """
        run = _CycleRun(self, poll_s, contact_grace_s, time.monotonic() + timeout_s)
        started = now_us()
        try:
            run.execute(timeout_s, cut_size_mm)
        except DeviceBusy as exc:
            run.reasons.append(f"device busy beyond the cycle's {timeout_s:g} s: {exc.name}")
        except DeviceRefused as exc:
            run.reasons.append(f"device refused a request: {exc}")
        except (DeviceOffline, DeviceTimeout, TransportError, ProtocolError) as exc:
            run.reasons.append(f"lost contact with the device: {exc}")
        with contextlib.suppress(DeviceOffline, DeviceTimeout, TransportError, ProtocolError):
            run.release_start()
        run.judge(cut_size_limit=max_cut_size_mm, min_field_oe=min_field_oe)
        return CycleReport(
            device=self.name, kind=self.profile.kind, started_us=started, ended_us=now_us(),
            counter_before=run.counter_before, counter_after=run.counter_after,
            peak_field_oe=run.peak_field, coil_rating_oe=run.coil_rating, cut_size_mm=run.cut_size,
            max_motor_current_a=run.max_current, faults=tuple(dict.fromkeys(run.faults)),
            ok=not run.reasons, reasons=tuple(run.reasons),
        )


class _CycleRun:
    """The mutable working state of one cycle; kept apart so `run_cycle` reads as the procedure it is."""

    def __init__(self, device: ModbusDevice, poll_s: float, contact_grace_s: float, budget_ends: float) -> None:
        self.device = device
        self.contact_grace_s = contact_grace_s
        self.budget_ends = budget_ends  # monotonic time the cycle must be over by
        self.kind = device.profile.kind
        self.poll_s = poll_s
        self.start_point = "cycle_start" if self.kind == "shredder" else "start_cycle"
        self.counter_before: int | None = None
        self.counter_after: int | None = None
        self.peak_field: float | None = None
        self.coil_rating: float | None = None
        self.cut_size: float | None = None
        self.max_current: float | None = None
        self.faults: list[str] = []
        self.reasons: list[str] = []
        self.started = False
        self.completed = False

    def _read(self, point: str) -> PointValue:
        return self._persist(lambda: self.device.read(point))

    def _write(self, point: str, value: PointValue) -> None:
        self._persist(lambda: self.device.write(point, value))  # writes here are idempotent

    def _persist(self, request: Callable[[], T]) -> T:
        """One exchange, retried through lost replies (a noisy bus) until the contact grace runs out, and
        through SERVER DEVICE BUSY (the PLC is busy with the cycle) until the cycle's budget runs out."""
        deadline = time.monotonic() + self.contact_grace_s
        while True:
            try:
                return request()
            except DeviceBusy:
                if time.monotonic() >= self.budget_ends:
                    raise
                deadline = time.monotonic() + self.contact_grace_s  # it answered: contact is not lost
            except (DeviceTimeout, TransportError, DeviceOffline):
                if time.monotonic() >= deadline:
                    raise
            time.sleep(self.poll_s)

    def _faults_now(self) -> list[str]:
        found: list[str] = []
        flags = SHREDDER_FAULT_FLAGS if self.kind == "shredder" else DEGAUSSER_FAULT_FLAGS
        for point, words in flags.items():
            if self._read(point):
                found.append(words)
        if "door_interlock" in self.device.profile.points and not self._read("door_interlock"):
            found.append("door open")
        if "fault_code" in self.device.profile.points and (code := int(self._read("fault_code"))):
            found.append(f"fault code {code}")
        return found

    def execute(self, timeout_s: float, cut_size_mm: float | None) -> None:
        self.counter_before = int(self._read("cycle_counter"))
        if self.kind == "shredder" and cut_size_mm is not None:
            self._write("cutting_size", cut_size_mm)
        if self.kind == "shredder":
            self.cut_size = float(self._read("cutting_size"))
        else:
            self.coil_rating = float(self._read("coil_rating"))
            if not self._read("ready"):
                self.reasons.append("degausser not ready")
        blocking = self._faults_now()
        if blocking:
            self.faults += blocking
            self.reasons.append("not started: " + ", ".join(dict.fromkeys(blocking)))
            return
        if self.reasons:
            return
        self._write(self.start_point, True)
        self.started = True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(self.poll_s)
            if self.kind == "shredder":
                current = float(self._read("motor_current"))
                self.max_current = max(self.max_current or 0.0, current)
            if self._read("cycle_complete"):
                self.completed = True
                break
            found = self._faults_now()
            if found:
                # Points are read one by one while the machine changes; a second look sees the settled set.
                found += self._faults_now()
                self.faults += found
                self.reasons.append("cycle aborted: " + ", ".join(dict.fromkeys(found)))
                break
        else:
            self.reasons.append(f"no cycle completion within {timeout_s:g} s")
        self.counter_after = int(self._read("cycle_counter"))
        if self.kind == "degausser" and self.completed:
            self.peak_field = float(self._read("peak_field"))

    def release_start(self) -> None:
        if self.started:
            self._write(self.start_point, False)

    def judge(self, *, cut_size_limit: float | None, min_field_oe: float | None) -> None:
        if not self.started:
            return
        if self.completed and self.counter_before is not None and self.counter_after is not None \
                and self.counter_after != self.counter_before + 1:
            self.reasons.append(f"cycle counter went {self.counter_before} -> {self.counter_after}, "
                                "not up by one")
        if cut_size_limit is not None and self.cut_size is not None and self.cut_size > cut_size_limit:
            self.reasons.append(f"cutting size {self.cut_size:g} mm exceeds {cut_size_limit:g} mm")
        if min_field_oe is not None and self.completed and self.peak_field is not None \
                and self.peak_field < min_field_oe:
            self.reasons.append(f"peak field {self.peak_field:g} Oe below the required {min_field_oe:g} Oe")
