"""Guard commands reach the edge that owns the door: an acknowledgement over JetStream, kept while the link is
down; an override only over a live path, refused at once when there is none and never applied later."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from controllers.control import OverrideOutcome, PasswordRefused, SiteUnreachable
from multisite.centre import CentreIngest
from multisite.commands import (
    CentreCommands,
    Command,
    CommandOutcome,
    CommandResult,
    EdgeCommands,
    EdgeOverrides,
    OverrideRequest,
)
from multisite.edge import SyncEdgePublisher
from multisite.pgsink import PostgresSink
from tests.multisite.conftest import accepted, records, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Door:
    """The edge's side: records what it was asked to do."""

    def __init__(self) -> None:
        self.acks: list[Command] = []
        self.overrides: list[OverrideRequest] = []
        self.lock = threading.Lock()

    def __call__(self, command: Command, redelivered: bool) -> CommandOutcome:
        with self.lock:
            self.acks.append(command)
        return CommandOutcome(True, f"{command.kind} {command.body.decode()} by {command.issued_by}")

    def override(self, request: OverrideRequest) -> OverrideOutcome:
        if request.password != "right":
            raise PasswordRefused("that password is not yours; the door stays shut")
        with self.lock:
            self.overrides.append(request)
        return OverrideOutcome(request.portal, request.username, "carol", ("S-1",), ("clearance",), 1)


def test_an_override_needs_a_live_path_and_an_acknowledgement_waits_for_the_edge(topology, pg) -> None:
    top = topology("site-a")
    door = Door()
    sink = PostgresSink(pg.dsn, pg.schema)
    with (
        CentreCommands(top.hub.url) as commands,  # as the centre starts before its edges
        EdgeCommands(top.leaves["site-a"].url, "site-a", door) as edge,  # before the ingest: makes the site stream
        CentreIngest(top.hub.url, sink, ["site-a"]) as ingest,
    ):
        overrides = EdgeOverrides(top.leaves["site-a"].url, "site-a", door.override)
        try:
            wait_until(lambda: _answers(commands), 20, "the edge's responder reachable from the hub")
            outcome = commands.override("site-a", OverrideRequest("main-exit", "gus", "right", "duty officer ok"))
            assert outcome.person == "carol" and outcome.items == ("S-1",)
            with pytest.raises(PasswordRefused, match="not yours"):  # the edge's refusal, as it gave it
                commands.override("site-a", OverrideRequest("main-exit", "gus", "wrong", "duty officer ok"))

            commands.hello("site-a")  # as the centre does at start
            wait_until(lambda: edge.hellos == 1, 20, "the hello at the edge")
            assert not door.acks, "a hello has no effect and no receipt"
            with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:  # as an edge's first records
                assert accepted(publisher.publish(records("site-a", "n1", 1, 1)))
            assert ingest.wait_drained(20)

            top.cut("site-a")
            with pytest.raises(SiteUnreachable, match=r"cannot be reached .* nothing is queued"):
                commands.override("site-a", OverrideRequest("main-exit", "gus", "right", "after the cut"))
            ack = commands.command("site-a", "alarm_ack", "guard-2", b"alarm-7")
            commands.send(ack)  # must not be lost: applied whenever the edge is reachable again
            top.heal("site-a")
            wait_until(lambda: any(c.command_id == ack.command_id for c in door.acks), 20, "the ack at the edge")
            wait_until(lambda: _answers(commands), 20, "the responder reachable again")
            assert [r.reason for r in door.overrides] == ["duty officer ok"], "the override sent while cut never ran"
        finally:
            overrides.close()
        assert ingest.wait_drained(20)
    sink.close()
    with psycopg.connect(pg.dsn) as conn:
        rows = conn.execute(f'SELECT body FROM "{pg.schema}".site_records WHERE kind = %s', ("command_result",))
        results = [CommandResult(**json.loads(body)) for (body,) in rows]
    assert [r.command_id for r in results] == [ack.command_id] and results[0].applied, "its receipt is on record"


def _answers(commands: CentreCommands) -> bool:
    try:
        commands.override("site-a", OverrideRequest("main-exit", "probe", "wrong", "is anyone there"), timeout_s=2)
    except PasswordRefused:
        return True
    except SiteUnreachable:
        return False
    return True
