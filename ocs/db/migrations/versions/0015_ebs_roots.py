"""EBS-backed images: the block device mappings of an image

One new table, nothing else touched: ``image_block_devices`` (one row per device
name of an image: an EBS volume made from a snapshot or blank, an instance store
volume ``ephemeralN``, or a suppressed device), written by RegisterImage and
CreateImage, read by RunInstances (the volumes an instance of the image gets),
DescribeImages and DeleteSnapshot (a snapshot a live image names is in use).
Existing images have no rows: their disk is in the image store, as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_block_devices",
        sa.Column("image_id", sa.String(length=21), nullable=False),
        sa.Column("device_name", sa.String(length=32), nullable=False),
        sa.Column("snapshot_id", sa.String(length=32), nullable=True),
        sa.Column("volume_size", sa.Integer(), nullable=True),
        sa.Column("volume_type", sa.String(length=16), nullable=True),
        sa.Column("iops", sa.Integer(), nullable=True),
        sa.Column("throughput", sa.Integer(), nullable=True),
        sa.Column("encrypted", sa.Boolean(), nullable=True),
        sa.Column("delete_on_termination", sa.Boolean(), nullable=True),
        sa.Column("virtual_name", sa.String(length=32), nullable=True),
        sa.Column("no_device", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_block_devices_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "device_name", name=op.f("pk_image_block_devices")),
    )
    with op.batch_alter_table("image_block_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_block_devices_snapshot_id"), ["snapshot_id"], unique=False)


def downgrade() -> None:
    op.drop_table("image_block_devices")
