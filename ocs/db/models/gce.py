"""What the Compute Engine front end keeps besides the cloud's own rows.

* ``gce_service_keys``: the PUBLIC half of a service-account key of an account
  (``ocs-manage account gce-key``); the private key is written to the operator's
  key file once and never stored. ``id`` is the key file's ``private_key_id``
  (the ``kid`` of the JWTs it signs).
* ``gce_operations``: Compute Engine Operation resources, one per mutation;
  ``status`` is settled (PENDING/RUNNING → DONE) from the target's state when read.
* ``gce_instances``: the Compute Engine view of an instance (its ``name``, unique
  per project and zone, labels, metadata, network tags). An instance made through
  EC2 has no row: it shows under its instance ID as name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow


class GceServiceKey(Base):
    __tablename__ = "gce_service_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    client_email: Mapped[str] = mapped_column(String(255), index=True)
    public_key: Mapped[str] = mapped_column(Text)  # PEM, SubjectPublicKeyInfo
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"GceServiceKey(id={self.id!r}, account_id={self.account_id!r})"


class GceOperation(Base):
    __tablename__ = "gce_operations"
    __table_args__ = (UniqueConstraint("account_id", "request_id"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(20), index=True)  # decimal uint64
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(8))  # zone | region | global
    location: Mapped[str] = mapped_column(String(64), default="")  # the zone or region name
    operation_type: Mapped[str] = mapped_column(String(32))
    target_link: Mapped[str] = mapped_column(Text, default="")
    target_id: Mapped[str] = mapped_column(String(20), default="")
    target: Mapped[str | None] = mapped_column(String(32))  # the OCS resource ID it waits on
    status: Mapped[str] = mapped_column(String(8), default="RUNNING")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    user: Mapped[str] = mapped_column(String(255), default="")
    request_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    http_error_status_code: Mapped[int | None] = mapped_column(Integer)
    http_error_message: Mapped[str | None] = mapped_column(String(64))
    insert_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    start_time: Mapped[dt.datetime | None] = mapped_column()
    end_time: Mapped[dt.datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"GceOperation(name={self.name!r}, type={self.operation_type!r}, status={self.status!r})"


class GceInstance(Base):
    __tablename__ = "gce_instances"
    __table_args__ = (UniqueConstraint("account_id", "zone", "name"),)

    instance_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    zone: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    metadata_items: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    network_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"GceInstance(instance_id={self.instance_id!r}, name={self.name!r})"


class GceDisk(Base):
    """The Compute Engine view of an EBS volume: its disk ``name`` (unique per project and
    zone), description and labels. A volume made through EC2 has no row: it shows under
    its volume ID."""

    __tablename__ = "gce_disks"
    __table_args__ = (UniqueConstraint("account_id", "zone", "name"),)

    volume_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    zone: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    device_name: Mapped[str | None] = mapped_column(String(64))  # while attached: attachDisk's deviceName
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GceSnapshot(Base):
    """The Compute Engine view of an EBS snapshot: its ``name`` (unique per project), labels
    and the URL of its source disk (kept: the disk may be gone)."""

    __tablename__ = "gce_snapshots"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    snapshot_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    source_disk: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
