"""alarms keyed by (site, id): the centre holds every site's alarm book, and two sites both have an alarm 7

Revision ID: 0007
Revises: 0006

Rows already there get the site of the records this register took when they all came from one site (a single
site's own book); otherwise (a centre that had merged several sites' ids) they keep site "".
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("site", sa.String(length=64), nullable=False, server_default=""))
    op.execute(
        "UPDATE alarms SET site = (SELECT MIN(site) FROM accepted_records) "
        "WHERE (SELECT COUNT(DISTINCT site) FROM accepted_records) = 1"
    )
    _primary_key(["site", "id"])


def downgrade() -> None:
    _primary_key(["id"])
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("site")


def _primary_key(columns: list[str]) -> None:
    if op.get_context().dialect.name == "sqlite":  # a table's key changes by copying it
        with warnings.catch_warnings():  # SQLAlchemy notes that the copy's key differs from the reflected one
            warnings.filterwarnings("ignore", "Table '_alembic_tmp_alarms' specifies columns")
            with op.batch_alter_table("alarms", recreate="always") as batch:
                batch.create_primary_key("pk_alarms", columns)
    else:
        op.drop_constraint("alarms_pkey", "alarms", type_="primary")
        op.create_primary_key("alarms_pkey", "alarms", columns)
