"""An override needs the guard's password checked against the register at that moment: while the register is
away for real (PostgreSQL refusing the login), no override is taken. (A SQLite register locked by another
process still answers reads in WAL mode, so there the password can be checked and the override goes on.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.bus import LiveBus
from controllers.control import NoFreshBlock, RegisterUnavailable
from controllers.site import SiteRuntime
from custodian.web import DEMO_PASSWORD, set_demo_passwords
from registry import db
from registry.sitefile import load
from tests.controllers.conftest import EXAMPLE_SITE, OutageRegister


@pytest.fixture
def register(tmp_path: Path) -> Iterator[OutageRegister]:
    found = OutageRegister("postgresql", tmp_path)
    try:
        yield found
    finally:
        found.close()


@pytest.mark.postgres
def test_no_override_while_the_register_cannot_check_the_password(register: OutageRegister, tmp_path: Path) -> None:
    outage_register = register
    with db.transaction(outage_register.factory) as session:
        load(session, "site-loader", EXAMPLE_SITE)
    set_demo_passwords(outage_register.factory)
    runtime = SiteRuntime(outage_register.factory, LiveBus(), tmp_path / "spool", backend="reference").start()
    try:
        outage_register.take_away()
        with pytest.raises(RegisterUnavailable, match="password cannot be checked"):
            runtime.override("main-exit", "gus", DEMO_PASSWORD, "courier confirmed by phone")
        outage_register.give_back()
        with pytest.raises(NoFreshBlock):  # back: the password is checked, the engine finds no block
            runtime.override("main-exit", "gus", DEMO_PASSWORD, "courier confirmed by phone")
    finally:
        outage_register.give_back()
        runtime.stop()
