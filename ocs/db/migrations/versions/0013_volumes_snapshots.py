"""EBS volumes, their attachments to instances, and snapshots

Three new tables, nothing else touched: ``volumes`` (state ``creating`` →
``available`` ↔ ``in-use`` → ``deleting``, or ``error``), ``volume_attachments``
(one row per volume attached to an instance; (instance, device) unique) and
``snapshots`` (``pending`` → ``completed``, or ``error``). Snapshots and volumes
do not refer to each other by foreign key: either outlives the other.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("availability_zone", sa.String(length=64), nullable=False),
        sa.Column("size_gib", sa.Integer(), nullable=False),
        sa.Column("volume_type", sa.String(length=16), nullable=False),
        sa.Column("iops", sa.Integer(), nullable=True),
        sa.Column("throughput", sa.Integer(), nullable=True),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("snapshot_id", sa.String(length=32), nullable=True),
        sa.Column("multi_attach_enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("volumes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
    )
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volumes_account_id"), ["account_id"], unique=False)

    op.create_table(
        "volume_attachments",
        sa.Column("volume_id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("delete_on_termination", sa.Boolean(), nullable=False),
        sa.Column("attach_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_volume_attachments_volume_id_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_id", "instance_id", name=op.f("pk_volume_attachments")),
        sa.UniqueConstraint("instance_id", "device", name=op.f("uq_volume_attachments_instance_id_device")),
    )

    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("volume_id", sa.String(length=32), nullable=False),
        sa.Column("volume_size", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("status_message", sa.String(length=255), nullable=False),
        sa.Column("data_bytes", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        _account_fk("snapshots"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snapshots_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshots_volume_id"), ["volume_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes (dropping them first fails on MariaDB where a
    # foreign key needs them); attachments go before the volumes they refer to.
    op.drop_table("snapshots")
    op.drop_table("volume_attachments")
    op.drop_table("volumes")
