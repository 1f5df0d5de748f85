"""Inventory reconciliation of a venue sweep."""

from __future__ import annotations

import pytest

from tests.tracking.sites import SECOND, carry, epc_for, vault_site
from tracking.engine import Engine
from tracking.model import EngineConfig, ItemSpec
from tracking.snapshot import build_snapshot


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_sweep_finds_missing_elsewhere_unregistered_and_destroyed(backend: str) -> None:
    items = (
        ItemSpec(1, epc_for(1), None, 2, "active", 2),  # here, seen
        ItemSpec(2, epc_for(2), None, 2, "active", 2),  # here, not seen -> missing
        ItemSpec(3, epc_for(3), None, 2, "active", 3),  # registered in venue 3, seen here
        ItemSpec(4, epc_for(4), None, 2, "destroyed", 2),  # destroyed, seen
        ItemSpec(5, epc_for(5), None, 2, "destroyed", 2),  # destroyed, not seen: not missing
        ItemSpec(6, epc_for(6), None, 2, "active", 2),  # carried out before the sweep
    )
    engine = Engine(build_snapshot(vault_site(items=items)), EngineConfig(), backend)
    carry(engine, 20, [epc_for(6)], SECOND)
    engine.advance(5 * SECOND)
    result = engine.reconcile(2, [epc_for(1), epc_for(3), epc_for(4), "ffff" * 6, epc_for(1)])
    assert result.missing == (2,)
    assert result.elsewhere == (3,)
    assert result.unregistered == ("FFFF" * 6,)
    assert result.destroyed_seen == (4,)
