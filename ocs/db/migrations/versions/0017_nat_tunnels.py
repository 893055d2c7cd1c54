"""NAT gateways on the wire, tunnel addresses in the database

Two nullable columns: ``nat_gateways.host`` (indexed), the host whose network
service carries the gateway (rows made before stay records: no host), and
``services.tunnel_ip``, the VXLAN underlay address a network service records with
its heartbeat so that the other hosts find it without configuration.

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nat_gateways") as batch:
        batch.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch.create_index("ix_nat_gateways_host", ["host"])
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("tunnel_ip", sa.String(length=45), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("tunnel_ip")
    with op.batch_alter_table("nat_gateways") as batch:
        batch.drop_index("ix_nat_gateways_host")
        batch.drop_column("host")
