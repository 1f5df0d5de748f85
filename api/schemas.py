"""Request and response bodies (XCreate for what a client sends, XPublic for what it gets back)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from registry.levels import Level
from registry.models import DEVICE_KINDS, ROLES

LevelName = Literal["unclassified", "internal", "confidential", "secret", "top_secret"]
RoleName = Literal[ROLES]  # type: ignore[valid-type]  # the register's roles, one list for both
# Database ids in URLs: positive and within a 64-bit signed integer, as every backend stores them.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def Text(max_length: int, min_length: int = 1) -> Any:  # a type, used like `str`
    """Free text that must say something: surrounding spaces are trimmed, and what is left must have at least
    `min_length` characters. A value of spaces only is refused with a 422 naming the field, never passed on."""

    def said(value: str) -> str:
        trimmed = value.strip()
        if not trimmed:
            raise PydanticCustomError("blank", "must not be blank")
        if len(trimmed) < min_length:
            raise PydanticCustomError(
                "too_short", "needs at least {n} characters besides surrounding spaces", {"n": min_length}
            )
        return trimmed

    # The schema says it too: at least one character that is not a space.
    limits = Field(min_length=min_length, max_length=max_length, json_schema_extra={"pattern": r"\S"})
    return Annotated[str, limits, AfterValidator(said)]


# A reference to something in the register by its code or username (venue, portal, device, person, group,
# badge): never blank, so a blank never reaches a lookup or creates a group or badge named " ".
Ref = Text(64)
ItemRef = Text(124)  # a register number, "register_number/copy" or an EPC


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


class VenueChange(Strict):
    name: Text(200)
    ceiling: LevelName
    top_secret_designated: bool = False
    storage: bool = False
    closed: bool = False
    key_part: bool = False
    destruction: bool = False
    fail_secure_level: LevelName = "secret"


class VenueCreate(VenueChange):
    code: str = Code


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


class PortalChange(Strict):
    name: Text(200)
    inside: Ref
    outside: Ref | None = Field(default=None, description="venue code; null = leaves the unit")
    border: bool = False


class PortalCreate(PortalChange):
    code: str = Code


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


class DeviceChange(Strict):
    portal: Ref | None = None
    venue: Ref | None = None
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    antennas: list[AntennaCreate] = Field(default_factory=list, max_length=64)


class DeviceCreate(DeviceChange):
    name: str = Code
    kind: Literal[DEVICE_KINDS]  # type: ignore[valid-type]  # the device-kind table, firmware_bridge.kinds


class SettingFieldPublic(BaseModel):
    name: str
    type: Literal["bool", "int", "float", "str", "choice"]
    default: str | int | float | bool | None
    choices: list[str]
    optional: bool


class DeviceKindPublic(BaseModel):
    name: str
    role: str
    summary: str
    settings: list[SettingFieldPublic]
    unavailable: str = ""  # why this installation cannot use the kind (its library is missing), if so


class DeviceProbePublic(BaseModel):
    name: str
    kind: str
    health: str
    identity: str
    detail: str


class DevicePublic(BaseModel):
    id: int
    name: str
    kind: str
    portal: str | None
    venue: str | None
    settings: dict[str, str | int | float | bool | None]
    antennas: list[AntennaCreate]


class PersonChange(Strict):
    name: Text(200)
    clearance: LevelName
    roles: list[RoleName] = Field(default_factory=lambda: ["custodian"], max_length=8)
    badges: list[Ref] = Field(default_factory=list, max_length=16)
    groups: list[Ref] = Field(default_factory=list, max_length=32)
    visitor: bool = False
    title: str = Field(default="", max_length=200)
    organisation: str = Field(default="", max_length=200)


class PersonCreate(PersonChange):
    username: str = Code


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


class DeparturePublic(BaseModel):
    """Art. 53: where a person's sign-off stands, and what they must return before it."""

    username: str
    status: str
    items_to_return: list[ItemPublic]


class SignOffCreate(Strict):
    separation_until: dt.date | None = Field(default=None, description="end of a separation period, if any")


class PasswordCreate(Strict):
    password: str = Field(min_length=10, max_length=256)


class ItemCreate(Strict):
    register_number: Text(64)
    copy_number: int = Field(default=1, ge=1, le=100_000)
    title: Text(300)
    kind: Literal["paper", "hdd", "ssd", "usb", "optical", "tape", "laptop", "equipment", "other"]
    level: LevelName
    period_start: dt.date
    period_months: int | None = Field(default=None, ge=1, le=1200)
    declassify_on: dt.date | None = None
    declassify_condition: Text(500) | None = None
    originating_unit: Text(200)
    epc: str = Field(min_length=24, max_length=124)
    tid: str | None = Field(default=None, max_length=96)
    venue: Ref | None = None
    custodian: Ref | None = None
    scope_people: list[Ref] = Field(default_factory=list, max_length=200)
    scope_groups: list[Ref] = Field(default_factory=list, max_length=50)


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
    reason: Text(1000, min_length=3)
    level: LevelName | None = None
    period_start: dt.date | None = None
    period_months: int | None = Field(default=None, ge=1, le=1200)
    declassify_on: dt.date | None = None
    declassify_condition: Text(500) | None = None


class MeetingCreate(Strict):
    title: Text(300)
    venue: Ref
    level: LevelName
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: list[Ref] = Field(min_length=1, max_length=500)


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
    items: list[ItemRef] = Field(min_length=1, max_length=500, description="register numbers or EPCs")
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    people: list[Ref] = Field(default_factory=list, max_length=100)
    groups: list[Ref] = Field(default_factory=list, max_length=20)
    portal: Ref | None = None
    destination_venue: Ref | None = None
    destination_text: str = Field(default="", max_length=200)
    uses: int = Field(default=1, ge=1, le=10_000)
    return_by: AwareDatetime | None = None
    reason: str = Field(default="", max_length=2000)
    originator_consent: Text(200) | None = None


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
    portal: str | None = None
    destination_venue: str | None = None
    destination_text: str = ""
    return_by: dt.datetime | None = None
    uses_total: int = 1
    originator_consent: str | None = None


class OverrideCreate(Strict):
    """A guard's override: their own password, entered now, and a written reason (rule 4.7). `alarm` names
    the block the guard was shown; the override is refused if another block has replaced it since."""

    password: str = Field(min_length=1, max_length=256)
    reason: Text(2000, min_length=5)
    alarm: int | None = Field(default=None, ge=1, le=2**63 - 1)


class OverridePublic(BaseModel):
    portal: str
    guard: str
    person: str
    items: list[str]
    overridden: list[ReasonPublic]
    at: dt.datetime


class ReasonPublic(BaseModel):
    """A stable reason id with the sentence guards read (tracking.vocabulary)."""

    id: str
    sentence: str


class BlockPublic(BaseModel):
    alarm_id: int | None
    person: str
    direction: Literal["exit", "entry"]  # the way the refused badge was presented
    items: list[str]
    reasons: list[ReasonPublic]
    kept_shut: list[str]  # a sentence per resting item that kept the door shut: which, and since when
    at: dt.datetime
    fresh_until: dt.datetime


class DoorPublic(BaseModel):
    portal: str
    locked: bool
    open: bool
    released_by_fire_alarm: bool
    panel_online: bool
    readers_online: bool
    block: BlockPublic | None = None  # a fresh block a guard may override
    links: Literal["online", "degraded", "offline", "unknown"] = "unknown"  # panel and readers together


class AlarmNote(Strict):
    note: str = Field(default="", max_length=2000)


class AlarmResolve(Strict):
    note: Text(2000, min_length=3)


class AlarmPublic(BaseModel):
    """One alarm of the site's alarm book; times in the site's time zone."""

    id: int
    kind: str
    sentence: str
    category: Literal["security", "technical"]
    severity: str
    source: str
    venue: str
    raised_at: dt.datetime
    last_at: dt.datetime
    repeats: int
    person: str
    badge: str
    items: list[str]
    reasons: list[ReasonPublic]
    detail: str
    has_frame: bool
    state: Literal["open", "acknowledged", "resolved"]
    escalated_at: dt.datetime | None
    acknowledged_by: str
    acknowledged_at: dt.datetime | None
    acknowledge_note: str
    resolved_by: str
    resolved_at: dt.datetime | None
    resolve_note: str
    procedure: list[str]


class SiteAlarmPublic(AlarmPublic):
    """An alarm of one site's book as the centre shows it: `site` qualifies its id; `ack_sent_by` /
    `resolve_sent_by` name the guard at the centre whose acknowledgement / resolution the site has not confirmed
    yet; `refused`: why the site refused the last one sent."""

    site: str
    ack_sent_by: str
    resolve_sent_by: str
    refused: str


class AlarmBookPublic(BaseModel):
    """Security alarms (loud, escalating) and technical / data-quality alarms (quiet), newest first."""

    time_zone: str
    security: list[AlarmPublic]
    technical: list[AlarmPublic]


class ProcedureUpdate(Strict):
    steps: list[Text(500)] = Field(max_length=20)


class DevicePublicHealth(BaseModel):
    name: str
    kind: str
    health: str
    reason: str


class QueueEntryPublic(BaseModel):
    """One row per item; `approval` is the one a run will use (the oldest that is in its window)."""

    item: str
    item_id: int
    title: str
    kind: str
    level: LevelName
    status: str
    approval: str
    other_approvals: list[str] = []
    method: str = ""  # what the medium needs, e.g. "degauss then shred"


class DestructionCreate(Strict):
    station: Ref
    items: list[ItemRef] = Field(min_length=1, max_length=100)
    witness: Ref
    # The witness confirms being there by typing their own password at the station (rule 6: never the
    # operator alone); checked and throttled like a sign-in, never stored or journalled.
    witness_password: str = Field(min_length=1, max_length=256)


class DestructionOutcomePublic(BaseModel):
    item: str
    destroyed: bool
    reason: str
    record_id: int | None
    certificate_sha256: str | None
    verification_pending: bool = False  # not verified yet: the station may take another image of the lot


class DestructionRecordPublic(BaseModel):
    id: int
    item: str
    operator: str
    witness: str | None
    device_name: str  # the machines actually cycled, in order ("none" when nothing started)
    method: str
    outcome: str
    reason: str
    started_at: dt.datetime
    completed_at: dt.datetime
    certificate_sha256: str | None
    approval: str | None = None
    parameters: dict[str, str] = {}
    evidence_image_sha256: str | None = None
    journal_seq: int | None = None


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
    text: Text(4000)


# ---- register records: seizures, inspections, disputed levels, label read-back, access (Art. 20, 21, 26, 62) ----
class OfficialCreate(Strict):
    """A person in the register (`username`), or an outside official with the identification they showed."""

    username: str | None = Field(default=None, min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    organisation: str = Field(default="", max_length=200)
    identification: str = Field(default="", max_length=200)


class SeizureCreate(Strict):
    description: Text(2000)
    level: LevelName
    quantity: int = Field(ge=1, le=1_000_000)
    source: Annotated[Text(2000), Field(description="from whom and where the media were obtained")]
    spread: Annotated[Text(2000), Field(description="how far their contents may have spread")]
    seized_by: list[OfficialCreate] = Field(min_length=1, max_length=20)
    seized_at: AwareDatetime
    venue: str | None = Field(default=None, max_length=64, description="where the seized media are held")
    items: list[str] = Field(default_factory=list, max_length=500, description="register items among them")


class SeizurePublic(BaseModel):
    id: int
    description: str
    level: LevelName
    quantity: int
    source: str
    spread: str
    seized_by: list[str]
    seized_at: dt.datetime
    venue: str | None
    items: list[str]
    recorded_by: str
    recorded_at: dt.datetime


class InspectionCreate(Strict):
    kind: Literal["on_site", "remote", "self_inspection"]
    subject: Annotated[Text(2000), Field(description="what was inspected")]
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    inspectors: list[OfficialCreate] = Field(min_length=1, max_length=20)
    findings: list[str] = Field(default_factory=list, max_length=200)
    actions: list[str] = Field(default_factory=list, max_length=200, description="remedial measures ordered")
    venues: list[str] = Field(default_factory=list, max_length=100)


class InspectionPublic(BaseModel):
    id: int
    kind: str
    subject: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    inspectors: list[str]
    findings: list[str]
    actions: list[str]
    venues: list[str]
    recorded_by: str
    recorded_at: dt.datetime


class ProposalCreate(Strict):
    level: LevelName
    proposed_by: Annotated[Text(200), Field(description="the unit or person of this opinion")]


class DisputeCreate(Strict):
    reason: Text(2000)
    proposals: list[ProposalCreate] = Field(min_length=1, max_length=20)


class DisputeDecisionCreate(Strict):
    level: LevelName
    note: Text(2000)


class ProposalPublic(BaseModel):
    level: LevelName
    proposed_by: str
    recorded_by: str
    at: dt.datetime


class DisputePublic(BaseModel):
    id: int
    register_number: str
    raised_on: str
    state: str
    register_level: LevelName
    protected_at: LevelName | None = Field(description="the highest level proposed, while the dispute is open")
    reason: str
    proposals: list[ProposalPublic]
    opened_by: str
    opened_at: dt.datetime
    decided_level: LevelName | None
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str
    conflicts: list[str] = Field(description="copies kept where, or by whom, the protection level may not be")


class LabelCheckPublic(BaseModel):
    item: str
    level: LevelName = Field(description="the level the label was read back with")
    label_out_of_date: bool


class ReadingCreate(Strict):
    item: Annotated[Text(140), Field(description="register_number/copy, register number or EPC")]
    person: Text(64)
    venue: Text(64)
    reference: str = Field(default="", max_length=200)


class ReadingPublic(BaseModel):
    item: str
    person: str
    venue: str
    recorded: bool = Field(description="false below secret: Art. 20 records readers of secret and top secret")


class AccessRecordPublic(BaseModel):
    person: str
    kind: str
    at: dt.datetime
    venue: str | None
    portal: str | None
    context: str
    recorded_by: str


# People in venues (api/routers/people.py)
class MusterPersonPublic(BaseModel):
    username: str
    name: str
    visitor: bool
    since: dt.datetime
    uncertain: bool  # the last move was not a granted badge (emergency release, an override of tailgating)


class MusterItemPublic(BaseModel):
    item: str
    title: str
    level: LevelName


class MusterVenuePublic(BaseModel):
    venue: str
    name: str
    people: list[MusterPersonPublic]
    items: list[MusterItemPublic]


class MusterPublic(BaseModel):
    at: dt.datetime
    fire_release: bool  # the doors are released by a fire alarm now (the journal's latest fire entry)
    venues: list[MusterVenuePublic]


class MusterExportCreate(Strict):
    note: str = Field(default="", max_length=2000)


class MusterExportPublic(BaseModel):
    journal_seq: int
    muster: MusterPublic


class ForgiveCreate(Strict):
    reason: Text(2000, min_length=5)


class MeetingItemPublic(BaseModel):
    item: str
    title: str
    level: LevelName
    person: str | None
    direction: Literal["in", "out"]
    at: dt.datetime
    portal: str


class MeetingReportPublic(BaseModel):
    id: int
    title: str
    venue: str
    level: LevelName
    starts_at: dt.datetime
    ends_at: dt.datetime
    participants: list[str]
    items: list[MeetingItemPublic]
