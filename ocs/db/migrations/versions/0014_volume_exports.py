"""Volume exports: where a hypervisor finds a volume's bytes

One new nullable column, ``volumes.export`` (JSON: the backend's ``Export``,
``{"backend", "target", "options"}``), written by the volume service once it has
made a volume's bytes, read by the API and the scheduler to tell a compute agent
what to attach. Rows made before it get theirs when the volume service next starts
(it records the export of every volume that has none).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("export", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("export")
