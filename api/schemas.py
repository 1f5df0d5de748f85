"""Request and response bodies (XCreate for what a client sends, XPublic for what it gets back)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from registry.levels import Level
from registry.models import DEVICE_KINDS, ROLES

LevelName = Literal["unclassified", "internal", "confidential", "secret", "top_secret"]
RoleName = Literal[ROLES]  # type: ignore[valid-type]  # the register's roles, one list for both
# Database ids in URLs: positive and within a 64-bit signed integer, as every backend stores them.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def level_name(value: int) -> LevelName:
    return Level(value).label  # type: ignore[return-value]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    username: str
    roles: list[str]


class MePublic(BaseModel):
    username: str
    roles: list[str]
    via: str


class VenueCreate(Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    ceiling: LevelName
    top_secret_designated: bool = False
    storage: bool = False
    closed: bool = False
    key_part: bool = False
    destruction: bool = False
    fail_secure_level: LevelName = "secret"


class VenuePublic(BaseModel):
    id: int
    code: str
    name: str
    ceiling: LevelName
    top_secret_designated: bool
    storage: bool
    closed: bool
    key_part: bool
    destruction: bool


class PortalCreate(Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    inside: str = Field(min_length=1, max_length=64)
    outside: str | None = Field(default=None, max_length=64, description="venue code; null = leaves the unit")
    border: bool = False


class PortalPublic(BaseModel):
    id: int
    code: str
    name: str
    inside: str
    outside: str | None
    border: bool


class AntennaCreate(Strict):
    number: int = Field(ge=1, le=64)
    side: Literal["inside", "outside", "ignore"]


class DeviceCreate(Strict):
    name: str = Code
    kind: Literal[DEVICE_KINDS]  # type: ignore[valid-type]  # the device-kind table, firmware_bridge.kinds
    portal: str | None = Field(default=None, max_length=64)
    venue: str | None = Field(default=None, max_length=64)
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    antennas: list[AntennaCreate] = Field(default_factory=list, max_length=64)


class DevicePublic(BaseModel):
    id: int
    name: str
    kind: str
    portal: str | None
    venue: str | None
    settings: dict[str, str | int | float | bool | None]
    antennas: list[AntennaCreate]


class PersonCreate(Strict):
    username: str = Code
    name: str = Field(min_length=1, max_length=200)
    clearance: LevelName
    roles: list[RoleName] = Field(default_factory=lambda: ["custodian"], max_length=8)
    badges: list[str] = Field(default_factory=list, max_length=16)
    groups: list[str] = Field(default_factory=list, max_length=32)
    visitor: bool = False
    title: str = Field(default="", max_length=200)
    organisation: str = Field(default="", max_length=200)


class PersonPublic(BaseModel):
    username: str
    name: str
    clearance: LevelName
    roles: list[str]
    badges: list[str]
    groups: list[str]
    status: str
    visitor: bool
    has_password: bool


class PasswordCreate(Strict):
    password: str = Field(min_length=10, max_length=256)


class ItemCreate(Strict):
    register_number: str = Field(min_length=1, max_length=64)
    copy_number: int = Field(default=1, ge=1, le=100_000)
    title: str = Field(min_length=1, max_length=300)
    kind: Literal["paper", "hdd", "ssd", "usb", "optical", "tape", "laptop", "equipment", "other"]
    level: LevelName
    period_start: dt.date
    period_months: int | None = Field(default=None, ge=1, le=1200)
    declassify_on: dt.date | None = None
    declassify_condition: str | None = Field(default=None, max_length=500)
    originating_unit: str = Field(min_length=1, max_length=200)
    epc: str = Field(min_length=24, max_length=124)
    tid: str | None = Field(default=None, max_length=96)
    venue: str | None = Field(default=None, max_length=64)
    custodian: str | None = Field(default=None, max_length=64)
    scope_people: list[str] = Field(default_factory=list, max_length=200)
    scope_groups: list[str] = Field(default_factory=list, max_length=50)


class ItemPublic(BaseModel):
    id: int
    register_number: str
    copy_number: int
    title: str
    kind: str
    level: LevelName
    period: str
    epc: str
    status: str
    venue: str | None
    custodian: str | None
    label_out_of_date: bool


class RelabelCreate(Strict):
    reason: str = Field(min_length=3, max_length=1000)
    level: LevelName | None = None
    period_start: dt.date | None = None
    period_months: int | None = Field(default=None, ge=1, le=1200)
    declassify_on: dt.date | None = None
    declassify_condition: str | None = Field(default=None, max_length=500)


class MeetingCreate(Strict):
    title: str = Field(min_length=1, max_length=300)
    venue: str = Field(min_length=1, max_length=64)
    level: LevelName
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: list[str] = Field(min_length=1, max_length=500)


class MeetingPublic(BaseModel):
    id: int
    title: str
    venue: str
    level: LevelName
    starts_at: dt.datetime
    ends_at: dt.datetime
    participants: list[str]


class ApprovalCreate(Strict):
    ref: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    kind: Literal["carry_out", "transfer", "reproduce", "destroy", "abroad", "declassify"]
    items: list[str] = Field(min_length=1, max_length=500, description="register numbers or EPCs")
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    people: list[str] = Field(default_factory=list, max_length=100)
    groups: list[str] = Field(default_factory=list, max_length=20)
    portal: str | None = Field(default=None, max_length=64)
    destination_venue: str | None = Field(default=None, max_length=64)
    destination_text: str = Field(default="", max_length=200)
    uses: int = Field(default=1, ge=1, le=10_000)
    return_by: AwareDatetime | None = None
    reason: str = Field(default="", max_length=2000)
    originator_consent: str | None = Field(default=None, max_length=200)


class DecisionCreate(Strict):
    note: str = Field(default="", max_length=2000)


class ApprovalPublic(BaseModel):
    ref: str
    kind: str
    state: str
    requester: str
    items: list[str]
    people: list[str]
    groups: list[str]
    valid_from: dt.datetime
    valid_until: dt.datetime
    uses_left: int
    reason: str
    decisions: list[str]


class OverrideCreate(Strict):
    reason: str = Field(min_length=5, max_length=2000)


class DoorPublic(BaseModel):
    portal: str
    locked: bool
    open: bool
    released_by_fire_alarm: bool
    panel_online: bool
    readers_online: bool


class DevicePublicHealth(BaseModel):
    name: str
    kind: str
    health: str
    reason: str


class QueueEntryPublic(BaseModel):
    item: str
    item_id: int
    title: str
    kind: str
    level: LevelName
    status: str
    approval: str


class DestructionCreate(Strict):
    station: str = Field(min_length=1, max_length=64)
    items: list[str] = Field(min_length=1, max_length=100)
    witness: str = Field(min_length=1, max_length=64)


class DestructionOutcomePublic(BaseModel):
    item: str
    destroyed: bool
    reason: str
    record_id: int | None
    certificate_sha256: str | None


class DestructionRecordPublic(BaseModel):
    id: int
    item: str
    operator: str
    witness: str | None
    device_name: str
    method: str
    outcome: str
    reason: str
    started_at: dt.datetime
    completed_at: dt.datetime
    certificate_sha256: str | None


class JournalStatusPublic(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: str
    head_hash: str


class JournalEntryPublic(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    payload: dict[str, object]


class AccessPublic(BaseModel):
    person: str
    at: dt.datetime
    how: str
    venue: str | None


class TrailPublic(BaseModel):
    item: ItemPublic
    journal: list[JournalEntryPublic]
    access: list[AccessPublic]
    last_seen: JournalEntryPublic | None


class InventoryPublic(BaseModel):
    id: int
    venue: str
    at: dt.datetime
    counted_by: str
    method: str
    present: int
    result: dict[str, object]


class IncidentPublic(BaseModel):
    id: int
    kind: str
    state: str
    opened_at: dt.datetime
    report_deadline: dt.datetime
    seconds_left: float
    overdue: bool
    description: str
    actions: list[str]


class IncidentActionCreate(Strict):
    text: str = Field(min_length=1, max_length=4000)
