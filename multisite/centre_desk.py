"""The centre's guard desk: every site's alarm book, live, and the guards' commands to the site that owns it.

Books: each edge's alarm records land in the centre's register like any other record, under the site that
raised them (`alarms` keyed by (site, id)), so the desk reads them from there; the centre's live bus shows each
alarm and each acknowledgement as its record arrives, so every station at the centre refreshes.

Acknowledgement and resolution: sent to the owning edge as a durable command (never lost; applied once, whenever
the edge is reachable); the edge's book takes it as a local one by the centre's guard, by the site's rules (an
active guard of its register; a resolution needs a note and an acknowledged alarm), and its record comes back into
the register. Until then the centre shows who sent it and that the site has not confirmed it; a refusal (the
edge's receipt says why) is shown on the alarm. Override: a live request to the owning edge, which
checks the guard's password and hands it to its portal controller as a local override; refused at once, with the
reason, when there is no live path (see `commands`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.alarms import procedure_for, view_of
from controllers.control import AlarmConflict, OverrideOutcome, SiteAlarm, SiteUnreachable, UnknownAlarm
from multisite.commands import (
    ALARM_ACK,
    ALARM_RESOLVE,
    RESOLVE_NOTE_MIN,
    CentreCommands,
    CommandResult,
    OverrideRequest,
)
from registry import db, journal
from registry.models import AlarmRecord
from registry.services import alarms as register_alarms

ACK_WAIT_S = 3.0  # how long an acknowledgement or resolution waits for the edge's confirmation before answering
_WHAT = {ALARM_ACK: "acknowledgement", ALARM_RESOLVE: "resolution"}


def _settled(kind: str, state: str) -> bool:
    """The register shows what a command of `kind` was sent to do (done by it, or at the site meanwhile)."""
    return state == "resolved" if kind == ALARM_RESOLVE else state != "open"


@dataclass(frozen=True, slots=True)
class Sent:
    """A guard's command for an alarm, sent from the centre and not confirmed by the site yet."""

    kind: str  # ALARM_ACK or ALARM_RESOLVE
    command_id: str
    by: str


class SitesDesk:
    """`CentreDesk` over the centre's register and its command sender."""

    def __init__(self, factory: sessionmaker[Session], commands: CentreCommands, sites: frozenset[str]) -> None:
        self._factory = factory
        self._commands = commands
        self._sites = sites
        self._sent: dict[tuple[str, int], Sent] = {}  # per alarm, the command sent and not yet confirmed
        self._refused: dict[tuple[str, int], str] = {}  # per alarm, the site's refusal of the last one sent
        self._lock = threading.Lock()

    def alarms(self, *, resolved: bool = False) -> list[SiteAlarm]:
        """Newest first, every site's unresolved alarms (and with `resolved` the last 50 resolved)."""
        with self._factory() as session:
            query = select(AlarmRecord).where(AlarmRecord.state != "resolved")
            rows = list(session.execute(query).scalars())
            if resolved:
                rows += register_alarms.recent_resolved(session)
        found = [self._site_alarm(row) for row in rows]
        return sorted(found, key=lambda a: a.alarm.time_us, reverse=True)

    def get(self, site: str, alarm_id: int) -> SiteAlarm:
        with self._factory() as session:
            row = session.get(AlarmRecord, (site, alarm_id))
            if row is None:
                raise UnknownAlarm(f"site {site} has no alarm {alarm_id} in the register")
            return self._site_alarm(row)

    def _site_alarm(self, row: AlarmRecord) -> SiteAlarm:
        key = (row.site, row.id)
        with self._lock:
            sent = self._sent.get(key)
            if sent is not None and _settled(sent.kind, row.state):
                del self._sent[key]  # confirmed (or settled at the site meanwhile)
                sent = None
            refused = self._refused.get(key, "")
        ack_by = sent.by if sent is not None and sent.kind == ALARM_ACK else ""
        resolve_by = sent.by if sent is not None and sent.kind == ALARM_RESOLVE else ""
        return SiteAlarm(row.site, view_of(row), ack_by, resolve_by, refused)

    def acknowledge(self, site: str, alarm_id: int, username: str, note: str = "") -> SiteAlarm:
        found = self.get(site, alarm_id).alarm
        if found.state != "open":
            who = found.resolved_by if found.state == "resolved" else found.acknowledged_by
            raise AlarmConflict(f"alarm {alarm_id} of {site} was already {found.state} by {who}")
        return self._send(site, alarm_id, ALARM_ACK, username, note, "alarm.acknowledgement_sent")

    def resolve(self, site: str, alarm_id: int, username: str, note: str) -> SiteAlarm:
        """As the site's own resolve: an acknowledged alarm, closed with a note saying what was done."""
        found = self.get(site, alarm_id).alarm
        if found.state == "open":
            raise AlarmConflict(f"alarm {alarm_id} of {site} must be acknowledged before it is resolved")
        if found.state == "resolved":
            raise AlarmConflict(f"alarm {alarm_id} of {site} was already resolved by {found.resolved_by}")
        if len(note.strip()) < RESOLVE_NOTE_MIN:
            raise AlarmConflict(f"resolving alarm {alarm_id} of {site} needs a note saying what was done")
        return self._send(site, alarm_id, ALARM_RESOLVE, username, note.strip(), "alarm.resolution_sent")

    def _send(self, site: str, alarm_id: int, kind: str, username: str, note: str, action: str) -> SiteAlarm:
        """Journalled here, queued durably for the site; answers once the site confirmed, or after ACK_WAIT_S
        with the command shown as sent. One sent and not confirmed yet may be sent again: the edge takes the
        first and refuses the rest (already acknowledged or resolved)."""
        command = self._commands.command(site, kind, username, json.dumps({"alarm_id": alarm_id,
                                                                           "note": note}).encode())
        with db.transaction(self._factory) as session:  # journalled before it leaves: the guard's act is on record
            journal.append(session, username, action, f"alarm:{site}/{alarm_id}",
                           {"command": command.command_id, "note": note})
        self._commands.send(command)
        with self._lock:
            self._sent[(site, alarm_id)] = Sent(kind, command.command_id, username)
            self._refused.pop((site, alarm_id), None)
        deadline = time.monotonic() + ACK_WAIT_S
        while (now := self.get(site, alarm_id)).sent_by and time.monotonic() < deadline:
            time.sleep(0.05)
        return now

    def command_settled(self, result: CommandResult) -> None:
        """A site's receipt of a command (as its record reaches the register): a refusal is shown on the alarm,
        and the command is no longer pending (the site will not apply it)."""
        if result.applied:
            return
        with self._lock:
            for key, sent in list(self._sent.items()):
                if sent.command_id == result.command_id:
                    del self._sent[key]
                    self._refused[key] = f"{result.site} refused the {_WHAT[sent.kind]} by {sent.by}: {result.detail}"

    def procedure(self, kind: str) -> tuple[str, ...]:
        with self._factory() as session:
            return procedure_for(kind, register_alarms.procedures(session))

    def override(
        self, site: str, portal: str, username: str, password: str, reason: str, *, alarm_id: int | None = None
    ) -> OverrideOutcome:
        if site not in self._sites:
            raise SiteUnreachable(f"the centre serves no site {site}")
        try:
            return self._commands.override(site, OverrideRequest(portal, username, password, reason, alarm_id))
        except SiteUnreachable as exc:
            with db.transaction(self._factory) as session:
                journal.append(session, username, "exit.override_not_sent", f"portal:{site}/{portal}",
                               {"reason": reason, "why": str(exc)})
            raise
