"""The witness confirms a destruction with their own password at the station: a wrong one refuses the run
(journalled, never the password), and guessing is throttled like a sign-in."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from custodian.wiring import RunningSite
from firmware_bridge.rfid.mercury_simulator import FieldTag
from registry.models import DestructionRecord, JournalEntry
from tests.api.conftest import PASSWORD, Tokens, token_for

DISK = "E28011700000020000000005"  # S-2026-002, approved for destruction
RUN = {"station": "destruction-centre", "items": ["S-2026-002"], "witness": "wendy"}


def test_a_wrong_witness_password_refuses_and_guessing_is_throttled(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    otto = tokens["otto"]
    codes = [
        client.post("/api/destruction/run", json={**RUN, "witness_password": f"guess-{n}"}, headers=otto).status_code
        for n in range(6)
    ]
    assert codes == [409] * 5 + [429]
    # Throttled, even the right password waits: the station is no way around the sign-in limits.
    assert client.post("/api/destruction/run", json={**RUN, "witness_password": PASSWORD},
                       headers=otto).status_code == 429
    with factory() as session:
        assert session.execute(select(DestructionRecord)).first() is None
        refused = list(session.execute(
            select(JournalEntry).where(JournalEntry.action == "destruction.witness_refused")
        ).scalars())
    assert [(e.actor, e.subject) for e in refused] == [("otto", "person:wendy")] * 5
    assert all("guess" not in e.payload for e in refused)


def test_the_right_witness_password_runs_the_station(
    site_client: TestClient, simulated: RunningSite, factory: sessionmaker[Session]
) -> None:
    assert simulated.sims is not None
    simulated.sims.mercury["destruction-intake"].place(FieldTag(DISK, 1, -45))  # the operator loads the intake
    otto = token_for(site_client, "otto")
    answer = site_client.post("/api/destruction/run", json={**RUN, "witness_password": PASSWORD}, headers=otto)
    assert answer.status_code == 200, answer.text
    [outcome] = answer.json()
    assert outcome["destroyed"] is True, outcome["reason"]
    with factory() as session:
        record = session.get(DestructionRecord, outcome["record_id"])
        assert record is not None and record.witness_id is not None
