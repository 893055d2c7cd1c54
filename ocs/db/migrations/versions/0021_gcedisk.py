"""Compute Engine disks and snapshots: their names, descriptions and labels

``gce_disks`` holds a volume's Compute Engine name (unique per project and zone),
description and labels; ``gce_snapshots`` a snapshot's name (unique per project),
description, labels and the URL of its source disk.

Revision ID: 0021
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fks(table: str, column: str, target: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "gce_disks",
        sa.Column("volume_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("device_name", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_fks("gce_disks", "volume_id", "volumes"),
        sa.PrimaryKeyConstraint("volume_id", name=op.f("pk_gce_disks")),
        sa.UniqueConstraint("account_id", "zone", "name", name=op.f("uq_gce_disks_account_id_zone_name")),
    )
    op.create_table(
        "gce_snapshots",
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("source_disk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_fks("gce_snapshots", "snapshot_id", "snapshots"),
        sa.PrimaryKeyConstraint("snapshot_id", name=op.f("pk_gce_snapshots")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_gce_snapshots_account_id_name")),
    )


def downgrade() -> None:
    op.drop_table("gce_snapshots")
    op.drop_table("gce_disks")
