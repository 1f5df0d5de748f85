"""Guard stations at the centre (HTTP clients of the real centre app): every site's alarm book with ids
qualified by the site, an acknowledgement that flows back to the edge owning the alarm, and an override that
the owning edge decides over a live path and that is refused, with the reason, when the link is cut."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from controllers.bus import LiveKind
from controllers.records import AlarmResolved
from registry import db
from registry.models import AcceptedRecord, JournalEntry
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

        # Resolve at the centre, with what was done: site-a's book closes it, and it leaves the centre's page.
        to_resolve = page.locator(f".alarm[data-site='site-a'][data-alarm='{tamper}'][data-state=acknowledged]")
        to_resolve.locator(".note-text").fill("panel closed, seal replaced")  # kept if the book is drawn again
        to_resolve.locator("button.resolve").click()
        assert browsing.wait_until(lambda: edge_book.get(tamper).state == "resolved", 30), "in site-a's book"
        assert edge_book.get(tamper).resolved_by == "site-a-gus"
        assert edge_book.get(tamper).resolve_note == "panel closed, seal replaced"
        assert browsing.wait_until(lambda: page.query_selector(
            f".alarm[data-site='site-a'][data-alarm='{tamper}']") is None, 30), "resolved: off the page"

        # Cut off: a resolution is shown pending until site-a confirms it, and applied once the link is back.
        page.click(f".alarm[data-site='site-a'][data-alarm='{later}'] button.ack")
        page.wait_for_selector(f".alarm[data-site='site-a'][data-alarm='{later}'][data-state=acknowledged]")
        assert browsing.wait_until(lambda: edge_book.get(later).state == "acknowledged", 30)
        a.cut()
        wait_until(lambda: centre.hub.leaf_connections() == 0, 20, "the hub sees site-a gone")
        pending = page.locator(f".alarm[data-site='site-a'][data-alarm='{later}']")
        pending.locator(".note-text").fill("reader reseated")
        pending.locator("button.resolve").click()
        sent = page.wait_for_selector(f".alarm[data-site='site-a'][data-alarm='{later}'] .resolve-sent")
        assert "pending until site-a confirms" in sent.inner_text(), sent.inner_text()
        assert pending.locator("button.resolve").count() == 0, "not sent twice from the page"
        browsing.shot(page, "centre-guard-resolution-pending")
        assert edge_book.get(later).state == "acknowledged"

        # The override dialog says why it was refused, and nothing reaches the door.
        page.click(f".alarm[data-site='site-a'][data-alarm='{blocked}'] button.override")
        browsing.fill(page, "#override-form", {"password": PASSWORD, "reason": "duty officer agreed"})
        page.click("#override-confirm")
        refusal = page.wait_for_selector("#override-error:not([hidden])").inner_text()
        assert "site-a cannot be reached" in refusal and "nothing is queued" in refusal, refusal
        assert page.is_visible("#override-dialog"), "the dialog stays open on a refusal"
        browsing.shot(page, "centre-guard-cut-off")
        page.click("#override-cancel")

        a.heal()
        assert browsing.wait_until(lambda: edge_book.get(later).state == "resolved", 30), "applied after the heal"
        assert edge_book.get(later).resolve_note == "reader reseated"
        assert browsing.wait_until(lambda: page.query_selector(
            f".alarm[data-site='site-a'][data-alarm='{later}']") is None, 30), "confirmed: off the page"


def centre_journal(s: Sites, action: str, subject: str) -> list[dict[str, object]]:
    with s.centre.factory() as session:
        rows = session.execute(select(JournalEntry).where(JournalEntry.action == action,
                                                          JournalEntry.subject == subject)).scalars()
        return [{"actor": r.actor, **json.loads(r.payload)} for r in rows]


def register_resolutions(s: Sites) -> int:
    """AlarmResolved records of the site's edge in the centre's register (the exactly-once ledger)."""
    with s.centre.factory() as session:
        return len(session.execute(select(AcceptedRecord.seq).where(
            AcceptedRecord.site == s.edge.site, AcceptedRecord.kind == AlarmResolved.KIND)).all())


def test_a_resolution_at_the_centre_is_applied_by_the_owning_edges_rules_and_once_after_a_cut(
    site_group: Callable[..., list[Sites]],
) -> None:
    a, b = site_group(2, web=True)
    centre = a.centre
    assert centre.web is not None and a.edge.running is not None and centre.desk is not None
    with db.transaction(centre.factory) as session:
        for guard in ("site-a-gus", "site-b-gus"):
            people.set_password_hash(session, "test", lookup.person(session, guard), hash_password(PASSWORD))
    edge_book = a.edge.running.runtime.alarms_book
    first, second, third = (edge_book.raise_alarm("tamper", time.time_ns() // 1000, f"site-a-{n}").alarm_id
                            for n in ("panel", "reader", "camera"))
    raise_until(b, first)  # site-b has an alarm with the same id
    one, two = station(centre.web.url, "site-a-gus"), station(centre.web.url, "site-b-gus")
    try:
        wait_until(lambda: {("site-a", third), ("site-b", first)} <= set(book(one)), 30, "the alarms at the centre")
        path = f"/api/centre/sites/site-a/alarms/{first}"
        # The site's rules, at the centre: acknowledged before resolved, and a note saying what was done.
        assert one.post(f"{path}/resolve", json={"note": "panel closed"}).status_code == 409, "still open"
        for n in (first, second, third):
            acked = one.post(f"/api/centre/sites/site-a/alarms/{n}/ack", json={"note": "going"})
            assert acked.status_code == 200, acked.text
        wait_until(lambda: all(edge_book.get(n).state == "acknowledged" for n in (first, second, third)), 30,
                   "the acknowledgements at site-a")
        wait_until(lambda: book(two)[("site-a", third)]["state"] == "acknowledged", 30, "acknowledged at the centre")
        assert one.post(f"{path}/resolve", json={"note": "ok"}).status_code == 422, "a note of what was done"
        assert one.post(f"{path}/resolve", json={}).status_code == 422

        resolved = one.post(f"{path}/resolve", json={"note": "panel closed, seal replaced"})
        assert resolved.status_code == 200, resolved.text
        wait_until(lambda: edge_book.get(first).state == "resolved", 30, "the resolution in site-a's own book")
        at_edge = edge_book.get(first)
        assert at_edge.resolved_by == "site-a-gus" and at_edge.resolve_note == "panel closed, seal replaced"
        wait_until(lambda: ("site-a", first) not in book(two), 30, "the other station sees it resolved")
        shown = {(x["site"], x["id"]): x for x in two.get("/api/centre/alarms?resolved=true").json()}
        assert shown[("site-a", first)]["state"] == "resolved"
        assert shown[("site-a", first)]["resolved_by"] == "site-a-gus"
        assert book(two)[("site-b", first)]["state"] == "open", "site-b's alarm of the same id is untouched"
        assert b.edge.running is not None and b.edge.running.runtime.alarms_book.get(first).state == "open"
        assert one.post(f"{path}/resolve", json={"note": "again"}).status_code == 409, "resolved once"
        [sent] = centre_journal(a, "alarm.resolution_sent", f"alarm:site-a/{first}")  # journalled at the centre
        assert sent["actor"] == "site-a-gus" and sent["note"] == "panel closed, seal replaced"
        wait_until(lambda: register_resolutions(a) >= 1, 60, "the edge's record of it in the register")
        assert register_resolutions(a) == 1, "recorded once"

        # The edge applies its own rules: someone its register does not hold as a guard is refused there.
        refused = centre.desk.resolve("site-a", third, "site-a-carol", "not mine to close")
        wait_until(lambda: bool(centre.desk.get("site-a", third).refused), 30, "the edge's refusal at the centre")
        assert "not an active guard" in centre.desk.get("site-a", third).refused
        assert refused.alarm.state == "acknowledged" and edge_book.get(third).state == "acknowledged"
        assert not centre.desk.get("site-a", third).resolve_sent_by, "a refused resolution is not pending"

        # Cut off: the resolution is kept for site-a, shown pending, and applied exactly once after the heal.
        a.cut()
        wait_until(lambda: centre.hub.leaf_connections() == 1, 20, "the hub sees site-a gone")
        pending = one.post(f"/api/centre/sites/site-a/alarms/{second}/resolve", json={"note": "reader reseated"})
        assert pending.status_code == 200, pending.text
        assert pending.json()["resolve_sent_by"] == "site-a-gus" and pending.json()["state"] == "acknowledged"
        assert book(two)[("site-a", second)]["resolve_sent_by"] == "site-a-gus", "every station shows it pending"
        time.sleep(1)
        assert edge_book.get(second).state == "acknowledged", "not applied while cut off"
        a.heal()
        wait_until(lambda: edge_book.get(second).state == "resolved", 30, "the resolution at site-a after the heal")
        assert edge_book.get(second).resolve_note == "reader reseated"
        wait_until(lambda: ("site-a", second) not in book(two), 30, "the other station sees it resolved")
        wait_until(lambda: register_resolutions(a) >= 2, 60, "its record in the register")
        assert a.edge.commands is not None
        wait_until(lambda: a.edge.commands.pending() == 0, 10, "every command taken at the edge")
        time.sleep(1)  # a redelivery would have come back by now
        assert register_resolutions(a) == 2, "each resolution recorded once"
        with a.edge.factory() as session:  # journalled at the edge, once each
            done = session.execute(select(JournalEntry.subject).where(JournalEntry.action == "alarm.resolved",
                                                                      JournalEntry.actor == "site-a-gus")).all()
        assert sorted(s for (s,) in done) == sorted([f"alarm:{first}", f"alarm:{second}"]), done
    finally:
        one.close()
        two.close()
