"""Guard commands reach the edge that owns the door over JetStream; an override needs a live path."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from multisite.centre import CentreIngest
from multisite.commands import CentreCommands, Command, CommandOutcome, CommandResult, EdgeCommands, EdgeUnreachable
from multisite.pgsink import PostgresSink
from tests.multisite.conftest import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Door:
    """The edge's side: records what it was asked to do."""

    def __init__(self) -> None:
        self.done: list[Command] = []
        self.lock = threading.Lock()

    def __call__(self, command: Command, redelivered: bool) -> CommandOutcome:
        if command.kind == "override" and redelivered:
            return CommandOutcome(False, "delivery uncertain: not applied")
        with self.lock:
            self.done.append(command)
        return CommandOutcome(True, f"{command.kind} {command.body.decode()} by {command.issued_by}")


def test_override_is_acknowledged_by_a_connected_edge_and_fails_clearly_when_cut(topology, pg, tmp_path: Path) -> None:
    top = topology("site-a")
    door = Door()
    sink = PostgresSink(pg.dsn, pg.schema)
    with (
        EdgeCommands(top.leaves["site-a"].url, "site-a", door),  # first: it makes the site stream
        CentreIngest(top.hub.url, sink, ["site-a"]) as ingest,
        CentreCommands(top.hub.url) as commands,
    ):
        result = commands.request("site-a", "override", "guard-1", b"main-exit", timeout_s=10)
        assert result.applied and result.detail == "override main-exit by guard-1"
        assert [c.command_id for c in door.done] == [result.command_id]

        top.cut("site-a")
        with pytest.raises(EdgeUnreachable, match="not confirmed by the edge within 1 s"):
            commands.request("site-a", "override", "guard-1", b"main-exit", timeout_s=1)
        ack = commands.command("site-a", "alarm_ack", "guard-2", b"alarm-7")
        commands.send(ack)  # must not be lost: applied whenever the edge is reachable again
        top.heal("site-a")
        wait_until(lambda: any(c.command_id == ack.command_id for c in door.done), 20, "the ack at the edge")
        assert [c.kind for c in door.done] == ["override", "alarm_ack"], "the late override was not applied"
        assert ingest.wait_drained(20)
    sink.close()
    with psycopg.connect(pg.dsn) as conn:
        rows = conn.execute(f'SELECT body FROM "{pg.schema}".site_records WHERE kind = %s', ("command_result",))
        results = [CommandResult(**json.loads(body)) for (body,) in rows]
    refused = [r for r in results if not r.applied]
    assert len(results) == 3 and len(refused) == 1
    assert "after its deadline" in refused[0].detail, "the refusal of the late override is on record"
