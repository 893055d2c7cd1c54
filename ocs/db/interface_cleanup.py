"""What happens to an instance's network interfaces when it ends.

When an instance is terminated (or its row deleted before it ever ran), each
interface attached to it is deleted if its attachment says delete-on-termination
(the primary interface made at launch does), and otherwise detached and left
``available``, as EC2 does. Deleting an interface gives its private addresses
back to the subnet, disassociates any elastic IP from it (the allocation
stays with the account) and releases its auto-assigned public address. Callers: :mod:`ocs.db.instance_events` (the scheduler's
writes) and :mod:`ocs.db.compute` (the API's), in the transaction that
terminates the instance.

Kept free of the instance repositories so that both can import it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ocs.db import public_addresses
from ocs.db import tags as db_tags
from ocs.db.models.interfaces import ElasticAddress, InterfaceAddress, NetworkInterface

AVAILABLE = "available"
IN_USE = "in-use"


def detached_values() -> dict[str, object]:
    """The columns of an interface that is attached to nothing."""
    return {
        "status": AVAILABLE,
        "attachment_id": None,
        "instance_id": None,
        "device_index": None,
        "attach_status": None,
        "attach_time": None,
        "delete_on_termination": False,
    }


def delete_interfaces(s: Session, interface_ids: Sequence[str]) -> None:
    """Delete interfaces with their addresses and tags; their elastic IPs are disassociated,
    their auto-assigned public addresses released."""
    ids = list(interface_ids)
    if not ids:
        return
    public_addresses.release_for_interfaces(s, ids)
    s.execute(
        update(ElasticAddress)
        .where(ElasticAddress.network_interface_id.in_(ids))
        .values(association_id=None, network_interface_id=None, private_ip_address=None)
        .execution_options(synchronize_session=False)
    )
    s.execute(
        delete(InterfaceAddress)
        .where(InterfaceAddress.network_interface_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    for eni in ids:
        db_tags.delete_all_for(s, eni)
    s.execute(
        delete(NetworkInterface)
        .where(NetworkInterface.id.in_(ids))
        .execution_options(synchronize_session=False)
    )


def release_instance_interfaces(s: Session, instance_ids: Sequence[str]) -> None:
    """The instances end: delete their delete-on-termination interfaces, detach the others."""
    wanted = list(instance_ids)
    if not wanted:
        return
    rows = s.execute(
        select(NetworkInterface.id, NetworkInterface.delete_on_termination).where(
            NetworkInterface.instance_id.in_(wanted)
        )
    ).all()
    delete_interfaces(s, [eni for eni, doomed in rows if doomed])
    keep = [eni for eni, doomed in rows if not doomed]
    if keep:
        s.execute(
            update(NetworkInterface)
            .where(NetworkInterface.id.in_(keep))
            .values(**detached_values())
            .execution_options(synchronize_session=False)
        )
