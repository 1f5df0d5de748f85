"""Device profiles: named points mapped to Modbus registers, loaded from TOML and validated once."""

from __future__ import annotations

import enum
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from firmware_bridge.errors import ProfileError

PointValue = bool | int | float


class Table(enum.StrEnum):
    COIL = "coil"
    DISCRETE = "discrete"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bit(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)

    @property
    def writable(self) -> bool:
        return self in (Table.COIL, Table.HOLDING)


@dataclass(frozen=True, slots=True)
class Point:
    """One named value: `words` registers at `address` in `table`; engineering value = raw * scale."""

    name: str
    table: Table
    address: int
    scale: float = 1.0
    unit: str = ""
    words: int = 1  # 2: a 32-bit unsigned value, high word first

    def decode(self, raw: list[int] | list[bool]) -> PointValue:
        if self.table.is_bit:
            return bool(raw[0])
        value = 0
        for word in raw[: self.words]:
            value = value << 16 | (int(word) & 0xFFFF)
        return value if self.scale == 1.0 else value * self.scale

    def encode(self, value: PointValue) -> list[int] | list[bool]:
        if self.table.is_bit:
            return [bool(value)]
        raw = round(float(value) / self.scale)
        if not 0 <= raw < 1 << (16 * self.words):
            raise ValueError(f"{self.name}: {value} {self.unit} does not fit in {self.words} register(s)")
        return [(raw >> (16 * i)) & 0xFFFF for i in reversed(range(self.words))]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    kind: str  # "shredder" | "degausser"
    description: str
    points: dict[str, Point]

    def point(self, name: str) -> Point:
        try:
            return self.points[name]
        except KeyError:
            raise ProfileError(f"profile {self.name!r} has no point {name!r}") from None

    def table_size(self, table: Table) -> int:
        return max((p.address + p.words for p in self.points.values() if p.table is table), default=1)


REQUIRED_POINTS = {
    "shredder": {"running", "jam", "bin_full", "door_interlock", "cycle_start", "cycle_complete",
                 "cutting_size", "cycle_counter", "motor_current", "fault_code"},
    "degausser": {"ready", "charging", "start_cycle", "cycle_complete", "peak_field", "coil_rating",
                  "cycle_counter", "fault"},
}


def parse_profile(text: str, source: str = "<string>") -> Profile:
    try:
        doc = tomllib.loads(text)
        device = doc["device"]
        name, kind = str(device["name"]), str(device["kind"])
        points = {key: _parse_point(key, spec) for key, spec in doc["points"].items()}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"{source}: {exc}") from exc
    if kind not in REQUIRED_POINTS:
        raise ProfileError(f"{source}: unknown device kind {kind!r}")
    missing = REQUIRED_POINTS[kind] - points.keys()
    if missing:
        raise ProfileError(f"{source}: a {kind} profile needs points {sorted(missing)}")
    _check_overlaps(points, source)
    return Profile(name, kind, str(device.get("description", "")), points)


def _parse_point(name: str, spec: dict[str, object]) -> Point:
    table = Table(str(spec["type"]))
    address = _number(spec["address"], int, f"{name}.address")
    words = _number(spec.get("words", 1), int, f"{name}.words")
    scale = _number(spec.get("scale", 1.0), float, f"{name}.scale")
    if not 0 <= address <= 0xFFFF or words not in (1, 2) or not (0 < scale < math.inf):
        raise ValueError(f"point {name!r}: address 0..65535, words 1 or 2, scale > 0")
    if table.is_bit and (words != 1 or scale != 1.0):
        raise ValueError(f"point {name!r}: a {table} is one bit, without words or scale")
    return Point(name, table, int(address), float(scale), str(spec.get("unit", "")), int(words))


def _number(value: object, kind: type[int] | type[float], what: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, not {value!r}")
    if kind is int and not float(value).is_integer():
        raise ValueError(f"{what} must be a whole number")
    return kind(value)


def _check_overlaps(points: dict[str, Point], source: str) -> None:
    taken: dict[tuple[Table, int], str] = {}
    for point in points.values():
        for offset in range(point.words):
            key = (point.table, point.address + offset)
            if key in taken:
                raise ProfileError(f"{source}: {point.name} overlaps {taken[key]} at {key[0]} {key[1]}")
            taken[key] = point.name


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (e.g. "shredder_generic") or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        try:
            return parse_profile(path.read_text(), str(path))
        except OSError as exc:
            raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    shipped = resources.files("firmware_bridge.profiles").joinpath(f"{name_or_path}.toml")
    if not shipped.is_file():
        raise ProfileError(f"no shipped profile named {name_or_path!r}; have {shipped_profiles()}")
    return parse_profile(shipped.read_text(), f"profile {name_or_path}")


def shipped_profiles() -> list[str]:
    folder = resources.files("firmware_bridge.profiles")
    return sorted(f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml"))
