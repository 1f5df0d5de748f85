"""The `custodian init` command: schema and first administrator, whose password never reaches the output."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custodian.cli import app
from registry import db, passwords
from registry.models import JournalEntry, Person


def test_init_creates_the_administrator_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'init.db'}"
    monkeypatch.setenv("CUSTODIAN_ADMIN_PASSWORD", "correct horse battery")
    first = CliRunner().invoke(app, ["init", "--db", url, "--admin", "root-admin"])
    assert first.exit_code == 0 and "created administrator root-admin" in first.output
    assert "correct horse" not in first.output
    again = CliRunner().invoke(app, ["init", "--db", url])
    assert again.exit_code == 0 and "already initialised" in again.output
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        admin = session.execute(select(Person)).scalar_one()
        assert admin.role_names == {"administrator"}
        assert passwords.check_password(admin.password_hash, "correct horse battery")
        payloads = " ".join(session.execute(select(JournalEntry.payload)).scalars())
        assert "correct horse" not in payloads and "argon2" not in payloads
    engine.dispose()


def test_request_then_approve_by_someone_else_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    site = Path(__file__).resolve().parents[2] / "examples" / "site.toml"
    assert runner.invoke(app, ["site", "load", str(site), "--db", url]).exit_code == 0
    asked = runner.invoke(
        app,
        [
            "approvals",
            "request",
            "A-CLI-1",
            "--as",
            "petra",
            "--kind",
            "carry_out",
            "--item",
            "C-2026-001",
            "--person",
            "carol",
            "--until",
            "2030-01-01T00:00:00+00:00",
            "--db",
            url,
        ],
    )
    assert asked.exit_code == 0, asked.output
    own = runner.invoke(app, ["approvals", "approve", "A-CLI-1", "--as", "petra", "--db", url])
    assert own.exit_code == 2 and "approval.self_approval" in own.output
    done = runner.invoke(app, ["approvals", "approve", "A-CLI-1", "--as", "paul", "--db", url])
    assert done.exit_code == 0 and "approved" in done.output
    naive = runner.invoke(
        app,
        [
            "approvals",
            "request",
            "A-CLI-2",
            "--as",
            "carol",
            "--kind",
            "carry_out",
            "--item",
            "C-2026-001",
            "--until",
            "2030-01-01",
            "--db",
            url,
        ],
    )
    assert naive.exit_code == 2 and "time zone" in naive.output
