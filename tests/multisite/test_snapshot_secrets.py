"""A site's register snapshot carries only the password hashes its edge checks: those of its own guards (for
overrides at its doors), destruction operators and witnesses. A stolen edge gives no offline guessing of anyone
else's password."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import demo_sites
from multisite.replica import RegisterReplica
from registry import db
from registry.models import Person
from registry.passwords import hash_password
from registry.services import people


def hashes(replica: RegisterReplica) -> dict[str, str | None]:
    columns, rows = replica.tables["people"]
    name, secret = columns.index("username"), columns.index("password_hash")
    return {row[name]: row[secret] for row in rows}


def test_a_sites_snapshot_holds_no_hash_of_anyone_but_its_guards(tmp_path: Path) -> None:
    files = tuple(s.write(tmp_path / "files") for s in demo_sites(2))
    centre = CentreSite(CentreOptions(f"sqlite:///{tmp_path / 'centre.db'}", files, tmp_path / "centre")).start()
    try:
        with db.transaction(centre.factory) as session:
            for person in session.execute(select(Person)).scalars():  # everyone has a password at the centre
                people.set_password_hash(session, "test", person, hash_password("p4ssword-2026"))
        with centre.factory() as session:
            a = hashes(centre.replica(session, "site-a", 1, 0, {}))
            b = hashes(centre.replica(session, "site-b", 1, 0, {}))
        assert set(a) == set(b), "every person is in every snapshot (badges, clearances, approvals)"
        holders = [who for who, secret in a.items() if secret]
        assert holders == ["site-a-gus"], "site-a's guard only (its approver and custodians sign in at the centre)"
        assert not b.get("site-a-gus") and not a.get("site-b-gus"), "no other site's guard"
    finally:
        centre.stop()
