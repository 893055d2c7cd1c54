"""Instances: RunInstances, DescribeInstances, DescribeInstanceStatus, and the Instance shape.

(The state changes, GetConsoleOutput and the instance attributes are in
:mod:`ocs.api_ec2.actions.instance_attributes`.)

The API writes what the account asked for and hands the rest to the services
(the contract of issue 4): RunInstances validates everything first, so that
nothing is created on any error, stores the reservation and its instances
(``pending``, task ``scheduling``, private addresses allocated), COMMITS, then
calls the scheduler, which claims hosts and has the instances built. Stop,
Start, Reboot and Terminate change the state, COMMIT, and only then cast to the
instance's compute agent, so an agent's report can never arrive before the
state it updates. Agents' reports reach the database through the scheduler.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* Unknown instance IDs: ``InvalidInstanceID.NotFound`` "The instance ID 'i-1' does
  not exist", several at once "The instance IDs 'i-1, i-2' do not exist" [EC2
  error messages quoted in aws-cli and terraform issues]; another account's
  instance is exactly as unknown.
* ``MinCount``/``MaxCount``: up to MaxCount are launched as far as the quotas,
  the subnet's free addresses and the hosts allow; fewer than MinCount fit:
  ``InstanceLimitExceeded`` "Your quota allows for 0 more running instance(s).
  You requested at least 1" [hashicorp/terraform#1891], ``VcpuLimitExceeded``
  "You have requested more vCPU capacity than your current vCPU limit of 32
  allows ..." [scrapoxy/scrapoxy#202], ``InsufficientFreeAddressesInSubnet``, or
  ``InsufficientInstanceCapacity`` (from the scheduler).
* ``UserData`` is base64 text; EC2 limits the DECODED data to 16 KB: "User data
  is limited to 16384 bytes" [kubermatic/kubermatic#144; AWS user guide: the
  limit applies to the raw form]. Text that is not base64:
  ``InvalidUserData.Malformed`` "Invalid BASE64 encoding of user data." (older
  EC2 answered the same message as ``InvalidParameterValue``
  [hashicorp/packer#2616]; current SDKs see ``InvalidUserData.Malformed``).
* ``SecurityGroups`` (names) only name groups of the default VPC; with a subnet
  of another VPC: ``InvalidParameterCombination`` "The parameter groupName cannot
  be used with the parameter subnet".
* Without ``InstanceType`` EC2 launches ``m1.small``; OCS launches the first of
  :data:`DEFAULT_INSTANCE_TYPES` the operator offers.
* Without a subnet or zone, the instance goes to the default subnet of the zone
  whose hosts have the most room (EC2 picks a zone too).
* Public IPv4: the primary interface gets one from the public pool when the
  subnet has MapPublicIpOnLaunch (default subnets do), unless
  ``NetworkInterface.1.AssociatePublicIpAddress`` says otherwise; it is shown as
  ``PublicIpAddress``/``PublicDnsName`` and an ``Association`` owned by
  ``amazon``. AssociatePublicIpAddress on another device index:
  ``InvalidParameterCombination`` "The associatePublicIPAddress parameter can only
  be specified for the network interface with DeviceIndex 0." [AWS Spot Fleet
  user guide, event example]; with several interfaces "... cannot be specified
  when launching with multiple network interfaces." [erlcloud/erlcloud#284,
  terraform-provider-aws fleet test]; with an existing interface "... cannot be
  specified for a network interface with an ID."; the pool out of addresses when
  AssociatePublicIpAddress asked for one: ``InsufficientAddressCapacity``, nothing
  launched; when only the subnet's MapPublicIpOnLaunch would give one, the launch
  goes on without (a private cloud's public pool is finite, EC2's is not: running
  out must not stop instances from launching). Its lifecycle is in
  :mod:`ocs.db.public_addresses`.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.actions import block_devices, interface_items, launch_interfaces, regions
from ocs.api_ec2.actions.interface_items import private_dns_name
from ocs.api_ec2.actions.launch_interfaces import NicRequest
from ocs.api_ec2.context import RequestContext
from ocs.db import compute as repo
from ocs.db import images as db_images
from ocs.db import instance_types as db_types
from ocs.db import interfaces as db_interfaces
from ocs.db import keypairs as db_keypairs
from ocs.db import launch_volumes, public_addresses
from ocs.db import secgroups as db_secgroups
from ocs.db import tags as db_tags
from ocs.db import volume_attachments as db_attachments
from ocs.db import volumes as db_volumes
from ocs.db import vpcs as db_vpcs
from ocs.db.models.compute import Instance
from ocs.db.models.images import Image
from ocs.db.models.instance_types import InstanceType
from ocs.db.models.interfaces import NetworkInterface
from ocs.db.models.network import SecurityGroup, Subnet, Vpc
from ocs.db.models.volumes import VolumeAttachment
from ocs.scheduler.rpcapi import ScheduleInstances
from ocs.volume.rpcapi import CreateVolume

LOG = logging.getLogger(__name__)

resources.register("instance", "instance", repo.instance_exists)

DEFAULT_INSTANCE_TYPES = ("m1.small", "t2.micro", "t3.micro")
USER_DATA_LIMIT = 16384
MAX_GROUPS_PER_INTERFACE = 5
MAX_CLIENT_TOKEN = 64
SHUTDOWN_BEHAVIORS = ("stop", "terminate")


# --- output ---------------------------------------------------------------------------------------


@dataclass
class Related:
    """What the items of a set of instances need besides the rows, loaded in a few queries."""

    tags: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    types: dict[str, InstanceType] = field(default_factory=dict)
    groups: dict[str, SecurityGroup] = field(default_factory=dict)
    zone_ids: dict[str, str] = field(default_factory=dict)
    interfaces: dict[str, list[NetworkInterface]] = field(default_factory=dict)
    volumes: dict[str, list[VolumeAttachment]] = field(default_factory=dict)
    net: interface_items.InterfaceRelated = field(default_factory=interface_items.InterfaceRelated)


def related(ctx: RequestContext, rows: list[Instance]) -> Related:
    s = ctx.session
    image_ids = {r.image_id for r in rows}
    type_names = {r.instance_type for r in rows}
    interfaces = db_interfaces.interfaces_of_instances(s, [r.id for r in rows if r.state != "terminated"])
    enis = [eni for attached in interfaces.values() for eni in attached]
    net = interface_items.load(ctx, enis)
    group_ids = {g for r in rows for g in (r.security_group_ids or [])} | set(net.groups)
    return Related(
        interfaces=interfaces,
        volumes=db_attachments.of_instances(s, [r.id for r in rows if r.state != "terminated"]),
        net=net,
        tags=db_tags.tags_for(s, ctx.account_id, [r.id for r in rows]),
        images={i.id: i for i in s.scalars(select(Image).where(Image.id.in_(image_ids)))}
        if image_ids
        else {},
        types={t.name: t for t in s.scalars(select(InstanceType).where(InstanceType.name.in_(type_names)))}
        if type_names
        else {},
        groups=db_secgroups.groups_by_id(s, group_ids),
        zone_ids={z["ZoneName"]: z["ZoneId"] for z in regions._zone_items(ctx)},
    )


def state_of(name: str) -> dict[str, Any]:
    return {"Code": repo.STATE_CODES[name], "Name": name}


def group_items(row: Instance, rel: Related) -> list[dict[str, str]]:
    out = []
    for group_id in row.security_group_ids or []:
        group = rel.groups.get(group_id)
        out.append({"GroupId": group_id, "GroupName": group.name if group else ""})
    return out


def _network_fields(ctx: RequestContext, row: Instance, rel: Related) -> dict[str, Any]:
    """What an instance shows of its network: from its interfaces (the primary one first)."""
    attached = rel.interfaces.get(row.id) or []
    primary = next((e for e in attached if e.device_index == 0), None)
    if row.state == "terminated" or primary is None:
        return {
            "PrivateIpAddress": row.private_ip_address if row.state != "terminated" else None,
            "SecurityGroups": group_items(row, rel) if row.state != "terminated" else [],
            "NetworkInterfaces": [],
        }
    public_ip, public_dns = interface_items.public_of(ctx, primary, rel.net, primary.private_ip_address)
    return {
        "PrivateIpAddress": primary.private_ip_address,
        "PrivateDnsName": private_dns_name(ctx.settings.region, primary.private_ip_address),
        "PublicIpAddress": public_ip or None,
        "PublicDnsName": public_dns,
        "SourceDestCheck": bool(primary.source_dest_check),
        "SecurityGroups": interface_items.group_items(list(primary.security_group_ids or []), rel.groups),
        "NetworkInterfaces": [interface_items.instance_interface_item(ctx, e, rel.net) for e in attached],
    }


def _image_fields(row: Instance, image: Image | None) -> dict[str, Any]:
    boot_mode = image.boot_mode if image else None
    ena = image.ena_support if image is not None and image.ena_support is not None else True
    return {
        "RootDeviceType": image.root_device_type if image else "ebs",
        "VirtualizationType": image.virtualization_type if image else "hvm",
        "BootMode": boot_mode,
        "CurrentInstanceBootMode": "uefi" if boot_mode == "uefi" else "legacy-bios",
        "EnaSupport": ena,
        "SriovNetSupport": image.sriov_net_support if image else None,
        "TpmSupport": image.tpm_support if image else None,
    }


def _constant_fields() -> dict[str, Any]:
    """What every OCS instance reports the same way (features OCS does not offer are off)."""
    return {
        "PublicDnsName": "",
        "ProductCodes": [],
        "Monitoring": {"State": "disabled"},
        "Hypervisor": "xen",
        "SourceDestCheck": True,
        "EbsOptimized": False,
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "MetadataOptions": {
            "State": "applied",
            "HttpTokens": "optional",
            "HttpPutResponseHopLimit": 1,
            "HttpEndpoint": "enabled",
            "HttpProtocolIpv6": "disabled",
            "InstanceMetadataTags": "disabled",
        },
        "EnclaveOptions": {"Enabled": False},
        "HibernationOptions": {"Configured": False},
        "CapacityReservationSpecification": {"CapacityReservationPreference": "open"},
        "MaintenanceOptions": {"AutoRecovery": "default"},
        "PrivateDnsNameOptions": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": False,
            "EnableResourceNameDnsAAAARecord": False,
        },
    }


def _block_devices(attachments: list[VolumeAttachment]) -> list[dict[str, Any]]:
    """botocore ``InstanceBlockDeviceMapping`` items: the EBS volumes attached, by device."""
    return [
        {
            "DeviceName": a.device,
            "Ebs": {
                "VolumeId": a.volume_id,
                "Status": a.state,
                "AttachTime": a.attach_time,
                "DeleteOnTermination": a.delete_on_termination,
            },
        }
        for a in attachments
    ]


def block_device_items(ctx: RequestContext, row: Instance) -> list[dict[str, Any]]:
    """The instance's BlockDeviceMappings (DescribeInstanceAttribute blockDeviceMapping)."""
    return _block_devices(db_attachments.of_instances(ctx.session, [row.id]).get(row.id) or [])


def instance_item(ctx: RequestContext, row: Instance, rel: Related) -> dict[str, Any]:
    """A botocore ``Instance``. A terminated instance has no address, subnet or interface."""
    live = row.state != "terminated"
    dns = private_dns_name(ctx.settings.region, row.private_ip_address) if live else ""
    itype = rel.types.get(row.instance_type)
    threads = itype.threads_per_core if itype is not None and row.vcpus % itype.threads_per_core == 0 else 1
    item: dict[str, Any] = {
        "InstanceId": row.id,
        "ImageId": row.image_id,
        "State": state_of(row.state),
        "PrivateDnsName": dns,
        "StateTransitionReason": row.state_transition_reason or "",
        "KeyName": row.key_name,
        "AmiLaunchIndex": row.launch_index,
        "InstanceType": row.instance_type,
        "LaunchTime": row.launch_time,
        "Placement": {
            "AvailabilityZone": row.availability_zone,
            "AvailabilityZoneId": rel.zone_ids.get(row.availability_zone),
            "GroupName": "",
            "Tenancy": "default",
        },
        "KernelId": row.kernel_id,
        "RamdiskId": row.ramdisk_id,
        "SubnetId": row.subnet_id if live else None,
        "VpcId": row.vpc_id if live else None,
        "Architecture": row.architecture,
        "RootDeviceName": row.root_device_name,
        "ClientToken": row.client_token or "",
        "Tags": rel.tags.get(row.id) or None,
        "CpuOptions": {"CoreCount": max(1, row.vcpus // threads), "ThreadsPerCore": threads},
        "UsageOperationUpdateTime": row.launch_time,
        **_constant_fields(),
        **_image_fields(row, rel.images.get(row.image_id)),
        **_network_fields(ctx, row, rel),
        "BlockDeviceMappings": _block_devices(rel.volumes.get(row.id) or []),
    }
    if row.state_reason_code:
        item["StateReason"] = {"Code": row.state_reason_code, "Message": row.state_reason_message or ""}
    return {k: v for k, v in item.items() if v is not None}


def reservation_item(reservation_id: str, owner_id: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
    """A botocore ``Reservation`` (VPC instances: its ``Groups`` are empty, as on EC2)."""
    return {"ReservationId": reservation_id, "OwnerId": owner_id, "Groups": [], "Instances": instances}


# --- DescribeInstances / DescribeInstanceStatus --------------------------------------------------


def _page(
    ctx: RequestContext, action: str, params: dict[str, Any], items: list[Any]
) -> tuple[list[Any], str | None]:
    scope = pagination.token_scope(action, ctx.account_id)
    return pagination.paginate_action(action, items, params, key="InstanceId", scope=scope)


# Filters narrowed in SQL before the exact filtering (a superset of the matches: the exact
# filters still run on every item). Only filters whose values are all literal (no ``*``, ``?``
# or ``\\``) narrow; each maps to the Instance column its output field is read from.
_NARROW_COLUMNS = {
    "instance-id": "id",
    "instance-state-name": "state",
    "instance-type": "instance_type",
    "availability-zone": "availability_zone",
    "image-id": "image_id",
    "reservation-id": "reservation_id",
    "subnet-id": "subnet_id",
    "vpc-id": "vpc_id",
    "key-name": "key_name",
    "architecture": "architecture",
}


def narrowing(flts: list[dict[str, Any]] | None) -> repo.Narrowing:
    """What of ``Filters`` the database can apply first (column and ``tag:KEY`` equalities)."""
    columns: dict[str, set[str]] = {}
    tags: dict[str, set[str]] = {}
    for flt in flts or []:
        name, values = flt.get("Name"), flt.get("Values")
        if not isinstance(name, str) or not isinstance(values, list) or not values:
            continue
        literal = {str(v) for v in values}
        if any(c in v for v in literal for c in "*?\\"):
            continue
        if name in _NARROW_COLUMNS:
            column = _NARROW_COLUMNS[name]
            columns[column] = columns[column] & literal if column in columns else literal
        elif name.startswith("tag:") and len(name) > 4:
            key = name[4:]
            tags[key] = tags[key] & literal if key in tags else literal
    return repo.Narrowing(
        columns={k: tuple(sorted(v)) for k, v in columns.items()},
        tags={k: tuple(sorted(v)) for k, v in tags.items()},
    )


def _describe_items(ctx: RequestContext, rows: list[Instance]) -> list[dict[str, Any]]:
    """Instance items carrying their reservation's ReservationId, OwnerId and RequesterId."""
    rel = related(ctx, rows)
    reservations = repo.reservations_of(ctx.session, {r.reservation_id for r in rows})
    items = []
    for row in rows:
        item = instance_item(ctx, row, rel)
        reservation = reservations.get(row.reservation_id)
        item.update(ReservationId=row.reservation_id, OwnerId=row.account_id)
        if reservation is not None and reservation.requester_id:
            item["RequesterId"] = reservation.requester_id
        items.append(item)
    return items


def _describe_page(ctx: RequestContext, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The page of instance items and the next token, as :func:`pagination.paginate_action` cuts it.

    Rows are read in ID order after the token, a chunk at a time, and items are
    built and filtered only until the page is full and one more match is seen
    (which is what decides whether there is a next page): with 10,000 instances,
    one page of 100 reads about 100 rows instead of 10,000.
    """
    action = "DescribeInstances"
    s, account = ctx.session, ctx.account_id
    wanted = params.get("InstanceIds") or None
    listed = repo.list_instances(s, account, wanted) if wanted else None
    spec = filters.FILTERS[action]
    matches = filters.compile_filters(params.get("Filters"), spec, taggable=action not in filters.UNTAGGABLE)
    limit = None
    if params.get("MaxResults") is not None:
        limit = pagination.validate_max_results(params["MaxResults"], *pagination.LIMITS[action])
    scope = pagination.token_scope(action, account)
    after = pagination.decode_token(params["NextToken"], scope) if params.get("NextToken") else None
    if listed is not None:
        chunks: Any = [sorted((r for r in listed if after is None or r.id > after), key=lambda r: r.id)]
    else:
        first = limit + 1 if limit is not None else 500
        chunks = repo.instance_chunks(
            s, account, after=after, narrowing=narrowing(params.get("Filters")), first=first
        )
    page: list[dict[str, Any]] = []
    for rows in chunks:
        for item in _describe_items(ctx, rows):
            if not matches(item):
                continue
            if limit is not None and len(page) == limit:
                return page, pagination.encode_token(scope, page[-1]["InstanceId"])
            page.append(item)
    return page, None


def describe_instances(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    pagination.check_max_results_combination("DescribeInstances", params)
    page, token = _describe_page(ctx, params)
    grouped: dict[str, dict[str, Any]] = {}
    for item in page:
        reservation_id, owner = item.pop("ReservationId"), item.pop("OwnerId")
        requester = item.pop("RequesterId", None)
        entry = grouped.setdefault(reservation_id, reservation_item(reservation_id, owner, []))
        if requester:
            entry["RequesterId"] = requester
        entry["Instances"].append(item)
    for entry in grouped.values():
        entry["Instances"].sort(key=lambda i: i["AmiLaunchIndex"])
    return {"Reservations": list(grouped.values()), "NextToken": token}


def _status_summary(row: Instance) -> dict[str, Any]:
    if row.state != "running":
        return {"Status": "not-applicable"}
    return {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}


def status_item(row: Instance, rel: Related) -> dict[str, Any]:
    """A botocore ``InstanceStatus``: a running instance is ``ok`` (the agent reports it up)."""
    item = {
        "InstanceId": row.id,
        "AvailabilityZone": row.availability_zone,
        "AvailabilityZoneId": rel.zone_ids.get(row.availability_zone),
        "InstanceState": state_of(row.state),
        "InstanceStatus": _status_summary(row),
        "SystemStatus": _status_summary(row),
        "AttachedEbsStatus": _status_summary(row),
    }
    return {k: v for k, v in item.items() if v is not None}


def describe_instance_status(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    pagination.check_max_results_combination("DescribeInstanceStatus", params)
    rows = repo.list_instances(ctx.session, ctx.account_id, params.get("InstanceIds") or None)
    if not params.get("IncludeAllInstances"):
        rows = [r for r in rows if r.state == "running"]
    rel = Related(zone_ids={z["ZoneName"]: z["ZoneId"] for z in regions._zone_items(ctx)})
    items = filters.filter_action(
        "DescribeInstanceStatus", [status_item(r, rel) for r in rows], params.get("Filters")
    )
    page, token = _page(ctx, "DescribeInstanceStatus", params, items)
    return {"InstanceStatuses": page, "NextToken": token}


# --- RunInstances: checks --------------------------------------------------------------------------


_UNSUPPORTED_LAUNCH = (
    "LaunchTemplate",
    "InstanceMarketOptions",
    "IamInstanceProfile",
    "Ipv6Addresses",
    "ElasticGpuSpecification",
    "ElasticInferenceAccelerators",
    "LicenseSpecifications",
    "SecondaryInterfaces",
)


def _unsupported(what: str) -> errors.OcsError:
    return errors.Unsupported(reason=f"{what} is not supported by this cloud.")


def refuse_unsupported(params: dict[str, Any]) -> None:
    """Unsupported for the features OCS does not offer (accepting them silently would lie)."""
    for name in _UNSUPPORTED_LAUNCH:
        if params.get(name):
            raise _unsupported(f"The parameter {name}")
    if params.get("Ipv6AddressCount"):
        raise _unsupported("IPv6 addressing")
    for member, flag in (("HibernationOptions", "Configured"), ("EnclaveOptions", "Enabled")):
        if (params.get(member) or {}).get(flag):
            raise _unsupported(f"{member}.{flag}")
    if params.get("EnablePrimaryIpv6") or params.get("DisableApiStop"):
        raise _unsupported("EnablePrimaryIpv6" if params.get("EnablePrimaryIpv6") else "DisableApiStop")
    if (params.get("CapacityReservationSpecification") or {}).get("CapacityReservationTarget"):
        raise _unsupported("Targeting a capacity reservation")
    placement = params.get("Placement") or {}
    if placement.get("GroupName") or placement.get("GroupId"):
        group = placement.get("GroupName") or placement.get("GroupId")
        raise errors.InvalidParameterValue(
            f"The Placement Group '{group}' is unknown.", code="InvalidPlacementGroup.Unknown"
        )
    if placement.get("Tenancy") not in (None, "", "default") or placement.get("HostId"):
        raise _unsupported("Dedicated tenancy")


def counts(params: dict[str, Any]) -> tuple[int, int]:
    """(MinCount, MaxCount), both at least 1 and in order."""
    low, high = params.get("MinCount"), params.get("MaxCount")
    if low is None:
        raise errors.MissingParameter(name="MinCount")
    if high is None:
        raise errors.MissingParameter(name="MaxCount")
    for name, value in (("minCount", low), ("maxCount", high)):
        if value < 1:
            raise errors.InvalidParameterValue(value=value, name=name, reason="Expected a positive integer.")
    if low > high:
        raise errors.InvalidParameterValue(
            value=low, name="minCount", reason=f"minCount may not exceed maxCount ({high})."
        )
    return int(low), int(high)


def instance_type(ctx: RequestContext, name: str | None) -> InstanceType:
    if name:
        return db_types.get_instance_type(ctx.session, name)
    for default in DEFAULT_INSTANCE_TYPES:
        found = db_types.find_instance_type(ctx.session, default)
        if found is not None:
            return found
    raise errors.MissingParameter(name="InstanceType")


def check_architecture(image: Image, itype: InstanceType) -> None:
    compatible = {itype.architecture} | ({"i386"} if itype.architecture == "x86_64" else set())
    if image.architecture not in compatible:
        raise errors.InvalidParameterValue(
            f"The architecture '{itype.architecture}' of the specified instance type does not match the "
            f"architecture '{image.architecture}' of the specified AMI. Specify an instance type and an AMI "
            "that have matching architectures, and try again."
        )


def boot_images(ctx: RequestContext, params: dict[str, Any], image: Image) -> tuple[str | None, str | None]:
    """The kernel and ramdisk of the launch: the request's overrides, else the image's."""
    chosen = []
    for member, image_type, default in (
        ("KernelId", "kernel", image.kernel_id),
        ("RamdiskId", "ramdisk", image.ramdisk_id),
    ):
        wanted = params.get(member)
        if wanted:
            db_images.get_boot_image(ctx.session, ctx.account_id, wanted, image_type)
        chosen.append(wanted or default)
    return chosen[0], chosen[1]


def normalize_user_data(text: str | None) -> str | None:
    """The user data as canonical base64 text (None if empty); EC2's errors otherwise."""
    if not text:
        return None
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidParameterValue(
            "Invalid BASE64 encoding of user data.", code="InvalidUserData.Malformed"
        ) from None
    return encode_user_data(raw)


def encode_user_data(raw: bytes) -> str | None:
    if len(raw) > USER_DATA_LIMIT:
        raise errors.InvalidParameterValue(f"User data is limited to {USER_DATA_LIMIT} bytes")
    return base64.b64encode(raw).decode("ascii") if raw else None


@dataclass(frozen=True)
class Network:
    subnet: Subnet
    groups: list[SecurityGroup]
    private_ip: str | None
    associate_public_ip: bool
    public_ip_required: bool = False
    primary_interface_id: str | None = None  # an existing interface launched as the primary


def check_associate_public_ip(interfaces: list[dict[str, Any]]) -> None:
    """EC2's rules for ``NetworkInterface.N.AssociatePublicIpAddress`` (whatever its value):
    only on device index 0, only when launching one network interface, only a new one."""
    flagged = [n for n in interfaces if n.get("AssociatePublicIpAddress") is not None]
    if not flagged:
        return
    if any((n.get("DeviceIndex") or 0) != 0 for n in flagged):
        raise errors.InvalidParameterCombination(
            reason="The associatePublicIPAddress parameter can only be specified for the network interface "
            "with DeviceIndex 0."
        )
    if len(interfaces) > 1:
        raise errors.InvalidParameterCombination(
            reason="The associatePublicIPAddress parameter cannot be specified when launching with multiple "
            "network interfaces."
        )
    if flagged[0].get("NetworkInterfaceId"):
        raise errors.InvalidParameterCombination(
            reason="The associatePublicIPAddress parameter cannot be specified for a network interface with an ID."
        )


def _interface_request(params: dict[str, Any], max_count: int) -> tuple[dict[str, Any], list[NicRequest]]:
    """The primary (device index 0) entry of ``NetworkInterfaces`` and all of them, checked
    (:mod:`.launch_interfaces`)."""
    interfaces = params.get("NetworkInterfaces") or []
    if not interfaces:
        return {}, []
    check_associate_public_ip(list(interfaces))
    for member, wire in (("SubnetId", "subnet ID"), ("SecurityGroupIds", "security groups")):
        if params.get(member):
            raise errors.InvalidParameterCombination(
                reason=f"Network interfaces and an instance-level {wire} may not be specified on the same request"
            )
    nics = launch_interfaces.parse(params, max_count)
    primary = next(n for n in interfaces if int(n.get("DeviceIndex") or 0) == 0)
    if params.get("PrivateIpAddress") and (
        primary.get("PrivateIpAddress") or primary.get("NetworkInterfaceId")
    ):
        raise errors.InvalidParameterCombination(
            reason="Network interfaces and an instance-level private IP address may not be specified on the same request"
        )
    return dict(primary), nics


def _subnet(ctx: RequestContext, subnet_id: str | None, zone: str | None) -> Subnet:
    s, account = ctx.session, ctx.account_id
    if zone is not None and zone not in ctx.settings.availability_zones:
        raise errors.InvalidParameterValue(f"Invalid availability zone: [{zone}]")
    if subnet_id:
        subnet = db_vpcs.get_subnet(s, account, subnet_id)
        if zone and zone != subnet.availability_zone:
            raise errors.InvalidParameterValue(
                value=zone,
                name="availabilityZone",
                reason=f"Subnet {subnet.id} is in availability zone {subnet.availability_zone}.",
            )
        return subnet
    if db_vpcs.default_vpc(s, account) is None:
        raise errors.InvalidParameterValue("No default VPC for this user", code="VPCIdNotSpecified")
    chosen = zone or repo.roomiest_zone(s, ctx.settings.availability_zones)
    default = db_vpcs.default_subnet_for_az(s, account, chosen)
    if default is None:
        raise errors.InvalidParameterValue(
            f"No default subnet for availability zone: '{chosen}'.", code="MissingInput"
        )
    return default


def network(ctx: RequestContext, params: dict[str, Any], max_count: int) -> Network:
    """The subnet, security groups and requested address of the launch."""
    nic, nics = _interface_request(params, max_count)
    zone = (params.get("Placement") or {}).get("AvailabilityZone") or None
    existing = launch_interfaces.primary_existing(ctx, nics)
    if existing is not None:
        subnet = _subnet(ctx, existing.subnet_id, zone)
        launch_interfaces.check_secondaries(ctx, nics, subnet.availability_zone, max_count)
        groups = db_secgroups.resolve_security_groups(
            ctx.session,
            ctx.account_id,
            subnet.vpc_id,
            list(existing.security_group_ids or ()),
            subnet_id=subnet.id,
        )
        return Network(
            subnet=subnet,
            groups=groups,
            private_ip=existing.private_ip_address,
            associate_public_ip=False,
            primary_interface_id=existing.id,
        )
    subnet = _subnet(ctx, nic.get("SubnetId") or params.get("SubnetId"), zone)
    launch_interfaces.check_secondaries(ctx, nics, subnet.availability_zone, max_count)
    vpc = ctx.session.get(Vpc, subnet.vpc_id)
    names = params.get("SecurityGroups") or []
    if names and (vpc is None or not vpc.is_default):
        raise errors.InvalidParameterCombination(
            reason="The parameter groupName cannot be used with the parameter subnet"
        )
    group_ids = nic.get("Groups") or params.get("SecurityGroupIds") or []
    groups = db_secgroups.resolve_security_groups(
        ctx.session, ctx.account_id, subnet.vpc_id, group_ids, names, subnet_id=subnet.id
    )
    if len(groups) > MAX_GROUPS_PER_INTERFACE:
        raise errors.LimitExceeded(
            "The maximum number of security groups per interface has been reached.",
            code="SecurityGroupsPerInterfaceLimitExceeded",
        )
    address = nic.get("PrivateIpAddress") or params.get("PrivateIpAddress")
    if address:
        if max_count > 1:
            raise errors.InvalidParameterCombination(
                reason="Cannot specify a private IP address when launching more than one instance"
            )
        address = repo.check_requested_address(ctx.session, subnet.id, subnet.cidr_block, address)
    wanted = nic.get("AssociatePublicIpAddress")
    public = subnet.map_public_ip_on_launch if wanted is None else bool(wanted)
    return Network(
        subnet=subnet,
        groups=groups,
        private_ip=address,
        associate_public_ip=bool(public),
        public_ip_required=bool(wanted),  # asked for in the request, not the subnet's default
    )


def client_token(params: dict[str, Any]) -> str | None:
    token = params.get("ClientToken") or None
    if token is not None and len(token) > MAX_CLIENT_TOKEN:
        raise errors.InvalidParameterValue(
            value=token[:16] + "...",
            name="clientToken",
            reason=f"It must be at most {MAX_CLIENT_TOKEN} characters.",
        )
    return token


def shutdown_behavior(value: str | None) -> str:
    behavior = value or "stop"
    if behavior not in SHUTDOWN_BEHAVIORS:
        raise errors.InvalidParameterValue(
            value=behavior, name="InstanceInitiatedShutdownBehavior", reason="Valid values: stop, terminate."
        )
    return behavior


# --- RunInstances ----------------------------------------------------------------------------------


def launch_spec(
    ctx: RequestContext, params: dict[str, Any], max_count: int
) -> tuple[repo.LaunchSpec, Image, block_devices.LaunchDisks]:
    """Every check of a launch, in EC2's order; nothing is written here."""
    s, account = ctx.session, ctx.account_id
    image_id = params.get("ImageId")
    if not image_id:
        raise errors.MissingParameter(name="ImageId")
    image = db_images.get_launchable_image(s, account, image_id)
    itype = instance_type(ctx, params.get("InstanceType"))
    check_architecture(image, itype)
    kernel_id, ramdisk_id = boot_images(ctx, params, image)
    disks = block_devices.plan_launch(ctx, image, itype, params.get("BlockDeviceMappings"))
    key_name = params.get("KeyName") or None
    if key_name is not None:
        db_keypairs.get_key_pair(s, account, key_name)
    net = network(ctx, params, max_count)
    spec = repo.LaunchSpec(
        image_id=image.id,
        instance_type=itype.name,
        vcpus=itype.vcpus,
        memory_mib=itype.memory_mib,
        disk_gib=disks.local_root_gib,
        architecture=image.architecture,
        availability_zone=net.subnet.availability_zone,
        subnet_id=net.subnet.id,
        subnet_cidr=net.subnet.cidr_block,
        vpc_id=net.subnet.vpc_id,
        security_group_ids=tuple(g.id for g in net.groups),
        root_device_name=image.root_device_name or "/dev/sda1",
        kernel_id=kernel_id,
        ramdisk_id=ramdisk_id,
        key_name=key_name,
        user_data=normalize_user_data(params.get("UserData")),
        client_token=client_token(params),
        disable_api_termination=bool(params.get("DisableApiTermination")),
        shutdown_behavior=shutdown_behavior(params.get("InstanceInitiatedShutdownBehavior")),
        private_ip_address=net.private_ip,
        associate_public_ip=net.associate_public_ip,
        public_ip_required=net.public_ip_required,
        public_pool=tuple(ctx.settings.public_address_pool),
        primary_interface_id=net.primary_interface_id,
    )
    return spec, image, disks


def launch_count(ctx: RequestContext, spec: repo.LaunchSpec, low: int, high: int) -> int:
    """How many to launch: as many as the quotas, the subnet's free addresses and (when
    each must get a public address: AssociatePublicIpAddress asked for it) the public
    pool's free addresses allow. A subnet's MapPublicIpOnLaunch alone never refuses a
    launch: past the pool's end, instances launch without a public address."""
    allowed = repo.launch_allowance(ctx.session, ctx.account_id, spec.vcpus, low, high)
    free = repo.free_address_count(ctx.session, spec.subnet_id, spec.subnet_cidr)
    if free < low:
        raise repo.InsufficientFreeAddresses(subnet_id=spec.subnet_id)
    if spec.public_ip_required:
        public = public_addresses.free_count(ctx.session, spec.public_pool, high)
        if public < low:
            raise public_addresses.insufficient_capacity()
        free = min(free, public)
    return min(allowed, free)


def _tag_new(
    ctx: RequestContext, rows: list[Instance], volumes: list[str], tags: dict[str, list[dict[str, str]]]
) -> None:
    """TagSpecifications: instances, their network interfaces and their launch volumes."""
    s, account = ctx.session, ctx.account_id
    if tags.get("instance"):
        db_tags.set_tags(s, account, [(r.id, "instance") for r in rows], tags["instance"])
    if tags.get("network-interface"):
        enis = [(r.network_interface_id, "network-interface") for r in rows if r.network_interface_id]
        db_tags.set_tags(s, account, enis, tags["network-interface"])
    if tags.get("volume") and volumes:
        db_tags.set_tags(s, account, [(v, "volume") for v in volumes], tags["volume"])


def _launch_volumes(ctx: RequestContext, rows: list[Instance], disks: block_devices.LaunchDisks) -> list[str]:
    """Each instance's EBS volumes (``creating``, attached ``attaching``); their IDs."""
    made: list[str] = []
    for row in rows:
        made += launch_volumes.create(ctx.session, row, disks.volumes, now=ctx.now())
    return made


def _make_volumes(ctx: RequestContext, volume_ids: list[str]) -> None:
    """Ask the volume service for the launch volumes' bytes (the launch is committed)."""
    service = ctx.services.get("volume")
    if service is None:
        return
    for volume_id in volume_ids:
        try:
            service.create_volume(CreateVolume(volume_id))
        except errors.OcsError as exc:  # it makes what its database says is unfinished when it starts
            LOG.warning("request %s: volume %s: %s", ctx.request_id, volume_id, exc)


def schedule(ctx: RequestContext, reservation_id: str, instance_ids: list[str], min_count: int) -> list[str]:
    """Have the scheduler place the committed instances; the IDs to answer.

    - Fewer than ``min_count`` fit (InsufficientInstanceCapacity), no scheduler is
      configured, or the bus could not take the request (Unavailable): the instances
      still without a host are deleted. If none is left (the usual case: nothing was
      placed) the reservation and the held ClientToken go too and the error is raised,
      so a retry with the token runs anew; instances placed all the same (a request
      that reached the scheduler although its publisher never heard back) are answered.
    - Any other failure (no reply in time, the scheduler failing midway): whether and
      where it placed them is unknown, and it may be placing them still, so nothing is
      deleted. Every instance stays as it is, placed or pending without a host (the
      scheduler's periodic tasks place those or end them terminated with a StateReason:
      ``[scheduler] orphan_timeout``), and all are answered ``pending``, as EC2 answers
      a launch it accepted. Nothing runs unknown to the client, and a retry with the
      ClientToken finds the same reservation.
    - Instances the scheduler did not place (past what fits) are deleted.
    """
    s = ctx.session
    scheduler = ctx.services.get("scheduler")
    try:
        if scheduler is None:
            raise errors.ServiceUnavailable("The scheduler is not available. Try again later.")
        result = scheduler.schedule_instances(
            ScheduleInstances(instance_ids=instance_ids, min_count=min_count)
        )
    except errors.OcsError as exc:
        definite = (errors.InsufficientInstanceCapacity, errors.ServiceUnavailable)
        if scheduler is not None and not isinstance(exc, definite):
            return _left_pending(ctx, instance_ids, exc)
        s.rollback()
        gone = set(repo.delete_unplaced(s, ctx.account_id, reservation_id, instance_ids))
        kept = [i for i in instance_ids if i not in gone]
        if not kept and ctx.client_token:
            db_tags.forget_client_token(s, ctx.account_id, ctx.action, ctx.client_token)
        s.commit()
        if not kept:
            raise
        LOG.warning(
            "request %s: %s: answering the %d instances placed all the same",
            ctx.request_id,
            exc.code,
            len(kept),
        )
        return kept
    placed = [i for i in result.placed if i in instance_ids]
    extra = [i for i in instance_ids if i not in placed]
    if extra:
        repo.delete_unplaced(s, ctx.account_id, reservation_id, extra)
    return placed


def _left_pending(ctx: RequestContext, instance_ids: list[str], exc: errors.OcsError) -> list[str]:
    LOG.warning(
        "request %s: scheduling %s failed (%s: %s); they stay pending for the scheduler's periodic tasks",
        ctx.request_id,
        ", ".join(instance_ids),
        exc.code,
        exc,
    )
    ctx.session.rollback()
    return instance_ids


def run_instances(
    ctx: RequestContext, params: dict[str, Any], *, on_made: Callable[[list[Instance]], None] | None = None
) -> dict[str, Any]:
    """RunInstances. ``on_made(rows)`` (the Compute Engine front end's) writes what goes with the
    new instances in their transaction, before it commits; it may raise: nothing is made."""
    refuse_unsupported(params)
    low, high = counts(params)
    spec, image, disks = launch_spec(ctx, params, high)
    tags = tagging.tag_specifications(params, "RunInstances")
    count = launch_count(ctx, spec, low, high)
    s, now = ctx.session, ctx.now()
    if disks.volumes:
        limit = ctx.settings.volume_gib_per_account
        db_volumes.check_volume_limit(s, ctx.account_id, disks.volume_gib * low, limit)  # locks the account
        count = min(count, launch_volumes.room(s, ctx.account_id, disks.volume_gib, limit))
    reservation, made = repo.launch(s, ctx.account_id, spec, count, now=now)
    launch_interfaces.finish(ctx, launch_interfaces.parse(params, high), made)
    volume_ids = _launch_volumes(ctx, made, disks)
    _tag_new(ctx, made, volume_ids, tags)
    if on_made is not None:
        on_made(made)
    db_images.mark_launched(s, image.id, now)
    ids_ = [r.id for r in made]
    reservation_id = reservation.id
    if ctx.client_token:  # a retry finds this reservation whatever happens from here on
        db_tags.hold_client_token(
            s, ctx.account_id, ctx.action, ctx.client_token, ctx.params_digest, reservation_id
        )
    s.commit()  # the scheduler reads the instances from the database
    _make_volumes(ctx, volume_ids)
    placed = set(schedule(ctx, reservation_id, ids_, low))
    s.expire_all()
    rows = [r for r in repo.placed_instances(s, reservation_id) if r.id in placed]
    return _reservation_answer(ctx, reservation_id, rows, pending=True)


def _reservation_answer(
    ctx: RequestContext, reservation_id: str, rows: list[Instance], *, pending: bool
) -> dict[str, Any]:
    rel = related(ctx, rows)
    items = []
    for row in rows:
        item = instance_item(ctx, row, rel)
        if pending:
            item["State"] = state_of("pending")  # what RunInstances answers, however fast the build went
            item.pop("StateReason", None)
        items.append(item)
    return reservation_item(reservation_id, ctx.account_id, items)


def replay_run_instances(ctx: RequestContext, reservation_id: str) -> dict[str, Any] | None:
    """The answer to a RunInstances retried with the ClientToken of a launch whose first
    request never stored its answer (it timed out, its worker died): the launch's
    reservation with its instances as they are now; None if nothing of it is left."""
    rows = [r for r in repo.placed_instances(ctx.session, reservation_id) if r.account_id == ctx.account_id]
    if not rows:
        return None
    return _reservation_answer(ctx, reservation_id, rows, pending=False)


ACTIONS = {
    "RunInstances": run_instances,
    "DescribeInstances": describe_instances,
    "DescribeInstanceStatus": describe_instance_status,
}

#: Answers rebuilt from a held ClientToken's resource (see :func:`ocs.db.tags.hold_client_token`).
REPLAYS = {"RunInstances": replay_run_instances}
