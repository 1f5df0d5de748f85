"""Browser tests of the stations' jobs, on the app served by uvicorn on a loopback port (tests/api/browsing.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from custodian.wiring import RunningSite
from firmware_bridge.rfid.mercury_simulator import FieldTag
from registry import db
from registry.services import incidents
from tests.api.browsing import Browser, fill, needs_chromium, shot, start_destruction, wait_until
from tests.api.conftest import PASSWORD, LiveServer

DISK = "E28011700000020000000005"  # S-2026-002, approved for destruction
pytestmark = needs_chromium


def test_administrator_creates_a_venue_and_an_approval_that_an_approver_grants(
    browser: Browser, live_server: LiveServer
) -> None:
    page = browser.signed_in(live_server.url, "admin", PASSWORD)
    assert page.url.endswith("/admin")
    page.fill("#venue-form input[name=code]", "briefing-room")
    page.fill("#venue-form input[name=name]", "Briefing room")
    page.select_option("#venue-form select[name=ceiling]", "secret")
    page.check("#venue-form input[name=storage]")
    page.click("#venue-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "briefing-room" in page.inner_text("#venue-list")
    shot(page, "admin-venue-created")

    page.goto(f"{live_server.url}/approvals")
    page.select_option("#request-form select[name=kind]", "carry_out")
    fill(page, "#request-form", {"items": "C-2026-001", "people": "carol", "valid_from": "2026-06-01T09:00",
                                 "valid_until": "2030-06-01T17:00", "reason": "Survey review at the ministry"})
    page.click("#request-form button[type=submit]")
    flash = page.wait_for_selector(".flash.ok")
    ref = flash.inner_text().split()[1]
    assert page.locator(f"tr:has-text('{ref}')").inner_text().count("requested") == 1
    shot(page, "admin-approval-requested")

    approver = browser.signed_in(live_server.url, "paul", PASSWORD)
    approver.goto(f"{live_server.url}/approvals")
    row = approver.locator(f"tr:has-text('{ref}')")
    row.locator("button[value=approve]").click()
    approver.wait_for_selector(".flash.ok")
    assert "approved" in approver.locator(f"tr:has-text('{ref}')").inner_text()
    shot(approver, "approver-granted")


def test_self_approval_is_refused_on_the_page(browser: Browser, live_server: LiveServer) -> None:
    page = browser.signed_in(live_server.url, "petra", PASSWORD)
    page.goto(f"{live_server.url}/approvals")
    fill(page, "#request-form", {"items": "C-2026-001", "valid_from": "2026-06-01T09:00",
                                 "valid_until": "2030-06-01T17:00"})
    page.click("#request-form button[type=submit]")
    ref = page.wait_for_selector(".flash.ok").inner_text().split()[1]
    row = page.locator(f"tr:has-text('{ref}')")
    assert row.locator("button[value=approve]").count() == 0  # no button for one's own request
    assert "approval.self_approval" in row.inner_text()
    # A forged decision (the form posted by hand, with the page's CSRF token) is refused by the rule.
    csrf = page.get_attribute("meta[name=csrf-token]", "content")
    forged = page.request.post(
        f"{live_server.url}/approvals/{ref}/decide", form={"csrf_token": csrf or "", "decision": "approve"}
    )
    assert "approval.self_approval" in forged.text()


def test_operator_runs_a_destruction_and_downloads_its_certificate(
    browser: Browser, site_server: LiveServer, simulated: RunningSite
) -> None:
    assert simulated.sims is not None
    simulated.sims.mercury["destruction-intake"].place(FieldTag(DISK, 1, -45))  # the operator loads the intake
    page = browser.signed_in(site_server.url, "otto", PASSWORD)
    assert page.url.endswith("/destruction")
    start_destruction(page, "S-2026-002/1", "destruction-centre", "wendy", PASSWORD)
    page.wait_for_selector("#outcomes li:has-text('destroyed')", timeout=60_000)
    page.wait_for_selector("#records a.certificate")
    page.wait_for_selector("#queue tr", state="detached")  # the destroyed item left the queue
    shot(page, "destruction-done")
    with page.expect_download() as download:
        page.click("#records a.certificate")
    path = download.value.path()
    assert Path(path).read_bytes().startswith(b"%PDF")


def test_auditor_sees_the_journal_and_an_incident_clock(
    browser: Browser, live_server: LiveServer, factory: sessionmaker[Session]
) -> None:
    with db.transaction(factory) as session:
        incidents.open_incident(session, "portal-controller", "exit_without_approval", "S-2026-001 left unapproved")
    page = browser.signed_in(live_server.url, "audrey", PASSWORD)
    assert page.url.endswith("/audit")
    page.wait_for_selector("#journal-status.good")
    assert "intact" in page.inner_text("#journal-status")
    page.fill("#trail-key", "S-2026-001")
    page.click("#trail-form button")
    page.wait_for_selector("#trail h3")
    assert "Negotiation briefing" in page.inner_text("#trail")
    shot(page, "auditor-view")
    page.click("nav.tabs a[href='/audit/incidents']")
    clock = wait_until(page.locator("#incidents td.clock").first.inner_text)
    assert clock.startswith(("23h", "24h")), clock
