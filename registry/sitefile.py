"""The declarative site file (TOML): venues, portals, devices, people, items, approvals.

A load runs in three steps, and the register is touched only by the last:
1. read: at most `MAX_FILE_BYTES`, UTF-8 (a byte that is not is named with its line), TOML syntax;
2. check the structure against the typed schema of `registry.siteschema` (types, bounds, unknown or
   missing keys, duplicates in the file);
3. apply each entry through `registry.services`, the one write path, whose rules hold for the file as for
   any other change (a ceiling never lowered under what the venue holds, a portal between two different
   venues, one place per device, unique badges and antennas ...).
Whatever is wrong comes back as one `SiteFileError` naming the file, the line, the field and what was
expected; nothing else escapes. The load runs in the caller's transaction, so a refused file leaves
nothing behind. What is already registered and equal is left alone: loading the same file twice writes
nothing.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from registry import siteschema as schema
from registry.errors import InvalidInput, NotFound, RegistryError, RuleViolation
from registry.levels import Level
from registry.models import Approval, Device, Item, Person, Portal, Venue
from registry.services import approvals, items, lookup, people, venues
from registry.services.venues import SECRET_KEYS, VENUE_FLAGS

__all__ = [
    "SECRET_KEYS", "SECTIONS", "VENUE_FLAGS", "LoadResult", "SiteFileError", "export", "load", "site_time_zone",
]

SECTIONS = ("venues", "portals", "devices", "people", "items", "approvals")
MAX_FILE_BYTES = 8 * 1024 * 1024  # a real site file is a few hundred kilobytes at most
# The key that names an entry of each section: blamed when nothing more precise is known.
IDENTITY = {
    "venues": "code",
    "portals": "code",
    "devices": "name",
    "people": "username",
    "items": "register_number",
    "approvals": "ref",
}
# Fields the services name differently from the file.
ALIASES = {"copy_number": "copy", "period.months": "period_months", "period.until": "declassify_on"}
# Rules whose service does not say which field broke them: (section, rule) -> field.
RULE_FIELDS = {
    ("people", "person.badge_unique"): "badges",
    ("items", "item.epc_unique"): "epc",
    ("items", "item.register_number_unique"): "register_number",
    ("items", "venue.ceiling"): "venue",
    ("items", "venue.top_secret_designated"): "venue",
    ("items", "custody.clearance"): "custodian",
    ("items", "person.status"): "custodian",
    ("approvals", "approval.clearance"): "people",
    ("approvals", "exit.border_top_secret"): "kind",
    ("approvals", "approval.originator_consent"): "originator_consent",
    ("approvals", "venue.ceiling"): "destination_venue",
    ("approvals", "venue.top_secret_designated"): "destination_venue",
}
# What the file declares about the site itself; the rest (people, items, approvals) becomes live state
# once loaded, changed through the services, never reset from the file (`load(configuration_only=True)`).
CONFIGURATION = ("venues", "portals", "devices")
TIME_ZONE_ENV = "CUSTODIAN_TIME_ZONE"  # the site's time zone when its file declares none


class SiteFileError(Exception):
    """A site file could not be loaded. Names the file, the line (when there is one), the field and, for a
    broken rule, the rule."""

    def __init__(self, path: str, line: int | None, where: str, message: str, rule: str | None = None) -> None:
        message = " ".join(message.split("\n"))
        location = f"{path}:{line}" if line else path
        super().__init__(f"{location}: {where}: {message}")
        self.path, self.line, self.where, self.message, self.rule = path, line, where, message, rule


@dataclass(frozen=True, slots=True)
class LoadResult:
    created: dict[str, int]  # created or updated
    unchanged: dict[str, int]

    @property
    def changed_anything(self) -> bool:
        return any(self.created.values())


# Reading


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SiteFileError(str(path), None, "file", f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SiteFileError(str(path), 1, "file", f"larger than {MAX_FILE_BYTES // 2**20} MiB; not a site file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        lines = data.decode("utf-8", errors="replace").split("\n")
        raise SiteFileError(
            str(path),
            line,
            _Text(lines).context_at(line) or "encoding",
            f"byte 0x{data[exc.start]:02x} at column {column} is not UTF-8; save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")  # the byte-order mark some editors write


def _parse(path: Path, text: str, lines: _Text) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else max(len(lines.lines), 1)
        raise SiteFileError(str(path), line, lines.context_at(line) or "syntax", f"TOML syntax: {exc}") from None
    except RecursionError:
        line = lines.deepest()
        raise SiteFileError(str(path), line, lines.context_at(line) or "syntax", "nested too deeply") from None
    except ValueError:  # an integer too long to convert (Python's 4300-digit limit)
        line = next((n for n, t in enumerate(lines.lines, 1) if re.search(r"\d{4000,}", t)), 1)
        raise SiteFileError(str(path), line, lines.context_at(line) or "syntax", "a number too long to read") from None


class _Text:
    """Lines of a site file and where its tables and keys are: enough to point a person at a line."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]+?)\s*\]\]?\s*(?:#.*)?$")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.headers: list[tuple[int, str, bool]] = []  # (0-based line, table name, array of tables)
        for n, line in enumerate(lines):
            match = self._HEADER.match(line)
            if match:
                name = re.sub(r"\s*\.\s*", ".", match.group(2)).replace('"', "").replace("'", "")
                self.headers.append((n, name, match.group(1) == "[["))

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*[.=]")
        return next((n for n in range(start, end) if pattern.match(self.lines[n])), None)

    def _table(self, section: str, index: int | None) -> tuple[int, int] | None:
        """0-based first line and end (exclusive) of `[section]` or of the index-th `[[section]]`."""
        starts = [n for n, name, array in self.headers if name == section and array == (index is not None)]
        if index is not None and index < len(starts):
            start = starts[index]
        elif index is None and starts:
            start = starts[0]
        else:
            top_end = self.headers[0][0] if self.headers else len(self.lines)
            start = self._key_line(section, 0, top_end)  # inline: `venues = [{...}]`
            return None if start is None else (start, start + 1)
        end = next((n for n, _name, _array in self.headers if n > start), len(self.lines))
        return start, end

    def locate(self, path: schema.Path) -> int:
        """The 1-based line best matching `path`; the enclosing table's line when the key is not written."""
        if not path or not isinstance(path[0], str):
            return 1
        section = path[0]
        index = path[1] if len(path) > 1 and isinstance(path[1], int) else None
        table = self._table(section, index)
        if table is None:
            return 1
        start, end = table
        rest = path[2:] if index is not None else path[1:]
        if not rest or not isinstance(rest[0], str):
            return start + 1
        key_line = self._key_line(rest[0], start + 1, end)
        if key_line is None:
            return start + 1
        if len(rest) >= 2 and isinstance(rest[1], int):  # an inline table in a list, e.g. antennas[2].side
            return self._inline(key_line, end, rest[1], rest[2] if len(rest) > 2 else None) or key_line + 1
        return key_line + 1

    def _inline(self, line: int, end: int, index: int, key: object) -> int | None:
        body = "\n".join(self.lines[line:end])
        opened = [m.start() for m in re.finditer(r"\{", body)]
        if index >= len(opened):
            return None
        at = opened[index]
        if isinstance(key, str):
            close = body.find("}", at)
            found = re.compile(rf"\b{re.escape(key)}\s*=").search(body, at, close if close > 0 else len(body))
            if found:
                at = found.start()
        return line + body.count("\n", 0, at) + 1

    def context_at(self, line: int) -> str:
        """`section[index].key` for a 1-based line, from the headers above it and the key on it."""
        above = [(n, name, array) for n, name, array in self.headers if n < line]
        where = ""
        if above:
            _n, name, array = above[-1]
            where = f"{name}[{sum(1 for _m, other, a in above if other == name and a) - 1}]" if array else name
        key = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=", self.lines[line - 1]) if 0 < line <= len(self.lines) else None
        if key:
            where = f"{where}.{key.group(1)}" if where else key.group(1)
        return where

    def deepest(self) -> int:
        """The first line where brackets nest deeper than any site file needs."""
        depth = 0
        for n, line in enumerate(self.lines, 1):
            for char in line:
                depth += 1 if char in "[{" else -1 if char in "]}" else 0
                if depth > 32:
                    return n
        return 1


def _where(path: schema.Path) -> str:
    """`items[3].level` for ("items", 3, "level"); a key from the file is shown printable and short."""
    parts: list[str] = []
    for part in path:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            text = str(part)
            shown = text if text.isprintable() and len(text) <= 60 else repr(text[:60])
            parts.append(shown)
    return ".".join(parts) or "file"


# Applying, through the services


class _Loader:
    def __init__(self, session: Session, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.created = dict.fromkeys(SECTIONS, 0)
        self.unchanged = dict.fromkeys(SECTIONS, 0)
        self.handlers: dict[str, Callable[[Any], bool]] = {
            "venues": self.venue,
            "portals": self.portal,
            "devices": self.device,
            "people": self.person,
            "items": self.item,
            "approvals": self.approval,
        }

    def apply(self, section: str, entry: schema.Entry) -> None:
        changed = self.handlers[section](entry)
        (self.created if changed else self.unchanged)[section] += 1

    def _find(self, column: Any, key: str) -> Any:
        return self.session.execute(select(column.class_).where(column == key)).scalar()

    def venue(self, e: schema.VenueEntry) -> bool:
        data = venues.VenueData(
            code=e.code,
            name=e.name or e.code,
            ceiling=e.ceiling.label,
            flags=tuple(flag for flag in VENUE_FLAGS if getattr(e, flag)),
            fail_secure_level=e.fail_secure_level.label,
        )
        found = self._find(Venue.code, e.code)
        if found is None:
            venues.create_venue(self.session, self.actor, data)
            return True
        return venues.update_venue(self.session, self.actor, found, data)

    def portal(self, e: schema.PortalEntry) -> bool:
        data = venues.PortalData(
            code=e.code,
            name=e.name or e.code,
            inside=e.inside,
            outside=None if e.outside == schema.OUTSIDE else e.outside,
            border=e.border,
            x_m=e.x_m,
            y_m=e.y_m,
            anti_passback=e.anti_passback,
        )
        found = self._find(Portal.code, e.code)
        if found is None:
            venues.create_portal(self.session, self.actor, data)
            return True
        return venues.update_portal(self.session, self.actor, found, data)

    def device(self, e: schema.DeviceEntry) -> bool:
        data = venues.DeviceData(
            name=e.name,
            kind=e.kind,
            portal=e.portal,
            venue=e.venue,
            settings=e.settings(),
            antennas=tuple((a.number, a.side) for a in e.antennas),
        )
        found = self._find(Device.name, e.name)
        if found is None:
            venues.create_device(self.session, self.actor, data)
            return True
        return venues.update_device(self.session, self.actor, found, data)

    def person(self, e: schema.PersonEntry) -> bool:
        data = people.PersonData(
            username=e.username,
            name=e.name or e.username,
            clearance=e.clearance,
            roles=tuple(e.roles),
            badges=tuple(e.badges),
            groups=tuple(e.groups),
            visitor=e.visitor,
            title=e.title,
            organisation=e.organisation,
        )
        found = self._find(Person.username, e.username)
        if found is None:
            people.create(self.session, self.actor, data)
            return True
        have = {k: sorted(v) if isinstance(v, list) else v for k, v in people.describe(found).items()}
        wanted = {
            "name": data.name,
            "clearance": Level(data.clearance).label,
            "roles": sorted(set(data.roles)),
            "badges": sorted(data.badges),
            "groups": sorted(set(data.groups)),
            "visitor": data.visitor,
        }
        have.update(title=found.title, organisation=found.organisation)
        wanted.update(title=data.title, organisation=data.organisation)
        _unchanged(
            "site.person_changed",
            f"{e.username} is registered with a different",
            "change people through `custodian people` or the administrator's pages, not by reloading the site file",
            have,
            wanted,
        )
        return False

    def item(self, e: schema.ItemEntry) -> bool:
        period = items.SecrecyPeriod(
            start=e.period_start,
            months=e.period_months,
            until=e.declassify_on,
            condition=e.declassify_condition,
        )
        data = items.ItemData(
            register_number=e.register_number,
            copy_number=e.copy_number,
            title=e.title,
            kind=e.kind,
            level=e.level,
            period=period,
            originating_unit=e.originating_unit,
            epc=e.epc,
            tid=e.tid,
            venue=e.venue,
            custodian=e.custodian,
            scope_people=tuple(e.scope_people),
            scope_groups=tuple(e.scope_groups),
            manufacturer=e.manufacturer,
            model=e.model,
            serial_number=e.serial_number,
        )
        found = self.session.execute(
            select(Item).where(Item.register_number == e.register_number, Item.copy_number == e.copy_number)
        ).scalar()
        if found is None:
            items.register(self.session, self.actor, data)
            return True
        have = items.describe(found)
        registered = items.SecrecyPeriod.of(found)
        have.update(
            period_start=registered.start,
            period_months=registered.months,
            declassify_on=registered.until,
            declassify_condition=registered.condition,
            manufacturer=found.manufacturer,
            model=found.model,
            serial_number=found.serial_number,
        )
        wanted = {
            "title": e.title,
            "kind": e.kind,
            "level": e.level.label,
            "period_start": e.period_start,
            "period_months": e.period_months,
            "declassify_on": e.declassify_on,
            "declassify_condition": e.declassify_condition,
            "originating_unit": e.originating_unit,
            "epc": e.epc,
            "tid": e.tid,
            "venue": e.venue,
            "custodian": e.custodian,
            "scope_people": sorted(set(e.scope_people)),
            "scope_groups": sorted(set(e.scope_groups)),
            "manufacturer": e.manufacturer,
            "model": e.model,
            "serial_number": e.serial_number,
        }
        _unchanged(
            "site.item_changed",
            f"{e.register_number}/{e.copy_number} is registered with a different",
            "use the item services (relabel, place, hand over) to change a registered item",
            have,
            wanted,
        )
        return False

    def approval(self, e: schema.ApprovalEntry) -> bool:
        found = self._find(Approval.ref, e.ref)
        if found is not None:
            self._same_approval(found, e)
            return False
        request = approvals.ApprovalRequest(
            ref=e.ref,
            kind=e.kind,
            items=tuple(e.items),
            people=tuple(e.people),
            groups=tuple(e.groups),
            portal=e.portal,
            destination_venue=e.destination_venue,
            destination_text=e.destination_text,
            valid_from=e.valid_from,
            valid_until=e.valid_until,
            uses=e.uses,
            return_by=e.return_by,
            reason=e.reason,
            originator_consent=e.originator_consent,
        )
        approval = approvals.request(self.session, e.requester, request)
        for approver in e.approvers:
            try:
                approvals.approve(self.session, approver, approval, note="loaded from the site file")
            except RuleViolation as exc:
                exc.field = exc.field or "approvers"
                raise
            except NotFound as exc:
                raise RuleViolation("approval.approver", str(exc), field="approvers") from None
        return True

    def _same_approval(self, found: Approval, e: schema.ApprovalEntry) -> None:
        def code(model: Any, key: int | None) -> str | None:
            row = self.session.get(model, key) if key is not None else None
            return row.code if row is not None else None

        have = {
            "kind": found.kind,
            "requester": found.requester.username,
            "approvers": sorted({d.approver.username for d in found.decisions if d.decision == "approved"}),
            "items": sorted(i.id for i in found.items),
            "people": sorted(p.username for p in found.people),
            "groups": sorted(g.name for g in found.groups),
            "portal": code(Portal, found.portal_id),
            "destination_venue": code(Venue, found.destination_venue_id),
            "destination_text": found.destination_text,
            "valid_from": found.valid_from,
            "valid_until": found.valid_until,
            "uses": found.uses_total,
            "return_by": found.return_by,
            "reason": found.reason,
            "originator_consent": found.originator_consent,
        }
        wanted = {
            "kind": e.kind,
            "requester": e.requester,
            "approvers": sorted(set(e.approvers)),
            "items": sorted({lookup.item(self.session, key).id for key in e.items}),
            "people": sorted(set(e.people)),
            "groups": sorted(set(e.groups)),
            "portal": e.portal,
            "destination_venue": e.destination_venue,
            "destination_text": e.destination_text,
            "valid_from": e.valid_from,
            "valid_until": e.valid_until,
            "uses": e.uses,
            "return_by": e.return_by,
            "reason": e.reason,
            "originator_consent": e.originator_consent,
        }
        _unchanged(
            "site.approval_changed",
            f"approval {e.ref} is registered with a different",
            "a registered approval is changed by request and approval, not by reloading the site file",
            have,
            wanted,
        )


def _unchanged(rule: str, subject: str, advice: str, have: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse, naming the first field that differs, when a registered row's declared values changed."""
    differs = [k for k, v in wanted.items() if have.get(k) != v]
    if differs:
        raise RuleViolation(rule, f"{subject} {', '.join(differs)}; {advice}", details=differs, field=differs[0])


def _blamed_field(section: str, entry: schema.Entry, exc: RegistryError) -> schema.Path:
    """The key of the entry (and position in it) that the service's error is about."""
    given = entry.model_dump(by_alias=True, exclude_unset=True)
    field = getattr(exc, "field", None)
    if isinstance(exc, RuleViolation) and field is None:
        field = RULE_FIELDS.get((section, exc.rule))
    if field is not None:
        field = ALIASES.get(field, field)
        if field == "period":
            periods = ("period_months", "declassify_on", "declassify_condition")
            field = next((k for k in periods if k in given), "period_start")
        if field.startswith("settings."):  # device settings are keys of the device's own table
            return (field.removeprefix("settings."),)
        head, *rest = field.split(".")
        return (head, *(int(p) if p.isdigit() else p for p in rest))
    wanted = [str(exc.key)] if isinstance(exc, NotFound) else getattr(exc, "details", [])
    for key, value in given.items():
        values = value if isinstance(value, list) else [value]
        if any(str(v) in wanted for v in values):
            return (key,)
    return (IDENTITY[section],)


def load(session: Session, actor: str, path: Path, *, configuration_only: bool = False) -> LoadResult:
    """Load a site file into the register inside the caller's transaction (see the module's docstring). With
    `configuration_only`, only the sections in CONFIGURATION are applied; people, items and approvals in the
    file are left alone (they are live state once loaded)."""
    lines, site = _checked(path)
    loader = _Loader(session, actor)
    for section in CONFIGURATION if configuration_only else SECTIONS:
        for index, entry in enumerate(getattr(site, section)):
            try:
                loader.apply(section, entry)
            except (RegistryError, DataError, IntegrityError) as exc:
                raise _refused(path, lines, section, index, entry, exc) from None
    _check_portals(session, path, lines, site)
    return LoadResult(loader.created, loader.unchanged)


def site_time_zone(path: Path | None = None) -> str:
    """The IANA zone the site's guards read times in: the site file's `[site] time_zone`, else
    $CUSTODIAN_TIME_ZONE, else UTC. A file that does not check (steps 1 and 2 of a load) is a SiteFileError."""
    declared = _checked(path)[1].site.time_zone if path is not None else ""
    return declared or os.environ.get(TIME_ZONE_ENV, "") or "UTC"


def _checked(path: Path) -> tuple[_Text, schema.SiteFile]:
    """Steps 1 and 2 of a load: the file read and its structure checked."""
    text = _read(path)
    lines = _Text(text.split("\n"))  # TOML counts lines by "\n" alone, as str.splitlines does not
    raw = _parse(path, text, lines)
    try:
        return lines, schema.parse(raw)
    except schema.SchemaProblems as exc:
        problem = min(exc.found, key=lambda p: _rank(lines, p))
        line, where = lines.locate(problem.path), _where(problem.path)
        raise SiteFileError(str(path), line, where, problem.message, problem.rule) from None


def _rank(lines: _Text, problem: schema.SchemaProblem) -> tuple[int, int]:
    """The problem reported is the first in the file; in one table an unknown key before a missing one (a
    typo's misspelt key says more than the key it left missing)."""
    message = problem.message
    order = 0 if message.startswith("unknown key") else 2 if message == "is required" else 1
    return lines.locate(problem.path[:2]), order


def _refused(path: Path, lines: _Text, section: str, index: int, entry: schema.Entry, exc: Exception) -> SiteFileError:
    if isinstance(exc, DataError | IntegrityError):
        # The schema should have stopped the value; the register's own constraints are the last guard.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        where = (section, index, IDENTITY[section])
        return SiteFileError(
            str(path), lines.locate(where), _where(where), f"the register refused: {reason}", "site.database_refused"
        )
    assert isinstance(exc, RegistryError)
    where = (section, index, *_blamed_field(section, entry, exc))
    if isinstance(exc, NotFound):
        message = f"unknown reference: {exc}"
    elif isinstance(exc, InvalidInput):
        message = exc.message
    else:
        message = str(exc)
    rule = exc.rule if isinstance(exc, RuleViolation) else None
    return SiteFileError(str(path), lines.locate(where), _where(where), message, rule)


def _check_portals(session: Session, path: Path, lines: _Text, site: schema.SiteFile) -> None:
    """Once every device is in, each portal the file wires must see both sides (venues.check_portal_sides)."""
    blame: dict[str, schema.Path] = {p.code: ("portals", n, "code") for n, p in enumerate(site.portals)}
    for n, device in enumerate(site.devices):
        if device.portal is not None and (device.antennas or device.portal not in blame):
            blame[device.portal] = ("devices", n, "antennas")
    for code, where in blame.items():
        portal = session.execute(select(Portal).where(Portal.code == code)).scalar_one()
        try:
            venues.check_portal_sides(session, portal)
        except RuleViolation as exc:
            raise SiteFileError(str(path), lines.locate(where), _where(where), str(exc), exc.rule) from None


def export(session: Session) -> str:
    """The register's site as a site file that `load` accepts (secrets are never in it)."""
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SECTIONS}
    for v in session.execute(select(Venue).order_by(Venue.code)).scalars():
        row: dict[str, Any] = {"code": v.code, "name": v.name, "ceiling": Level(v.ceiling).label}
        row.update({flag: True for flag in VENUE_FLAGS if getattr(v, flag)})
        if v.fail_secure_level != Level.SECRET:
            row["fail_secure_level"] = Level(v.fail_secure_level).label
        out["venues"].append(row)
    for p in session.execute(select(Portal).order_by(Portal.code)).scalars():
        row = {
            "code": p.code,
            "name": p.name,
            "inside": p.inside_venue.code,
            "outside": p.outside_venue.code if p.outside_venue else schema.OUTSIDE,
        }
        if p.border:
            row["border"] = True
        if p.x_m or p.y_m:
            row["x_m"], row["y_m"] = p.x_m, p.y_m
        if p.anti_passback != "off":
            row["anti_passback"] = p.anti_passback
        out["portals"].append(row)
    for d in session.execute(select(Device).order_by(Device.name)).scalars():
        row = {"name": d.name, "kind": d.kind}
        if d.portal:
            row["portal"] = d.portal.code
        if d.venue:
            row["venue"] = d.venue.code
        row.update(json.loads(d.settings_json))
        if d.antennas:
            row["antennas"] = [{"number": a.number, "side": a.side} for a in d.antennas]
        out["devices"].append(row)
    for person in session.execute(select(Person).order_by(Person.username)).scalars():
        row = {
            "username": person.username,
            "name": person.name,
            "clearance": Level(person.clearance).label,
            "roles": sorted(person.role_names),
            "badges": [b.number for b in person.badges],
        }
        if person.groups:
            row["groups"] = sorted(g.name for g in person.groups)
        if person.visitor:
            row["visitor"] = True
        for key in ("title", "organisation"):
            if getattr(person, key):
                row[key] = getattr(person, key)
        out["people"].append(row)
    for item in session.execute(select(Item).order_by(Item.register_number, Item.copy_number)).scalars():
        row = {
            "register_number": item.register_number,
            "copy": item.copy_number,
            "title": item.title,
            "kind": item.kind,
            "level": Level(item.level).label,
            "period_start": item.period_start,
        }
        if item.period_months is not None:
            row["period_months"] = item.period_months
        if item.declassify_on is not None:
            row["declassify_on"] = item.declassify_on
        if item.declassify_condition:
            row["declassify_condition"] = item.declassify_condition
        row["originating_unit"] = item.originating_unit
        row["epc"] = item.epc
        if item.tid:
            row["tid"] = item.tid
        if item.venue:
            row["venue"] = item.venue.code
        if item.custodian:
            row["custodian"] = item.custodian.username
        if item.scope_people:
            row["scope_people"] = sorted(p.username for p in item.scope_people)
        if item.scope_groups:
            row["scope_groups"] = sorted(g.name for g in item.scope_groups)
        for key in ("manufacturer", "model", "serial_number"):
            if getattr(item, key):
                row[key] = getattr(item, key)
        out["items"].append(row)
    for a in session.execute(select(Approval).order_by(Approval.ref)).scalars():
        row = {
            "ref": a.ref,
            "kind": a.kind,
            "requester": a.requester.username,
            "approvers": [d.approver.username for d in a.decisions if d.decision == "approved"],
            "items": [
                i.register_number if i.copy_number == 1 else f"{i.register_number}/{i.copy_number}" for i in a.items
            ],
            "valid_from": a.valid_from,
            "valid_until": a.valid_until,
            "uses": a.uses_total,
        }
        if a.people:
            row["people"] = sorted(p.username for p in a.people)
        if a.groups:
            row["groups"] = sorted(g.name for g in a.groups)
        if a.portal_id:
            row["portal"] = session.get(Portal, a.portal_id).code  # type: ignore[union-attr]
        if a.destination_venue_id:
            row["destination_venue"] = session.get(Venue, a.destination_venue_id).code  # type: ignore[union-attr]
        if a.return_by:
            row["return_by"] = a.return_by
        for key in ("reason", "originator_consent", "destination_text"):
            if getattr(a, key):
                row[key] = getattr(a, key)
        out["approvals"].append(row)
    return tomli_w.dumps({k: v for k, v in out.items() if v})
