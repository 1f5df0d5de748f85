"""The guard console as guards use it, in Chromium, on the whole simulated site (OSDP panels, LLRP readers):
people walk up to doors through the simulators, the real engine blocks them, and guards act on the pages.
Screenshots go to artifacts/screenshots/ (gitignored)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from controllers.alarms import Evidence
from controllers.bus import LiveBus
from controllers.site import SiteRuntime
from custodian.demo import PORTALS, Traffic
from custodian.wiring import RunningSite
from firmware_bridge.osdp.vocabulary import OutputCode
from tests.api.browsing import Browser, needs_chromium, shot, wait_until
from tests.api.conftest import PASSWORD, LiveServer, serve
from tracking.model import EngineConfig

pytestmark = needs_chromium
CAROL, DISK = "20004", "E28011700000020000000005"  # carol may not take the backup disk out of the archive
FIGURES = Path(__file__).resolve().parents[2] / "artifacts" / "figures"


def strikes(site: RunningSite, portal: str) -> int:
    """Door releases commanded on the wire to a door's panel."""
    assert site.sims is not None
    panel = site.sims.panels[PORTALS[portal][0]]
    return sum(1 for c in panel.commands if c.kind == "output" and c.field("control_code") == OutputCode.TEMPORARY_ON)


def blocked_exit(site: RunningSite) -> int:
    """Carol walks up to the archive door with the disk and badges; the site keeps the door shut."""
    traffic = Traffic(site, log=lambda _line: None)
    assert not traffic.exit_attempt("archive-door", [CAROL], [DISK])
    [door] = [d for d in site.runtime.doors() if d.portal == "archive-door"]
    assert door.block is not None and door.block.alarm_id is not None
    return door.block.alarm_id


def test_a_blocked_exit_is_acknowledged_at_one_station_and_shows_at_another(
    browser: Browser, site_server: LiveServer, simulated: RunningSite
) -> None:
    gus = browser.signed_in(site_server.url, "gus", PASSWORD)
    gina = browser.signed_in(site_server.url, "gina", PASSWORD)
    for page in (gus, gina):
        page.wait_for_selector("#feed-state.live")
    alarm = blocked_exit(simulated)
    selector = f".alarm.critical[data-alarm='{alarm}']"
    for page in (gus, gina):
        shown = page.wait_for_selector(f"{selector}[data-state=open]")
        text = shown.inner_text()
        assert "An exit was refused" in text and "carol" in text and "S-2026-002/1" in text
        assert "The person's clearance is below the item's level." in text  # a sentence, not `clearance`
        assert "2026" in text  # a date with the time
        assert int(page.evaluate("document.body.dataset.cues || 0")) >= 1  # the new alarm sounded
    shot(gina, "guard-two-stations-blocked")
    gus.fill(f"{selector} input.note-text", "talking to carol at the door")
    gus.click(f"{selector} button.ack")
    acked = time.monotonic()
    gina.wait_for_selector(f"{selector}[data-state=acknowledged]", timeout=5_000)
    delay = time.monotonic() - acked
    assert "acknowledged by gus" in gina.inner_text(selector)
    assert gina.locator(f"{selector} button.ack").count() == 0  # nothing left to acknowledge there
    shot(gina, "guard-acknowledged-at-the-other-station")
    FIGURES.mkdir(parents=True, exist_ok=True)  # measured, not asserted (a loaded machine)
    (FIGURES / "ack-to-second-station.json").write_text(json.dumps({"seconds": round(delay, 3)}))


@pytest.mark.parametrize(("site_config", "site_zone"), [(EngineConfig(association_us=1_000_000), "Asia/Kathmandu")])
def test_an_entry_kept_shut_by_a_resting_item_says_entry_which_item_and_since_when(
    browser: Browser, site_server: LiveServer, simulated: RunningSite, site_zone: str
) -> None:
    page = browser.signed_in(site_server.url, "gus", PASSWORD)
    page.wait_for_selector("#feed-state.live")
    traffic = Traffic(simulated, log=lambda _line: None)
    put_down = time.time()
    traffic.approach("archive-door", [DISK])  # the disk is left inside by the archive door
    time.sleep(1.5)  # longer than the site's association time: it rests there
    assert simulated.sims is not None
    simulated.sims.panels[PORTALS["archive-door"][0]].present_card(f"{int(CAROL):08x}", 32, reader=1)  # outside
    since = {dt.datetime.fromtimestamp(t, ZoneInfo(site_zone)).strftime("%H:%M") for t in (put_down, time.time())}
    kept_shut = [f"door kept shut: S-2026-002/1 resting inside by the door since {t}" for t in since]
    shown = page.wait_for_selector(".alarm.critical[data-state=open]")
    text = shown.inner_text()
    assert "An entry was refused" in text and "carol" in text, text
    assert any(sentence in text for sentence in kept_shut), text
    feed = page.wait_for_selector("#events li:has-text('ENTRY BLOCKED: carol')").inner_text()
    assert any(sentence in feed for sentence in kept_shut), feed
    block = page.wait_for_selector("tr[data-portal=archive-door] td.block.blocked").inner_text()
    assert "carol (coming in)" in block and any(sentence in block for sentence in kept_shut), block
    assert "EXIT BLOCKED" not in page.inner_text("#events")
    shot(page, "guard-entry-kept-shut-by-a-resting-item")
    traffic.leave("archive-door", [DISK])


def test_an_override_on_a_fresh_block_with_the_password_opens_the_door(
    browser: Browser, site_server: LiveServer, simulated: RunningSite
) -> None:
    page = browser.signed_in(site_server.url, "gus", PASSWORD)
    page.wait_for_selector("#feed-state.live")
    page.wait_for_selector("tr[data-portal=archive-door] td.lock.good")
    assert page.locator("button.override").count() == 0  # no block, no override
    blocked_exit(simulated)
    button = page.wait_for_selector("tr[data-portal=archive-door] button.override")
    assert page.locator("tr[data-portal=main-exit] button.override").count() == 0
    before = strikes(simulated, "archive-door")
    button.click()
    page.fill("#override-password", "not-my-password")
    page.fill("#override-reason", "Disk escorted to the destruction centre by the duty officer")
    page.click("#override-confirm")
    page.wait_for_selector("#override-error:not([hidden])")
    refusal = page.inner_text("#override-error")
    assert "password" in refusal, refusal
    assert strikes(simulated, "archive-door") == before
    page.fill("#override-password", PASSWORD)
    page.fill("#override-reason", "Disk escorted to the destruction centre by the duty officer")
    shot(page, "guard-override-dialog")
    page.click("#override-confirm")
    page.wait_for_selector("#override-done:not([hidden]), #override-error:not([hidden])")
    assert page.is_hidden("#override-error"), page.inner_text("#override-error")
    assert "opened for carol" in page.inner_text("#override-done")
    assert wait_until(lambda: strikes(simulated, "archive-door") > before, 5), "the strike command must be on the wire"
    page.wait_for_selector("tr[data-portal=archive-door] button.override", state="detached")
    shot(page, "guard-override-opened")


@pytest.mark.parametrize("site_config", [EngineConfig(override_max_age_us=3_000_000)])
def test_an_override_on_a_stale_block_is_refused(
    browser: Browser, site_server: LiveServer, simulated: RunningSite
) -> None:
    page = browser.signed_in(site_server.url, "gus", PASSWORD)
    page.wait_for_selector("#feed-state.live")
    blocked_exit(simulated)
    page.click("tr[data-portal=archive-door] button.override")
    page.fill("#override-password", PASSWORD)
    page.fill("#override-reason", "Courier identity confirmed by phone")
    before = strikes(simulated, "archive-door")
    time.sleep(3.5)  # the guard hesitates longer than a block stays fresh (3 s on this site)
    page.click("#override-confirm")
    error = page.wait_for_selector("#override-error:not([hidden])")
    assert "too old to override" in error.inner_text()
    shot(page, "guard-override-stale-refused")
    time.sleep(0.5)
    assert strikes(simulated, "archive-door") == before


def test_an_unacknowledged_critical_alarm_escalates_and_technical_ones_stay_quiet(
    browser: Browser, factory: sessionmaker[Session], bus: LiveBus, settings: ApiSettings, tmp_path: Path
) -> None:
    runtime = SiteRuntime(factory, bus, tmp_path / "esc" / "spool", backend="reference", escalate_after_s=1.0).start()
    try:
        with serve(create_app(settings, session_factory=factory, bus=bus, control=runtime), settings) as server:
            page = browser.signed_in(server.url, "gus", PASSWORD)
            page.wait_for_selector("#feed-state.live")
            forced = runtime.alarms_book.raise_alarm("door_forced", time.time_ns() // 1000, "main-exit")
            page.wait_for_selector(f"#alarms .alarm.escalated[data-alarm='{forced.alarm_id}']")
            assert page.evaluate("document.body.dataset.lastCue") == "escalation"
            cues = int(page.evaluate("document.body.dataset.cues"))
            late = runtime.alarms_book.raise_alarm("late_read", time.time_ns() // 1000, "main-exit-reader")
            page.wait_for_selector(f"#technical .alarm[data-alarm='{late.alarm_id}']", state="attached")
            assert page.locator(f"#alarms .alarm[data-alarm='{late.alarm_id}']").count() == 0
            assert int(page.evaluate("document.body.dataset.cues")) == cues  # quiet: no sound
            assert page.inner_text("#technical-count") == "1"
            shot(page, "guard-escalated")
            page.close()
    finally:
        runtime.stop()


def test_a_click_on_acknowledge_is_not_lost_when_the_book_is_drawn_again_between_press_and_release(
    browser: Browser, factory: sessionmaker[Session], bus: LiveBus, settings: ApiSettings, tmp_path: Path
) -> None:
    runtime = SiteRuntime(factory, bus, tmp_path / "click" / "spool", backend="reference").start()
    try:
        with serve(create_app(settings, session_factory=factory, bus=bus, control=runtime), settings) as server:
            page = browser.signed_in(server.url, "gus", PASSWORD)
            page.wait_for_selector("#feed-state.live")
            forced = runtime.alarms_book.raise_alarm("door_forced", time.time_ns() // 1000, "main-exit")
            box = page.wait_for_selector(f"#alarms .alarm[data-alarm='{forced.alarm_id}'] button.ack").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            # Another alarm arrives while the button is pressed: the book is drawn again before the release.
            late = runtime.alarms_book.raise_alarm("late_read", time.time_ns() // 1000, "main-exit-reader")
            page.wait_for_selector(f"#technical .alarm[data-alarm='{late.alarm_id}']", state="attached")
            page.mouse.up()
            assert wait_until(lambda: runtime.alarms_book.get(forced.alarm_id).state == "acknowledged", 10)
            assert runtime.alarms_book.get(forced.alarm_id).acknowledged_by == "gus"
            page.close()
    finally:
        runtime.stop()


def test_an_auditor_watches_the_book_but_cannot_act(
    browser: Browser, live_server: LiveServer, control: SiteRuntime
) -> None:
    alarm = control.alarms_book.raise_alarm(
        "unregistered_tag", time.time_ns() // 1000, "main-exit", Evidence(detail="EPC E28011700000FFFF00000001")
    )
    page = browser.signed_in(live_server.url, "audrey", PASSWORD)
    page.goto(f"{live_server.url}/guard")
    shown = page.wait_for_selector(f"#alarms .alarm[data-alarm='{alarm.alarm_id}']")
    assert "A tag that is not in the register was read" in shown.inner_text()
    assert page.locator("button.ack, button.resolve, button.override").count() == 0
    page.wait_for_selector("#devices .pill.unknown")  # no device has reported: grey, not red
    assert page.locator("#devices .pill.down").count() == 0
