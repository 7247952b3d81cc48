"""The part of each row's cache writes kept for an hour (``cache_control`` ``ttl: "1h"``), so that the usage
report splits ``cache_creation`` into its 5-minute and 1-hour parts as Anthropic's does; 0 for rows before it.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.add_column(sa.Column("cache_creation_1h_input_tokens", sa.BigInteger(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.drop_column("cache_creation_1h_input_tokens")
