"""What each row's output was booked from (issue 28): ``gemini`` (Gemini's usage report) or ``estimate``
(what the proxy wrote, for a stream that ended before Gemini counted its output); NULL for rows
before this revision and for answers Gemini reported no usage for.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.add_column(sa.Column("usage_source", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_ledger") as table:
        table.drop_column("usage_source")
