"""Volume modifications, snapshot sharing and copies, volume attributes, attachment timing

* ``volume_modifications``: the latest ModifyVolume of each volume (EC2's
  DescribeVolumesModifications reports the latest one), ``modifying`` →
  ``optimizing`` → ``completed`` (or ``failed``), with the original and target
  size, type, IOPS, throughput and Multi-Attach flag.
* ``snapshot_permissions``: who may create volumes from a snapshot (an account ID,
  or ``all``), EC2's ``createVolumePermission``.
* ``snapshots.source_snapshot_id`` (CopySnapshot: the service copies that
  snapshot's bytes) and ``snapshots.kms_key_id`` (recorded, not used).
* ``volumes.auto_enable_io`` (DescribeVolumeAttribute/ModifyVolumeAttribute).
* ``volume_attachments.changed_at``: when the attachment entered its state, so that
  the volume service can settle one stuck ``attaching`` or ``detaching``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "volume_modifications",
        sa.Column("volume_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.String(length=255), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("original_size", sa.Integer(), nullable=False),
        sa.Column("original_volume_type", sa.String(length=16), nullable=False),
        sa.Column("original_iops", sa.Integer(), nullable=True),
        sa.Column("original_throughput", sa.Integer(), nullable=True),
        sa.Column("original_multi_attach", sa.Boolean(), nullable=False),
        sa.Column("target_size", sa.Integer(), nullable=False),
        sa.Column("target_volume_type", sa.String(length=16), nullable=False),
        sa.Column("target_iops", sa.Integer(), nullable=True),
        sa.Column("target_throughput", sa.Integer(), nullable=True),
        sa.Column("target_multi_attach", sa.Boolean(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_volume_modifications_volume_id_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_id", name=op.f("pk_volume_modifications")),
    )
    op.create_table(
        "snapshot_permissions",
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("grantee", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_snapshot_permissions_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "grantee", name=op.f("pk_snapshot_permissions")),
    )
    with op.batch_alter_table("snapshot_permissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snapshot_permissions_grantee"), ["grantee"], unique=False)
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("source_snapshot_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("kms_key_id", sa.String(length=255), nullable=True))
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("auto_enable_io", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("volume_attachments") as batch:
        batch.add_column(sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("volume_attachments") as batch:
        batch.drop_column("changed_at")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("auto_enable_io")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("kms_key_id")
        batch.drop_column("source_snapshot_id")
    op.drop_table("snapshot_permissions")
    op.drop_table("volume_modifications")
