"""Network interfaces (ENIs): Create/Delete/Describe, Attach/Detach, private addresses, attributes.

The rules and EC2's errors are in :mod:`ocs.db.interfaces`; this module parses,
calls it and shapes the answer. Behaviour of the request side, as EC2 documents
it:

* CreateNetworkInterface: ``PrivateIpAddresses`` may mark one address ``Primary``
  (else the first one is the primary, or ``PrivateIpAddress`` is); with
  ``SecondaryPrivateIpAddressCount`` that many more free addresses are added.
  ``PrivateIpAddress`` and a primary in ``PrivateIpAddresses`` that differ:
  ``InvalidParameterCombination``. Without ``Groups`` the VPC's default group is
  used. IPv6, prefixes, EFA and trunk interfaces are ``Unsupported``.
* DescribeNetworkInterfaces: every documented filter whose field the
  ``NetworkInterface`` shape has (see :mod:`ocs.api_ec2.filters`), tags, and
  ``MaxResults``/``NextToken`` (not together with ``NetworkInterfaceIds``).
* ModifyNetworkInterfaceAttribute changes exactly one of Description,
  SourceDestCheck, Groups, Attachment.DeleteOnTermination.
* AttachNetworkInterface / DetachNetworkInterface change the record at once (the
  attachment is ``attached`` when the answer goes out; EC2 shows ``attaching`` for a
  moment) and, once committed, have the instance's host plug the interface into the
  guest or unplug it (``ComputeApi.attach_interface`` / ``detach_interface``) when
  the instance is on a host and not stopped; a stopped instance gets its interfaces
  as recorded when it starts. ``Force`` (EC2: for a failed instance) changes
  nothing: the detachment is recorded whatever the guest does.
* DescribeNetworkInterfaceAttribute takes description, groupSet, sourceDestCheck
  or attachment; ResetNetworkInterfaceAttribute resets sourceDestCheck to true.
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.actions import interface_items, regions
from ocs.api_ec2.context import RequestContext
from ocs.compute_agent.rpcapi import InterfaceAction
from ocs.db import compute as db_compute
from ocs.db import interfaces as repo
from ocs.db import ipam
from ocs.db import secgroups as db_secgroups
from ocs.db import tags as db_tags
from ocs.db import vpcs as db_vpcs
from ocs.db.models.interfaces import NetworkInterface

resources.register("network_interface", "network-interface", repo.interface_exists)

_UNSUPPORTED = (
    "Ipv6Addresses",
    "Ipv6AddressCount",
    "Ipv4Prefixes",
    "Ipv4PrefixCount",
    "Ipv6Prefixes",
    "Ipv6PrefixCount",
    "EnablePrimaryIpv6",
    "ConnectionTrackingSpecification",
)


def _items(ctx: RequestContext, rows: list[NetworkInterface]) -> list[dict[str, Any]]:
    rel = interface_items.load(ctx, rows)
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [r.id for r in rows])
    zone_ids = {z["ZoneName"]: z["ZoneId"] for z in regions._zone_items(ctx)}
    return [interface_items.interface_item(ctx, r, rel, tags[r.id], zone_ids) for r in rows]


def _item(ctx: RequestContext, row: NetworkInterface) -> dict[str, Any]:
    return _items(ctx, [row])[0]


# --- Create / Delete / Describe --------------------------------------------------------------


def _requested_addresses(params: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(primary, secondaries) the request names."""
    primary = params.get("PrivateIpAddress") or None
    listed = params.get("PrivateIpAddresses") or []
    marked = [a.get("PrivateIpAddress") for a in listed if a.get("Primary")]
    if len(marked) > 1:
        raise errors.InvalidParameterValue("Multiple primary addresses specified")
    if marked and primary and marked[0] != primary:
        raise errors.InvalidParameterCombination(
            reason="The primary private IP address given in privateIpAddresses does not match privateIpAddress."
        )
    others = [a.get("PrivateIpAddress") for a in listed if not a.get("Primary")]
    if any(not a for a in [*marked, *others]):
        raise errors.MissingParameter(name="PrivateIpAddresses.PrivateIpAddress")
    primary = primary or (marked[0] if marked else None)
    if primary is None and others:
        primary, others = others[0], others[1:]
    secondaries = [str(a) for a in dict.fromkeys(others) if a != primary]
    return primary, secondaries


def create_network_interface(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    for name in _UNSUPPORTED:
        if params.get(name):
            raise errors.Unsupported(reason=f"The parameter {name} is not supported by this cloud.")
    if params.get("InterfaceType") not in (None, "", "interface"):
        raise errors.Unsupported(
            reason=f"Interface type {params['InterfaceType']} is not supported by this cloud."
        )
    subnet_id = params.get("SubnetId")
    if not subnet_id:
        raise errors.MissingParameter(name="subnetId")
    s = ctx.session
    subnet = db_vpcs.get_subnet(s, ctx.account_id, subnet_id)
    groups = db_secgroups.resolve_security_groups(
        s, ctx.account_id, subnet.vpc_id, params.get("Groups") or [], subnet_id=subnet.id
    )
    repo.check_group_count(groups)
    primary, secondaries = _requested_addresses(params)
    count = params.get("SecondaryPrivateIpAddressCount") or 0
    if count < 0:
        raise errors.InvalidParameterValue(
            value=count, name="secondaryPrivateIpAddressCount", reason="It must be 0 or more."
        )
    for address in [a for a in (primary, *secondaries) if a]:
        ipam.check_requested_address(s, subnet.id, subnet.cidr_block, address)
    tags = tagging.tag_specifications_for(params, "network-interface", action="CreateNetworkInterface")
    eni = repo.create_interface(
        s,
        ctx.account_id,
        subnet,
        groups,
        description=params.get("Description") or "",
        private_ip=primary,
        secondary_ips=secondaries,
        secondary_count=int(count),
        client_token=params.get("ClientToken") or None,
        now=ctx.now(),
    )
    if tags:
        db_tags.set_tags(s, ctx.account_id, [(eni.id, "network-interface")], tags)
    return {"NetworkInterface": _item(ctx, eni), "ClientToken": params.get("ClientToken") or None}


def delete_network_interface(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    repo.delete_interface(ctx.session, ctx.account_id, params.get("NetworkInterfaceId"))
    return {}


def describe_network_interfaces(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    action = "DescribeNetworkInterfaces"
    pagination.check_max_results_combination(action, params)
    rows = repo.list_interfaces(ctx.session, ctx.account_id, params.get("NetworkInterfaceIds") or [])
    items = filters.filter_action(action, _items(ctx, rows), params.get("Filters"))
    scope = pagination.token_scope(action, ctx.account_id)
    page, token = pagination.paginate_action(action, items, params, key="NetworkInterfaceId", scope=scope)
    return {"NetworkInterfaces": page, "NextToken": token}


# --- Attach / Detach ------------------------------------------------------------------------


#: Instance states whose guest is plugged or unplugged at once (a stopped one at its start).
_HOT = ("pending", "running", "stopping")


def _tell_host(
    ctx: RequestContext, operation: str, instance_id: str, eni: NetworkInterface, index: int
) -> None:
    """Cast ``operation`` about ``eni`` to the instance's host once ``ctx`` has committed."""
    instance = db_compute.get_instance(ctx.session, ctx.account_id, instance_id)
    compute = ctx.services.get("compute")
    if compute is None or not instance.host or instance.state not in _HOT:
        return
    message = InterfaceAction(
        host=instance.host,
        instance_id=instance.id,
        interface_id=eni.id,
        mac=eni.mac_address,
        device_index=index,
    )
    ctx.on_commit(lambda: getattr(compute, operation)(message))


def attach_network_interface(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("NetworkCardIndex") not in (None, 0):
        raise errors.InvalidParameterValue(
            value=params["NetworkCardIndex"],
            name="networkCardIndex",
            reason="This cloud has one network card.",
        )
    instance_id = params.get("InstanceId")
    if not instance_id:
        raise errors.MissingParameter(name="instanceId")
    eni = repo.attach(
        ctx.session, ctx.account_id, params.get("NetworkInterfaceId"), instance_id, params.get("DeviceIndex")
    )
    _tell_host(ctx, "attach_interface", instance_id, eni, eni.device_index or 0)
    return {"AttachmentId": eni.attachment_id, "NetworkCardIndex": 0}


def detach_network_interface(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    # Force changes nothing: the detachment is recorded at once, whatever the guest does.
    eni = repo.by_attachment(ctx.session, ctx.account_id, params.get("AttachmentId"))
    instance_id, index = eni.instance_id, eni.device_index or 0
    repo.detach(ctx.session, ctx.account_id, params.get("AttachmentId"))
    if instance_id:
        _tell_host(ctx, "detach_interface", instance_id, eni, index)
    return {}


# --- private addresses ------------------------------------------------------------------------


def assign_private_ip_addresses(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Ipv4Prefixes") or params.get("Ipv4PrefixCount"):
        raise errors.Unsupported(reason="IPv4 prefixes are not supported by this cloud.")
    count = params.get("SecondaryPrivateIpAddressCount") or 0
    if count < 0:
        raise errors.InvalidParameterValue(
            value=count, name="secondaryPrivateIpAddressCount", reason="It must be 0 or more."
        )
    interface_id = params.get("NetworkInterfaceId")
    assigned = repo.assign_addresses(
        ctx.session,
        ctx.account_id,
        interface_id,
        [str(a) for a in params.get("PrivateIpAddresses") or []],
        int(count),
        allow_reassignment=bool(params.get("AllowReassignment")),
    )
    return {
        "NetworkInterfaceId": interface_id,
        "AssignedPrivateIpAddresses": [{"PrivateIpAddress": a} for a in assigned],
    }


def unassign_private_ip_addresses(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Ipv4Prefixes"):
        raise errors.Unsupported(reason="IPv4 prefixes are not supported by this cloud.")
    repo.unassign_addresses(
        ctx.session,
        ctx.account_id,
        params.get("NetworkInterfaceId"),
        [str(a) for a in params.get("PrivateIpAddresses") or []],
    )
    return {}


# --- attributes --------------------------------------------------------------------------------

_MODIFIABLE = ("Description", "SourceDestCheck", "Groups", "Attachment")
_UNSUPPORTED_MODIFY = (
    "EnaSrdSpecification",
    "EnablePrimaryIpv6",
    "ConnectionTrackingSpecification",
    "AssociatePublicIpAddress",
    "AssociatedSubnetIds",
)


def modify_network_interface_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    for name in _UNSUPPORTED_MODIFY:
        if params.get(name) not in (None, [], {}):
            raise errors.Unsupported(reason=f"The attribute {name} is not supported by this cloud.")
    s = ctx.session
    eni = repo.get_interface(s, ctx.account_id, params.get("NetworkInterfaceId"))
    given = [name for name in _MODIFIABLE if params.get(name) not in (None, [])]
    if not given:
        raise errors.InvalidParameterCombination(reason="No attributes specified.")
    if len(given) > 1:
        raise errors.InvalidParameterCombination(reason="Only one attribute can be modified at a time.")
    name = given[0]
    if name == "Groups":
        groups = db_secgroups.resolve_security_groups(
            s, ctx.account_id, eni.vpc_id, [str(g) for g in params["Groups"]], subnet_id=eni.subnet_id
        )
        repo.set_groups(s, eni, groups)
    elif name == "Attachment":
        change = params["Attachment"]
        if not change.get("AttachmentId"):
            raise errors.MissingParameter(name="attachment.attachmentId")
        if change.get("DeleteOnTermination") is None:
            raise errors.MissingParameter(name="attachment.deleteOnTermination")
        repo.set_delete_on_termination(
            s, eni, str(change["AttachmentId"]), bool(change["DeleteOnTermination"])
        )
    else:
        value = (params[name] or {}).get("Value")
        if value is None:
            raise errors.MissingParameter(name=f"{name}.Value")
        if name == "Description":
            eni.description = str(value)
        else:
            repo.set_source_dest_check(s, eni, bool(value))
    s.flush()
    return {}


_ATTRIBUTES = ("description", "groupSet", "sourceDestCheck", "attachment")


def describe_network_interface_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    attribute = params.get("Attribute")
    eni = repo.get_interface(ctx.session, ctx.account_id, params.get("NetworkInterfaceId"))
    if not attribute:
        raise errors.InvalidParameterCombination(reason="No attributes specified.")
    if attribute not in _ATTRIBUTES:
        raise errors.InvalidParameterValue(
            value=attribute, name="attribute", reason=f"Valid values: {', '.join(_ATTRIBUTES)}."
        )
    item = _item(ctx, eni)
    out: dict[str, Any] = {"NetworkInterfaceId": eni.id}
    if attribute == "description":
        out["Description"] = {"Value": eni.description or ""}
    elif attribute == "groupSet":
        out["Groups"] = item["Groups"]
    elif attribute == "sourceDestCheck":
        out["SourceDestCheck"] = {"Value": bool(eni.source_dest_check)}
    elif "Attachment" in item:
        out["Attachment"] = item["Attachment"]
    return out


def reset_network_interface_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    eni = repo.get_interface(ctx.session, ctx.account_id, params.get("NetworkInterfaceId"))
    if not params.get("SourceDestCheck"):
        raise errors.MissingParameter(name="sourceDestCheck")
    repo.set_source_dest_check(ctx.session, eni, True)
    return {}


ACTIONS = {
    "CreateNetworkInterface": create_network_interface,
    "DeleteNetworkInterface": delete_network_interface,
    "DescribeNetworkInterfaces": describe_network_interfaces,
    "AttachNetworkInterface": attach_network_interface,
    "DetachNetworkInterface": detach_network_interface,
    "AssignPrivateIpAddresses": assign_private_ip_addresses,
    "UnassignPrivateIpAddresses": unassign_private_ip_addresses,
    "ModifyNetworkInterfaceAttribute": modify_network_interface_attribute,
    "DescribeNetworkInterfaceAttribute": describe_network_interface_attribute,
    "ResetNetworkInterfaceAttribute": reset_network_interface_attribute,
}
