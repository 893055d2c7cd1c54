"""Migration 0010 gives every existing instance that holds an address its primary network interface."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from ocs.db import ipam, migration
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.accounts import Account
from ocs.db.models.compute import Instance, Reservation
from ocs.db.models.interfaces import InterfaceAddress, NetworkInterface
from tests.dbfixtures import throwaway_database

WHEN = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def url() -> Iterator[str]:
    with throwaway_database("sqlite", migrate=False) as url:
        yield url


def _instance(iid: str, state: str, address: str | None, **over: object) -> dict[str, object]:
    values: dict[str, object] = {
        "id": iid,
        "account_id": "000000000001",
        "reservation_id": "r-00000000000000001",
        "image_id": "ami-00000000000000001",
        "instance_type": "t2.micro",
        "vcpus": 1,
        "memory_mib": 1024,
        "disk_gib": 8,
        "state": state,
        "availability_zone": "us-east-1a",
        "vpc_id": "vpc-00000000000000001",
        "subnet_id": "subnet-00000000000000001",
        "private_ip_address": address,
        "mac_address": "02:00:00:00:00:01",
        "network_interface_id": "eni-0000000000000000" + iid[-1],
        "security_group_ids": ["sg-00000000000000001"],
        "launch_time": WHEN,
        "updated_at": WHEN,
    }
    values.update(over)
    return values


def test_existing_instances_get_their_primary_interface(url: str) -> None:
    migration.sync(url, "0008")
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as conn:
            conn.execute(Account.__table__.insert().values(id="000000000001", name="old", created_at=WHEN))
            conn.execute(
                Reservation.__table__.insert().values(
                    id="r-00000000000000001", account_id="000000000001", created_at=WHEN
                )
            )
            conn.execute(
                Instance.__table__.insert(),
                [
                    _instance("i-00000000000000001", "running", "172.31.0.4"),
                    _instance("i-00000000000000002", "stopped", "172.31.0.5", mac_address=None),
                    _instance("i-00000000000000003", "terminated", None),
                ],
            )
    finally:
        engine.dispose()
    migration.sync(url)
    assert migration.diff(url) == []
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as s:
            enis = {e.instance_id: e for e in s.scalars(select(NetworkInterface))}
            assert set(enis) == {"i-00000000000000001", "i-00000000000000002"}
            first = enis["i-00000000000000001"]
            assert first.id == "eni-00000000000000001"
            assert first.private_ip_address == "172.31.0.4" and first.mac_address == "02:00:00:00:00:01"
            assert first.device_index == 0 and first.delete_on_termination is True
            assert (
                first.status == "in-use"
                and first.attachment_id
                and first.attachment_id.startswith("eni-attach-")
            )
            assert first.security_group_ids == ["sg-00000000000000001"]
            second = enis["i-00000000000000002"]
            assert second.mac_address.startswith("02:")
            assert s.get(Instance, "i-00000000000000002").mac_address == second.mac_address  # type: ignore[union-attr]
            addresses = {
                (a.address, a.network_interface_id, a.is_primary) for a in s.scalars(select(InterfaceAddress))
            }
            assert addresses == {
                ("172.31.0.4", "eni-00000000000000001", True),
                ("172.31.0.5", "eni-00000000000000002", True),
            }
            assert ipam.used_addresses(s, "subnet-00000000000000001") == {"172.31.0.4", "172.31.0.5"}
    finally:
        engine.dispose()
