"""Repository of the Compute Engine front end: service-account keys, operations and
the Compute Engine names of instances (see :mod:`ocs.db.models.gce`)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ocs.db.models.compute import Instance
from ocs.db.models.gce import GceDisk, GceInstance, GceOperation, GceServiceKey, GceSnapshot
from ocs.db.models.volumes import Snapshot, Volume

# --- service-account keys ---------------------------------------------------------------------------


def new_key_id() -> str:
    return secrets.token_hex(20)


def create_service_key(
    s: Session, account_id: str, client_email: str, public_key_pem: str, key_id: str | None = None
) -> GceServiceKey:
    key = GceServiceKey(
        id=key_id or new_key_id(), account_id=account_id, client_email=client_email, public_key=public_key_pem
    )
    s.add(key)
    s.flush()
    return key


def get_service_key(s: Session, key_id: str) -> GceServiceKey | None:
    return s.get(GceServiceKey, key_id)


def list_service_keys(s: Session, account_id: str | None = None) -> list[GceServiceKey]:
    query = select(GceServiceKey).order_by(GceServiceKey.created_at, GceServiceKey.id)
    if account_id is not None:
        query = query.where(GceServiceKey.account_id == account_id)
    return list(s.scalars(query))


def delete_service_key(s: Session, key_id: str) -> bool:
    """Revoke a key: its JWTs and the access tokens issued for it stop working."""
    return bool(s.execute(delete(GceServiceKey).where(GceServiceKey.id == key_id)).rowcount)  # type: ignore[attr-defined]


# --- operations -------------------------------------------------------------------------------------


def new_operation_name(now: dt.datetime) -> str:
    return f"operation-{int(now.timestamp() * 1000)}-{secrets.token_hex(6)}"


def new_numeric_id() -> str:
    return str(secrets.randbits(63) | (1 << 62))


def add_operation(s: Session, account_id: str, **fields: Any) -> GceOperation:
    now = fields.pop("now")
    op = GceOperation(
        name=new_operation_name(now),
        id=new_numeric_id(),
        account_id=account_id,
        insert_time=now,
        start_time=now,
        **fields,
    )
    s.add(op)
    s.flush()
    return op


def get_operation(s: Session, account_id: str, name: str) -> GceOperation | None:
    op = s.get(GceOperation, name)
    return op if op is not None and op.account_id == account_id else None


def find_by_request_id(s: Session, account_id: str, request_id: str) -> GceOperation | None:
    return s.scalars(
        select(GceOperation).where(
            GceOperation.account_id == account_id, GceOperation.request_id == request_id
        )
    ).first()


def list_operations(s: Session, account_id: str, scope: str, location: str | None) -> list[GceOperation]:
    query = select(GceOperation).where(GceOperation.account_id == account_id, GceOperation.scope == scope)
    if location is not None:
        query = query.where(GceOperation.location == location)
    return list(s.scalars(query.order_by(GceOperation.insert_time, GceOperation.name)))


def delete_operation(s: Session, op: GceOperation) -> None:
    s.delete(op)
    s.flush()


# --- instances --------------------------------------------------------------------------------------


def instance_rows(
    s: Session, account_id: str, zone: str | None = None
) -> list[tuple[Instance, GceInstance | None]]:
    """The account's instances (in ``zone``) that are not terminated, with their GCE row."""
    query = (
        select(Instance, GceInstance)
        .outerjoin(GceInstance, GceInstance.instance_id == Instance.id)
        .where(Instance.account_id == account_id, Instance.state != "terminated")
        .order_by(Instance.launch_time, Instance.id)
    )
    if zone is not None:
        query = query.where(Instance.availability_zone == zone)
    return [(i, g) for i, g in s.execute(query).all()]


def gce_row_by_name(s: Session, account_id: str, zone: str, name: str) -> GceInstance | None:
    return s.scalars(
        select(GceInstance).where(
            GceInstance.account_id == account_id, GceInstance.zone == zone, GceInstance.name == name
        )
    ).first()


def gce_rows(s: Session, instance_ids: Iterable[str]) -> dict[str, GceInstance]:
    wanted = list(instance_ids)
    if not wanted:
        return {}
    return {
        g.instance_id: g for g in s.scalars(select(GceInstance).where(GceInstance.instance_id.in_(wanted)))
    }


def release_stale_name(s: Session, account_id: str, zone: str, name: str) -> bool:
    """Free ``name`` when it belongs to an instance that is gone (terminated or deleted):
    True when the name is free now."""
    row = gce_row_by_name(s, account_id, zone, name)
    if row is None:
        return True
    instance = s.get(Instance, row.instance_id)
    if instance is not None and instance.state != "terminated":
        return False
    s.delete(row)
    s.flush()
    return True


def add_gce_instance(
    s: Session,
    instance_id: str,
    account_id: str,
    zone: str,
    name: str,
    *,
    description: str,
    labels: dict[str, str],
    metadata_items: Sequence[dict[str, str]],
    network_tags: Sequence[str],
) -> GceInstance:
    row = GceInstance(
        instance_id=instance_id,
        account_id=account_id,
        zone=zone,
        name=name,
        description=description,
        labels=dict(labels),
        metadata_items=list(metadata_items),
        network_tags=list(network_tags),
    )
    s.add(row)
    s.flush()
    return row


# --- disks and snapshots ----------------------------------------------------------------------------


def disk_rows(s: Session, account_id: str, zone: str | None = None) -> list[tuple[Volume, GceDisk | None]]:
    """The account's volumes (in ``zone``) with their GCE row."""
    query = (
        select(Volume, GceDisk)
        .outerjoin(GceDisk, GceDisk.volume_id == Volume.id)
        .where(Volume.account_id == account_id)
        .order_by(Volume.created_at, Volume.id)
    )
    if zone is not None:
        query = query.where(Volume.availability_zone == zone)
    return [(v, g) for v, g in s.execute(query).all()]


def disk_by_name(s: Session, account_id: str, zone: str, name: str) -> GceDisk | None:
    return s.scalars(
        select(GceDisk).where(GceDisk.account_id == account_id, GceDisk.zone == zone, GceDisk.name == name)
    ).first()


def disk_names(s: Session, volume_ids: Iterable[str]) -> dict[str, GceDisk]:
    wanted = list(volume_ids)
    if not wanted:
        return {}
    return {g.volume_id: g for g in s.scalars(select(GceDisk).where(GceDisk.volume_id.in_(wanted)))}


def release_stale_disk_name(s: Session, account_id: str, zone: str, name: str) -> bool:
    """Free ``name`` when its volume is gone: True when the name is free now."""
    row = disk_by_name(s, account_id, zone, name)
    if row is None:
        return True
    if s.get(Volume, row.volume_id) is not None:
        return False
    s.delete(row)
    s.flush()
    return True


def add_gce_disk(
    s: Session,
    volume_id: str,
    account_id: str,
    zone: str,
    name: str,
    description: str,
    labels: dict[str, str],
) -> GceDisk:
    row = GceDisk(
        volume_id=volume_id,
        account_id=account_id,
        zone=zone,
        name=name,
        description=description,
        labels=labels,
    )
    s.add(row)
    s.flush()
    return row


def snapshot_rows(s: Session, account_id: str) -> list[tuple[Snapshot, GceSnapshot | None]]:
    """The account's own snapshots with their GCE row."""
    query = (
        select(Snapshot, GceSnapshot)
        .outerjoin(GceSnapshot, GceSnapshot.snapshot_id == Snapshot.id)
        .where(Snapshot.account_id == account_id)
        .order_by(Snapshot.started_at, Snapshot.id)
    )
    return [(x, g) for x, g in s.execute(query).all()]


def snapshot_by_name(s: Session, account_id: str, name: str) -> GceSnapshot | None:
    return s.scalars(
        select(GceSnapshot).where(GceSnapshot.account_id == account_id, GceSnapshot.name == name)
    ).first()


def release_stale_snapshot_name(s: Session, account_id: str, name: str) -> bool:
    row = snapshot_by_name(s, account_id, name)
    if row is None:
        return True
    if s.get(Snapshot, row.snapshot_id) is not None:
        return False
    s.delete(row)
    s.flush()
    return True


def add_gce_snapshot(s: Session, snapshot_id: str, account_id: str, name: str, **fields: Any) -> GceSnapshot:
    row = GceSnapshot(snapshot_id=snapshot_id, account_id=account_id, name=name, **fields)
    s.add(row)
    s.flush()
    return row
