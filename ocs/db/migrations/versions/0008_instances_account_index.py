"""index instances by (account_id, id) for DescribeInstances pages

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_instances_account_id", "instances", ["account_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_instances_account_id", table_name="instances")
