"""RunInstances ``NetworkInterfaces``: the interfaces an instance is launched with.

As EC2 documents them: each entry is a new interface (``SubnetId``, ``Groups``,
``PrivateIpAddress``, ``SecondaryPrivateIpAddressCount``, ``Description``,
``DeleteOnTermination``, true by default for an interface made by the launch) or an
existing one (``NetworkInterfaceId``, which then takes none of those). Errors:

* several entries: each names its ``DeviceIndex``, no index twice, one of them 0
  (``InvalidParameterValue``);
* an existing interface with any property of a new one, or with
  ``DeleteOnTermination`` true, or in a launch of more than one instance:
  ``InvalidParameterCombination``;
* instance-level ``SubnetId``/``SecurityGroupIds``/``PrivateIpAddress`` with
  interfaces: ``InvalidParameterCombination`` (see :mod:`.instances`).

Device index 0 is the primary interface (made by :func:`ocs.db.compute.launch`, or
the existing one attached there); the others are made and attached here in the same
transaction, so the scheduler's spawn carries one NIC per interface
(:func:`ocs.scheduler.service.nic_specs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocs import errors
from ocs.api_ec2.context import RequestContext
from ocs.db import interfaces as db_interfaces
from ocs.db import ipam
from ocs.db import secgroups as db_secgroups
from ocs.db import vpcs as db_vpcs
from ocs.db.models.compute import Instance
from ocs.db.models.interfaces import NetworkInterface

_NEW_ONLY = (
    "SubnetId",
    "Groups",
    "PrivateIpAddress",
    "PrivateIpAddresses",
    "SecondaryPrivateIpAddressCount",
    "Description",
)


@dataclass(frozen=True)
class NicRequest:
    device_index: int
    existing_id: str | None = None
    subnet_id: str | None = None
    groups: tuple[str, ...] = ()
    private_ip: str | None = None
    secondary_count: int = 0
    description: str = ""
    delete_on_termination: bool = True
    raw: dict[str, Any] = field(default_factory=dict)


def parse(params: dict[str, Any], max_count: int) -> list[NicRequest]:
    """The requested interfaces by device index; EC2's errors for bad combinations."""
    given = list(params.get("NetworkInterfaces") or [])
    if not given:
        return []
    if len(given) > 1 and any(n.get("DeviceIndex") is None for n in given):
        raise errors.InvalidParameterValue("Each network interface requires a device index.")
    out: list[NicRequest] = []
    for nic in given:
        index = int(nic.get("DeviceIndex") or 0)
        if index < 0:
            raise errors.InvalidParameterValue(
                value=index, name="deviceIndex", reason="It must be 0 or more."
            )
        if nic.get("NetworkInterfaceId"):
            out.append(_existing(nic, index, max_count))
        else:
            out.append(_new(nic, index))
    indexes = [n.device_index for n in out]
    if len(set(indexes)) != len(indexes):
        raise errors.InvalidParameterValue("Each network interface requires a unique device index.")
    if 0 not in indexes:
        raise errors.InvalidParameterValue(
            "When specifying network interfaces, you must include a device at index 0."
        )
    existing = [n.existing_id for n in out if n.existing_id]
    if len(set(existing)) != len(existing):
        raise errors.InvalidParameterValue("A network interface may be attached only once.")
    return sorted(out, key=lambda n: n.device_index)


def _existing(nic: dict[str, Any], index: int, max_count: int) -> NicRequest:
    if any(nic.get(m) not in (None, [], "") for m in _NEW_ONLY):
        raise errors.InvalidParameterCombination(
            reason="A network interface may not specify both a network interface ID and properties of a new interface."
        )
    if nic.get("DeleteOnTermination"):
        raise errors.InvalidParameterCombination(
            reason="A network interface may not specify both a network interface ID and delete on termination as true."
        )
    if max_count > 1:
        raise errors.InvalidParameterCombination(
            reason="Network interfaces with an ID may not be specified when launching more than one instance."
        )
    return NicRequest(
        device_index=index, existing_id=str(nic["NetworkInterfaceId"]), delete_on_termination=False
    )


def _new(nic: dict[str, Any], index: int) -> NicRequest:
    count = int(nic.get("SecondaryPrivateIpAddressCount") or 0)
    if count < 0:
        raise errors.InvalidParameterValue(
            value=count, name="secondaryPrivateIpAddressCount", reason="It must be 0 or more."
        )
    if nic.get("PrivateIpAddresses"):
        raise errors.Unsupported(reason="PrivateIpAddresses at launch is not supported by this cloud.")
    dot = nic.get("DeleteOnTermination")
    return NicRequest(
        device_index=index,
        subnet_id=nic.get("SubnetId") or None,
        groups=tuple(str(g) for g in nic.get("Groups") or ()),
        private_ip=nic.get("PrivateIpAddress") or None,
        secondary_count=count,
        description=str(nic.get("Description") or ""),
        delete_on_termination=True if dot is None else bool(dot),
        raw=dict(nic),
    )


def primary_existing(ctx: RequestContext, nics: list[NicRequest]) -> NetworkInterface | None:
    """The existing interface asked for at device index 0 (checked to be free), if any."""
    if not nics or nics[0].existing_id is None:
        return None
    eni = db_interfaces.get_interface(ctx.session, ctx.account_id, nics[0].existing_id)
    if eni.instance_id:
        raise errors.InUse(f"Interface: [{eni.id}] in use.", code="InvalidNetworkInterface.InUse")
    return eni


def check_secondaries(ctx: RequestContext, nics: list[NicRequest], zone: str, max_count: int) -> None:
    """What can be checked before the launch writes anything: subnets, zone, addresses."""
    for nic in nics[1:]:
        if nic.existing_id:
            eni = db_interfaces.get_interface(ctx.session, ctx.account_id, nic.existing_id)
            if eni.instance_id:
                raise errors.InUse(f"Interface: [{eni.id}] in use.", code="InvalidNetworkInterface.InUse")
            continue
        if not nic.subnet_id:
            raise errors.MissingParameter(name="NetworkInterface.SubnetId")
        subnet = db_vpcs.get_subnet(ctx.session, ctx.account_id, nic.subnet_id)
        if subnet.availability_zone != zone:
            raise errors.InvalidParameterCombination(
                reason="You may not attach a network interface to an instance if they are not in the same "
                "availability zone"
            )
        if nic.private_ip and max_count > 1:
            raise errors.InvalidParameterCombination(
                reason="Cannot specify a private IP address when launching more than one instance"
            )


def finish(ctx: RequestContext, nics: list[NicRequest], instances: list[Instance]) -> None:
    """Give the launched instances their interfaces (the caller's transaction): the primary's
    requested properties, then each other interface made or attached at its index."""
    s = ctx.session
    for row in instances:
        primary = db_interfaces.primary_of(s, row.id)
        if nics and primary is not None and nics[0].existing_id is None:
            primary.description = nics[0].description
            primary.delete_on_termination = nics[0].delete_on_termination
            if nics[0].secondary_count:
                db_interfaces.assign_addresses(s, ctx.account_id, primary.id, (), nics[0].secondary_count)
        for nic in nics[1:]:
            eni_id = nic.existing_id or _make(ctx, nic).id
            eni = db_interfaces.attach(s, ctx.account_id, eni_id, row.id, nic.device_index)
            eni.delete_on_termination = nic.delete_on_termination
        s.flush()


def _make(ctx: RequestContext, nic: NicRequest) -> NetworkInterface:
    s = ctx.session
    subnet = db_vpcs.get_subnet(s, ctx.account_id, nic.subnet_id or "")
    groups = db_secgroups.resolve_security_groups(
        s, ctx.account_id, subnet.vpc_id, list(nic.groups), subnet_id=subnet.id
    )
    db_interfaces.check_group_count(groups)
    address = nic.private_ip
    if address:
        address = ipam.check_requested_address(
            s, subnet.id, subnet.cidr_block, address, name="privateIpAddress"
        )
    return db_interfaces.create_interface(
        s,
        ctx.account_id,
        subnet,
        groups,
        description=nic.description,
        private_ip=address,
        secondary_count=nic.secondary_count,
        now=ctx.now(),
    )
