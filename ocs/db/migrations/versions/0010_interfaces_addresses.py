"""network interfaces, their private addresses, and elastic IP addresses

Every instance that still holds an address gets its primary network interface
(device index 0, delete on termination) with the identity it carried inline:
same interface ID, MAC, address and groups.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_interfaces",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("subnet_id", sa.String(length=32), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("availability_zone", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("mac_address", sa.String(length=17), nullable=False),
        sa.Column("private_ip_address", sa.String(length=45), nullable=False),
        sa.Column("security_group_ids", sa.JSON(), nullable=False),
        sa.Column("source_dest_check", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("interface_type", sa.String(length=32), nullable=False),
        sa.Column("requester_managed", sa.Boolean(), nullable=False),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.Column("attachment_id", sa.String(length=32), nullable=True),
        sa.Column("instance_id", sa.String(length=32), nullable=True),
        sa.Column("device_index", sa.Integer(), nullable=True),
        sa.Column("attach_status", sa.String(length=16), nullable=True),
        sa.Column("attach_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delete_on_termination", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_network_interfaces_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_interfaces")),
        sa.UniqueConstraint("attachment_id", name=op.f("uq_network_interfaces_attachment_id")),
        sa.UniqueConstraint(
            "instance_id", "device_index", name=op.f("uq_network_interfaces_instance_id_device_index")
        ),
    )
    with op.batch_alter_table("network_interfaces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_interfaces_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_network_interfaces_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index("ix_network_interfaces_subnet_id", ["subnet_id"], unique=False)

    op.create_table(
        "interface_addresses",
        sa.Column("subnet_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("network_interface_id", sa.String(length=32), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_interface_id"],
            ["network_interfaces.id"],
            name=op.f("fk_interface_addresses_network_interface_id_network_interfaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "address", name=op.f("pk_interface_addresses")),
    )
    with op.batch_alter_table("interface_addresses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interface_addresses_network_interface_id"), ["network_interface_id"], unique=False
        )

    op.create_table(
        "elastic_addresses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("public_ip", sa.String(length=45), nullable=False),
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("association_id", sa.String(length=32), nullable=True),
        sa.Column("network_interface_id", sa.String(length=32), nullable=True),
        sa.Column("private_ip_address", sa.String(length=45), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_elastic_addresses_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elastic_addresses")),
        sa.UniqueConstraint("association_id", name=op.f("uq_elastic_addresses_association_id")),
        sa.UniqueConstraint(
            "network_interface_id",
            "private_ip_address",
            name=op.f("uq_elastic_addresses_network_interface_id_private_ip_address"),
        ),
        sa.UniqueConstraint("public_ip", name=op.f("uq_elastic_addresses_public_ip")),
    )
    with op.batch_alter_table("elastic_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_elastic_addresses_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_elastic_addresses_network_interface_id"), ["network_interface_id"], unique=False
        )

    _primary_interfaces_of_existing_instances()


def _fallback_mac(instance_id: str) -> str:
    """The MAC the scheduler gave an instance that had none recorded (``fallback_mac``)."""
    digest = hashlib.sha256(instance_id.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def _primary_interfaces_of_existing_instances() -> None:
    instances = sa.table(
        "instances",
        sa.column("id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("state", sa.String),
        sa.column("availability_zone", sa.String),
        sa.column("vpc_id", sa.String),
        sa.column("subnet_id", sa.String),
        sa.column("private_ip_address", sa.String),
        sa.column("mac_address", sa.String),
        sa.column("network_interface_id", sa.String),
        sa.column("security_group_ids", sa.JSON),
        sa.column("launch_time", sa.DateTime(timezone=True)),
    )
    interfaces = sa.table(
        "network_interfaces",
        *(
            sa.column(name)
            for name in [
                "id",
                "account_id",
                "subnet_id",
                "vpc_id",
                "availability_zone",
                "description",
                "mac_address",
                "private_ip_address",
                "source_dest_check",
                "status",
                "interface_type",
                "requester_managed",
                "attachment_id",
                "instance_id",
                "device_index",
                "attach_status",
                "delete_on_termination",
            ]
        ),
        sa.column("security_group_ids", sa.JSON),
        sa.column("attach_time", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    addresses = sa.table(
        "interface_addresses",
        *(sa.column(name) for name in ["subnet_id", "address", "network_interface_id", "is_primary"]),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(instances).where(
            instances.c.state != "terminated",
            instances.c.subnet_id.is_not(None),
            instances.c.private_ip_address.is_not(None),
        )
    ).all()
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        eni_id = row.network_interface_id or "eni-" + secrets.token_hex(9)[:17]
        when = row.launch_time or now
        bind.execute(
            interfaces.insert().values(
                id=eni_id,
                account_id=row.account_id,
                subnet_id=row.subnet_id,
                vpc_id=row.vpc_id or "",
                availability_zone=row.availability_zone,
                description="",
                mac_address=row.mac_address or _fallback_mac(row.id),
                private_ip_address=row.private_ip_address,
                security_group_ids=list(row.security_group_ids or []),
                source_dest_check=True,
                status="in-use",
                interface_type="interface",
                requester_managed=False,
                attachment_id="eni-attach-" + secrets.token_hex(9)[:17],
                instance_id=row.id,
                device_index=0,
                attach_status="attached",
                attach_time=when,
                delete_on_termination=True,
                created_at=when,
            )
        )
        bind.execute(
            addresses.insert().values(
                subnet_id=row.subnet_id,
                address=row.private_ip_address,
                network_interface_id=eni_id,
                is_primary=True,
                created_at=when,
            )
        )
        if not row.network_interface_id or not row.mac_address:
            bind.execute(
                instances.update()
                .where(instances.c.id == row.id)
                .values(network_interface_id=eni_id, mac_address=row.mac_address or _fallback_mac(row.id))
            )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB, where
    # an index a foreign key needs cannot be dropped on its own.
    op.drop_table("elastic_addresses")
    op.drop_table("interface_addresses")
    op.drop_table("network_interfaces")
