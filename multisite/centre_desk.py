"""The centre's guard desk: every site's alarm book, live, and the guards' commands to the site that owns it.

Books: each edge's alarm records land in the centre's register like any other record, under the site that
raised them (`alarms` keyed by (site, id)), so the desk reads them from there; the centre's live bus shows each
alarm and each acknowledgement as its record arrives, so every station at the centre refreshes.

Acknowledgement: sent to the owning edge as a durable command (never lost; applied whenever the edge is
reachable); the edge's book takes it as a local acknowledgement by the centre's guard, and its record comes back
into the register. Until then the centre shows who sent it. Override: a live request to the owning edge, which
checks the guard's password and hands it to its portal controller as a local override; refused at once, with the
reason, when there is no live path (see `commands`).
"""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.alarms import procedure_for, view_of
from controllers.control import AlarmConflict, OverrideOutcome, SiteAlarm, SiteUnreachable, UnknownAlarm
from multisite.commands import ALARM_ACK, CentreCommands, OverrideRequest
from registry import db, journal
from registry.models import AlarmRecord
from registry.services import alarms as register_alarms

ACK_WAIT_S = 3.0  # how long an acknowledgement waits for the edge's confirmation before answering "sent"


class SitesDesk:
    """`CentreDesk` over the centre's register and its command sender."""

    def __init__(self, factory: sessionmaker[Session], commands: CentreCommands, sites: frozenset[str]) -> None:
        self._factory = factory
        self._commands = commands
        self._sites = sites
        self._sent: dict[tuple[str, int], str] = {}  # acknowledgements sent and not yet confirmed -> by whom
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
            if row.state != "open":
                self._sent.pop(key, None)  # confirmed (or settled at the site meanwhile)
            sent = self._sent.get(key, "")
        return SiteAlarm(row.site, view_of(row), sent)

    def acknowledge(self, site: str, alarm_id: int, username: str, note: str = "") -> SiteAlarm:
        found = self.get(site, alarm_id).alarm
        if found.state != "open":
            who = found.resolved_by if found.state == "resolved" else found.acknowledged_by
            raise AlarmConflict(f"alarm {alarm_id} of {site} was already {found.state} by {who}")
        # One sent and not confirmed yet may be sent again: the edge takes the first and refuses the rest.
        command = self._commands.command(site, ALARM_ACK, username, json.dumps({"alarm_id": alarm_id,
                                                                                   "note": note}).encode())
        with db.transaction(self._factory) as session:  # journalled before it leaves: the guard's act is on record
            journal.append(session, username, "alarm.acknowledgement_sent", f"alarm:{site}/{alarm_id}",
                           {"command": command.command_id, "note": note})
        self._commands.send(command)
        with self._lock:
            self._sent[(site, alarm_id)] = username
        deadline = time.monotonic() + ACK_WAIT_S
        while (now := self.get(site, alarm_id)).ack_sent_by and time.monotonic() < deadline:
            time.sleep(0.05)
        return now

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
