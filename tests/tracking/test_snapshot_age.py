"""An edge whose register snapshot is older than its site's limit: items may not leave, people may."""

from __future__ import annotations

import pytest

from tests.tracking.sites import SECOND, epc_for, vault_site
from tests.tracking.test_exit_rules import CONFIG, T0, badge, carry_out, item, only, rest
from tracking.engine import Engine
from tracking.snapshot import build_snapshot


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_restricted_exits_refuse_items_with_their_reason_and_let_people_out(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1),), approvals=(carry_out(1, uses=5),))), CONFIG, backend)
    engine.exits_restricted = True
    rest(engine, 20, epc_for(1), T0 - 200_000, T0 + 200_000)
    badge(engine, 20, "alice", T0)
    refused = only(engine.advance(T0 + 8 * SECOND).decisions, "alice")
    assert not refused.allow and refused.reason_names == ("snapshot_too_old",), "the approval is not enough"

    badge(engine, 20, "alice", T0 + 20 * SECOND)  # empty-handed: a person may always leave
    assert only(engine.advance(T0 + 30 * SECOND).decisions, "alice").allow

    engine.exits_restricted = False  # a fresh snapshot came
    rest(engine, 20, epc_for(1), T0 + 40 * SECOND - 200_000, T0 + 40 * SECOND + 200_000)
    badge(engine, 20, "alice", T0 + 40 * SECOND)
    assert only(engine.advance(T0 + 50 * SECOND).decisions, "alice").allow
