"""Small site files for `custodian demo --sites N` and the multi-site tests: one building per site, codes
prefixed by the site's code so that every site fits one centre register; people walk through its door with
the single-site demo's traffic.

Each site: a corridor and an archive whose door leads out of the unit, with an OSDP panel and an LLRP
reader; a guard, an approver, two researchers (one with a standing carry-out approval for a secret item,
one without) and the items they carry. Badge numbers and EPCs carry the site's number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from custodian.demo import Traffic, Walker
from custodian.wiring import RunningSite

# (name, full name, clearance, role, badge suffix): the same people at every site, their names site-prefixed.
PEOPLE = (
    ("gus", "Gus Guard", "secret", "guard", "0005"),
    ("paul", "Paul Approver", "top_secret", "approver", "0003"),
    ("bob", "Bob Researcher", "secret", "custodian", "0013"),
    ("carol", "Carol Researcher", "secret", "custodian", "0014"),
)
ITEMS = ((1, "Negotiation briefing", "paper"), (2, "Archive backup disk", "hdd"))  # (number, title, kind)
READERS = ("bob", "carol")  # the group that may hold the items


@dataclass(frozen=True)
class DemoSite:
    """One demo site: its site file, and what its traffic needs to know."""

    code: str
    number: int

    @property
    def portal(self) -> str:
        return f"{self.code}-archive-door"

    @property
    def panel(self) -> str:
        return f"{self.code}-door-panel"

    @property
    def reader(self) -> str:
        return f"{self.code}-door-reader"

    def badge(self, who: str) -> str:
        return {name: f"{self.number}{suffix}" for name, _full, _level, _role, suffix in PEOPLE}[who]

    def epc(self, item: int) -> str:
        return f"E28011700000{self.number:04d}{item:08d}"

    def tables(self) -> dict[str, Any]:
        c = self.code
        return {
            "site": {"name": c, "unit": f"Example Institute, building {c}"},
            "venues": [
                {"code": f"{c}-corridor", "name": f"Corridor {c}", "ceiling": "secret"},
                {"code": f"{c}-archive", "name": f"Archive {c}", "ceiling": "secret", "storage": True},
            ],
            "portals": [{"code": self.portal, "x_m": 10.0 * self.number, "y_m": 0.0,
                         "name": f"Archive door {c} (leaves the unit)", "inside": f"{c}-archive",
                         "outside": "outside"}],
            "devices": [
                {"name": self.panel, "kind": "osdp_panel", "portal": self.portal, "transport": "pty", "address": 1,
                 "scbk_env": f"CUSTODIAN_SCBK_{c.upper().replace('-', '_')}", "strike_ms": 1500},
                {"name": self.reader, "kind": "llrp_reader", "portal": self.portal, "host": "127.0.0.1",
                 "port": 5084, "antennas": [{"number": 1, "side": "inside"}, {"number": 2, "side": "outside"}]},
            ],
            "people": [
                {"username": f"{c}-{name}", "name": f"{full} ({c})", "clearance": level, "roles": [role],
                 "badges": [self.badge(name)]} | ({"groups": [f"{c}-readers"]} if name in READERS else {})
                for name, full, level, role, _suffix in PEOPLE
            ],
            "items": [
                {"register_number": f"S-{c}-{n:03d}", "title": f"{title} ({c})", "kind": kind, "level": "secret",
                 "period_start": dt.date(2026, 2, 1), "period_months": 120, "originating_unit": "Example Institute",
                 "epc": self.epc(n), "venue": f"{c}-archive", "scope_groups": [f"{c}-readers"]}
                for n, title, kind in ITEMS
            ],
            "approvals": [
                {"ref": f"A-{c}-0001", "kind": "carry_out", "requester": f"{c}-bob", "approvers": [f"{c}-paul"],
                 "items": [f"S-{c}-001"], "people": [f"{c}-bob"],
                 "valid_from": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                 "valid_until": dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC), "uses": 1000,
                 "reason": "Briefings at the ministry"},
            ],
        }

    def text(self) -> str:
        return tomli_w.dumps(self.tables())

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.code}.toml"
        path.write_text(self.text(), encoding="utf-8")
        return path


def demo_sites(count: int) -> list[DemoSite]:
    return [DemoSite(f"site-{chr(ord('a') + k)}", k + 1) for k in range(count)]


class SiteTraffic:
    """People at a demo site's door, walking as in the single-site demo (`custodian.demo.Traffic`)."""

    def __init__(self, site: DemoSite, running: RunningSite) -> None:
        self.site = site
        walker = Walker(site.reader, (1,), (2,))
        self.walk = Traffic(running, log=lambda _line: None, portals={site.portal: (site.panel, walker)})

    def exit_attempt(self, who: str, items: tuple[int, ...] = ()) -> bool:
        """`who` walks up holding `items`, badges and waits for the decision; True if the door opened."""
        return self.walk.exit_attempt(self.site.portal, [self.site.badge(who)], [self.site.epc(n) for n in items])
