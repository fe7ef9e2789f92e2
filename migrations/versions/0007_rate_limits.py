"""rate limit windows

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("rate_limit_window"):
        return  # created on first use by kernel.ratelimit before this migration existed
    op.create_table(
        "rate_limit_window",
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    op.create_index("ix_rate_limit_window_expires_at", "rate_limit_window", ["expires_at"])


def downgrade() -> None:
    op.drop_table("rate_limit_window")
