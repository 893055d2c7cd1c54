"""auto-assigned public IPv4 addresses share the elastic IP table

``elastic_addresses.kind`` tells an elastic IP (``elastic``, every existing row)
from a public address given to an instance's primary interface at launch or
start (``auto``); both kinds take their addresses from the one public pool, so
the unique ``public_ip`` keeps them apart, and both map to (interface, private
address) through the same association columns. ``network_interfaces.
associate_public_ip`` remembers that the interface's instance gets an auto
address whenever it runs without an elastic IP (its launch asked for one).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("elastic_addresses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="elastic"))
    with op.batch_alter_table("network_interfaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("associate_public_ip", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Auto addresses have no place without the column: they go (elastic IPs stay).
    addresses = sa.table("elastic_addresses", sa.column("kind", sa.String))
    op.execute(addresses.delete().where(addresses.c.kind == "auto"))
    with op.batch_alter_table("network_interfaces", schema=None) as batch_op:
        batch_op.drop_column("associate_public_ip")
    with op.batch_alter_table("elastic_addresses", schema=None) as batch_op:
        batch_op.drop_column("kind")
