"""Guard stations at the centre (HTTP clients of the real centre app): every site's alarm book with ids
qualified by the site, an acknowledgement that flows back to the edge owning the alarm, and an override that
the owning edge decides over a live path and that is refused, with the reason, when the link is cut."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from controllers.bus import LiveKind
from registry import db
from registry.passwords import hash_password
from registry.services import lookup, people
from tests.api import browsing
from tests.multisite.conftest import Sites, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
PASSWORD = "centre-guard-2026"


def station(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/api/token", data={"username": username, "password": PASSWORD})
    assert token.status_code == 200, token.text
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def book(client: httpx.Client) -> dict[tuple[str, int], dict[str, object]]:
    response = client.get("/api/centre/alarms")
    assert response.status_code == 200, response.text
    return {(a["site"], a["id"]): a for a in response.json()}


def raise_until(s: Sites, alarm_id: int) -> None:
    """Alarms through the edge's own book until it has given out `alarm_id`."""
    assert s.edge.running is not None
    book = s.edge.running.runtime.alarms_book
    while book.raise_alarm("tamper", time.time_ns() // 1000, f"{s.demo.code}-door-panel").alarm_id < alarm_id:
        pass


def test_centre_stations_share_every_sites_book_and_reach_the_owning_edge(
    site_group: Callable[..., list[Sites]],
) -> None:
    a, b = site_group(2, web=True)
    centre = a.centre
    assert centre.web is not None
    with db.transaction(centre.factory) as session:  # the guards' passwords, set at the centre
        for s in (a, b):
            people.set_password_hash(session, "test", lookup.person(session, f"{s.demo.code}-gus"),
                                     hash_password(PASSWORD))
    for s in (a, b):
        def has_password(s: Sites = s) -> bool:
            with s.edge.factory() as session:
                return lookup.person(session, f"{s.demo.code}-gus").password_hash is not None
        wait_until(has_password, 20, "the guard's password in the edge's snapshot")
    with b.edge.factory() as session:
        assert lookup.person(session, "site-a-gus").password_hash is None, "a guard's hash only at their site"
    for s in (a, b):
        raise_until(s, 7)
    one, two = station(centre.web.url, "site-a-gus"), station(centre.web.url, "site-b-gus")
    try:
        wait_until(lambda: {("site-a", 7), ("site-b", 7)} <= set(book(one)), 30, "both sites' alarm 7 at the centre")
        assert book(two)[("site-b", 7)]["state"] == "open", "two sites' alarm 7 are two alarms"

        # One station acknowledges site-a's alarm 7: the edge that owns it takes it, both stations show it.
        acked = one.post("/api/centre/sites/site-a/alarms/7/ack", json={"note": "seen from the centre"})
        assert acked.status_code == 200, acked.text
        assert a.edge.running is not None
        wait_until(lambda: a.edge.running.runtime.alarms_book.get(7).state == "acknowledged", 30,  # type: ignore[union-attr]
                   "the acknowledgement in site-a's own book")
        at_edge = a.edge.running.runtime.alarms_book.get(7)
        assert at_edge.acknowledged_by == "site-a-gus" and at_edge.acknowledge_note == "seen from the centre"
        wait_until(lambda: book(two)[("site-a", 7)]["state"] == "acknowledged", 30, "the other station shows it")
        assert book(two)[("site-a", 7)]["acknowledged_by"] == "site-a-gus"
        assert two.post("/api/centre/sites/site-a/alarms/7/ack").status_code == 409, "acknowledged once"
        assert book(one)[("site-b", 7)]["state"] == "open", "site-b's alarm 7 is untouched"
        assert any(e.kind == LiveKind.ACK and e.source == "site-a" and e.alarm_id == 7 for e in centre.bus.history())
        assert b.edge.running is not None and b.edge.running.runtime.alarms_book.get(7).state == "open"

        # An override from the centre: decided at site-a's door, with the guard's password checked there.
        assert not a.traffic.exit_attempt("carol", (2,)), "carol's disk may not leave"
        wrong = one.post(f"/api/centre/sites/site-a/portals/{a.demo.portal}/override",
                         json={"password": "not-mine", "reason": "duty officer agreed"})
        assert wrong.status_code == 403, wrong.text
        ok = one.post(f"/api/centre/sites/site-a/portals/{a.demo.portal}/override",
                      json={"password": PASSWORD, "reason": "duty officer agreed"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["person"] == "site-a-carol" and ok.json()["guard"] == "site-a-gus"
        assert any(e.source == a.demo.portal and "override" in e.title.lower() for e in a.edge.running.bus.history())

        # Cut off: refused at once with the reason, and nothing is queued to open the door later.
        a.cut()
        wait_until(lambda: centre.hub.leaf_connections() == 1, 20, "the hub sees site-a gone")
        cut = one.post(f"/api/centre/sites/site-a/portals/{a.demo.portal}/override",
                       json={"password": PASSWORD, "reason": "duty officer agreed"})
        assert cut.status_code == 503 and "cannot be reached" in cut.json()["detail"], cut.text
        assert "nothing is queued" in cut.json()["detail"]
        a.heal()
        time.sleep(2)
        overrides = [e for e in a.edge.running.bus.history() if e.source == a.demo.portal
                     and "override" in e.title.lower()]
        assert len(overrides) == 1, "the refused override never reached the door"
    finally:
        one.close()
        two.close()


@browsing.needs_chromium
def test_a_guard_at_the_centres_page_sees_each_sites_alarm_and_acknowledges_it_at_the_owning_edge(
    site_group: Callable[..., list[Sites]],
) -> None:
    [a] = site_group(1, web=True)
    centre = a.centre
    assert centre.web is not None and a.edge.running is not None
    with db.transaction(centre.factory) as session:  # guards sign in at the centre's own register
        people.set_password_hash(session, "test", lookup.person(session, "site-a-gus"), hash_password(PASSWORD))
    edge_book = a.edge.running.runtime.alarms_book
    tamper = edge_book.raise_alarm("tamper", time.time_ns() // 1000, f"{a.demo.code}-door-panel").alarm_id
    assert not a.traffic.exit_attempt("carol", (2,)), "carol's disk may not leave"
    [blocked] = [d.block.alarm_id for d in a.edge.running.runtime.doors() if d.block is not None]
    with browsing.launched() as browser:
        page = browser.signed_in(centre.web.url, "site-a-gus", PASSWORD)
        assert page.url.endswith("/guard")
        page.wait_for_selector("#feed-state.live")
        page.wait_for_selector(f".alarm[data-site='site-a'][data-alarm='{blocked}'] button.override")
        shown = page.locator(f".alarm[data-site='site-a'][data-alarm='{tamper}'][data-state=open]")
        assert shown.locator(".pill.site").inner_text() == "site-a"

        # Acknowledge at the centre: site-a's own book holds it, and the page shows it back from there.
        shown.locator(".note-text").fill("seen from the centre")
        later = edge_book.raise_alarm("tamper", time.time_ns() // 1000, f"{a.demo.code}-reader").alarm_id
        page.wait_for_selector(f".alarm[data-site='site-a'][data-alarm='{later}']")  # the book was drawn again
        shown.locator("button.ack").click()  # with the note typed before
        assert browsing.wait_until(lambda: edge_book.get(tamper).state == "acknowledged", 30), "in site-a's book"
        assert edge_book.get(tamper).acknowledged_by == "site-a-gus"
        assert edge_book.get(tamper).acknowledge_note == "seen from the centre"
        acked = page.wait_for_selector(f".alarm[data-site='site-a'][data-alarm='{tamper}'][data-state=acknowledged]")
        assert "seen from the centre" in acked.inner_text()
        assert acked.query_selector("button.resolve") is None, "resolving is the site's own console's"

        # Cut off: the override dialog says why it was refused, and nothing reaches the door.
        a.cut()
        wait_until(lambda: centre.hub.leaf_connections() == 0, 20, "the hub sees site-a gone")
        page.click(f".alarm[data-site='site-a'][data-alarm='{blocked}'] button.override")
        browsing.fill(page, "#override-form", {"password": PASSWORD, "reason": "duty officer agreed"})
        page.click("#override-confirm")
        refusal = page.wait_for_selector("#override-error:not([hidden])").inner_text()
        assert "site-a cannot be reached" in refusal and "nothing is queued" in refusal, refusal
        assert page.is_visible("#override-dialog"), "the dialog stays open on a refusal"
        browsing.shot(page, "centre-guard-cut-off")
