"""Modbus simulators of destruction devices: a device model served by pymodbus over TCP or RTU (pty).

The served registers are the model's: every request first advances the model's clock, reads are
answered from it and writes go to it. `power_off()` makes the server vanish (no listener, no replies)
while the machine's state survives for `power_on()`, as after a real power cut.

Each simulator answers Read Device Identification (43/14) with its own identity: pymodbus keeps one
identity per process, so two simulated machines in one process would otherwise both claim the last
one set. `identity=None` simulates a PLC without identification objects (ILLEGAL FUNCTION), and
`refuse()` answers the next requests with an exception code (SERVER DEVICE BUSY during a long
operation, SERVER DEVICE FAILURE, ...), as a PLC does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.kinds import require_module
from firmware_bridge.modbus.model import DegausserModel, DeviceModel, Fault, ShredderModel
from firmware_bridge.modbus.profile import Profile, Table
from firmware_bridge.transport import NullModem

pymodbus_server = require_module("pymodbus.server", "Modbus devices (pip package pymodbus)")
from pymodbus.constants import DeviceInformation, ExcCodes  # noqa: E402
from pymodbus.pdu import ExceptionResponse, ModbusPDU  # noqa: E402
from pymodbus.pdu.device import ModbusDeviceIdentification  # noqa: E402
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse  # noqa: E402
from pymodbus.server import ModbusBaseServer  # noqa: E402
from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: E402
from pymodbus.simulator.simutils import SimUtils  # noqa: E402

FUNCTION_TABLES = {1: Table.COIL, 5: Table.COIL, 15: Table.COIL, 2: Table.DISCRETE,
                   3: Table.HOLDING, 6: Table.HOLDING, 16: Table.HOLDING, 23: Table.HOLDING,
                   4: Table.INPUT}
TABLE_ORDER = (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT)  # pymodbus's block order


def build_model(profile: Profile, cycle_s: float = 0.3, coil_rating_oe: int = 10000) -> DeviceModel:
    """The machine a profile describes (a degausser with the given coil rating)."""
    if profile.kind == "shredder":
        return ShredderModel(profile, cycle_s)
    return DegausserModel(profile, cycle_s, coil_rating_oe)


@dataclass(frozen=True, slots=True)
class Identity:
    """Read Device Identification basic objects: vendor, product code, revision (and a model name)."""

    vendor: str
    product_code: str
    revision: str
    model: str = ""

    def objects(self) -> dict[int, bytes]:
        found = {0: self.vendor, 1: self.product_code, 2: self.revision, 7: self.model}
        return {k: v.encode() for k, v in found.items() if v}


def _identification_request(identity: Identity | None) -> type[ModbusPDU]:
    """Function 43/14 answered from this device's identity (pymodbus's own reads a process-wide one)."""

    class OwnIdentification(ReadDeviceInformationRequest):
        sub_function_code = -1  # decoded here, not replaced by pymodbus's sub-function table

        @classmethod
        def decode_sub_function_code(cls, data: bytes) -> int:
            return -1

        def decode(self, data: bytes) -> None:
            _mei, self.read_code, self.object_id = data[0], data[1], data[2]

        async def datastore_update(self, context: object, device_id: int) -> ModbusPDU:
            if identity is None:
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)
            objects = identity.objects()
            if self.read_code == DeviceInformation.BASIC:
                objects = {k: v for k, v in objects.items() if k <= 0x02}
            elif self.read_code == DeviceInformation.SPECIFIC:
                if self.object_id not in objects:
                    return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)
                objects = {self.object_id: objects[self.object_id]}
            else:
                objects = {k: v for k, v in objects.items() if k >= self.object_id}
            return ReadDeviceInformationResponse(read_code=self.read_code, information=objects, dev_id=device_id,
                                                 transaction_id=self.transaction_id)

    return OwnIdentification


class ModbusSimulator:
    """A device on Modbus TCP (`transport="tcp"`, loopback, `port` 0 = any) or RTU over a pty pair."""

    def __init__(
        self,
        profile: Profile,
        *,
        transport: str = "tcp",
        port: int = 0,
        link: Path | None = None,
        unit_id: int = 1,
        cycle_s: float = 0.3,
        model: DeviceModel | None = None,
        baudrate: int = 115200,
        identity: Identity | str | None = "default",
    ) -> None:
        if transport not in ("tcp", "rtu"):
            raise ValueError("transport is 'tcp' or 'rtu'")
        self.profile = profile
        self.model = model or build_model(profile, cycle_s)
        self.identity = Identity("Custodian simulator", profile.kind, "1.0", profile.name) \
            if identity == "default" else identity
        self._refusals: list[int] = []  # exception codes for the next requests
        self.transport = transport
        self.unit_id = unit_id
        self.baudrate = baudrate
        self.port = port
        self.requests = 0
        self._drops = 0
        self._modem = NullModem(None, link) if transport == "rtu" else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusBaseServer | None = None

    @property
    def url(self) -> str:
        """What a driver opens: `socket://127.0.0.1:PORT` or the pty path of the RTU line."""
        if self._modem is not None:
            return self._modem.path_b
        if not self.port:
            raise RuntimeError("simulator not started")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def powered(self) -> bool:
        return self._thread is not None

    def inject(self, fault: Fault) -> None:
        with self.model.lock:
            self.model.arm(fault)

    def power_on(self) -> ModbusSimulator:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready, failure), daemon=True,
                                        name=f"modbus-sim {self.profile.name}")
        self._thread.start()
        ready.wait(10)
        if failure:
            self.power_off()
            raise failure[0]
        return self

    def power_off(self) -> None:
        """The machine loses power: connections drop and nothing answers until `power_on`."""
        if self._thread is None or self._loop is None:
            return
        if self._server is not None:
            future = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None
        self._server = None

    def close(self) -> None:
        self.power_off()
        if self._modem is not None:
            self._modem.close()
            self._modem = None

    def __enter__(self) -> ModbusSimulator:
        return self.power_on()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- server thread -----

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # reported to power_on's caller
            failure.append(exc)
            ready.set()
            self._finish(loop)
            return
        ready.set()
        loop.run_forever()
        self._finish(loop)

    @staticmethod
    def _finish(loop: asyncio.AbstractEventLoop) -> None:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    async def _listen(self) -> None:
        device = SimDevice(self.unit_id, simdata=self._blocks(), identity=ModbusDeviceIdentification(),
                           action=self._action)
        own = [_identification_request(self.identity)]
        if self._modem is not None:
            server = pymodbus_server.ModbusSerialServer(device, port=self._modem.path_a,
                                                        baudrate=self.baudrate, timeout=0.5,
                                                        ignore_missing_devices=True,
                                                        trace_packet=self._outgoing, custom_pdu=own)
        else:
            server = pymodbus_server.ModbusTcpServer(device, address=("127.0.0.1", self.port),
                                                     ignore_missing_devices=True,
                                                     trace_packet=self._outgoing, custom_pdu=own)
        await server.serve_forever(background=True)
        self._server = server
        if self._modem is None:
            self.port = server.transport.sockets[0].getsockname()[1]

    def refuse(self, code: int, count: int = 1) -> None:
        """Answer the next `count` register requests with Modbus exception `code` (e.g. 6, DEVICE BUSY);
        a refused write does not take effect."""
        with self.model.lock:
            self._refusals += [code] * count

    def drop_replies(self, count: int) -> None:
        """Lose the next `count` replies on the wire, as a noisy bus does; the requests still take effect."""
        with self.model.lock:
            self._drops = count

    def _outgoing(self, sending: bool, packet: bytes) -> bytes:
        if not sending or not packet:
            return packet
        # On a multi-drop RS-485 line only the addressed device may answer. pymodbus 3.16 answers
        # requests for other unit ids with "device failure" (its SimDevice lookup raises KeyError,
        # which ignore_missing_devices does not catch), so such replies are dropped here.
        if self._modem is not None and packet[0] != self.unit_id:
            return b""
        with self.model.lock:
            if self._drops > 0:
                self._drops -= 1
                return b""
        return packet

    def _blocks(self) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
        def block(table: Table) -> list[SimData]:
            size = self.profile.table_size(table)
            if table.is_bit:
                return [SimData(0, values=[False] * size, datatype=DataType.BITS)]
            return [SimData(0, values=[0] * size, datatype=DataType.REGISTERS)]

        coils, discretes, holdings, inputs = (block(t) for t in TABLE_ORDER)
        return coils, discretes, holdings, inputs

    async def _action(self, function_code: int, start: int, address: int, count: int,
                      registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        """Serve pymodbus's register block from the model (and writes into it) for every request."""
        table = FUNCTION_TABLES.get(function_code)
        if table is None:
            return None
        self.requests += 1
        with self.model.lock:
            if self._refusals:
                return ExcCodes(self._refusals.pop(0))
            now = time.monotonic()
            self.model.advance(now)
            if set_values is not None:
                self.model.write(table, address, [int(v) for v in set_values], now)
            image = self.model.tables[table]
            if table.is_bit:
                padded = image + [0] * (-len(image) % 16)
                words = SimUtils.bitsToRegisters([bool(b) for b in padded])
            else:
                words = list(image)
            registers[: len(words)] = words
        return None
