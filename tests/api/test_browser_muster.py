"""Browser test of the muster page (tests/api/browsing.py), on the app served by uvicorn.
The page follows people out as the register's places change, and a guard exports it as a journal entry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.models import JournalEntry
from tests.api.browsing import Browser, needs_chromium, wait_until
from tests.api.conftest import PASSWORD, LiveServer
from tests.api.test_people import place

pytestmark = needs_chromium


def test_the_muster_page_follows_people_out_and_exports(
    browser: Browser, live_server: LiveServer, factory: sessionmaker[Session]
) -> None:
    page = browser.signed_in(live_server.url, "gus", PASSWORD)
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
    def actions() -> list[str]:
        with factory() as session:
            return list(session.execute(select(JournalEntry.action).where(JournalEntry.actor == "gus")).scalars())

    # the forgive reaches the register through the running site's recorder
    assert wait_until(lambda: "presence.forgiven" in actions(), 20), actions()
    assert "muster.exported" in actions()
