"""Reports and shared images.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(4), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("verdict", sa.String(9), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("client", sa.String(40), nullable=True),
        sa.Column("image_shared", sa.Boolean, nullable=False),
        sa.CheckConstraint("label IN ('ai', 'real')", name="ck_feedback_reports_label"),
    )
    op.create_index("ix_feedback_reports_sha256", "feedback_reports", ["sha256"])
    op.create_table(
        "feedback_images",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feedback_images")
    op.drop_index("ix_feedback_reports_sha256", table_name="feedback_reports")
    op.drop_table("feedback_reports")
