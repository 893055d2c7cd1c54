"""Compute: hosts, service heartbeats, reservations, instances and quotas.

The database holds the desired state of every instance (``state``) and what the
agents last observed (``power_state``); the scheduler service reconciles the two.
A host's ``*_used`` columns are the resources claimed by instances placed on it;
they change only through conditional updates (see ``ocs.db.compute``) so that
several schedulers at once never overcommit a host.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow

_ID = 32


class Host(Base):
    """A compute host, as its agent reports it and as operators set it."""

    __tablename__ = "hosts"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    availability_zone: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(32), default="fake")
    hypervisor_version: Mapped[str] = mapped_column(String(64), default="")
    architectures: Mapped[str] = mapped_column(String(128), default="x86_64")  # comma-separated
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mib: Mapped[int] = mapped_column(Integer, default=0)
    disk_gib: Mapped[int] = mapped_column(Integer, default=0)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mib_used: Mapped[int] = mapped_column(Integer, default=0)
    disk_gib_used: Mapped[int] = mapped_column(Integer, default=0)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    last_heartbeat: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServiceRecord(Base):
    """The last heartbeat of one service process (scheduler, network, compute ...)."""

    __tablename__ = "services"

    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: A network service's VXLAN underlay address (the other hosts' tunnel peer).
    tunnel_ip: Mapped[str | None] = mapped_column(String(45))


class Reservation(Base):
    """One RunInstances request: the instances it launched share it."""

    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    requester_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Instance(Base):
    """An instance: what the account asked for, where it runs, and what was seen of it.

    ``state`` is EC2's state name (pending, running, stopping, stopped,
    shutting-down, terminated); ``task`` is the operation in flight (scheduling,
    spawning, stopping, starting, rebooting, terminating) or None.
    ``hosts_tried`` lists the hosts a build already failed on (for rescheduling).
    ``version`` grows with every change so that concurrent writers can detect races.
    """

    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_account_state", "account_id", "state"),
        Index("ix_instances_account_id", "account_id", "id"),  # pages of DescribeInstances
        Index("ix_instances_host", "host"),
        UniqueConstraint("subnet_id", "private_ip_address"),
    )

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    reservation_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("reservations.id", ondelete="CASCADE"), index=True
    )
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    image_id: Mapped[str] = mapped_column(String(_ID))
    kernel_id: Mapped[str | None] = mapped_column(String(_ID))
    ramdisk_id: Mapped[str | None] = mapped_column(String(_ID))
    instance_type: Mapped[str] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    disk_gib: Mapped[int] = mapped_column(Integer)
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    key_name: Mapped[str | None] = mapped_column(String(255))
    user_data: Mapped[str | None] = mapped_column(Text)  # base64, as sent
    state: Mapped[str] = mapped_column(String(16), default="pending")
    task: Mapped[str | None] = mapped_column(String(16))
    power_state: Mapped[str] = mapped_column(String(16), default="nostate")
    state_transition_reason: Mapped[str] = mapped_column(String(255), default="")
    state_reason_code: Mapped[str | None] = mapped_column(String(64))
    state_reason_message: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    hosts_tried: Mapped[list[str]] = mapped_column(JSON, default=list)
    availability_zone: Mapped[str] = mapped_column(String(64))
    vpc_id: Mapped[str | None] = mapped_column(String(_ID))
    subnet_id: Mapped[str | None] = mapped_column(String(_ID))
    private_ip_address: Mapped[str | None] = mapped_column(String(45))
    mac_address: Mapped[str | None] = mapped_column(String(17))
    network_interface_id: Mapped[str | None] = mapped_column(String(_ID))
    security_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    client_token: Mapped[str | None] = mapped_column(String(64))
    disable_api_termination: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    shutdown_behavior: Mapped[str] = mapped_column(String(16), default="stop")
    root_device_name: Mapped[str] = mapped_column(String(32), default="/dev/sda1")
    launch_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    terminated_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Quota(Base):
    """An account's limit on one resource (``instances``, ``vcpus``); absent = the default."""

    __tablename__ = "quotas"

    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    limit: Mapped[int] = mapped_column("hard_limit", Integer)
