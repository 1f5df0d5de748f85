"""OSDP values shared by the driver and the simulator, named as the specification (SIA OSDP 2.2) names them."""

from __future__ import annotations

import enum
from collections.abc import Callable

from firmware_bridge.kinds import require_module

osdp = require_module("osdp", "OSDP access panels (pip package libosdp)")

# Order of the panel's supervised inputs in an input status report (osdp_ISTATR).
INPUT_NAMES: tuple[str, ...] = ("door_contact", "request_to_exit", "fire_alarm", "spare")
# Order of the local status report (osdp_LSTATR): tamper, then power failure.
LOCAL_NAMES: tuple[str, ...] = ("tamper", "power_failure")

STRIKE_OUTPUT = 0
TIMER_UNIT_S = 0.1  # OSDP timers count tenths of a second
MAX_TIMER_COUNT = 255  # the Python binding carries output/LED timers in one byte


class OutputCode(enum.IntEnum):
    """osdp_OUT control codes."""

    NOP = 0
    PERMANENT_OFF = 1
    PERMANENT_ON = 2
    PERMANENT_OFF_AFTER_TIMER = 3
    PERMANENT_ON_AFTER_TIMER = 4
    TEMPORARY_ON = 5
    TEMPORARY_OFF = 6


class LedColor(enum.IntEnum):
    OFF = 0
    RED = 1
    GREEN = 2
    AMBER = 3
    BLUE = 4
    MAGENTA = 5
    CYAN = 6
    WHITE = 7


class LedPattern(enum.Enum):
    """(on, off) times in tenths of a second."""

    STEADY = (1, 0)
    SLOW_BLINK = (5, 5)
    FAST_BLINK = (2, 2)


class BuzzerTone(enum.IntEnum):
    OFF = 1
    DEFAULT = 2


CARD_FORMATS = {0: "raw", 1: "wiegand", 2: "ascii"}


def timer_count(seconds: float) -> int:
    return max(1, min(MAX_TIMER_COUNT, round(seconds / TIMER_UNIT_S)))


class CallableChannel(osdp.Channel):
    """Adapts a pair of non-blocking read/write callables to libosdp's channel interface."""

    def __init__(self, read: Callable[[int], bytes], write: Callable[[bytes], int]) -> None:
        super().__init__()
        self._read = read
        self._write = write

    def read(self, max_bytes: int) -> bytes:
        return self._read(max_bytes)

    def write(self, buf: bytes) -> int:
        return self._write(bytes(buf))

    def flush(self) -> None:
        return None
