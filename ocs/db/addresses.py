"""Repository of elastic IP addresses: allocate from the public pool, associate, disassociate, release.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. The public pool (CIDR blocks) and the per-account limit come
from configuration, passed in as plain values.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* AllocateAddress past the account's limit (5 by default, as EC2):
  ``AddressLimitExceeded`` "The maximum number of addresses has been reached."; an
  exhausted pool: ``InsufficientAddressCapacity``. Two allocations at once never get
  one address (unique ``public_ip``; the loser takes the next one); the limit is
  checked under the account's lock, so concurrent requests cannot exceed it.
* Unknown (or another account's) allocation IDs: ``InvalidAllocationID.NotFound``;
  a public IP the account does not hold: ``AuthFailure`` "The address 'x' does not
  belong to you." [EC2; moto]; DescribeAddresses of such an IP:
  ``InvalidAddress.NotFound`` "Address 'x' not found."
* AssociateAddress of an address already associated, without AllowReassociation:
  ``Resource.AlreadyAssociated``; a target private address that already has an
  elastic IP loses it (EC2: "the existing address is disassociated ... but remains
  allocated to your account"). An instance with several interfaces must be named
  by its interface: ``InvalidInstanceID``. A private address the interface does not
  hold: ``InvalidParameterValue``.
* DisassociateAddress of an unknown association: ``InvalidAssociationID.NotFound``.
* ReleaseAddress while associated: ``InvalidIPAddress.InUse``.
* Public addresses EC2 assigns by itself (``kind`` ``auto``, see
  :mod:`ocs.db.public_addresses`) are not elastic IPs: none of these functions
  finds them (DescribeAddresses ``InvalidAddress.NotFound``, the others
  ``AuthFailure`` as for an address of someone else), none counts against the
  limit, and allocation skips every address in use of either kind. Associating
  an elastic IP with the primary private address of an instance releases its auto
  address; disassociating it (or moving it elsewhere) gives the instance a new one
  when it should have one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import compute, public_addresses
from ocs.db import interfaces as db_interfaces
from ocs.db import tags as db_tags
from ocs.db.models.base import utcnow
from ocs.db.models.interfaces import AUTO, ELASTIC, ElasticAddress, InterfaceAddress, NetworkInterface
from ocs.db.owned import get_owned


def address_limit_exceeded() -> errors.OcsError:
    return errors.LimitExceeded(
        "The maximum number of addresses has been reached.", code="AddressLimitExceeded"
    )


# --- lookups -----------------------------------------------------------------------------------


def get_allocation(s: Session, account_id: str, allocation_id: str) -> ElasticAddress:
    row = get_owned(s, ElasticAddress, "allocation", account_id, allocation_id)
    if row.kind != ELASTIC:  # not reachable by ID (auto rows are not ``eipalloc-``): a safeguard
        raise ids.not_found("allocation", allocation_id)
    return row


def allocation_exists(s: Session, account_id: str, allocation_id: str) -> bool:
    found = s.scalar(
        select(ElasticAddress.id).where(
            ElasticAddress.id == allocation_id,
            ElasticAddress.account_id == account_id,
            ElasticAddress.kind == ELASTIC,
        )
    )
    return found is not None


def by_public_ip(s: Session, account_id: str, public_ip: str) -> ElasticAddress:
    """The account's elastic IP ``public_ip``; AuthFailure if it holds no such address
    (an auto-assigned address belongs to the cloud, not the account)."""
    row = s.scalar(select(ElasticAddress).where(ElasticAddress.public_ip == public_ip))
    if row is None or row.account_id != account_id or row.kind != ELASTIC:
        raise errors.AuthFailure(f"The address '{public_ip}' does not belong to you.")
    return row


def find(s: Session, account_id: str, allocation_id: str | None, public_ip: str | None) -> ElasticAddress:
    """The address an action names by AllocationId or PublicIp (one of them)."""
    if allocation_id:
        return get_allocation(s, account_id, allocation_id)
    if public_ip:
        return by_public_ip(s, account_id, public_ip)
    raise errors.MissingParameter("Either public IP or allocation id must be specified")


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def list_addresses(
    s: Session, account_id: str, allocation_ids: Sequence[str] = (), public_ips: Sequence[str] = ()
) -> list[ElasticAddress]:
    """The account's addresses (those named, each must exist), by allocation ID."""
    rows = list(
        s.scalars(
            select(ElasticAddress).where(
                ElasticAddress.account_id == account_id, ElasticAddress.kind == ELASTIC
            )
        )
    )
    by_id = {r.id: r for r in rows}
    by_ip = {r.public_ip: r for r in rows}
    for allocation_id in allocation_ids:
        ids.validate("allocation", allocation_id)
        if allocation_id not in by_id:
            raise ids.not_found("allocation", allocation_id)
    for public_ip in public_ips:
        if not _is_ipv4(public_ip):
            raise errors.InvalidParameterValue(
                value=public_ip, name="PublicIp", reason="It is not a valid IPv4 address."
            )
        if public_ip not in by_ip:
            raise errors.NotFound(f"Address '{public_ip}' not found.", code="InvalidAddress.NotFound")
    if allocation_ids or public_ips:
        rows = [r for r in rows if r.id in allocation_ids or r.public_ip in public_ips]
    return sorted(rows, key=lambda r: r.id)


def by_interfaces(s: Session, interface_ids: Sequence[str]) -> dict[tuple[str, str], ElasticAddress]:
    """``{(interface, private address): public address}`` mapped to the interfaces (elastic and auto)."""
    if not interface_ids:
        return {}
    rows = s.scalars(
        select(ElasticAddress).where(ElasticAddress.network_interface_id.in_(list(interface_ids)))
    )
    return {(r.network_interface_id or "", r.private_ip_address or ""): r for r in rows}


# --- allocate / release -----------------------------------------------------------------------------


def allocate(
    s: Session, account_id: str, pool: Sequence[str], limit: int, *, now: dt.datetime | None = None
) -> ElasticAddress:
    """A new elastic IP for the account: the lowest free address of the ``pool`` blocks
    (free: neither an elastic IP nor an auto-assigned address)."""
    compute.lock_account(s, account_id)
    held = s.scalar(
        select(func.count()).where(ElasticAddress.account_id == account_id, ElasticAddress.kind == ELASTIC)
    )
    if int(held or 0) >= limit:
        raise address_limit_exceeded()

    def make(address: str) -> ElasticAddress:
        return ElasticAddress(
            id=ids.new_id("allocation"),
            account_id=account_id,
            public_ip=address,
            domain="vpc",
            kind=ELASTIC,
            created_at=now or utcnow(),
        )

    return public_addresses.take(s, pool, make)


def release(s: Session, account_id: str, allocation_id: str | None, public_ip: str | None) -> None:
    """Release by AllocationId: every address here is a VPC one, and EC2 releases those only
    by allocation ID (PublicIp is EC2-Classic's)."""
    if allocation_id and public_ip:
        raise errors.InvalidParameterCombination(
            reason="You may specify public IP or allocation id, but not both in the same call"
        )
    row = find(s, account_id, allocation_id, public_ip)
    if not allocation_id:
        raise errors.InvalidParameterValue(
            "You must specify an allocation id when releasing a VPC elastic IP address"
        )
    if row.association_id:
        raise errors.InUse(
            f"The address with allocation id [{row.id}] is currently associated.",
            code="InvalidIPAddress.InUse",
        )
    db_tags.delete_all_for(s, row.id)
    s.delete(row)
    s.flush()


# --- associate / disassociate -------------------------------------------------------------------


def _target(
    s: Session, account_id: str, instance_id: str | None, interface_id: str | None
) -> NetworkInterface:
    if interface_id:
        eni = db_interfaces.get_interface(s, account_id, interface_id)
        if instance_id and eni.instance_id != instance_id:
            raise errors.InvalidParameterCombination(
                reason=f"The network interface {eni.id} is not attached to instance {instance_id}."
            )
        return eni
    if not instance_id:
        raise errors.MissingParameter(
            "The request must contain the parameter instanceId or networkInterfaceId"
        )
    instance = compute.get_instance(s, account_id, instance_id)
    attached = db_interfaces.interfaces_of_instances(s, [instance.id])[instance.id]
    if instance.state in ("shutting-down", "terminated") or not attached:
        raise errors.IncorrectInstanceState(
            f"The instance '{instance.id}' is not in a valid state for this operation."
        )
    if len(attached) > 1:
        raise errors.InvalidParameterValue(
            f"There are multiple interfaces attached to instance '{instance.id}'. Please specify an interface ID "
            "for the operation instead.",
            code="InvalidInstanceID",
        )
    return attached[0]


def associate(
    s: Session,
    account_id: str,
    *,
    allocation_id: str | None,
    public_ip: str | None,
    instance_id: str | None,
    interface_id: str | None,
    private_ip: str | None,
    allow_reassociation: bool,
    pool: Sequence[str] = (),
) -> ElasticAddress:
    """Map the elastic IP to a private address of an interface; the address, associated.

    An auto-assigned address mapped there is released; the place the elastic IP
    leaves gets its auto address back (from ``pool``) if it should have one."""
    row = find(s, account_id, allocation_id, public_ip)
    eni = _target(s, account_id, instance_id, interface_id)
    private = private_ip or eni.private_ip_address
    held = s.get(InterfaceAddress, (eni.subnet_id, private))
    if held is None or held.network_interface_id != eni.id:
        raise errors.InvalidParameterValue(
            f"The private IP address {private} is not associated with network interface {eni.id}."
        )
    same = row.network_interface_id == eni.id and row.private_ip_address == private
    _not_managed(s, eni.id, row.network_interface_id)
    if row.association_id and not same and not allow_reassociation:
        raise errors.InUse(
            f"resource {row.id} is already associated with associate-id {row.association_id}",
            code="Resource.AlreadyAssociated",
        )
    from ocs.db.routing import require_internet_gateway  # here: routing imports what imports this

    require_internet_gateway(s, eni)  # Gateway.NotAttached in a VPC without one, as EC2
    current = s.scalar(
        select(ElasticAddress).where(
            ElasticAddress.network_interface_id == eni.id, ElasticAddress.private_ip_address == private
        )
    )
    if current is not None and current.kind == AUTO:
        s.delete(current)
    elif current is not None and current.id != row.id:
        _clear(current)
    left = (row.network_interface_id, row.private_ip_address)
    _clear(row)
    s.flush()
    row.association_id = ids.new_id("association")
    row.network_interface_id = eni.id
    row.private_ip_address = private
    s.flush()
    if left != (eni.id, private):
        public_addresses.restore(s, left[0], left[1], pool)
    return row


def _clear(row: ElasticAddress) -> None:
    row.association_id = None
    row.network_interface_id = None
    row.private_ip_address = None


def disassociate(
    s: Session, account_id: str, association_id: str | None, public_ip: str | None, pool: Sequence[str] = ()
) -> None:
    """Unmap the elastic IP; the place it leaves gets its auto address back (from ``pool``)
    if it should have one."""
    if association_id:
        ids.validate("association", association_id)
        row = s.scalar(select(ElasticAddress).where(ElasticAddress.association_id == association_id))
        if row is None or row.account_id != account_id or row.kind != ELASTIC:
            raise ids.not_found("association", association_id)
    elif public_ip:
        by_public_ip(s, account_id, public_ip)  # AuthFailure if it is not the account's
        raise errors.InvalidParameterValue(
            "You must specify an association id when unmapping an address from a VPC instance"
        )
    else:
        raise errors.MissingParameter("Either public IP or association id must be specified")
    _not_managed(s, row.network_interface_id)
    left = (row.network_interface_id, row.private_ip_address)
    _clear(row)
    s.flush()
    public_addresses.restore(s, left[0], left[1], pool)


def _not_managed(s: Session, *interface_ids: str | None) -> None:
    """AuthFailure when an interface is requester-managed (a NAT gateway's): EC2 manages
    its address, which goes with the gateway."""
    for interface_id in interface_ids:
        eni = s.get(NetworkInterface, interface_id) if interface_id else None
        if eni is not None and eni.requester_managed:
            raise errors.AuthFailure("You do not have permission to access the specified resource.")


def instances_of(s: Session, interface_ids: Sequence[str]) -> dict[str, str]:
    """``{interface: instance}`` of the attached ones."""
    if not interface_ids:
        return {}
    rows = s.execute(
        select(NetworkInterface.id, NetworkInterface.instance_id).where(
            NetworkInterface.id.in_(list(interface_ids)), NetworkInterface.instance_id.is_not(None)
        )
    )
    return {eni: inst for eni, inst in rows if inst}
