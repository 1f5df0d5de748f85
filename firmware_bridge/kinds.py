"""One place per device kind: the table every layer reads (register, admin API, wiring, CLI).

A `DeviceKind` is a frozen description: its role at a site, its protocol family, and where its backend
lives (module and attribute, imported on first use, so a site without Modbus machines never imports
pymodbus and a missing vendor library is a `BackendUnavailable` naming it, not a broken import). The
backend (`KindBackend`, defined beside the driver it opens) holds the typed settings dataclass, parsed once
from the register's `settings_json` or the site file's device table with errors naming the field, and
how to open the driver, start its simulator and probe it.

Adding a kind of device is one row here and its backend (see README, "Adding a device kind").
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from firmware_bridge.errors import BackendUnavailable, SettingsError

if TYPE_CHECKING:
    from firmware_bridge.site import OpenContext, ProbeResult, Simulated, SimulationOptions


class Role(enum.StrEnum):
    """What a device does at a site; wiring and the controllers place drivers by role."""

    PANEL = "panel"  # access panel at a portal: badge reader, door contact, strike
    PORTAL_READER = "portal_reader"  # RFID reader whose antennas watch a portal, streaming
    HANDHELD = "handheld"  # RFID reader used on demand: venue sweeps, destruction intake
    MACHINE = "machine"  # destruction machine: shredder, degausser
    CAMERA = "camera"  # people counter at a portal: a camera, or a sensor the site trusts more


@dataclass(frozen=True, slots=True)
class DeviceKind:
    name: str
    role: Role
    family: str  # protocol family ("osdp", "llrp", "mercury", "modbus", "vision"): kinds sharing simulators
    summary: str
    module: str  # where the backend lives; imported on first use
    attribute: str
    library: str  # the pip package the backend needs, named when it is missing

    def backend(self) -> KindBackend[Any]:
        module = require_module(self.module, f"device kind {self.name!r} (pip package {self.library})")
        try:
            found = getattr(module, self.attribute)
        except AttributeError:
            raise BackendUnavailable(f"device kind {self.name!r}: {self.module} has no {self.attribute}") from None
        if not isinstance(found, KindBackend):
            raise BackendUnavailable(f"device kind {self.name!r}: {self.module}.{self.attribute} is no KindBackend")
        return found


_RFID = "firmware_bridge.rfid.kinds"
KINDS: dict[str, DeviceKind] = {k.name: k for k in (
    DeviceKind("osdp_panel", Role.PANEL, "osdp", "OSDP access panel (card reader, door contact, strike)",
               "firmware_bridge.osdp.kind", "OSDP_PANEL", "libosdp"),
    DeviceKind("llrp_reader", Role.PORTAL_READER, "llrp", "LLRP fixed RFID reader at a portal (Impinj, Zebra, ...)",
               _RFID, "LLRP_READER", "numba"),
    DeviceKind("mercury_reader", Role.HANDHELD, "mercury", "ThingMagic Mercury RFID module read on demand",
               _RFID, "MERCURY_READER", "pyserial"),
    DeviceKind("mercury_portal", Role.PORTAL_READER, "mercury", "ThingMagic Mercury module streaming at a portal",
               _RFID, "MERCURY_PORTAL", "pyserial"),
    DeviceKind("modbus_shredder", Role.MACHINE, "modbus", "shredder or disintegrator on Modbus TCP/RTU",
               "firmware_bridge.modbus.kind", "MODBUS_SHREDDER", "pymodbus"),
    DeviceKind("modbus_degausser", Role.MACHINE, "modbus", "degausser on Modbus TCP/RTU",
               "firmware_bridge.modbus.kind", "MODBUS_DEGAUSSER", "pymodbus"),
    DeviceKind("camera", Role.CAMERA, "vision", "camera counting people at a portal (vision)",
               "firmware_bridge.kinds", "CAMERA", "opencv-python-headless"),
    DeviceKind("mqtt_people_counter", Role.CAMERA, "mqtt", "overhead people-counting sensor publishing over MQTT",
               "firmware_bridge.people_counter_mqtt", "PEOPLE_SENSOR", "paho-mqtt"),
)}


def names() -> tuple[str, ...]:
    """Every device kind, in table order (the register and the admin API accept exactly these)."""
    return tuple(KINDS)


def with_role(*roles: Role) -> tuple[str, ...]:
    return tuple(name for name, k in KINDS.items() if k.role in roles)


def kind(name: str) -> DeviceKind:
    try:
        return KINDS[name]
    except KeyError:
        raise BackendUnavailable(f"no device kind {name!r}; known: {', '.join(KINDS)}") from None


def require_module(import_name: str, purpose: str) -> types.ModuleType:
    """Import a library or backend, or raise BackendUnavailable saying what needs it."""
    try:
        return importlib.import_module(import_name)
    except ImportError as exc:
        if getattr(exc, "name", "") and str(exc.name).split(".")[0] == "firmware_bridge":
            raise  # our own module is broken: that is a bug to see, not a library to install
        raise BackendUnavailable(
            f"{purpose} needs the Python module {import_name!r}, which could not be imported: {exc}"
        ) from exc


# ---------------------------------------------------------------------------------------------- backends

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Device(Generic[S]):
    """One device of the site, its settings parsed into the kind's dataclass."""

    name: str
    kind: str
    settings: S
    antennas: tuple[int, ...] = ()
    portal: str | None = None
    venue: str | None = None

    @property
    def description(self) -> DeviceKind:
        return KINDS[self.kind]


@dataclass(frozen=True, slots=True)
class KindBackend(Generic[S]):
    """How Custodian handles one kind: its settings and what opens, simulates and probes it.

    Each callable receives every device of the kind at once (OSDP panels share lines), and answers for
    the devices it handles: a simulator is started only for a device whose endpoint can be simulated
    (a pty or a loopback port), never over real hardware.
    """

    settings: type[S]
    open: Callable[[Sequence[Device[S]], OpenContext], dict[str, object]] | None = None
    simulate: Callable[[Sequence[Device[S]], SimulationOptions], Simulated] | None = None
    probe: Callable[[Sequence[Device[S]], float], list[ProbeResult]] | None = None


class SettingProblem(ValueError):
    """Raised by a settings dataclass's `__post_init__` for a value it cannot use."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(problem)
        self.setting = setting


def parse_settings(cls: type[S], device: str, values: Mapping[str, object]) -> S:
    """`values` (TOML or JSON scalars) as an instance of the settings dataclass `cls`, checked field by field."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SettingsError(device, unknown[0], f"is not a setting of this kind; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    converted = {key: _convert(device, key, value, hints[key]) for key, value in values.items()}
    try:
        return cls(**converted)
    except SettingProblem as exc:
        raise SettingsError(device, exc.setting, str(exc)) from None


@dataclass(frozen=True, slots=True)
class SettingField:
    """One typed setting of a kind, as a form shows it: its type, default and (for a choice) the choices."""

    name: str
    type: Literal["bool", "int", "float", "str", "choice"]
    default: object
    choices: tuple[str, ...] = ()
    optional: bool = False  # may be left unset (None): the kind or the device decides


def setting_fields(kind_name: str) -> tuple[SettingField, ...]:
    """The settings of a kind, read from its settings dataclass (one description for forms and the API)."""
    cls = kind(kind_name).backend().settings
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        optional = type(None) in options
        base = next((o for o in options if o is not type(None)), str)
        if typing.get_origin(base) is typing.Literal:
            found.append(SettingField(f.name, "choice", f.default, tuple(map(str, typing.get_args(base))), optional))
            continue
        name = {bool: "bool", int: "int", float: "float"}.get(base, "str")  # type: ignore[call-overload]
        found.append(SettingField(f.name, name, f.default, (), optional))  # type: ignore[arg-type]
    return tuple(found)


def _convert(device: str, key: str, value: object, hint: object) -> object:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _as(option, value)
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
    raise SettingsError(device, key, problems[0] if problems else f"cannot be {value!r}")


def _as(expected: object, value: object) -> object:
    if typing.get_origin(expected) is typing.Literal:
        choices = typing.get_args(expected)
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}, not {value!r}")
        return value
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TypeError(f"must be true or false, not {value!r}")
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"must be a whole number, not {value!r}")
        try:
            return int(value)
        except ValueError:
            raise TypeError(f"must be a whole number, not {value!r}") from None
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"must be a number, not {value!r}")
        try:
            return float(value)
        except ValueError:
            raise TypeError(f"must be a number, not {value!r}") from None
    if expected is str:
        if not isinstance(value, str):
            raise TypeError(f"must be text, not {value!r}")
        return value
    raise TypeError(f"has a type settings cannot hold ({expected})")


def parse_device(name: str, kind_name: str, settings: Mapping[str, object], *, antennas: Sequence[int] = (),
                 portal: str | None = None, venue: str | None = None) -> Device[Any]:
    """A device as the register or a site file describes it, its settings checked once, here."""
    backend = kind(kind_name).backend()
    numbers = []
    for a in antennas:
        if isinstance(a, bool) or not isinstance(a, int) or not 1 <= a <= 64:
            raise SettingsError(name, "antennas", f"must be antenna numbers 1..64, not {a!r}")
        numbers.append(a)
    return Device(name, kind_name, parse_settings(backend.settings, name, settings), tuple(numbers), portal, venue)


SITE_FILE_KEYS = ("name", "kind", "portal", "venue", "antennas")


def device_from_table(table: Mapping[str, object]) -> Device[Any]:
    """A device from a site file's `[[devices]]` table (antennas as numbers or {number, side} tables)."""
    name, kind_name = table.get("name"), table.get("kind")
    if not isinstance(name, str) or not name:
        raise SettingsError(str(name), "name", "must be given as text")
    if not isinstance(kind_name, str):
        raise SettingsError(name, "kind", f"must be one of {', '.join(KINDS)}")
    raw = table.get("antennas", [])
    if not isinstance(raw, list):
        raise SettingsError(name, "antennas", "must be a list")
    antennas = [a.get("number") if isinstance(a, dict) else a for a in raw]
    portal, venue = table.get("portal"), table.get("venue")
    settings = {k: v for k, v in table.items() if k not in SITE_FILE_KEYS}
    return parse_device(name, kind_name, settings, antennas=antennas,  # type: ignore[arg-type]
                        portal=str(portal) if portal else None, venue=str(venue) if venue else None)


# ---------------------------------------------------------------------------------------------- cameras


@dataclass(frozen=True, slots=True)
class CameraSettings:
    source: Literal["synthetic", "rtsp", "device"] = "synthetic"  # where frames come from
    url: str = ""  # rtsp:// URL or device path for the non-synthetic sources


CAMERA: KindBackend[CameraSettings] = KindBackend(CameraSettings)  # counted by vision; no driver here
