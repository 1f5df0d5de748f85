"""Small site files for `custodian demo --sites N` and the multi-site tests: one building per site, codes
prefixed by the site's code so that every site fits one centre register.

Each site: a corridor and an archive whose door leads out of the unit, with an OSDP panel and an LLRP
reader; a guard, an approver, two researchers (one with a standing carry-out approval for a secret item,
one without) and the items they carry. Badge numbers and EPCs carry the site's number.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from custodian.wiring import RunningSite
from firmware_bridge.rfid.llrp_simulator import WalkStep

TEMPLATE = """\
[site]
name = "{code}"
unit = "Example Institute, building {code}"

[[venues]]
code = "{code}-corridor"
name = "Corridor {code}"
ceiling = "secret"

[[venues]]
code = "{code}-archive"
name = "Archive {code}"
ceiling = "secret"
storage = true

[[portals]]
code = "{code}-archive-door"
x_m = {x}.0
y_m = 0.0
name = "Archive door {code} (leaves the unit)"
inside = "{code}-archive"
outside = "outside"

[[devices]]
name = "{code}-door-panel"
kind = "osdp_panel"
portal = "{code}-archive-door"
transport = "pty"
address = 1
scbk_env = "CUSTODIAN_SCBK_{env}"
strike_ms = 1500

[[devices]]
name = "{code}-door-reader"
kind = "llrp_reader"
portal = "{code}-archive-door"
host = "127.0.0.1"
port = 5084
antennas = [{{ number = 1, side = "inside" }}, {{ number = 2, side = "outside" }}]

[[people]]
username = "{code}-gus"
name = "Gus Guard ({code})"
clearance = "secret"
roles = ["guard"]
badges = ["{n}0005"]

[[people]]
username = "{code}-paul"
name = "Paul Approver ({code})"
clearance = "top_secret"
roles = ["approver"]
badges = ["{n}0003"]

[[people]]
username = "{code}-bob"
name = "Bob Researcher ({code})"
clearance = "secret"
roles = ["custodian"]
badges = ["{n}0013"]
groups = ["{code}-readers"]

[[people]]
username = "{code}-carol"
name = "Carol Researcher ({code})"
clearance = "secret"
roles = ["custodian"]
badges = ["{n}0014"]
groups = ["{code}-readers"]

[[items]]
register_number = "S-{code}-001"
title = "Negotiation briefing ({code})"
kind = "paper"
level = "secret"
period_start = 2026-02-01
period_months = 120
originating_unit = "Example Institute"
epc = "E28011700000{n:04d}00000001"
venue = "{code}-archive"
scope_groups = ["{code}-readers"]

[[items]]
register_number = "S-{code}-002"
title = "Archive backup disk ({code})"
kind = "hdd"
level = "secret"
period_start = 2026-02-01
period_months = 120
originating_unit = "Example Institute"
epc = "E28011700000{n:04d}00000002"
venue = "{code}-archive"
scope_groups = ["{code}-readers"]

[[approvals]]
ref = "A-{code}-0001"
kind = "carry_out"
requester = "{code}-bob"
approvers = ["{code}-paul"]
items = ["S-{code}-001"]
people = ["{code}-bob"]
valid_from = 2026-01-01T00:00:00Z
valid_until = 2030-12-31T23:59:59Z
uses = 1000
reason = "Briefings at the ministry"
"""


@dataclass(frozen=True)
class DemoSite:
    """What the traffic of one demo site needs to know."""

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
        return {"gus": f"{self.number}0005", "bob": f"{self.number}0013", "carol": f"{self.number}0014"}[who]

    def epc(self, item: int) -> str:
        return f"E28011700000{self.number:04d}{item:08d}"

    def text(self) -> str:
        env = self.code.upper().replace("-", "_")
        return TEMPLATE.format(code=self.code, n=self.number, x=10 * self.number, env=env)

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.code}.toml"
        path.write_text(self.text(), encoding="utf-8")
        return path


def demo_sites(count: int) -> list[DemoSite]:
    return [DemoSite(f"site-{chr(ord('a') + k)}", k + 1) for k in range(count)]


class SiteTraffic:
    """People at a demo site's door, acting only through its simulators (as `custodian.demo.Traffic`)."""

    def __init__(self, site: DemoSite, running: RunningSite) -> None:
        self.site = site
        self.running = running

    def exit_attempt(self, who: str, items: tuple[int, ...] = (), wait_s: float = 8.0) -> bool:
        """`who` walks up holding `items`, badges and waits for the decision; True if the door opened."""
        sims = self.running.sims
        assert sims is not None, "the site runs without simulators"
        reader, panel = sims.llrp[self.site.reader], sims.panels[self.site.panel]
        epcs = [self.site.epc(n) for n in items]

        def hold(seconds: float) -> None:
            steps = int(seconds / 0.05)
            reader.walk_from_now([WalkStep(0.05 * k, epc, 1, -52) for epc in epcs for k in range(steps)])

        decided = self._decisions()
        hold(0.6)
        time.sleep(0.3)
        since = len(panel.commands)
        panel.present_card(f"{int(self.site.badge(who)):08x}", 32)
        deadline = time.monotonic() + wait_s
        while self._decisions() == decided and time.monotonic() < deadline:
            hold(0.15)
            time.sleep(0.1)
        deadline = time.monotonic() + 1.0
        while not (opened := any(c.kind == "output" for c in panel.commands[since:])) and time.monotonic() < deadline:
            time.sleep(0.02)
        if opened and epcs:
            reader.walk_from_now([WalkStep(0.05 * k, epc, 2, -50) for epc in epcs for k in range(4)])
            time.sleep(0.5)
        return opened

    def _decisions(self) -> int:
        return sum(1 for e in self.running.bus.history() if e.source == self.site.portal and
                   e.title.lower().startswith("exit"))
