"""Items: registration, placement, relabelling, label read-back, copies, declassification review, access
records (Art. 20: who held, read or carried out an item)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import ACCESS_KINDS, ITEM_KINDS, Item, ItemAccess, LevelDispute, Person, Venue
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
    return _register(session, actor, data, disputed_level=None)


def _register(session: Session, actor: str, data: ItemData, disputed_level: int | None) -> Item:
    level = validate.level(data.level)
    validate.choice(data.kind, ITEM_KINDS, "kind")
    epc = validate.epc(data.epc)
    tid = validate.tid(data.tid)
    if data.copy_number < 1:
        raise InvalidInput("copy_number", "must be 1 or more")
    if not data.register_number.strip():
        raise InvalidInput("register_number", "must not be empty")
    if not data.title.strip():
        raise rules.refuse("item.title_required", f"{data.register_number} has a blank title.")
    if not data.originating_unit.strip():
        raise rules.refuse("item.originating_unit_required", f"{data.register_number} names no originating unit.")
    _epc_free(session, epc)
    _number_free(session, data.register_number, data.copy_number)
    # Art. 26: a new copy of a register number whose level is in dispute is protected like the others.
    dispute = open_dispute_for(session, data.register_number)
    if dispute is not None:
        disputed_level = max(disputed_level or 0, dispute.highest_proposed)
    item = Item(
        register_number=data.register_number,
        copy_number=data.copy_number,
        title=data.title,
        kind=data.kind,
        level=int(level),
        disputed_level=disputed_level,
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
        rules.placement(item.effective_level, venue)
        item.venue = venue
    if data.custodian is not None:
        holder = lookup.person(session, data.custodian)
        rules.clearance([holder], [item], rule="custody.clearance")
        item.custodian = holder
    item.scope_people = [lookup.person(session, u) for u in data.scope_people]
    item.scope_groups = [lookup.group(session, g) for g in data.scope_groups]
    session.add(item)
    session.flush()
    journal.append(session, actor, "item.registered", _subject(item), describe(item))
    if item.custodian is not None:
        record_access(session, actor, item, item.custodian, "custody", AccessContext(reference="registration"))
    return item


def open_dispute_for(session: Session, register_number: str) -> LevelDispute | None:
    """The undecided level dispute of a register number, if there is one (Art. 26)."""
    return session.execute(
        select(LevelDispute).where(LevelDispute.register_number == register_number, LevelDispute.state == "open")
    ).scalar()


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
        "disputed_level": Level(item.disputed_level).label if item.disputed_level is not None else None,
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
    journal.append(session, actor, "item.custody", _subject(item), {"from": before, "to": username})
    if holder is not None:
        record_access(session, actor, item, holder, "custody", AccessContext(reference="hand-over"))
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
        if item.disputed_level is not None:
            raise rules.refuse("dispute.open", f"{_subject(item)} is in dispute; decide the dispute instead.")
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


@dataclass(frozen=True, slots=True)
class LabelText:
    """What an item's label says (Art. 21): level and secrecy period, with the ids that tie it to the item."""

    epc: str
    register_key: str  # register_number/copy_number
    level: str
    period: str


@dataclass(frozen=True, slots=True)
class LabelReading:
    """A label photo as decoded: the text read, or None and the reason it could not be read."""

    text: LabelText | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class LabelVerification:
    """The outcome of a read-back: the label agreed (flag cleared), or the refusal to report once committed."""

    differing: tuple[str, ...] = ()
    refusal: RuleViolation | None = None

    @property
    def agrees(self) -> bool:
        return self.refusal is None


def label_text(item: Item) -> LabelText:
    """What the item's label must say now: a disputed item is labelled at the level it is protected at."""
    return LabelText(
        epc=item.epc,
        register_key=f"{item.register_number}/{item.copy_number}",
        level=Level(item.effective_level).label,
        period=SecrecyPeriod.of(item).describe(),
    )


def verify_label(session: Session, actor: str, item: Item, reading: LabelReading) -> LabelVerification:
    """Art. 21: "label out of date" is cleared only by a decoded label that agrees with the register.

    An unreadable photo proves nothing and changes nothing (refused). A label that disagrees is evidence
    that the item carries a wrong label: the item is flagged out of date and the mismatch journaled, and
    the caller reports the refusal once that is committed.
    """
    if reading.text is None:
        raise rules.refuse("label.unreadable", f"{_subject(item)}: {reading.problem or 'no label decoded'}.")
    expected = label_text(item)
    differing = tuple(f.name for f in fields(LabelText) if getattr(reading.text, f.name) != getattr(expected, f.name))
    if differing:
        item.label_out_of_date = True
        session.flush()
        read = {name: getattr(reading.text, name) for name in differing}
        journal.append(
            session, actor, "item.label_mismatch", _subject(item), {"differing": list(differing), "read": read}
        )
        shown = ", ".join(f"{name} reads {value!r}" for name, value in read.items())
        refusal = rules.refuse("label.disagrees", f"{_subject(item)}: {shown}.", details=list(differing))
        return LabelVerification(differing, refusal)
    item.label_out_of_date = False
    session.flush()
    journal.append(session, actor, "item.label_verified", _subject(item), {"level": expected.level})
    return LabelVerification()


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
    if item.disputed_level is not None:
        raise rules.refuse("dispute.open", f"{_subject(item)} is in dispute; decide the dispute instead.")
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
    """Art. 27(5), 29(4), 26: a copy needs a reproduce approval, keeps the original's level, period and scope
    (and, while the level is disputed, the protection at the highest level proposed), and a top-secret copy
    needs the originating unit's consent recorded on the approval."""
    approval = lookup.approval(session, approval_ref)
    rules.usable_approval(approval, "reproduce", [original], journal.now_utc())
    if level is not None and int(validate.level(level)) != original.level:
        raise RuleViolation("copy.same_marking", "a copy keeps its original's level, period and scope")
    if original.effective_level == Level.TOP_SECRET and not approval.originator_consent:
        raise RuleViolation(
            "approval.originator_consent",
            "a top_secret reproduction needs the originating unit's consent recorded on the approval",
        )
    period = SecrecyPeriod.of(original)
    copy = _register(
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
        disputed_level=original.disputed_level,
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


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Where and why an access happened. A reading names its venue; a carry-out names its portal."""

    venue: str | None = None  # venue code
    portal: str | None = None  # portal code
    reference: str = ""  # what it came from: an exit decision, a meeting, a transfer, a hand-over
    at: dt.datetime | None = None  # when it happened (default now): a carry-out recorded late keeps its time


def record_access(
    session: Session,
    actor: str,
    item: Item,
    person: Person,
    kind: str,
    context: AccessContext | None = None,
) -> ItemAccess | None:
    """Art. 20: keep everyone who held, read or carried out a secret or top-secret item (None below secret).

    A reading is recorded when it is granted, so the register refuses one it would not allow: in a venue
    that may not hold the item (Art. 27(4), 29(3)), by a person below its level or outside its knowledge
    scope. Custody and carry-outs are recorded after the service or the exit decision that allowed them.
    """
    context = context or AccessContext()
    validate.choice(kind, ACCESS_KINDS, "kind")
    venue = lookup.venue(session, context.venue) if context.venue else None
    portal = lookup.portal(session, context.portal) if context.portal else None
    if kind == "read":
        if venue is None:
            raise InvalidInput("venue", "a reading is recorded with the venue it takes place in")
        _may_read(item, person, venue)
    if kind == "carry_out" and portal is None:
        raise InvalidInput("portal", "a carry-out is recorded with the portal it went through")
    if item.effective_level < Level.SECRET:
        return None
    at = context.at or journal.now_utc()
    access = ItemAccess(
        item_id=item.id,
        person_id=person.id,
        at=at,
        how=kind,
        venue_id=venue.id if venue else None,
        portal_id=portal.id if portal else None,
        context=context.reference,
        recorded_by=actor,
    )
    session.add(access)
    session.flush()
    journal.append(
        session,
        actor,
        "access.recorded",
        _subject(item),
        {
            "person": person.username,
            "kind": kind,
            "at": at.isoformat(),
            "venue": context.venue,
            "portal": context.portal,
            "context": context.reference,
        },
    )
    return access


def _may_read(item: Item, person: Person, venue: Venue) -> None:
    rules.placement(item.effective_level, venue)
    if person.clearance < item.effective_level:
        raise rules.refuse(
            "access.clearance",
            f"{person.username} holds {Level(person.clearance).label}; {_subject(item)} is "
            f"{Level(item.effective_level).label}.",
        )
    in_scope = person.id in {p.id for p in item.scope_people} or bool(
        {g.id for g in person.groups} & {g.id for g in item.scope_groups}
    )
    if item.effective_level > Level.UNCLASSIFIED and not in_scope:
        raise rules.refuse("access.scope", f"{person.username} may not know {_subject(item)}.")
