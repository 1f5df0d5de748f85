"""Browser test of the muster page: Playwright driving Debian's Chromium against the app served by uvicorn.
The page follows people out as the register's places change, and a guard exports it as a journal entry."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.models import JournalEntry
from tests.api.conftest import PASSWORD, LiveServer
from tests.api.test_people import place

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is missing")


@pytest.fixture
def page(live_server: LiveServer) -> Iterator[object]:
    errors: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.set_default_timeout(15_000)
        tab.goto(f"{live_server.url}/login")
        tab.fill("input[name=username]", "gus")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(lambda url: "/login" not in url)
        yield tab
        browser.close()
    assert not errors, f"script errors: {errors}"


def test_the_muster_page_follows_people_out_and_exports(page, live_server: LiveServer,  # type: ignore[no-untyped-def]
                                                         factory: sessionmaker[Session]) -> None:
    place(factory, "alice", "reading-room")
    place(factory, "bob", "archive", "fire_release")
    page.click("#muster-link")  # from the guard console
    page.wait_for_selector("section[data-venue=reading-room] li[data-person=alice]")
    assert "uncertain" in page.inner_text("section[data-venue=archive] li[data-person=bob]")
    place(factory, "alice", None)  # alice badges out of the unit
    page.wait_for_selector("section[data-venue=reading-room] li[data-person=alice]", state="detached")
    assert "uncertain" in page.inner_text("section[data-venue=archive] li[data-person=bob]")  # redrawn alike
    page.once("dialog", lambda dialog: dialog.accept("seen at the assembly point"))
    page.click("button.forgive[data-person=bob]")
    page.wait_for_selector("#export-state:has-text('forgiven: bob')")
    page.fill("#export-note", "drill over")
    page.click("#export")
    page.wait_for_selector("#export-state:has-text('exported: journal entry')")
    deadline = time.monotonic() + 20
    while True:  # the forgive reaches the register through the running site's recorder
        with factory() as session:
            actions = list(session.execute(select(JournalEntry.action).where(JournalEntry.actor == "gus")).scalars())
        if "presence.forgiven" in actions or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "muster.exported" in actions
    assert "presence.forgiven" in actions
