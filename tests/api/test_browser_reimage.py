"""The destruction centre page when the particle analysis cannot verify a lot: the operator sees why and the
evidence image, takes another image of the tray (the simulated tray then shows the pieces spread apart) or
gives up; clicked in Chromium on the whole simulated site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from custodian.wiring import RunningSite
from firmware_bridge.rfid.mercury_simulator import FieldTag
from registry.models import DestructionRecord, Item
from tests.api.browsing import Browser, needs_chromium, shot, start_destruction
from tests.api.conftest import PASSWORD, LiveServer

DISK = "E28011700000020000000005"  # S-2026-002, approved for destruction
pytestmark = needs_chromium


def run_into_cannot_verify(browser: Browser, server: LiveServer, simulated: RunningSite) -> Any:
    assert simulated.sims is not None
    simulated.sims.mercury["destruction-intake"].place(FieldTag(DISK, 1, -45))  # the operator loads the intake
    simulated.output_trays["destruction-centre"].next_lot = "touching"  # the shred falls with pieces end to side
    page = browser.signed_in(server.url, "otto", PASSWORD)
    start_destruction(page, "S-2026-002/1", "destruction-centre", "wendy", PASSWORD)
    page.wait_for_selector("#outcomes li:has-text('not verified yet')", timeout=60_000)
    page.wait_for_selector("#reimage:not([hidden])")
    assert "touching end to side" in page.inner_text("#reimage-reason")
    assert "1 of at most" in page.inner_text("#reimage-frames") and page.inner_text("#reimage-witness") == "wendy"
    evidence = page.get_attribute("#reimage-evidence", "src")
    image = page.request.get(f"{server.url}{evidence}")
    assert image.status == 200 and image.body().startswith(b"\x89PNG")
    return page


def state(factory: sessionmaker[Session]) -> tuple[str, list[str]]:
    with factory() as session:
        status = session.execute(select(Item.status).where(Item.epc == DISK)).scalar_one()
        outcomes = list(session.execute(select(DestructionRecord.outcome).order_by(DestructionRecord.id)).scalars())
    return status, outcomes


def test_operator_takes_another_image_and_the_spread_lot_is_destroyed(
    browser: Browser, site_server: LiveServer, simulated: RunningSite, factory: sessionmaker[Session]
) -> None:
    page = run_into_cannot_verify(browser, site_server, simulated)
    assert state(factory) == ("destruction_failed", ["failed"])
    shot(page, "destruction-not-verified")
    page.fill("#reimage-password", PASSWORD)
    page.click("#reimage-take")
    page.wait_for_selector("#outcomes li.destroyed", timeout=60_000)
    page.wait_for_selector("#reimage", state="hidden")
    page.wait_for_selector("#records a.certificate")
    shot(page, "destruction-reimaged")
    assert state(factory) == ("destroyed", ["failed", "destroyed"])


def test_operator_gives_up_and_the_item_stays_destruction_failed(
    browser: Browser, site_server: LiveServer, simulated: RunningSite, factory: sessionmaker[Session]
) -> None:
    page = run_into_cannot_verify(browser, site_server, simulated)
    page.click("#reimage-give-up")
    page.wait_for_selector("#outcomes li:has-text('gave up')")
    page.wait_for_selector("#reimage", state="hidden")
    assert state(factory) == ("destruction_failed", ["failed", "failed"])
    assert "gave up" in page.inner_text("#records")
