"""Alembic environment: the engine is handed over by `registry.db.upgrade`, never read from a file."""

from alembic import context

from registry.models import Base

engine = context.config.attributes.get("engine")
if engine is None:  # pragma: no cover - only when alembic is driven by hand
    from registry.db import make_engine

    engine = make_engine()

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
