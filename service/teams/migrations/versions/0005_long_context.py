"""Whether each row's prompt was over prices.yaml's ``long_context_tokens`` (200k), so that the cost report
prices its tokens at the model's ``above_long_context`` rates; false for rows before this revision.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.add_column(sa.Column("long_context", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.drop_column("long_context")
