"""Repository of network interfaces (ENIs): create, delete, attach, detach, addresses, attributes.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. Another account's interface is exactly as invisible as one that
never existed (``InvalidNetworkInterfaceID.NotFound``).

Behaviour, as EC2 documents or answers it (evidence in brackets):

* DeleteNetworkInterface of an attached interface: ``InvalidNetworkInterface.InUse``
  "The network interface 'eni-x' is currently in use." [EC2 error codes; moto].
* AttachNetworkInterface: the instance and the interface must be in one
  availability zone, else ``InvalidParameterCombination`` "You may not attach a
  network interface to an instance if they are not in the same availability
  zone" [EC2 error message, moto]; and in one VPC. A device index already used on
  the instance: ``InvalidParameterValue`` "Instance 'i-x' already has an
  interface attached at device index 'N'." An interface attached elsewhere:
  ``InvalidNetworkInterface.InUse``. More interfaces than the instance type
  allows: ``AttachmentLimitExceeded``.
* DetachNetworkInterface: unknown attachment ``InvalidAttachmentID.NotFound``; the
  primary interface (device index 0): ``OperationNotPermitted`` "The network
  interface at device index 0 and networkCard index 0 cannot be detached."
* AssignPrivateIpAddresses: addresses beyond what the instance type allows per
  interface (EC2's maximum of 50 for an unattached one): ``PrivateIpAddressLimitExceeded``;
  an address held by another interface: ``InvalidIPAddress.InUse`` unless
  AllowReassignment moves it from an interface of the same subnet and account.
* UnassignPrivateIpAddresses: an address that is not a secondary address of the
  interface: ``InvalidParameterValue``; an elastic IP mapped to it is disassociated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import compute, ipam, public_addresses
from ocs.db.interface_cleanup import AVAILABLE, IN_USE, delete_interfaces, detached_values
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance
from ocs.db.models.instance_types import InstanceType
from ocs.db.models.interfaces import ElasticAddress, InterfaceAddress, NetworkInterface
from ocs.db.models.network import SecurityGroup, Subnet
from ocs.db.owned import get_owned, owned_exists

MAX_ADDRESSES_UNATTACHED = 50
"""Private IPv4 addresses an interface attached to nothing may hold (EC2's largest type's)."""
DEFAULT_MAX_INTERFACES = 2
DEFAULT_ADDRESSES_PER_INTERFACE = 2


# --- lookups -----------------------------------------------------------------------------------


def get_interface(s: Session, account_id: str, interface_id: str | None) -> NetworkInterface:
    """The account's interface; MissingParameter, ``.Malformed`` or ``.NotFound``."""
    if not interface_id:
        raise errors.MissingParameter(name="NetworkInterfaceId")
    return get_owned(s, NetworkInterface, "network_interface", account_id, interface_id)


def interface_exists(s: Session, account_id: str, interface_id: str) -> bool:
    return owned_exists(s, NetworkInterface, account_id, interface_id)


def list_interfaces(s: Session, account_id: str, interface_ids: Sequence[str] = ()) -> list[NetworkInterface]:
    """The account's interfaces (those of ``interface_ids`` if given, each must exist), by ID."""
    if interface_ids:
        found = {i.id: i for i in (get_interface(s, account_id, x) for x in interface_ids)}
        return sorted(found.values(), key=lambda i: i.id)
    q = select(NetworkInterface).where(NetworkInterface.account_id == account_id)
    return list(s.scalars(q.order_by(NetworkInterface.id)))


def interfaces_of_instances(s: Session, instance_ids: Sequence[str]) -> dict[str, list[NetworkInterface]]:
    """The interfaces attached to each of the instances, by device index."""
    out: dict[str, list[NetworkInterface]] = {i: [] for i in instance_ids}
    if not instance_ids:
        return out
    rows = s.scalars(
        select(NetworkInterface)
        .where(NetworkInterface.instance_id.in_(list(instance_ids)))
        .order_by(NetworkInterface.device_index)
    )
    for row in rows:
        out.setdefault(row.instance_id or "", []).append(row)
    return out


def primary_of(s: Session, instance_id: str) -> NetworkInterface | None:
    return s.scalar(
        select(NetworkInterface).where(
            NetworkInterface.instance_id == instance_id, NetworkInterface.device_index == 0
        )
    )


def addresses_of(s: Session, interface_ids: Sequence[str]) -> dict[str, list[InterfaceAddress]]:
    """The private addresses of each interface: its primary first, then the secondaries."""
    out: dict[str, list[InterfaceAddress]] = {i: [] for i in interface_ids}
    if not interface_ids:
        return out
    rows = s.scalars(
        select(InterfaceAddress).where(InterfaceAddress.network_interface_id.in_(list(interface_ids)))
    )
    for row in rows:
        out.setdefault(row.network_interface_id, []).append(row)
    for rows_ in out.values():
        rows_.sort(
            key=lambda a: (not a.is_primary, a.created_at, tuple(int(p) for p in a.address.split(".")))
        )
    return out


def _limits(s: Session, instance: Instance | None) -> tuple[int, int]:
    """(interfaces per instance, addresses per interface) of the instance's type."""
    if instance is None:
        return DEFAULT_MAX_INTERFACES, MAX_ADDRESSES_UNATTACHED
    itype = s.get(InstanceType, instance.instance_type)
    if itype is None:
        return DEFAULT_MAX_INTERFACES, DEFAULT_ADDRESSES_PER_INTERFACE
    return itype.max_network_interfaces, itype.ipv4_addresses_per_interface


# --- create / delete ----------------------------------------------------------------------------


def check_group_count(groups: Sequence[SecurityGroup], limit: int = 5) -> None:
    if len(groups) > limit:
        raise errors.LimitExceeded(
            "The maximum number of security groups per interface has been reached.",
            code="SecurityGroupsPerInterfaceLimitExceeded",
        )


def create_interface(
    s: Session,
    account_id: str,
    subnet: Subnet,
    groups: Sequence[SecurityGroup],
    *,
    description: str = "",
    private_ip: str | None = None,
    secondary_ips: Sequence[str] = (),
    secondary_count: int = 0,
    client_token: str | None = None,
    now: dt.datetime | None = None,
) -> NetworkInterface:
    """A new ``available`` interface in ``subnet`` with its primary and secondary addresses.

    ``private_ip`` and ``secondary_ips`` were checked to be usable addresses of the
    subnet (:func:`ocs.db.ipam.check_requested_address`); one taken meanwhile is
    ``InvalidIPAddress.InUse``.
    """
    when = now or utcnow()
    if 1 + len(secondary_ips) + secondary_count > MAX_ADDRESSES_UNATTACHED:
        raise address_limit()
    if ipam.free_address_count(s, subnet.id, subnet.cidr_block) < 1 + len(secondary_ips) + secondary_count:
        raise ipam.InsufficientFreeAddresses(
            f"There are not enough free addresses in subnet '{subnet.id}' to satisfy the requested number of "
            "addresses."
        )
    pool = ipam.open_pool(s, subnet.id, subnet.cidr_block)
    made: list[NetworkInterface] = []

    def rows(address: str) -> list[object]:
        eni = NetworkInterface(
            id=ids.new_id("network_interface"),
            account_id=account_id,
            subnet_id=subnet.id,
            vpc_id=subnet.vpc_id,
            availability_zone=subnet.availability_zone,
            description=description,
            mac_address=compute.new_mac_address(),
            private_ip_address=address,
            security_group_ids=[g.id for g in groups],
            source_dest_check=True,
            status=AVAILABLE,
            interface_type="interface",
            requester_managed=False,
            client_token=client_token,
            delete_on_termination=False,
            created_at=when,
        )
        made[:] = [eni]
        return [eni, ipam.address_row(pool, eni.id, address, primary=True)]

    ipam.insert_with_address(s, pool, rows, requested=private_ip)
    eni = made[0]
    ipam.add_secondaries(s, pool, eni.id, secondary_ips, secondary_count)
    return eni


def delete_interface(s: Session, account_id: str, interface_id: str | None) -> None:
    eni = get_interface(s, account_id, interface_id)
    if eni.instance_id or eni.requester_managed:  # a NAT gateway's goes with the gateway
        raise errors.InUse(
            f"The network interface '{eni.id}' is currently in use.", code="InvalidNetworkInterface.InUse"
        )
    delete_interfaces(s, [eni.id])
    s.expunge(eni)


# --- attach / detach -----------------------------------------------------------------------------


def attach(
    s: Session, account_id: str, interface_id: str | None, instance_id: str | None, device_index: int | None
) -> NetworkInterface:
    """Attach the interface to the instance at ``device_index``; the interface, attached."""
    eni = get_interface(s, account_id, interface_id)
    instance = compute.get_instance(s, account_id, instance_id)
    if device_index is None:
        raise errors.MissingParameter(name="DeviceIndex")
    if device_index < 0:
        raise errors.InvalidParameterValue(
            value=device_index, name="deviceIndex", reason="It must be 0 or more."
        )
    if instance.state in ("shutting-down", "terminated"):
        raise errors.IncorrectInstanceState(
            f"The instance '{instance.id}' is not in a valid state for this operation."
        )
    if eni.instance_id or eni.requester_managed:
        raise errors.InUse(f"Interface: [{eni.id}] in use.", code="InvalidNetworkInterface.InUse")
    if eni.availability_zone != instance.availability_zone:
        raise errors.InvalidParameterCombination(
            reason="You may not attach a network interface to an instance if they are not in the same "
            "availability zone"
        )
    if eni.vpc_id != instance.vpc_id:
        raise errors.InvalidParameterCombination(
            reason=f"The network interface {eni.id} and the instance {instance.id} belong to different networks."
        )
    attached = interfaces_of_instances(s, [instance.id])[instance.id]
    if any(a.device_index == device_index for a in attached):
        raise index_taken(instance.id, device_index)
    most, _ = _limits(s, instance)
    if len(attached) + 1 > most:
        raise errors.LimitExceeded(
            f"Interface count {len(attached) + 1} exceeds the limit for {instance.instance_type}",
            code="AttachmentLimitExceeded",
        )
    values = {
        "status": IN_USE,
        "attachment_id": compute.new_attachment_id(),
        "instance_id": instance.id,
        "device_index": device_index,
        "attach_status": "attached",
        "attach_time": utcnow(),
        "delete_on_termination": False,
    }
    try:
        with s.begin_nested():
            done = s.execute(
                update(NetworkInterface)
                .where(NetworkInterface.id == eni.id, NetworkInterface.instance_id.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:  # another request took the device index meanwhile
        raise index_taken(instance.id, device_index) from None
    if not getattr(done, "rowcount", 0):
        raise errors.InUse(f"Interface: [{eni.id}] in use.", code="InvalidNetworkInterface.InUse")
    s.refresh(eni)
    return eni


def index_taken(instance_id: str, device_index: int) -> errors.OcsError:
    return errors.InvalidParameterValue(
        f"Instance '{instance_id}' already has an interface attached at device index '{device_index}'."
    )


def by_attachment(s: Session, account_id: str, attachment_id: str | None) -> NetworkInterface:
    """The account's interface attached by ``attachment_id``; InvalidAttachmentID.* otherwise."""
    if not attachment_id:
        raise errors.MissingParameter(name="AttachmentId")
    ids.validate("network_interface_attachment", attachment_id)
    eni = s.scalar(select(NetworkInterface).where(NetworkInterface.attachment_id == attachment_id))
    if eni is None or eni.account_id != account_id:
        raise ids.not_found("network_interface_attachment", attachment_id)
    return eni


def detach(s: Session, account_id: str, attachment_id: str | None) -> NetworkInterface:
    eni = by_attachment(s, account_id, attachment_id)
    if eni.device_index == 0:
        raise errors.OperationNotPermitted(
            "The network interface at device index 0 and networkCard index 0 cannot be detached."
        )
    for key, value in detached_values().items():
        setattr(eni, key, value)
    s.flush()
    return eni


# --- private addresses ---------------------------------------------------------------------------


def address_limit() -> errors.OcsError:
    return errors.LimitExceeded(
        "Number of private addresses will exceed limit.", code="PrivateIpAddressLimitExceeded"
    )


def _subnet_of(s: Session, eni: NetworkInterface) -> Subnet:
    subnet = s.get(Subnet, eni.subnet_id)
    if subnet is None:  # pragma: no cover - a subnet with interfaces cannot be deleted
        raise errors.InternalError(f"Subnet {eni.subnet_id} of {eni.id} is gone.")
    return subnet


def assign_addresses(
    s: Session,
    account_id: str,
    interface_id: str | None,
    requested: Sequence[str] = (),
    count: int = 0,
    *,
    allow_reassignment: bool = False,
) -> list[str]:
    """Give the interface secondary addresses: the ``requested`` ones, or ``count`` free ones."""
    eni = get_interface(s, account_id, interface_id)
    if requested and count:
        raise errors.InvalidParameterCombination(
            reason="The parameters privateIpAddresses and secondaryPrivateIpAddressCount cannot be used together."
        )
    if not requested and count < 1:
        raise errors.MissingParameter(
            "Either the parameter privateIpAddresses or secondaryPrivateIpAddressCount must be specified."
        )
    subnet = _subnet_of(s, eni)
    instance = s.get(Instance, eni.instance_id) if eni.instance_id else None
    _, most = _limits(s, instance)
    held = addresses_of(s, [eni.id])[eni.id]
    mine = {a.address for a in held}
    wanted = [a for a in dict.fromkeys(requested) if a not in mine]
    if len(held) + len(wanted) + count > most:
        raise address_limit()
    for address in wanted:
        if allow_reassignment:
            _take_from_other(s, account_id, subnet.id, address)
        ipam.check_requested_address(s, subnet.id, subnet.cidr_block, address, name="privateIpAddress")
    pool = ipam.open_pool(s, subnet.id, subnet.cidr_block)
    return ipam.add_secondaries(s, pool, eni.id, wanted, count)


def _take_from_other(s: Session, account_id: str, subnet_id: str, address: str) -> None:
    """AllowReassignment: release ``address`` from the (secondary of the) interface holding it."""
    row = s.get(InterfaceAddress, (subnet_id, address))
    if row is None:
        return
    holder = s.get(NetworkInterface, row.network_interface_id)
    if row.is_primary or holder is None or holder.account_id != account_id:
        return  # a primary address never moves: InvalidIPAddress.InUse follows
    _disassociate_private(s, holder.id, [address])
    s.delete(row)
    s.flush()


def _disassociate_private(s: Session, interface_id: str, addresses: Sequence[str]) -> None:
    public_addresses.release_for_interfaces(s, [interface_id], addresses)
    s.execute(
        update(ElasticAddress)
        .where(
            ElasticAddress.network_interface_id == interface_id,
            ElasticAddress.private_ip_address.in_(list(addresses)),
        )
        .values(association_id=None, network_interface_id=None, private_ip_address=None)
        .execution_options(synchronize_session=False)
    )


def unassign_addresses(
    s: Session, account_id: str, interface_id: str | None, addresses: Sequence[str]
) -> None:
    eni = get_interface(s, account_id, interface_id)
    if not addresses:
        raise errors.MissingParameter(name="privateIpAddress")
    held = {a.address: a for a in addresses_of(s, [eni.id])[eni.id]}
    for address in addresses:
        row = held.get(address)
        if row is None:
            raise errors.InvalidParameterValue(
                f"Some of the specified addresses are not assigned to interface {eni.id}"
            )
        if row.is_primary:
            raise errors.InvalidParameterValue(
                f"The primary private IP address {address} cannot be unassigned."
            )
    _disassociate_private(s, eni.id, addresses)
    s.execute(
        delete(InterfaceAddress)
        .where(InterfaceAddress.network_interface_id == eni.id, InterfaceAddress.address.in_(list(addresses)))
        .execution_options(synchronize_session=False)
    )


# --- attributes ----------------------------------------------------------------------------------


def set_groups(s: Session, eni: NetworkInterface, groups: Sequence[SecurityGroup]) -> None:
    """New groups of the interface (and of its instance, when it is the primary interface)."""
    check_group_count(groups)
    eni.security_group_ids = [g.id for g in groups]
    if eni.instance_id and eni.device_index == 0:
        _mirror(s, eni.instance_id, security_group_ids=list(eni.security_group_ids))
    s.flush()


def _mirror(s: Session, instance_id: str, **values: object) -> None:
    """Keep the instance's inline copy of its primary interface in step (for its readers)."""
    s.execute(
        update(Instance)
        .where(Instance.id == instance_id)
        .values(**values, version=Instance.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    known = s.identity_map.get(s.identity_key(Instance, instance_id))
    if known is not None:
        s.expire(known)


def set_delete_on_termination(s: Session, eni: NetworkInterface, attachment_id: str, value: bool) -> None:
    if eni.attachment_id != attachment_id:
        raise ids.not_found("network_interface_attachment", attachment_id)
    eni.delete_on_termination = value
    s.flush()


def set_source_dest_check(s: Session, eni: NetworkInterface, value: bool) -> None:
    eni.source_dest_check = value
    s.flush()
