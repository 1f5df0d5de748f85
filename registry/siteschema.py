"""The site file's structure, declared: one strict, typed model per section.

Every value is checked here before the register is touched: its type (no coercion: `username = 5` is an
error, not "5"), its bounds (the database column's length, numbers a column can hold, finite
coordinates), unknown keys, missing keys, and duplicates within the file. A problem comes back as a
`SchemaProblem`: where it is (a path such as `("items", 3, "level")`) and what was expected, in words.
The rules that need the register (ceilings, references, badges already issued) are the services' job.
"""

from __future__ import annotations

import datetime as dt
import difflib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from registry import validate
from registry.errors import InvalidInput
from registry.levels import Level
from registry.models import ANTENNA_SIDES, ANTI_PASSBACK, APPROVAL_KINDS, DEVICE_KINDS, ITEM_KINDS, ROLES
from registry.services.venues import SECRET_KEYS

Path = tuple[str | int, ...]
LEVEL_NAMES = ", ".join(level.label for level in Level)
OUTSIDE = "outside"  # a portal's `outside = "outside"`: it leads out of the unit
MAX_TEXT = 10_000  # free text (reasons, conditions); the file as a whole is bounded by the loader


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    path: Path
    message: str
    rule: str | None = None  # the register rule a duplicate would break


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)  # type: ignore[arg-type]


def _no_control(value: str, *, multiline: bool) -> str:
    """Control characters never enter the register (PostgreSQL refuses NUL; the rest hide text); a one-line
    value has no line or paragraph separator either."""
    allowed = "\n\t" if multiline else ""
    refused = ("Cc", "Cs") if multiline else ("Cc", "Cs", "Zl", "Zp")
    for char in value:
        if unicodedata.category(char) in refused and char not in allowed:
            raise _custom("control_character", f"must not contain control characters ({char!r})")
    return value


def _key(value: str) -> str:
    _no_control(value, multiline=False)
    if value != value.strip():
        raise _custom("surrounding_space", "must not begin or end with spaces")
    return value


def _line(value: str) -> str:
    return _no_control(value, multiline=False)


def _paragraph(value: str) -> str:
    return _no_control(value, multiline=True)


def Key(max_length: int = 64) -> Any:
    """An identifier: a code, a username, a badge number, a reference to one of them."""
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length), AfterValidator(_key)]


Code = Key(64)
GroupName = Key(100)
ItemRef = Key(124)  # a register number, "register/copy" or an EPC
Name = Annotated[str, StringConstraints(max_length=200), AfterValidator(_line)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300), AfterValidator(_line)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_paragraph)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-1_000_000.0, le=1_000_000.0)]


def _level(value: object) -> Level:
    if not isinstance(value, str):
        raise _custom("level_type", f"expected a level name ({LEVEL_NAMES}), got {describe(value)}")
    try:
        return Level.parse(value)
    except ValueError:
        raise _custom("level", f"expected one of {LEVEL_NAMES}, got {describe(value)}") from None


def _moment(value: object) -> dt.datetime:
    """A date-time with an offset (UTC kept), or a date meaning its midnight UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise _custom("naive_datetime", "needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise _custom("datetime_range", "is outside the years 1..9999 in UTC") from None
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise _custom("datetime_type", f"expected a date-time such as 2026-01-01T00:00:00Z, got {describe(value)}")


def _day(value: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise _custom("date_type", f"expected a date (YYYY-MM-DD), got {describe(value)}")


def _tag_field(check: Any, what: str) -> Any:
    def parse(value: object) -> str:
        if not isinstance(value, str):
            raise _custom("tag_type", f"expected {what} as a string of hex digits, got {describe(value)}")
        try:
            return check(value)
        except InvalidInput as exc:
            raise _custom("tag", exc.message) from None

    return PlainValidator(parse)


LevelName = Annotated[Level, PlainValidator(_level)]
Moment = Annotated[dt.datetime, PlainValidator(_moment)]
Day = Annotated[dt.date, PlainValidator(_day)]
Epc = Annotated[str, _tag_field(validate.epc, "an EPC")]
Tid = Annotated[str, _tag_field(validate.tid, "a TID")]


def Count(high: int, low: int = 1) -> Any:
    return Annotated[int, Field(ge=low, le=high)]


def _not_outside(value: str) -> str:
    if value == OUTSIDE:
        raise _custom("reserved", f'"{OUTSIDE}" is reserved: a portal uses it for "leads out of the unit"')
    return value


class Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _zone(value: str) -> str:
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _custom("time_zone", "must be an IANA time zone name such as Europe/Berlin") from None
    return value


class SiteInfo(Entry):
    name: Name = ""
    unit: Name = ""
    time_zone: Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)] = ""  # "" = not declared


class VenueEntry(Entry):
    code: Annotated[Code, AfterValidator(_not_outside)]
    name: Name = ""
    ceiling: LevelName
    fail_secure_level: LevelName = Level.SECRET
    top_secret_designated: bool = False
    storage: bool = False
    closed: bool = False
    key_part: bool = False
    destruction: bool = False


class PortalEntry(Entry):
    code: Code
    name: Name = ""
    inside: Code
    outside: Code = OUTSIDE
    border: bool = False
    x_m: Coordinate = 0.0
    y_m: Coordinate = 0.0
    anti_passback: Literal[ANTI_PASSBACK] = "off"  # type: ignore[valid-type]


class AntennaEntry(Entry):
    number: Count(64)
    side: Literal[ANTENNA_SIDES]  # type: ignore[valid-type]


Setting = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_line)]


class DeviceEntry(Entry):
    name: Code
    kind: Literal[DEVICE_KINDS]  # type: ignore[valid-type]
    portal: Code | None = None
    venue: Code | None = None
    antennas: Annotated[list[AntennaEntry], Field(max_length=64)] = []
    # Settings: what the drivers read. Left out, the driver's default applies; anything else is a mistake.
    transport: Setting | None = None  # "pty", "socket://host:port", a serial device
    host: Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_key)] | None = None
    port: Count(65535) | None = None
    address: Count(255, low=0) | None = None  # OSDP address or Modbus unit id
    scbk_env: EnvName | None = None  # the variable holding an OSDP panel's Secure Channel key
    strike_ms: Count(600_000, low=0) | None = None
    install_mode: bool | None = None
    profile: Code | None = None  # a Modbus device profile
    source: Setting | None = None  # a camera's image source

    def settings(self) -> tuple[tuple[str, str | int | bool], ...]:
        """The settings the file gives, as the register stores them."""
        return tuple(
            (key, value) for key, value in self.model_dump(include=set(DEVICE_SETTINGS), exclude_none=True).items()
        )


DEVICE_SETTINGS = tuple(k for k in DeviceEntry.model_fields if k not in ("name", "kind", "portal", "venue", "antennas"))


class PersonEntry(Entry):
    username: Code
    name: Name = ""
    clearance: LevelName
    roles: Annotated[list[Literal[ROLES]], Field(min_length=1, max_length=len(ROLES))] = ["custodian"]  # type: ignore[valid-type]
    badges: Annotated[list[Code], Field(max_length=64)] = []
    groups: Annotated[list[GroupName], Field(max_length=256)] = []
    visitor: bool = False
    title: Name = ""
    organisation: Name = ""


class ItemEntry(Entry):
    register_number: Code
    copy_number: Count(1_000_000) = Field(1, alias="copy")  # `copy` in the file
    title: Title
    kind: Literal[ITEM_KINDS]  # type: ignore[valid-type]
    level: LevelName
    period_start: Day
    period_months: Count(1200) | None = None  # up to a century
    declassify_on: Day | None = None
    declassify_condition: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)] | None = None
    originating_unit: Annotated[Name, StringConstraints(min_length=1)]
    epc: Epc
    tid: Tid | None = None
    venue: Code | None = None
    custodian: Code | None = None
    scope_people: Annotated[list[Code], Field(max_length=10_000)] = []
    scope_groups: Annotated[list[GroupName], Field(max_length=1_000)] = []
    manufacturer: Name = ""
    model: Name = ""
    serial_number: Name = ""


class ApprovalEntry(Entry):
    ref: Code
    kind: Literal[APPROVAL_KINDS]  # type: ignore[valid-type]
    requester: Code
    approvers: Annotated[list[Code], Field(max_length=16)] = []
    items: Annotated[list[ItemRef], Field(min_length=1, max_length=10_000)]
    people: Annotated[list[Code], Field(max_length=10_000)] = []
    groups: Annotated[list[GroupName], Field(max_length=1_000)] = []
    portal: Code | None = None
    destination_venue: Code | None = None
    destination_text: Name = ""
    valid_from: Moment
    valid_until: Moment
    uses: Count(1_000_000) = 1
    return_by: Moment | None = None
    reason: Text = ""
    originator_consent: Annotated[Name, StringConstraints(min_length=1)] | None = None


class SiteFile(Entry):
    site: SiteInfo = SiteInfo()
    venues: list[VenueEntry] = []
    portals: list[PortalEntry] = []
    devices: list[DeviceEntry] = []
    people: list[PersonEntry] = []
    items: list[ItemEntry] = []
    approvals: list[ApprovalEntry] = []


SECTION_MODELS: dict[str, type[Entry]] = {
    "venues": VenueEntry,
    "portals": PortalEntry,
    "devices": DeviceEntry,
    "people": PersonEntry,
    "items": ItemEntry,
    "approvals": ApprovalEntry,
}


# What was given, in words: never the whole value (it may be huge, deep, or an int too long to print).

_TYPE_WORDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
    dt.datetime: "a date-time",
    dt.date: "a date",
    dt.time: "a time of day",
}


def describe(value: object) -> str:
    words = _TYPE_WORDS.get(type(value), type(value).__name__)
    if isinstance(value, bool):
        return f"{words} ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"{words} ({value})" if value.bit_length() <= 64 else f"{words} of {value.bit_length()} bits"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{words} ({shown!r})" if len(value) <= 40 else f"{words} of {len(value)} characters ({shown!r})"
    if isinstance(value, float | dt.date | dt.time):
        return f"{words} ({value})"
    return words


def keys_of(model: type[Entry]) -> tuple[str, ...]:
    """The keys a table of this model takes, as spelt in the file."""
    return tuple(field.alias or name for name, field in model.model_fields.items())


def _expected_keys(path: Path) -> tuple[str, ...]:
    """The keys the table at `path` (a path to one of its keys) may have."""
    if len(path) == 1:
        return keys_of(SiteFile)
    if path[0] == "site":
        return keys_of(SiteInfo)
    if path[0] == "devices" and len(path) >= 5:
        return keys_of(AntennaEntry)
    model = SECTION_MODELS.get(str(path[0]))
    return keys_of(model) if model else ()


_WANTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "float_type": "a number",
    "list_type": "a list",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}


def _message(error: Any) -> str:
    kind, path, ctx = error["type"], error["loc"], error.get("ctx") or {}
    given = error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(path[-1])
        if path[0] == "devices" and len(path) == 3 and SECRET_KEYS.search(key):
            return f"secrets do not go in the site file; name the environment variable holding it ({key}_env)"
        allowed = _expected_keys(path)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown key; {hint}expected one of: {', '.join(allowed)}"
    if kind in _WANTED:
        return f"expected {_WANTED[kind]}, got {describe(given)}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}, got {describe(given)}"
    if kind == "string_too_long":
        return f"at most {ctx['max_length']} characters, got {len(given)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return "expected the name of an environment variable (letters, digits, _)"
    if kind == "too_long":
        return f"at most {ctx['max_length']} entries, got {ctx.get('actual_length', 'more')}"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} entry"
    if kind == "greater_than_equal":
        return f"expected at least {ctx['ge']}, got {describe(given)}"
    if kind == "less_than_equal":
        return f"expected at most {ctx['le']}, got {describe(given)}"
    if kind == "finite_number":
        return f"expected a finite number, got {describe(given)}"
    return str(error["msg"])


class SchemaProblems(Exception):
    """Everything structurally wrong with a site file (at most `LIMIT` problems are collected)."""

    LIMIT = 50

    def __init__(self, found: tuple[SchemaProblem, ...]) -> None:
        super().__init__(f"{len(found)} problem(s)")
        self.found = found


def parse(raw: dict[str, Any]) -> SiteFile:
    """The parsed TOML as typed entries, or SchemaProblems."""
    try:
        site = SiteFile.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)[: SchemaProblems.LIMIT]
        raise SchemaProblems(tuple(SchemaProblem(tuple(e["loc"]), _message(e)) for e in errors)) from None
    found = tuple(duplicates(site))
    if found:
        raise SchemaProblems(found[: SchemaProblems.LIMIT])
    return site


def duplicates(site: SiteFile) -> Iterator[SchemaProblem]:
    """The same venue, portal, device, person, badge, item, EPC or approval twice in one file."""

    def keys(section: str) -> Iterator[tuple[Path, str, object]]:
        for n, entry in enumerate(getattr(site, section)):
            match entry:
                case VenueEntry():
                    yield (section, n, "code"), "venue.code_unique", entry.code
                case PortalEntry():
                    yield (section, n, "code"), "portal.code_unique", entry.code
                case DeviceEntry():
                    yield (section, n, "name"), "device.name_unique", entry.name
                case PersonEntry():
                    yield (section, n, "username"), "person.username_unique", entry.username
                    for badge in entry.badges:
                        yield (section, n, "badges"), "person.badge_unique", f"badge {badge}"
                case ItemEntry():
                    number = f"{entry.register_number} copy {entry.copy_number}"
                    yield (section, n, "register_number"), "item.register_number_unique", number
                    yield (section, n, "epc"), "item.epc_unique", f"EPC {entry.epc}"
                case ApprovalEntry():
                    yield (section, n, "ref"), "approval.ref_unique", entry.ref

    for section in SECTION_MODELS:
        seen: dict[tuple[str, object], Path] = {}
        for path, rule, value in keys(section):
            first = seen.setdefault((rule, value), path)
            if first != path:
                yield SchemaProblem(path, f"[{rule}] {value} is already given by {first[0]}[{first[1]}]", rule)
