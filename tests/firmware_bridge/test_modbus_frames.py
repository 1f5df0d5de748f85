"""Byte-level Modbus RTU frames against the RTU simulator: whole, split, byte by byte, corrupted, noisy.

Expected replies are built here from the Modbus specification (CRC-16/MODBUS computed by a reference
implementation in this file), independently of pymodbus, which both the simulator and driver use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import serial

from firmware_bridge.modbus.profile import load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator

SHREDDER = load_profile("shredder_generic")


def crc16_modbus(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def frame(body: bytes) -> bytes:
    return body + crc16_modbus(body)


READ_COUNTER = frame(bytes([1, 4, 0, 0, 0, 2]))  # unit 1, read input registers 0..1
READ_SIZE = frame(bytes([1, 3, 0, 0, 0, 1]))  # unit 1, read holding register 0 (cutting size)


@pytest.fixture
def line() -> Iterator[tuple[ModbusSimulator, serial.Serial]]:
    with ModbusSimulator(SHREDDER, transport="rtu") as sim:
        sim.model.set("cycle_counter", 0x00012345)
        port = serial.serial_for_url(sim.url, baudrate=115200, timeout=0.5)
        try:
            yield sim, port
        finally:
            port.close()


def reply(port: serial.Serial, size: int) -> bytes:
    return port.read(size)


def expected_counter_reply() -> bytes:
    return frame(bytes([1, 4, 4, 0x00, 0x01, 0x23, 0x45]))


def test_whole_frame(line) -> None:
    _, port = line
    port.write(READ_COUNTER)
    assert reply(port, 9) == expected_counter_reply()
    port.write(READ_SIZE)
    assert reply(port, 7) == frame(bytes([1, 3, 2, 0, 20]))  # 2.0 mm at 0.1 mm per step


def test_frame_split_in_two(line) -> None:
    _, port = line
    port.write(READ_COUNTER[:3])
    time.sleep(0.001)
    port.write(READ_COUNTER[3:])
    assert reply(port, 9) == expected_counter_reply()


def test_frame_byte_by_byte(line) -> None:
    _, port = line
    for byte in READ_COUNTER:
        port.write(bytes([byte]))
    assert reply(port, 9) == expected_counter_reply()


def test_bad_crc_gets_no_reply_and_the_next_frame_is_served(line) -> None:
    _, port = line
    corrupted = READ_COUNTER[:-1] + bytes([READ_COUNTER[-1] ^ 0xFF])
    port.write(corrupted)
    assert reply(port, 9) == b""
    port.reset_input_buffer()
    port.write(READ_COUNTER)
    assert reply(port, 9) == expected_counter_reply()


def test_wrong_unit_is_ignored(line) -> None:
    _, port = line
    port.write(frame(bytes([7, 4, 0, 0, 0, 2])))
    assert reply(port, 9) == b""


def test_exception_reply_for_an_unmapped_register(line) -> None:
    _, port = line
    port.write(frame(bytes([1, 4, 0x03, 0x84, 0, 1])))  # input register 900 is not in the map
    assert reply(port, 5) == frame(bytes([1, 0x84, 2]))  # illegal data address


# Every function code the device profiles use, and every exception a machine answers with, as bytes:
# (name, request body, exception to arm first, expected reply body). CRCs are appended by `frame` above.
def _text_objects(*objects: bytes) -> bytes:
    return bytes([len(objects)]) + b"".join(bytes([i, len(o)]) + o for i, o in enumerate(objects))


FRAME_TABLE = [
    ("01 read coils", bytes([1, 1, 0, 0, 0, 1]), None, bytes([1, 1, 1, 0])),
    ("02 read discrete inputs", bytes([1, 2, 0, 0, 0, 5]), None, bytes([1, 2, 1, 0b01000])),  # door closed
    ("03 read holding registers", bytes([1, 3, 0, 0, 0, 1]), None, bytes([1, 3, 2, 0, 20])),
    ("04 read input registers", bytes([1, 4, 0, 0, 0, 2]), None, bytes([1, 4, 4, 0x00, 0x01, 0x23, 0x45])),
    ("05 write single coil", bytes([1, 5, 0, 0, 0xFF, 0]), None, bytes([1, 5, 0, 0, 0xFF, 0])),
    ("16 write multiple registers", bytes([1, 16, 0, 0, 0, 1, 2, 0, 8]), None, bytes([1, 16, 0, 0, 0, 1])),
    ("43/14 read device identification", bytes([1, 0x2B, 0x0E, 1, 0]), None,
     bytes([1, 0x2B, 0x0E, 1, 0x83, 0, 0]) + _text_objects(b"Custodian simulator", b"shredder", b"1.0")),
    ("exception 01 ILLEGAL FUNCTION", bytes([1, 3, 0, 0, 0, 1]), 0x01, bytes([1, 0x83, 0x01])),
    ("exception 02 ILLEGAL DATA ADDRESS", bytes([1, 4, 0x03, 0x84, 0, 1]), None, bytes([1, 0x84, 0x02])),
    ("exception 03 ILLEGAL DATA VALUE", bytes([1, 16, 0, 0, 0, 1, 2, 0xFF, 0xFF]), 0x03, bytes([1, 0x90, 0x03])),
    ("exception 04 SERVER DEVICE FAILURE", bytes([1, 2, 0, 0, 0, 5]), 0x04, bytes([1, 0x82, 0x04])),
    ("exception 06 SERVER DEVICE BUSY", bytes([1, 5, 0, 0, 0xFF, 0]), 0x06, bytes([1, 0x85, 0x06])),
]


@pytest.mark.parametrize("split", ["whole", "halves", "bytewise"])
@pytest.mark.parametrize(("name", "request_", "refuse", "expected"), FRAME_TABLE, ids=[r[0] for r in FRAME_TABLE])
def test_frame_table(line, name: str, request_: bytes, refuse: int | None, expected: bytes, split: str) -> None:
    sim, port = line
    if refuse is not None:
        sim.refuse(refuse)
    raw = frame(request_)
    pieces = {"whole": [raw], "halves": [raw[:3], raw[3:]], "bytewise": [raw[i : i + 1] for i in range(len(raw))]}
    for piece in pieces[split]:
        port.write(piece)
    assert reply(port, len(expected) + 2) == frame(expected)


def test_a_plc_without_identification_answers_illegal_function() -> None:
    with ModbusSimulator(SHREDDER, transport="rtu", identity=None) as sim:
        port = serial.serial_for_url(sim.url, baudrate=115200, timeout=0.5)
        try:
            port.write(frame(bytes([1, 0x2B, 0x0E, 1, 0])))
            assert reply(port, 5) == frame(bytes([1, 0xAB, 0x01]))
        finally:
            port.close()


def test_garbage_between_frames(line) -> None:
    sim, port = line
    port.write(b"\xff\x00\x13\x37")
    time.sleep(0.05)
    port.write(READ_COUNTER)
    got = reply(port, 9)
    if got != expected_counter_reply():  # a framer may need one more frame to resynchronise
        port.reset_input_buffer()
        port.write(READ_COUNTER)
        got = reply(port, 9)
    assert got == expected_counter_reply()
    assert sim.requests >= 1
