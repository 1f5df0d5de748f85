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
