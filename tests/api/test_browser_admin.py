"""Browser tests of the administrator's and approver's jobs on the real simulated site: the pages are served
around a running `SiteRuntime` whose devices are simulators speaking their protocols (OSDP on ptys with
Secure Channel, LLRP on loopback), as `custodian demo` runs them. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from controllers.site import SiteRuntime
from custodian.wiring import RunningSite, start_site
from firmware_bridge.osdp.simulator import PanelSimulator
from tests.api.browsing import Browser, fill, needs_chromium, shot, wait_until
from tests.api.conftest import PASSWORD, LiveServer

ONLINE_WAIT_MS = 30_000
pytestmark = needs_chromium


@pytest.fixture
def running(factory: sessionmaker[Session], tmp_path: Path) -> Iterator[RunningSite]:
    site = start_site(factory, LiveBus(history_size=500), tmp_path / "state", simulate=True)
    try:
        assert site.wait_ready(), "the example site's panels and readers must come online"
        yield site
    finally:
        site.stop()


@pytest.fixture
def bus(running: RunningSite) -> LiveBus:
    return running.bus


@pytest.fixture
def control(running: RunningSite) -> SiteRuntime:
    return running.runtime


def test_an_administrator_adds_a_portal_with_devices_and_it_comes_online(
    browser: Browser, live_server: LiveServer, running: RunningSite
) -> None:
    page = browser.signed_in(live_server.url, "admin", PASSWORD)
    page.goto(f"{live_server.url}/admin/portals")
    page.fill("#portal-form input[name=code]", "annex-door")
    page.fill("#portal-form input[name=name]", "Annex door")
    page.select_option("#portal-form select[name=inside]", "reading-room")
    page.select_option("#portal-form select[name=outside]", "corridor")
    page.click("#portal-form button[type=submit]")
    page.wait_for_url("**/admin/portals/annex-door?*")
    assert "give it its devices" in page.inner_text(".flash.ok")

    page.click("a[data-kind=osdp_panel]")  # the form comes from the osdp_panel kind's typed settings
    page.fill("#device-form input[name=name]", "annex-panel")
    page.fill("#device-form input[name='setting.address']", "5")
    page.fill("#device-form input[name='setting.strike_ms']", "2500")
    page.click("#device-form button[type=submit]")
    page.wait_for_selector("#portal-devices tr[data-device=annex-panel]")

    page.click("a[data-kind=llrp_reader]")
    page.fill("#device-form input[name=name]", "annex-reader")
    page.select_option("#device-form select[name='antenna.1']", "inside")
    page.select_option("#device-form select[name='antenna.2']", "outside")
    page.click("#device-form button[type=submit]")
    page.wait_for_selector("#portal-devices tr[data-device=annex-reader]")
    assert "1: inside, 2: outside" in page.inner_text("#portal-devices tr[data-device=annex-reader]")

    # The running site reloads the register, opens the new drivers (simulators first), and they report in.
    for device in ("annex-panel", "annex-reader"):
        page.wait_for_selector(f"[data-health-of={device}] .health-online", timeout=ONLINE_WAIT_MS)
    shot(page, "admin-portal-online")
    # The guard stations' door board has it too (the portal controller takes the health reports in its turn).
    def annex() -> dict[str, object]:
        return next((d for d in page.request.get(f"{live_server.url}/api/guard/doors").json()
                     if d["portal"] == "annex-door"), {})

    assert wait_until(lambda: annex().get("panel_online") and annex().get("readers_online"), 10), annex()

    page.click("#portal-devices a:text('annex-panel')")
    page.click("#probe-form button")
    result = page.wait_for_selector("#probe-result")
    assert "online" in result.inner_text() and "OSDP vendor" in result.inner_text()
    shot(page, "admin-device-probed")

    # The new door decides exits: carol, carrying nothing, badges and the strike is released.
    panel = running.added_sims["annex-panel"].devices["annex-panel"]
    assert isinstance(panel, PanelSimulator) and panel.secure
    time.sleep(1.0)  # a card read just after a panel came online counts as replayed (stale), and is refused
    panel.present_card(f"{20004:08x}", 32)
    released = wait_until(lambda: any(c.kind == "output" for c in panel.commands), 10)  # the strike, on the wire
    assert released, "the new door's strike was never released"
    assert any(e.source == "annex-door" and e.title == "exit allowed: carol" for e in running.bus.history())


def test_an_administrator_edits_a_venue_and_sees_the_rule_refuse_it(browser: Browser, live_server: LiveServer) -> None:
    page = browser.signed_in(live_server.url, "admin", PASSWORD)
    page.goto(f"{live_server.url}/admin/venues")
    page.fill("#venue-search input[name=q]", "archive")
    with page.expect_navigation():
        page.click("#venue-search button")
    page.click("#venues a:text('archive')")
    page.select_option("#venue-edit select[name=ceiling]", "internal")
    page.click("#venue-edit button[type=submit]")
    refusal = page.wait_for_selector("#venue-edit .form-error")
    assert refusal.get_attribute("data-rule") == "venue.ceiling"
    assert "S-2026-001/1" in refusal.inner_text()
    assert page.input_value("#venue-edit select[name=ceiling]") == "internal"  # as typed, to correct
    shot(page, "admin-venue-refused")
    page.select_option("#venue-edit select[name=ceiling]", "secret")
    page.fill("#venue-edit input[name=name]", "Main archive")
    page.click("#venue-edit button[type=submit]")
    assert "venue archive saved" in page.wait_for_selector(".flash.ok").inner_text()
    assert page.input_value("#venue-edit input[name=name]") == "Main archive"


def test_an_approver_approves_a_request_seeing_its_details(browser: Browser, live_server: LiveServer) -> None:
    bob = browser.signed_in(live_server.url, "bob", PASSWORD)
    bob.goto(f"{live_server.url}/approvals")
    window = {"valid_from": "2026-06-01T09:00", "valid_until": "2030-06-01T17:00"}
    fill(bob, "#request-form", {"items": "S-2026-001", "people": "bob", "portal": "main-exit", **window,
                                "uses": "2", "reason": "Treaty talks at the ministry"})
    with bob.expect_navigation():
        bob.click("#request-form button[type=submit]")
    ref = bob.wait_for_selector(".flash.ok").inner_text().split()[1]
    fill(bob, "#request-form", {"items": "S-2026-001", "people": "bob, paul", **window, "reason": "Paul comes along"})
    with bob.expect_navigation():
        bob.click("#request-form button[type=submit]")
    naming_paul = bob.wait_for_selector(".flash.ok").inner_text().split()[1]
    assert naming_paul != ref

    paul = browser.signed_in(live_server.url, "paul", PASSWORD)
    paul.goto(f"{live_server.url}/approvals")
    paul.locator(f"tr[data-ref='{ref}'] a.button").click()
    request = paul.wait_for_selector("#request").inner_text()
    for shown in (
        "Treaty talks at the ministry",
        "Negotiation briefing",
        "secret",
        "Bob Researcher (bob)",
        "main-exit",
        "2026-06-01 09:00 to 2030-06-01 17:00 UTC",
        "2 left of 2",
    ):
        assert shown in request, shown
    shot(paul, "approver-request-details")
    paul.click("#decide-form button[value=approve]")
    assert f"approval {ref} approved" in paul.wait_for_selector(".flash.ok").inner_text()
    assert paul.inner_text("#approval-state") == "approved"
    assert "approved by paul" in paul.inner_text("#decisions")

    paul.goto(f"{live_server.url}/approvals/{naming_paul}")
    assert "approval.approver_named" in paul.inner_text("#blocker")
    assert paul.locator("#decide-form button[value=approve]").count() == 0
    assert paul.locator("#decide-form button[value=refuse]").count() == 1
    shot(paul, "approver-named-no-approve")


def test_an_administrator_verifies_a_label_and_signs_a_person_off(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    page = browser.signed_in(live_server.url, "admin", PASSWORD)
    page.goto(f"{live_server.url}/admin/items")
    page.select_option("#item-search select[name=level]", "secret")
    with page.expect_navigation():
        page.click("#item-search button")
    assert page.locator("#items tbody tr").count() == 2
    page.click("#items a:text('S-2026-002/1')")
    assert "label out of date" in page.inner_text("#label-state")
    page.click("#label-preview-button")
    assert wait_until(lambda: page.locator("#label-preview").evaluate("img => img.naturalWidth") > 0, 30)
    with page.expect_download() as download:
        page.click("#label-print")
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    # The label as printed, photographed: here the PNG itself, uploaded through the form.
    photo = tmp_path / "label-photo.png"
    label_png = page.get_attribute("#label-preview-button", "data-src")
    photo.write_bytes(page.request.get(f"{live_server.url}{label_png}").body())
    page.set_input_files("#label-check-form input[name=image]", str(photo))
    page.click("#label-check-form button[type=submit]")
    assert "label out of date cleared" in page.wait_for_selector(".flash.ok").inner_text()
    assert "label verified" in page.inner_text("#label-state")
    shot(page, "admin-label-verified")

    page.goto(f"{live_server.url}/admin/people?role=custodian")
    page.click("#people a:text('bob')")
    assert page.is_checked("#person-edit input[name=roles][value=custodian]")
    page.check("#person-edit input[name=roles][value=witness]")
    with page.expect_navigation():
        page.click("#person-edit button[type=submit]")
    assert page.is_checked("#person-edit input[name=roles][value=witness]")
    assert "S-2026-001/1" in page.inner_text("#to-return")
    page.click("#departure-form button")
    assert "1 item(s) to return" in page.wait_for_selector(".flash.ok").inner_text()
    page.click("#sign-off-form button")
    refusal = page.wait_for_selector("#departure .form-error")
    assert refusal.get_attribute("data-rule") == "person.items_in_custody"
    assert "S-2026-001/1 Negotiation briefing" in refusal.inner_text()
    shot(page, "admin-sign-off-refused")
