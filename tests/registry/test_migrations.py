"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and the newest one
can be undone and redone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from registry import db
from registry.models import Base


def differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_models_and_migrations_are_in_step(engine: Engine) -> None:
    assert differences(engine) == []


def test_the_newest_migration_downgrades_and_upgrades_again(engine: Engine) -> None:
    config = db.alembic_config(engine)
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
    assert differences(engine) == []
