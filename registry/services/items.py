"""Items: registration, placement, relabelling, copies, declassification review, access records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import ITEM_KINDS, Approval, Item, ItemAccess
from registry.services import lookup


@dataclass(frozen=True, slots=True)
class SecrecyPeriod:
    """Art. 19: a start date and exactly one of a duration, a declassification date or a condition."""

    start: dt.date
    months: int | None = None
    until: dt.date | None = None
    condition: str | None = None

    def __post_init__(self) -> None:
        given = [x is not None and x != "" for x in (self.months, self.until, self.condition)]
        if sum(given) != 1:
            raise InvalidInput("period", "give exactly one of: months, until (a date), condition")
        if self.months is not None and self.months <= 0:
            raise InvalidInput("period.months", "must be a positive number of months")
        if self.until is not None and self.until < self.start:
            raise InvalidInput("period.until", "ends before it starts")
        if self.months is not None and self.start.year + (self.start.month - 1 + self.months) // 12 > dt.MAXYEAR:
            raise InvalidInput("period.months", f"ends after the year {dt.MAXYEAR}")

    def expires_on(self) -> dt.date | None:
        """The day the period ends, or None when it ends on a condition a person must judge."""
        if self.until is not None:
            return self.until
        if self.months is not None:
            year, month = divmod(self.start.month - 1 + self.months, 12)
            day = min(self.start.day, 28)  # a period never ends later than the calendar allows
            return dt.date(self.start.year + year, month + 1, day)
        return None

    def describe(self) -> str:
        if self.until is not None:
            return f"until {self.until.isoformat()}"
        if self.months is not None:
            years, months = divmod(self.months, 12)
            if months == 0:
                return f"{years} years from {self.start.isoformat()}"
            return f"{self.months} months from {self.start.isoformat()}"
        return f"until: {self.condition}"

    @classmethod
    def of(cls, item: Item) -> SecrecyPeriod:
        return cls(item.period_start, item.period_months, item.declassify_on, item.declassify_condition)


@dataclass(frozen=True, slots=True)
class ItemData:
    register_number: str
    title: str
    kind: str
    level: Level | str
    period: SecrecyPeriod
    originating_unit: str
    epc: str
    copy_number: int = 1
    tid: str | None = None
    venue: str | None = None
    custodian: str | None = None
    scope_people: tuple[str, ...] = ()
    scope_groups: tuple[str, ...] = ()
    manufacturer: str = ""
    model: str = ""
    serial_number: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _epc_free(session: Session, epc: str) -> None:
    if session.execute(select(Item.id).where(Item.epc == epc)).first() is not None:
        raise RuleViolation("item.epc_unique", f"EPC {epc} is already registered to another item")


def _number_free(session: Session, register_number: str, copy_number: int) -> None:
    taken = session.execute(
        select(Item.id).where(Item.register_number == register_number, Item.copy_number == copy_number)
    ).first()
    if taken is not None:
        raise RuleViolation(
            "item.register_number_unique", f"{register_number} copy {copy_number} is already registered"
        )


def register(session: Session, actor: str, data: ItemData) -> Item:
    """Art. 27(2): count, number, register. Every item is registered before use."""
    level = validate.level(data.level)
    validate.choice(data.kind, ITEM_KINDS, "kind")
    epc = validate.epc(data.epc)
    tid = validate.tid(data.tid)
    if data.copy_number < 1:
        raise InvalidInput("copy_number", "must be 1 or more")
    if not data.register_number.strip():
        raise InvalidInput("register_number", "must not be empty")
    _epc_free(session, epc)
    _number_free(session, data.register_number, data.copy_number)
    item = Item(
        register_number=data.register_number,
        copy_number=data.copy_number,
        title=data.title,
        kind=data.kind,
        level=int(level),
        period_start=data.period.start,
        period_months=data.period.months,
        declassify_on=data.period.until,
        declassify_condition=data.period.condition,
        originating_unit=data.originating_unit,
        epc=epc,
        tid=tid,
        status="active",
        label_out_of_date=True,
        manufacturer=data.manufacturer,
        model=data.model,
        serial_number=data.serial_number,
    )
    if data.venue is not None:
        venue = lookup.venue(session, data.venue)
        rules.placement(int(level), venue)
        item.venue = venue
    if data.custodian is not None:
        holder = lookup.person(session, data.custodian)
        rules.clearance([holder], [item], rule="custody.clearance")
        item.custodian = holder
    item.scope_people = [lookup.person(session, u) for u in data.scope_people]
    item.scope_groups = [lookup.group(session, g) for g in data.scope_groups]
    session.add(item)
    session.flush()
    if item.custodian is not None:
        record_access(session, item, item.custodian.id, "custody")
    journal.append(session, actor, "item.registered", _subject(item), describe(item))
    return item


def _subject(item: Item) -> str:
    return f"item:{item.register_number}/{item.copy_number}"


def describe(item: Item) -> dict[str, object]:
    """The item's register entry as plain data (journal payloads, exports)."""
    return {
        "register_number": item.register_number,
        "copy_number": item.copy_number,
        "title": item.title,
        "kind": item.kind,
        "level": Level(item.level).label,
        "period": SecrecyPeriod.of(item).describe(),
        "originating_unit": item.originating_unit,
        "epc": item.epc,
        "tid": item.tid,
        "status": item.status,
        "venue": item.venue.code if item.venue else None,
        "custodian": item.custodian.username if item.custodian else None,
        "scope_people": sorted(p.username for p in item.scope_people),
        "scope_groups": sorted(g.name for g in item.scope_groups),
        "parent": f"{item.parent.register_number}/{item.parent.copy_number}" if item.parent else None,
    }


def place(session: Session, actor: str, item: Item, venue_code: str) -> Item:
    venue = lookup.venue(session, venue_code)
    rules.placement(item.effective_level, venue)
    before = item.venue.code if item.venue else None
    item.venue = venue
    session.flush()
    journal.append(session, actor, "item.placed", _subject(item), {"from": before, "to": venue.code})
    return item


def hand_to(session: Session, actor: str, item: Item, username: str | None) -> Item:
    """Change who is answerable for the item (custody)."""
    holder = lookup.person(session, username) if username else None
    if holder is not None:
        rules.active_person(holder)
        rules.clearance([holder], [item], rule="custody.clearance")
    before = item.custodian.username if item.custodian else None
    item.custodian = holder
    session.flush()
    if holder is not None:
        record_access(session, item, holder.id, "custody")
    journal.append(session, actor, "item.custody", _subject(item), {"from": before, "to": username})
    return item


def change_marking(
    session: Session,
    actor: str,
    item: Item,
    *,
    reason: str,
    level: Level | str | None = None,
    period: SecrecyPeriod | None = None,
) -> Item:
    """Art. 21/22: a classifier changes level or period; the label is then out of date until read back."""
    classifier = lookup.person(session, actor)
    rules.has_role(classifier, "classifier")
    if not reason.strip():
        raise InvalidInput("reason", "a change of marking needs a reason")
    before = describe(item)
    if level is not None:
        new_level = validate.level(level)
        if item.venue is not None:
            rules.placement(int(new_level), item.venue)
        item.level = int(new_level)
    if period is not None:
        item.period_start = period.start
        item.period_months = period.months
        item.declassify_on = period.until
        item.declassify_condition = period.condition
    item.label_out_of_date = True
    session.flush()
    after = describe(item)
    journal.append(
        session,
        actor,
        "item.marking_changed",
        _subject(item),
        {
            "reason": reason,
            "before": {k: before[k] for k in ("level", "period")},
            "after": {k: after[k] for k in ("level", "period")},
        },
    )
    return item


def label_verified(session: Session, actor: str, item: Item) -> Item:
    """A fresh label was read back and agrees with the register."""
    item.label_out_of_date = False
    session.flush()
    journal.append(session, actor, "item.label_verified", _subject(item), {})
    return item


def declassification_review(session: Session, today: dt.date) -> list[Item]:
    """Active items whose secrecy period has ended by `today`, for a classifier to decide (Art. 22)."""
    candidates = session.execute(
        select(Item).where(Item.status == "active", Item.declassify_condition.is_(None)).order_by(Item.id)
    ).scalars()
    due = []
    for item in candidates:
        ends = SecrecyPeriod.of(item).expires_on()
        if ends is not None and ends <= today:
            due.append(item)
    return due


def declassify(session: Session, actor: str, item: Item, reason: str) -> Item:
    classifier = lookup.person(session, actor)
    rules.has_role(classifier, "classifier")
    if not reason.strip():
        raise InvalidInput("reason", "declassification needs a reason")
    item.status = "declassified"
    item.level = int(Level.UNCLASSIFIED)
    item.label_out_of_date = True
    session.flush()
    journal.append(session, actor, "item.declassified", _subject(item), {"reason": reason})
    return item


def register_copy(
    session: Session,
    actor: str,
    original: Item,
    *,
    approval_ref: str,
    copy_number: int,
    epc: str,
    tid: str | None = None,
    venue: str | None = None,
    level: Level | str | None = None,
) -> Item:
    """Art. 27(5), 29(4): a copy needs a reproduce approval, keeps the original's level, period and scope,
    and a top-secret copy needs the originating unit's consent recorded on the approval."""
    approval = lookup.approval(session, approval_ref)
    _usable_approval(approval, "reproduce", original)
    if level is not None and int(validate.level(level)) != original.level:
        raise RuleViolation("copy.same_marking", "a copy keeps its original's level, period and scope")
    if original.level == Level.TOP_SECRET and not approval.originator_consent:
        raise RuleViolation(
            "approval.originator_consent",
            "a top_secret reproduction needs the originating unit's consent recorded on the approval",
        )
    period = SecrecyPeriod.of(original)
    copy = register(
        session,
        actor,
        ItemData(
            register_number=original.register_number,
            copy_number=copy_number,
            title=original.title,
            kind=original.kind,
            level=Level(original.level),
            period=period,
            originating_unit=original.originating_unit,
            epc=epc,
            tid=tid,
            venue=venue,
            scope_people=tuple(p.username for p in original.scope_people),
            scope_groups=tuple(g.name for g in original.scope_groups),
        ),
    )
    copy.parent = original
    approval.uses_left -= 1
    if approval.uses_left == 0:
        approval.state = "used"
    session.flush()
    journal.append(
        session,
        actor,
        "item.copied",
        _subject(copy),
        {"original": _subject(original), "approval": approval.ref},
    )
    return copy


def _usable_approval(approval: Approval, kind: str, item: Item) -> None:
    now = journal.now_utc()
    if approval.kind != kind:
        raise RuleViolation("approval.kind", f"approval {approval.ref} is for {approval.kind}, not {kind}")
    if approval.state != "approved":
        raise RuleViolation("approval.state", f"approval {approval.ref} is {approval.state}")
    if item.id not in {i.id for i in approval.items}:
        raise RuleViolation("approval.item", f"approval {approval.ref} does not cover {_subject(item)}")
    if not approval.valid_from <= now <= approval.valid_until:
        raise RuleViolation("approval.window", f"approval {approval.ref} is outside its time window")
    if approval.uses_left <= 0:
        raise RuleViolation("approval.used_up", f"approval {approval.ref} has no uses left")


def record_access(session: Session, item: Item, person_id: int, how: str, venue_id: int | None = None) -> None:
    """Art. 20: keep everyone who held or read a secret or top-secret item."""
    if item.effective_level >= Level.SECRET:
        session.add(ItemAccess(item_id=item.id, person_id=person_id, at=journal.now_utc(), how=how, venue_id=venue_id))
        session.flush()
