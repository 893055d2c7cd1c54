"""Public IPv4 addresses that EC2 gives an instance by itself (not elastic IPs).

An instance launched into a subnet with MapPublicIpOnLaunch, or with
``NetworkInterface.1.AssociatePublicIpAddress=true``, has a public address mapped
to the primary private address of its primary interface while it runs. The
address comes from the same public pool as elastic IPs and is stored in the same
table (:class:`ocs.db.models.interfaces.ElasticAddress`, ``kind`` ``auto``), so
the unique ``public_ip`` keeps the two kinds apart and the data plane reads one
mapping. The interface remembers the launch's choice (``associate_public_ip``).

Lifecycle, as the EC2 User Guide ("Public IPv4 addresses") describes it:

* assigned at launch and again at each start (an exhausted pool: the launch is
  refused, nothing launched, only when AssociatePublicIpAddress asked for the
  address; otherwise, and at a start, the instance goes on without one, logged);
* released when the instance stops (any of :data:`WITHOUT_PUBLIC_IP`), at
  termination, and when an elastic IP is associated with that primary private
  address (the unique (interface, private address) holds one mapping);
* a new one when that elastic IP is disassociated (or moved away) while the
  instance is pending or running; "it will not receive a new one if there is
  more than one network interface attached to your instance", which holds for a
  start too.

Plain functions in the caller's transaction; free of the instance repositories
so that :mod:`ocs.db.compute`, :mod:`ocs.db.instance_events`,
:mod:`ocs.db.interface_cleanup` and :mod:`ocs.db.addresses` can all import it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance
from ocs.db.models.interfaces import AUTO, ElasticAddress, NetworkInterface
from ocs.network import ipam

LOG = logging.getLogger(__name__)

TAKE_ATTEMPTS: Final = 16
WITHOUT_PUBLIC_IP: Final = ("stopping", "stopped", "shutting-down", "terminated")
"""States in which an instance holds no auto-assigned public address."""
LIVE: Final = ("pending", "running")


def insufficient_capacity() -> errors.OcsError:
    return errors.OcsError(
        "There are not enough free addresses in the address pool to satisfy your request.",
        code="InsufficientAddressCapacity",
    )


def used_public_ips(s: Session) -> set[str]:
    """Every public address held (elastic or auto), read under a shared lock where the database has one."""
    return set(s.scalars(select(ElasticAddress.public_ip).with_for_update(read=True)))


def take(
    s: Session, pool: Sequence[str], make: Callable[[str], ElasticAddress], used: set[str] | None = None
) -> ElasticAddress:
    """Insert ``make(address)`` for the lowest free address of the ``pool`` blocks.

    Two transactions never take one address (unique ``public_ip``): the loser
    tries the next one. ``used`` (updated) saves reading the held addresses again
    when one transaction takes several. ``InsufficientAddressCapacity`` when none is free.
    """
    held = used_public_ips(s) if used is None else used
    for _ in range(TAKE_ATTEMPTS):
        address = next((a for a in ipam.public_pool_addresses(pool) if a not in held), None)
        if address is None:
            break
        row = make(address)
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:  # another transaction took it meanwhile
            held |= used_public_ips(s) | {address}
            continue
        held.add(address)
        return row
    raise insufficient_capacity()


def free_count(s: Session, pool: Sequence[str], most: int) -> int:
    """How many addresses of the pool are free (counting stops at ``most``)."""
    held = used_public_ips(s)
    free = 0
    for address in ipam.public_pool_addresses(pool):
        if free >= most:
            break
        if address not in held:
            free += 1
    return free


def assign(
    s: Session,
    eni: NetworkInterface,
    pool: Sequence[str],
    *,
    now: dt.datetime | None = None,
    used: set[str] | None = None,
) -> ElasticAddress:
    """A new auto address mapped to the primary private address of ``eni``."""

    def make(address: str) -> ElasticAddress:
        return ElasticAddress(
            id="eipauto-" + secrets.token_hex(9)[:17],
            account_id=eni.account_id,
            public_ip=address,
            domain="vpc",
            kind=AUTO,
            network_interface_id=eni.id,
            private_ip_address=eni.private_ip_address,
            created_at=now or utcnow(),
        )

    row = take(s, pool, make, used)
    LOG.info("Public address %s mapped to %s (%s)", row.public_ip, eni.id, eni.private_ip_address)
    return row


# --- release -----------------------------------------------------------------------------------


def release_for_interfaces(s: Session, interface_ids: Sequence[str], addresses: Sequence[str] = ()) -> None:
    """Release the auto addresses of the interfaces (only those of ``addresses`` if given)."""
    if not interface_ids:
        return
    query = delete(ElasticAddress).where(
        ElasticAddress.kind == AUTO, ElasticAddress.network_interface_id.in_(list(interface_ids))
    )
    if addresses:
        query = query.where(ElasticAddress.private_ip_address.in_(list(addresses)))
    s.execute(query.execution_options(synchronize_session="fetch"))


def release_for_instances(s: Session, instance_ids: Sequence[str]) -> None:
    """The instances stop or end: release the auto addresses of their interfaces."""
    if not instance_ids:
        return
    enis = list(
        s.scalars(select(NetworkInterface.id).where(NetworkInterface.instance_id.in_(list(instance_ids))))
    )
    release_for_interfaces(s, enis)


def after_state_change(s: Session, instance_id: str, old_state: str, changes: Mapping[str, object]) -> None:
    """Called by both writers of instance states once a change is applied."""
    after_state_changes(s, [(instance_id, old_state)], changes)


def after_state_changes(
    s: Session, old_states: Sequence[tuple[str, str]], changes: Mapping[str, object]
) -> None:
    """:func:`after_state_change` of several instances (``(id, old state)``) given the same changes."""
    if changes.get("state") in WITHOUT_PUBLIC_IP:
        release_for_instances(s, [iid for iid, old in old_states if old != "terminated"])


# --- (re)assignment ----------------------------------------------------------------------------


def _mapped(s: Session, interface_id: str, private: str) -> bool:
    return (
        s.scalar(
            select(func.count()).where(
                ElasticAddress.network_interface_id == interface_id,
                ElasticAddress.private_ip_address == private,
            )
        )
        or 0
    ) > 0


def _entitled(s: Session, eni: NetworkInterface) -> bool:
    """Whether ``eni`` should carry an auto address now (its own mapping aside)."""
    if not eni.associate_public_ip or eni.device_index != 0 or not eni.instance_id:
        return False
    attached = s.scalar(select(func.count()).where(NetworkInterface.instance_id == eni.instance_id)) or 0
    return attached == 1


def assign_for_instances(s: Session, instance_ids: Sequence[str], pool: Sequence[str]) -> None:
    """The instances start: each primary interface entitled to one gets an auto address
    (unless an elastic IP is mapped there). Best effort, as at launch: past the pool's
    end the instances start without one (logged); a start is never refused for it."""
    if not instance_ids:
        return
    enis = s.scalars(
        select(NetworkInterface)
        .where(NetworkInterface.instance_id.in_(list(instance_ids)), NetworkInterface.device_index == 0)
        .order_by(NetworkInterface.instance_id)
    )
    used: set[str] | None = None
    for eni in list(enis):
        if _entitled(s, eni) and not _mapped(s, eni.id, eni.private_ip_address):
            used = used_public_ips(s) if used is None else used
            try:
                assign(s, eni, pool, used=used)
            except errors.OcsError as exc:
                if exc.code != "InsufficientAddressCapacity":
                    raise
                LOG.warning(
                    "public address pool exhausted: %s starts without a public address", eni.instance_id
                )
                return


def restore(s: Session, interface_id: str | None, private: str | None, pool: Sequence[str]) -> None:
    """An elastic IP left (``interface_id``, ``private``): give back the auto address the
    instance would have there. Best effort: with the pool exhausted the instance stays
    without one (logged), rather than refusing the disassociation."""
    if not interface_id or not private:
        return
    eni = s.get(NetworkInterface, interface_id)
    if eni is None or private != eni.private_ip_address or not _entitled(s, eni):
        return
    state = s.scalar(select(Instance.state).where(Instance.id == eni.instance_id))
    if state not in LIVE or _mapped(s, eni.id, private):
        return
    try:
        assign(s, eni, pool)
    except errors.OcsError as exc:
        LOG.warning("No public address for %s after its elastic IP left: %s", eni.id, exc)
