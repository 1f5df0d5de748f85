"""The declarative site file (TOML): venues, portals, devices, people, items, approvals.

Loading is idempotent: what is already in the register and equal is left alone, so loading the same file
twice writes nothing. A wrong value is reported with the file, the line and the field, and nothing of
the file is kept (the whole load is one transaction).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, validate
from registry.errors import InvalidInput, NotFound, RegistryError, RuleViolation
from registry.levels import Level
from registry.models import (
    ANTENNA_SIDES,
    DEVICE_KINDS,
    Antenna,
    Approval,
    Device,
    Item,
    Person,
    Portal,
    Venue,
)
from registry.services import approvals, items, lookup, people

SECTIONS = ("venues", "portals", "devices", "people", "items", "approvals")
# What the file declares about the site itself; the rest (people, items, approvals) becomes live state
# once loaded, changed through the services, never reset from the file (`load(configuration_only=True)`).
CONFIGURATION = ("venues", "portals", "devices")
VENUE_FLAGS = ("top_secret_designated", "storage", "closed", "key_part", "destruction")
# Secrets never enter the register or its exports: the site file names an environment variable instead.
SECRET_KEYS = re.compile(r"(scbk|key|password|secret|token)$", re.IGNORECASE)
DEVICE_FIXED_KEYS = ("name", "kind", "portal", "venue", "antennas")


class SiteFileError(Exception):
    """A site file could not be loaded. Names the file, the line (when found) and the field."""

    def __init__(self, path: str, line: int | None, where: str, message: str) -> None:
        location = f"{path}:{line}" if line else path
        super().__init__(f"{location}: {where}: {message}")
        self.path, self.line, self.where, self.message = path, line, where, message


@dataclass(frozen=True, slots=True)
class LoadResult:
    created: dict[str, int]
    unchanged: dict[str, int]

    @property
    def changed_anything(self) -> bool:
        return any(self.created.values())


def _locate(text: str, section: str, index: int, field: str | None) -> int | None:
    """Line of the index-th `[[section]]` table, or of `field =` inside it."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\[\s*{re.escape(section)}\s*\]\]")
    starts = [n for n, line in enumerate(lines) if header.match(line)]
    if index >= len(starts):
        return None
    start = starts[index]
    if field is not None:
        key = re.compile(rf"^\s*{re.escape(field)}\s*=")
        for n in range(start + 1, len(lines)):
            if lines[n].lstrip().startswith("["):
                break
            if key.match(lines[n]):
                return n + 1
    return start + 1


def _req(table: dict[str, Any], key: str) -> Any:
    if key not in table:
        raise InvalidInput(key, "is required")
    return table[key]


def _aware(value: Any, field: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidInput(field, "needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise InvalidInput(field, f"{value!r} is not a date-time")


def _date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise InvalidInput(field, f"{value!r} is not a date (YYYY-MM-DD)")


class _Loader:
    def __init__(self, session: Session, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.created = dict.fromkeys(SECTIONS, 0)
        self.unchanged = dict.fromkeys(SECTIONS, 0)

    def venue(self, t: dict[str, Any]) -> None:
        code = _req(t, "code")
        values = {
            "name": t.get("name", code),
            "ceiling": int(validate.level(_req(t, "ceiling"), "ceiling")),
            "fail_secure_level": int(validate.level(t.get("fail_secure_level", "secret"), "fail_secure_level")),
            **{flag: bool(t.get(flag, False)) for flag in VENUE_FLAGS},
        }
        found = self.session.execute(select(Venue).where(Venue.code == code)).scalar()
        self._upsert("venues", found, Venue(code=code), values, f"venue:{code}")

    def portal(self, t: dict[str, Any]) -> None:
        code = _req(t, "code")
        outside = t.get("outside", "outside")
        values = {
            "name": t.get("name", code),
            "inside_venue_id": lookup.venue(self.session, _req(t, "inside")).id,
            "outside_venue_id": None if outside == "outside" else lookup.venue(self.session, outside).id,
            "border": bool(t.get("border", False)),
            "x_m": float(t.get("x_m", 0.0)),
            "y_m": float(t.get("y_m", 0.0)),
        }
        found = self.session.execute(select(Portal).where(Portal.code == code)).scalar()
        self._upsert("portals", found, Portal(code=code), values, f"portal:{code}")

    def device(self, t: dict[str, Any]) -> None:
        name = _req(t, "name")
        validate.choice(_req(t, "kind"), DEVICE_KINDS, "kind")
        settings = {k: v for k, v in t.items() if k not in DEVICE_FIXED_KEYS}
        for key in settings:
            if SECRET_KEYS.search(key):
                raise InvalidInput(key, f"secrets do not go in the site file; use {key}_env naming a variable")
        antennas = []
        for n, a in enumerate(t.get("antennas", [])):
            side = validate.choice(a.get("side", ""), ANTENNA_SIDES, f"antennas[{n}].side")
            antennas.append((int(_req(a, "number")), side))
        values = {
            "kind": t["kind"],
            "portal_id": lookup.portal(self.session, t["portal"]).id if "portal" in t else None,
            "venue_id": lookup.venue(self.session, t["venue"]).id if "venue" in t else None,
            "settings_json": json.dumps(settings, sort_keys=True, default=str),
        }
        found = self.session.execute(select(Device).where(Device.name == name)).scalar()
        current = sorted((a.number, a.side) for a in found.antennas) if found else None
        device = self._upsert(
            "devices",
            found,
            Device(name=name),
            values,
            f"device:{name}",
            extra_same=current == sorted(antennas),
        )
        if current != sorted(antennas):
            device.antennas = [Antenna(number=n, side=s) for n, s in antennas]
            self.session.flush()

    def person(self, t: dict[str, Any]) -> None:
        data = people.PersonData(
            username=_req(t, "username"),
            name=t.get("name", t["username"]),
            clearance=validate.level(_req(t, "clearance"), "clearance"),
            roles=tuple(t.get("roles", ["custodian"])),
            badges=tuple(str(b) for b in t.get("badges", [])),
            groups=tuple(t.get("groups", [])),
            visitor=bool(t.get("visitor", False)),
            title=t.get("title", ""),
            organisation=t.get("organisation", ""),
        )
        found = self.session.execute(select(Person).where(Person.username == data.username)).scalar()
        if found is None:
            people.create(self.session, self.actor, data)
            self.created["people"] += 1
            return
        wanted = {
            "name": data.name,
            "clearance": Level(data.clearance).label,
            "roles": sorted(set(data.roles)),
            "badges": sorted(data.badges),
            "groups": sorted(data.groups),
            "visitor": data.visitor,
        }
        have = people.describe(found)
        differs = [k for k in wanted if (sorted(have[k]) if isinstance(have[k], list) else have[k]) != wanted[k]]
        if differs:
            raise RuleViolation(
                "site.person_changed",
                f"{data.username} is registered with different {', '.join(differs)}; "
                "change people through `custodian people`, not by reloading the site file",
            )
        self.unchanged["people"] += 1

    def item(self, t: dict[str, Any]) -> None:
        period = items.SecrecyPeriod(
            start=_date(_req(t, "period_start"), "period_start"),
            months=t.get("period_months"),
            until=_date(t["declassify_on"], "declassify_on") if "declassify_on" in t else None,
            condition=t.get("declassify_condition"),
        )
        data = items.ItemData(
            register_number=str(_req(t, "register_number")),
            copy_number=int(t.get("copy", 1)),
            title=_req(t, "title"),
            kind=_req(t, "kind"),
            level=validate.level(_req(t, "level")),
            period=period,
            originating_unit=_req(t, "originating_unit"),
            epc=validate.epc(_req(t, "epc")),
            tid=validate.tid(t.get("tid")),
            venue=t.get("venue"),
            custodian=t.get("custodian"),
            scope_people=tuple(t.get("scope_people", [])),
            scope_groups=tuple(t.get("scope_groups", [])),
            manufacturer=t.get("manufacturer", ""),
            model=t.get("model", ""),
            serial_number=t.get("serial_number", ""),
        )
        found = self.session.execute(
            select(Item).where(Item.register_number == data.register_number, Item.copy_number == data.copy_number)
        ).scalar()
        if found is None:
            items.register(self.session, self.actor, data)
            self.created["items"] += 1
            return
        have = items.describe(found)
        wanted = {
            "title": data.title,
            "kind": data.kind,
            "level": Level(data.level).label,
            "period": period.describe(),
            "epc": data.epc,
            "venue": data.venue,
            "custodian": data.custodian,
        }
        differs = [k for k, v in wanted.items() if have[k] != v]
        if differs:
            raise RuleViolation(
                "site.item_changed",
                f"{data.register_number}/{data.copy_number} is registered with different {', '.join(differs)}; "
                "use the item services (relabel, place, hand over) to change a registered item",
            )
        self.unchanged["items"] += 1

    def approval(self, t: dict[str, Any]) -> None:
        ref = _req(t, "ref")
        if self.session.execute(select(Approval.id).where(Approval.ref == ref)).first():
            self.unchanged["approvals"] += 1
            return
        request = approvals.ApprovalRequest(
            ref=ref,
            kind=_req(t, "kind"),
            items=tuple(str(i) for i in _req(t, "items")),
            people=tuple(t.get("people", [])),
            groups=tuple(t.get("groups", [])),
            portal=t.get("portal"),
            destination_venue=t.get("destination_venue"),
            destination_text=t.get("destination_text", ""),
            valid_from=_aware(_req(t, "valid_from"), "valid_from"),
            valid_until=_aware(_req(t, "valid_until"), "valid_until"),
            uses=int(t.get("uses", 1)),
            return_by=_aware(t["return_by"], "return_by") if "return_by" in t else None,
            reason=t.get("reason", ""),
            originator_consent=t.get("originator_consent"),
        )
        approval = approvals.request(self.session, _req(t, "requester"), request)
        for approver in t.get("approvers", []):
            approvals.approve(self.session, approver, approval, note="loaded from the site file")
        self.created["approvals"] += 1

    def _upsert(
        self,
        section: str,
        found: Any,
        new: Any,
        values: dict[str, Any],
        subject: str,
        extra_same: bool = True,
    ) -> Any:
        if found is not None:
            changes = {k: v for k, v in values.items() if getattr(found, k) != v}
            if not changes and extra_same:
                self.unchanged[section] += 1
                return found
            for key, value in changes.items():
                setattr(found, key, value)
            self.session.flush()
            journal.append(self.session, self.actor, f"site.{section}.updated", subject, changes)
            self.created[section] += 1
            return found
        for key, value in values.items():
            setattr(new, key, value)
        self.session.add(new)
        self.session.flush()
        journal.append(self.session, self.actor, f"site.{section}.created", subject, values)
        self.created[section] += 1
        return new


def load(session: Session, actor: str, path: Path, *, configuration_only: bool = False) -> LoadResult:
    """Load a site file into the register inside the caller's transaction. With `configuration_only`, only
    the sections in CONFIGURATION are applied; people, items and approvals in the file are left alone."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise SiteFileError(str(path), line, "syntax", str(exc)) from None
    unknown = set(data) - set(SECTIONS) - {"site"}
    if unknown:
        raise SiteFileError(str(path), None, "top level", f"unknown section(s): {', '.join(sorted(unknown))}")
    loader = _Loader(session, actor)
    handlers = {
        "venues": loader.venue,
        "portals": loader.portal,
        "devices": loader.device,
        "people": loader.person,
        "items": loader.item,
        "approvals": loader.approval,
    }
    for section in CONFIGURATION if configuration_only else SECTIONS:
        for index, table in enumerate(data.get(section, [])):
            try:
                handlers[section](table)
            except InvalidInput as exc:
                field = exc.field.split(".")[0].split("[")[0]
                line = _locate(text, section, index, field)
                raise SiteFileError(str(path), line, f"{section}[{index}].{exc.field}", exc.message) from None
            except NotFound as exc:
                line = _locate(text, section, index, None)
                raise SiteFileError(str(path), line, f"{section}[{index}]", f"unknown reference: {exc}") from None
            except RuleViolation as exc:
                line = _locate(text, section, index, None)
                raise SiteFileError(str(path), line, f"{section}[{index}]", str(exc)) from None
            except RegistryError as exc:
                line = _locate(text, section, index, None)
                raise SiteFileError(str(path), line, f"{section}[{index}]", str(exc)) from None
    return LoadResult(loader.created, loader.unchanged)


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
            "outside": p.outside_venue.code if p.outside_venue else "outside",
        }
        if p.border:
            row["border"] = True
        if p.x_m or p.y_m:
            row["x_m"], row["y_m"] = p.x_m, p.y_m
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
            "items": [i.register_number for i in a.items],
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
