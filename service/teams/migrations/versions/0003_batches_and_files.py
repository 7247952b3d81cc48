"""Message Batches and Files: the batches, their requests (custom_id ↔ Gemini batch and index, result),
the Gemini batches they run as, the files the proxy keeps and their copies in Gemini's Files API.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_batches",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("key_name", sa.String(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger()),
        sa.Column("cancel_ms", sa.BigInteger()),
    )
    op.create_index("message_batches_key", "message_batches", ["key_name", "created_ms"])
    op.create_table(
        "gemini_batches",
        sa.Column("name", sa.String(), primary_key=True),               # batches/...
        sa.Column("batch_id", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),               # gemini/<model>
        sa.Column("key_tag", sa.String(), nullable=False),              # which key of the pool runs it
        sa.Column("state", sa.String(), nullable=False),                # Gemini's, or "collecting" / "collected"
        sa.Column("claimed_ms", sa.BigInteger()),                       # when a replica began collecting it
    )
    op.create_index("gemini_batches_batch", "gemini_batches", ["batch_id"])
    op.create_table(
        "batch_requests",
        sa.Column("batch_id", sa.String(), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("custom_id", sa.String(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),                 # the request as translated (JSON)
        sa.Column("gemini_batch", sa.String()),                         # None: settled without Gemini
        sa.Column("gemini_index", sa.Integer()),
        sa.Column("result_type", sa.String()),                          # None while processing
        sa.Column("result", sa.Text()),                                 # the result object (JSON)
    )
    op.create_index("batch_requests_gemini", "batch_requests", ["gemini_batch"])
    op.create_table(
        "stored_files",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("key_name", sa.String(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("mime_type", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("stored_files_key", "stored_files", ["key_name", "created_ms"])
    op.create_table(
        "gemini_files",
        sa.Column("file_id", sa.String(), primary_key=True),
        sa.Column("key_tag", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),                 # files/...
        sa.Column("uri", sa.String(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gemini_files")
    op.drop_index("stored_files_key", "stored_files")
    op.drop_table("stored_files")
    op.drop_index("batch_requests_gemini", "batch_requests")
    op.drop_table("batch_requests")
    op.drop_index("gemini_batches_batch", "gemini_batches")
    op.drop_table("gemini_batches")
    op.drop_index("message_batches_key", "message_batches")
    op.drop_table("message_batches")
