"""The service tier each row was served at (standard, priority, flex, batch), for the usage report's
``group_by[]=service_tier`` and the cost report's tier prices.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.add_column(sa.Column("service_tier", sa.String(), nullable=False, server_default="standard"))


def downgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.drop_column("service_tier")
