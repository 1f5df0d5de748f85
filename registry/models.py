"""SQLAlchemy 2 models of the register. Enumerations are stored as short strings for portability.

Times are timezone-aware UTC datetimes in Python; dates (secrecy periods) are plain dates.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from firmware_bridge import kinds as device_kinds


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Stores aware UTC datetimes; SQLite hands back naive ones, which are re-tagged as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the register; use an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


ITEM_KINDS = ("paper", "hdd", "ssd", "usb", "optical", "tape", "laptop", "equipment", "other")
ITEM_STATUSES = ("active", "in_transit", "destroyed", "declassified", "seized", "destruction_failed")
ROLES = (
    "administrator",
    "classifier",
    "approver",
    "guard",
    "destruction_operator",
    "witness",
    "auditor",
    "custodian",
)
PERSON_STATUSES = ("active", "departing", "departed", "separation")
APPROVAL_KINDS = ("carry_out", "transfer", "reproduce", "destroy", "abroad", "declassify")
APPROVAL_STATES = ("requested", "approved", "refused", "used", "cancelled")
DEVICE_KINDS = device_kinds.names()  # one table of device kinds: firmware_bridge.kinds
ANTENNA_SIDES = ("inside", "outside", "ignore")
ACCESS_KINDS = ("custody", "read", "carry_out")
INSPECTION_KINDS = ("on_site", "remote", "self_inspection")
ANTI_PASSBACK = ("off", "refuse", "alarm")  # tracking.model.ANTI_PASSBACK
PRESENCE_CAUSES = ("badge", "override", "fire_release", "tailgating")  # tracking.results.PresenceChange
DISPUTE_STATES = ("open", "decided")

group_members = Table(
    "group_members",
    Base.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)
item_scope_people = Table(
    "item_scope_people",
    Base.metadata,
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)
item_scope_groups = Table(
    "item_scope_groups",
    Base.metadata,
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)
approval_items = Table(
    "approval_items",
    Base.metadata,
    Column("approval_id", ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
)
approval_people = Table(
    "approval_people",
    Base.metadata,
    Column("approval_id", ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)
approval_groups = Table(
    "approval_groups",
    Base.metadata,
    Column("approval_id", ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)
meeting_participants = Table(
    "meeting_participants",
    Base.metadata,
    Column("meeting_id", ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)
transfer_items = Table(
    "transfer_items",
    Base.metadata,
    Column("transfer_id", ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
)
seizure_items = Table(
    "seizure_items",
    Base.metadata,
    Column("seizure_id", ForeignKey("seizures.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
)
inspection_venues = Table(
    "inspection_venues",
    Base.metadata,
    Column("inspection_id", ForeignKey("inspections.id", ondelete="CASCADE"), primary_key=True),
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    members: Mapped[list[Person]] = relationship(secondary=group_members, back_populates="groups")


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    clearance: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    visitor: Mapped[bool] = mapped_column(Boolean, default=False)
    separation_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    roles: Mapped[list[PersonRole]] = relationship(
        back_populates="person", cascade="all, delete-orphan", order_by="PersonRole.role"
    )
    badges: Mapped[list[Badge]] = relationship(
        back_populates="person", cascade="all, delete-orphan", order_by="Badge.number"
    )
    groups: Mapped[list[Group]] = relationship(secondary=group_members, back_populates="members")

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}


class PersonRole(Base):
    __tablename__ = "person_roles"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    person: Mapped[Person] = relationship(back_populates="roles")


class Badge(Base):
    __tablename__ = "badges"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    person: Mapped[Person] = relationship(back_populates="badges")


class Venue(Base):
    __tablename__ = "venues"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    ceiling: Mapped[int] = mapped_column(Integer)
    top_secret_designated: Mapped[bool] = mapped_column(Boolean, default=False)
    storage: Mapped[bool] = mapped_column(Boolean, default=False)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    key_part: Mapped[bool] = mapped_column(Boolean, default=False)
    destruction: Mapped[bool] = mapped_column(Boolean, default=False)
    fail_secure_level: Mapped[int] = mapped_column(Integer, default=3)


class Portal(Base):
    __tablename__ = "portals"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    inside_venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    # None: the portal leads out of the unit.
    outside_venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    border: Mapped[bool] = mapped_column(Boolean, default=False)
    # Position on the site plan (metres): impossible travel between portals betrays a cloned tag.
    x_m: Mapped[float] = mapped_column(Float, default=0.0)
    y_m: Mapped[float] = mapped_column(Float, default=0.0)
    # What a badge leaving a venue its person is not known to be in gets: off | refuse | alarm.
    anti_passback: Mapped[str] = mapped_column(String(8), default="off", server_default="off")
    inside_venue: Mapped[Venue] = relationship(foreign_keys=[inside_venue_id])
    outside_venue: Mapped[Venue | None] = relationship(foreign_keys=[outside_venue_id])


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    portal_id: Mapped[int | None] = mapped_column(ForeignKey("portals.id"), nullable=True)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    # Transport and protocol settings as JSON. Secrets (OSDP keys) are never stored here.
    settings_json: Mapped[str] = mapped_column(Text, default="{}")
    antennas: Mapped[list[Antenna]] = relationship(
        back_populates="device", cascade="all, delete-orphan", order_by="Antenna.number"
    )
    portal: Mapped[Portal | None] = relationship()
    venue: Mapped[Venue | None] = relationship()


class Antenna(Base):
    __tablename__ = "antennas"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[str] = mapped_column(String(8))
    device: Mapped[Device] = relationship(back_populates="antennas")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("register_number", "copy_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    register_number: Mapped[str] = mapped_column(String(64))
    copy_number: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    # Art. 26: while a level is disputed the item is protected at the highest level proposed.
    disputed_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    declassify_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    declassify_condition: Mapped[str | None] = mapped_column(Text, nullable=True)
    originating_unit: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), nullable=True)
    epc: Mapped[str] = mapped_column(String(124), unique=True)
    tid: Mapped[str | None] = mapped_column(String(96), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    custodian_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    label_out_of_date: Mapped[bool] = mapped_column(Boolean, default=True)
    manufacturer: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    serial_number: Mapped[str] = mapped_column(String(200), default="")
    scope_people: Mapped[list[Person]] = relationship(secondary=item_scope_people)
    scope_groups: Mapped[list[Group]] = relationship(secondary=item_scope_groups)
    venue: Mapped[Venue | None] = relationship()
    custodian: Mapped[Person | None] = relationship()
    parent: Mapped[Item | None] = relationship(remote_side="Item.id")

    @property
    def effective_level(self) -> int:
        return max(self.level, self.disputed_level or 0)


class ItemAccess(Base):
    """Art. 20: everyone who held custody of, read (in a venue) or carried out a secret or top-secret item."""

    __tablename__ = "item_access"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    how: Mapped[str] = mapped_column(String(16))  # ACCESS_KINDS: custody | read | carry_out
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    portal_id: Mapped[int | None] = mapped_column(ForeignKey("portals.id"), nullable=True)
    # What the access came from (an exit decision, a meeting, a transfer), and who recorded it.
    context: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64), default="")


class Approval(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str] = mapped_column(Text, default="")
    requester_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    portal_id: Mapped[int | None] = mapped_column(ForeignKey("portals.id"), nullable=True)
    destination_venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    destination_text: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    return_by: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    uses_total: Mapped[int] = mapped_column(Integer, default=1)
    uses_left: Mapped[int] = mapped_column(Integer, default=1)
    originator_consent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    items: Mapped[list[Item]] = relationship(secondary=approval_items)
    people: Mapped[list[Person]] = relationship(secondary=approval_people)
    groups: Mapped[list[Group]] = relationship(secondary=approval_groups)
    requester: Mapped[Person] = relationship(foreign_keys=[requester_id])
    portal: Mapped[Portal | None] = relationship()
    destination_venue: Mapped[Venue | None] = relationship()
    decisions: Mapped[list[ApprovalDecision]] = relationship(
        back_populates="approval", cascade="all, delete-orphan", order_by="ApprovalDecision.id"
    )


class ApprovalDecision(Base):
    __tablename__ = "approval_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    approval_id: Mapped[int] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    approver_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    decision: Mapped[str] = mapped_column(String(16))  # approved | refused
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    approval: Mapped[Approval] = relationship(back_populates="decisions")
    approver: Mapped[Person] = relationship()


class Meeting(Base):
    """Art. 45: a classified meeting in a venue, for a window, at a level, with its participants."""

    __tablename__ = "meetings"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    level: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    participants: Mapped[list[Person]] = relationship(secondary=meeting_participants)


class MeetingItem(Base):
    """Art. 45: an item brought into or out of a meeting's venue during its window, and by whom if known."""

    __tablename__ = "meeting_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    portal: Mapped[str] = mapped_column(String(64), default="")
    context: Mapped[str] = mapped_column(Text, default="")  # what it came from (the site record), as ItemAccess
    item: Mapped[Item] = relationship()
    person: Mapped[Person | None] = relationship()


class PresenceEntry(Base):
    """Where a person was last known to be (venue None = outside the unit), from the engine's badge decisions;
    the engine starts from these rows, so presence survives a restart. No row: location unknown."""

    __tablename__ = "presence"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    since: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    portal_id: Mapped[int | None] = mapped_column(ForeignKey("portals.id"), nullable=True)
    cause: Mapped[str] = mapped_column(String(16))  # PRESENCE_CAUSES
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    person: Mapped[Person] = relationship()
    venue: Mapped[Venue | None] = relationship()


class Transfer(Base):
    """A hand-over between venues or units; items stay `in_transit` until the receiver acknowledges."""

    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(primary_key=True)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"), nullable=True)
    from_venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    to_venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)
    to_unit: Mapped[str] = mapped_column(String(200), default="")
    sender_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    receiver_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    state: Mapped[str] = mapped_column(String(16), default="in_transit")  # in_transit|received|discrepancy
    sent_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sent_count: Mapped[int] = mapped_column(Integer)
    received_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    items: Mapped[list[Item]] = relationship(secondary=transfer_items)


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | reported | closed
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    report_deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime)  # Art. 61: 24 hours
    reported_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), nullable=True)
    portal_id: Mapped[int | None] = mapped_column(ForeignKey("portals.id"), nullable=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[IncidentAction]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", order_by="IncidentAction.id"
    )


class IncidentAction(Base):
    __tablename__ = "incident_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    incident: Mapped[Incident] = relationship(back_populates="actions")


class AlarmRecord(Base):
    """One alarm of a site's alarm book (controllers.alarms): its evidence and its state, open ->
    acknowledged -> resolved, with who, when and a note. The id is the one the guards were shown (the book
    assigns it), unique within its site: the centre holds every site's book, so the key is (site, id), site
    being the site of the record that raised it. A technical alarm that repeats while open counts its repeats
    instead of adding rows."""

    __tablename__ = "alarms"
    site: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(16))  # security | technical
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    source: Mapped[str] = mapped_column(String(64))  # portal code, device name, station or "site"
    portal_id: Mapped[int | None] = mapped_column(ForeignKey("portals.id"), nullable=True)
    venue: Mapped[str] = mapped_column(String(64), default="")
    raised_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    last_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    repeats: Mapped[int] = mapped_column(Integer, default=1)
    person: Mapped[str] = mapped_column(String(64), default="")
    items_json: Mapped[str] = mapped_column(Text, default="[]")
    reasons_json: Mapped[str] = mapped_column(Text, default="[]")
    detail: Mapped[str] = mapped_column(Text, default="")
    frame_ref: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledge_note: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[str] = mapped_column(String(64), default="")
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolve_note: Mapped[str] = mapped_column(Text, default="")


class AlarmProcedure(Base):
    """A site's own standard operating steps for one alarm kind (the book has defaults for every kind)."""

    __tablename__ = "alarm_procedures"
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    steps_json: Mapped[str] = mapped_column(Text)  # a JSON list of steps, in order
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class InventoryCount(Base):
    __tablename__ = "inventory_counts"
    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    counted_by: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))  # fixed_antennas | handheld
    present: Mapped[int] = mapped_column(Integer)
    result_json: Mapped[str] = mapped_column(Text)  # missing / elsewhere / unregistered / destroyed_seen


class DestructionRecord(Base):
    __tablename__ = "destruction_records"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"), nullable=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    device_name: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))  # shred | degauss+shred | disintegrate | ...
    outcome: Mapped[str] = mapped_column(String(16))  # destroyed | failed
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    parameters_json: Mapped[str] = mapped_column(Text, default="{}")
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    journal_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Seizure(Base):
    """Art. 62: media taken from whoever held them unlawfully, with level, quantity, source and spread."""

    __tablename__ = "seizures"
    id: Mapped[int] = mapped_column(primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    level: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)  # from whom and where they were obtained
    spread: Mapped[str] = mapped_column(Text)  # how far the contents may have spread
    seized_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), nullable=True)  # where now held
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    officials: Mapped[list[SeizureOfficial]] = relationship(
        back_populates="seizure", cascade="all, delete-orphan", order_by="SeizureOfficial.id"
    )
    items: Mapped[list[Item]] = relationship(secondary=seizure_items)
    venue: Mapped[Venue | None] = relationship()


class SeizureOfficial(Base):
    """Who seized: a person in the register, or an outside official named with the identification shown."""

    __tablename__ = "seizure_officials"
    id: Mapped[int] = mapped_column(primary_key=True)
    seizure_id: Mapped[int] = mapped_column(ForeignKey("seizures.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    identification: Mapped[str] = mapped_column(String(200), default="")
    seizure: Mapped[Seizure] = relationship(back_populates="officials")
    person: Mapped[Person | None] = relationship()


class Inspection(Base):
    """CE Art. 25, 26; Art. 56: an inspection by at least two inspectors, its findings and the actions ordered."""

    __tablename__ = "inspections"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # INSPECTION_KINDS
    subject: Mapped[str] = mapped_column(Text)  # what was inspected
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    inspectors: Mapped[list[InspectionInspector]] = relationship(
        back_populates="inspection", cascade="all, delete-orphan", order_by="InspectionInspector.id"
    )
    findings: Mapped[list[InspectionFinding]] = relationship(
        cascade="all, delete-orphan", order_by="InspectionFinding.id"
    )
    actions: Mapped[list[InspectionAction]] = relationship(cascade="all, delete-orphan", order_by="InspectionAction.id")
    venues: Mapped[list[Venue]] = relationship(secondary=inspection_venues)


class InspectionInspector(Base):
    __tablename__ = "inspection_inspectors"
    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    identification: Mapped[str] = mapped_column(String(200), default="")
    inspection: Mapped[Inspection] = relationship(back_populates="inspectors")
    person: Mapped[Person | None] = relationship()


class InspectionFinding(Base):
    __tablename__ = "inspection_findings"
    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)


class InspectionAction(Base):
    """A remedial measure the inspectors ordered (CE Art. 26)."""

    __tablename__ = "inspection_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)


class LevelDispute(Base):
    """Art. 26: differing opinions on the level of a register number (all its copies), and the decision.

    While open, every copy is protected at the highest level proposed (`Item.disputed_level`)."""

    __tablename__ = "level_disputes"
    id: Mapped[int] = mapped_column(primary_key=True)
    register_number: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))  # the copy it was raised on
    state: Mapped[str] = mapped_column(String(16), default="open")  # DISPUTE_STATES
    register_level: Mapped[int] = mapped_column(Integer)  # the level registered when it was raised
    reason: Mapped[str] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    decided_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    proposals: Mapped[list[LevelProposal]] = relationship(
        back_populates="dispute", cascade="all, delete-orphan", order_by="LevelProposal.id"
    )
    item: Mapped[Item] = relationship()

    @property
    def highest_proposed(self) -> int:
        return max(p.level for p in self.proposals)


class LevelProposal(Base):
    __tablename__ = "level_proposals"
    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("level_disputes.id", ondelete="CASCADE"))
    level: Mapped[int] = mapped_column(Integer)
    proposed_by: Mapped[str] = mapped_column(String(200))  # the unit or person holding this opinion
    recorded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    dispute: Mapped[LevelDispute] = relationship(back_populates="proposals")


class JournalEntry(Base):
    """Append-only, hash-chained. `at` is text so the hash input is identical on every backend."""

    __tablename__ = "journal"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuthSession(Base):
    """A signed-in browser session or bearer token of the API. A credential is honoured only while its row is
    here: signing out deletes the row, so a restart forgets nothing; rows past their expiry are deleted."""

    __tablename__ = "auth_sessions"
    sid: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    via: Mapped[str] = mapped_column(String(8))  # session | bearer
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class LoginFailure(Base):
    """A refused password, kept for the throttling window: per address, per username, and per both."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)  # as typed, lower-cased: may name nobody
    address: Mapped[str] = mapped_column(String(64), index=True)  # IPv4 address or IPv6 /64


class AcceptedRecord(Base):
    """The exactly-once ledger: one row per record a site node accepted, under its (site, node, seq) id.

    Written in the same transaction as the record's journal entry and effects, so a record replayed after a
    crash finds its row and is skipped whole."""

    __tablename__ = "accepted_records"
    __table_args__ = ({"sqlite_with_rowid": False},)  # the key is the table: one b-tree to write, not two
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    journal_seq: Mapped[int] = mapped_column(Integer)
    dead_letter: Mapped[bool] = mapped_column(Boolean, default=False)


class DeadLetter(Base):
    """A record the register refused for good (bad data, a constraint): kept whole, with the error."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("site", "node", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # the record as accepted (JSON, control characters escaped)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class RegisterChange(Base):
    """One committed transaction that changed what the register holds, by topic (see `registry.changes`)."""

    __tablename__ = "register_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    topics: Mapped[str] = mapped_column(String(200))  # comma-separated `registry.changes.Topic` values
    origin: Mapped[str] = mapped_column(String(200), default="")


class SiteFileLoad(Base):
    """A site file applied to the register: its SHA-256 decides whether `custodian run` loads it again."""

    __tablename__ = "site_file_loads"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))  # full | configuration
    loaded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
