"""EC2 ``Filter.N`` semantics, written once, and the filter tables per Describe action.

Semantics (as EC2 applies them):

* Several filters are ANDed; the values of one filter are ORed.
* Names and values are case-sensitive strings.  In a value ``*`` matches any run
  of characters (also none) and ``?`` exactly one; ``\\*``, ``\\?`` and ``\\\\`` stand
  for a literal ``*``, ``?`` and backslash (a backslash before any other
  character is itself literal).
* Item fields are compared in their wire form: booleans as ``true``/``false``,
  numbers as their decimal string, timestamps as ``YYYY-MM-DDThh:mm:ss.sssZ`` (so
  ``2021-09-29T*`` matches a whole day).  A field that is a list (or a path that
  crosses lists, such as an instance's ``SecurityGroups.GroupId``) matches if ANY
  element matches.  A missing field matches nothing.
* Every taggable resource also answers ``tag:<key>`` (value of that key),
  ``tag-key`` and the legacy ``tag-value``; tags are read from ``Tags`` (or
  ``TagSet`` for network interfaces).  The legacy docs wrote the first one as
  ``tag:key=value``; it is the same filter.
* An unknown filter name, or a filter without a name, raises
  :class:`ocs.errors.InvalidFilter` (``InvalidParameterValue``, "The filter 'X' is
  invalid"; a missing name is reported as ``'null'``, as EC2 does for an empty
  filter list, see aws/aws-sdk-js-v3#6063).  EC2 answers exactly that for
  ``tag:Name`` on DescribeInstanceStatus (aws/aws-cli#7225), which is why
  DescribeInstanceStatus is not taggable here.
* A filter with a name but no values is accepted and matches nothing (an OR over
  no values).  EC2 does not reject it: since aws-sdk-go stopped sending empty
  values, ``tag:x`` with the value ``""`` became a valueless filter and the call
  returned no results instead of an error (hashicorp/terraform-provider-aws#37709).

Tables: :data:`FILTERS` maps a Describe action to its :data:`FilterSpec`, whose
values are dotted paths through the botocore output item shape named in
:data:`ITEM_SHAPES` (checked against the model by the unit tests), or callables for
computed fields.  A key ending in ``:`` is a prefix filter whose callable returns a
mapping from the rest of the name to the field (``tag:`` -> ``{key: value}``).
Documented filters that have no field in the output shape are left out (so they
are rejected as unknown); they are listed in :data:`NOT_SUPPORTED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ocs import errors

Item = Mapping[str, Any]
Getter = Callable[[Item], Any]
FilterSpec = dict[str, str | Getter]
Predicate = Callable[[Item], bool]

__all__ = [
    "FILTERS",
    "ITEM_SHAPES",
    "NOT_SUPPORTED",
    "TAG_FILTERS",
    "UNTAGGABLE",
    "FilterSpec",
    "apply_filters",
    "compile_filters",
    "field_values",
    "filter_action",
    "match_value",
    "resolve",
    "wire_string",
]


# --- values ------------------------------------------------------------------


def resolve(item: Any, path: str) -> list[Any]:
    """All values at the dotted ``path`` of ``item``, flattening lists on the way.

    ``resolve({'A': [{'B': 1}, {'B': 2}]}, 'A.B') == [1, 2]``; missing keys and
    ``None`` contribute nothing.
    """
    current: list[Any] = [item]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in _flatten(current):
            if isinstance(node, Mapping) and node.get(part) is not None:
                nxt.append(node[part])
        current = nxt
    return list(_flatten(current))


def _flatten(values: Iterable[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list | tuple | set | frozenset):
            yield from _flatten(value)
        elif value is not None:
            yield value


def wire_string(value: Any) -> str | None:
    """``value`` as EC2 shows it on the wire, or ``None`` if it is not a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        moment: datetime = value.astimezone(UTC) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return None


def field_values(item: Item, field: str | Getter) -> list[str]:
    """The wire strings of ``field`` (a dotted path or a callable) for ``item``."""
    raw = resolve(item, field) if isinstance(field, str) else list(_flatten([field(item)]))
    return [s for s in (wire_string(v) for v in raw) if s is not None]


# --- patterns ----------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(value: str) -> re.Pattern[str] | str:
    """A compiled regex for an EC2 wildcard value, or the literal string if it has none."""
    regex: list[str] = []
    literal: list[str] = []
    wild = False
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and value[i + 1 : i + 2] in ("*", "?", "\\"):
            char = value[i + 1]
            i += 2
        elif char in "*?":
            wild = True
            regex.append(".*" if char == "*" else ".")
            i += 1
            continue
        else:
            i += 1
        regex.append(re.escape(char))
        literal.append(char)
    return re.compile("".join(regex), re.DOTALL) if wild else "".join(literal)


def match_value(pattern: str, candidate: str) -> bool:
    """Whether ``candidate`` matches the EC2 filter value ``pattern``."""
    compiled = _pattern(pattern)
    if isinstance(compiled, str):
        return compiled == candidate
    return compiled.fullmatch(candidate) is not None


# --- tags --------------------------------------------------------------------


def _tag_list(item: Item) -> list[Mapping[str, Any]]:
    tags = item.get("Tags")
    if tags is None:
        tags = item.get("TagSet")
    return list(tags or [])


def _tag_map(item: Item) -> dict[str, Any]:
    return {tag["Key"]: tag.get("Value", "") for tag in _tag_list(item)}


def _tag_keys(item: Item) -> list[Any]:
    return [tag["Key"] for tag in _tag_list(item)]


def _tag_values(item: Item) -> list[Any]:
    return [tag.get("Value", "") for tag in _tag_list(item)]


TAG_FILTERS: FilterSpec = {"tag:": _tag_map, "tag-key": _tag_keys, "tag-value": _tag_values}
"""Filters every taggable resource answers (merged in by ``taggable=True``)."""


# --- compiling and applying ---------------------------------------------------


def _lookup(name: str, spec: FilterSpec) -> Getter | str:
    """The field a filter name refers to, or raise InvalidFilter."""
    field = spec.get(name)
    if field is not None and not name.endswith(":"):
        return field
    head, sep, rest = name.partition(":")
    prefix = spec.get(head + sep) if sep else None
    if prefix is None or isinstance(prefix, str):
        raise errors.InvalidFilter(name=name)
    prefix_getter: Getter = prefix

    def getter(item: Item) -> Any:
        return prefix_getter(item).get(rest)

    return getter


def _values_of(flt: Mapping[str, Any]) -> list[str]:
    values = flt.get("Values")
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def _one_filter(flt: Mapping[str, Any], spec: FilterSpec) -> Predicate:
    name = flt.get("Name")
    if name is None:
        raise errors.InvalidFilter(name="null")
    field = _lookup(str(name), spec)
    values = _values_of(flt)

    def predicate(item: Item) -> bool:
        candidates = field_values(item, field)
        return any(match_value(v, c) for v in values for c in candidates)

    return predicate


def compile_filters(
    filters: Sequence[Mapping[str, Any]] | None, spec: FilterSpec, *, taggable: bool = True
) -> Predicate:
    """One predicate for the whole ``Filters`` list; validates every name first."""
    effective = {**TAG_FILTERS, **spec} if taggable else spec
    predicates = [_one_filter(flt, effective) for flt in filters or []]
    return lambda item: all(p(item) for p in predicates)


def apply_filters(
    items: Iterable[Item],
    filters: Sequence[Mapping[str, Any]] | None,
    spec: FilterSpec,
    *,
    taggable: bool = True,
) -> list[Any]:
    """The items (in their order) that pass every filter; see the module docstring."""
    predicate = compile_filters(filters, spec, taggable=taggable)
    return [item for item in items if predicate(item)]


def filter_action(
    action: str, items: Iterable[Item], filters: Sequence[Mapping[str, Any]] | None
) -> list[Any]:
    """:func:`apply_filters` with the table and taggability of a Describe ``action``."""
    return apply_filters(items, filters, FILTERS[action], taggable=action not in UNTAGGABLE)


# --- helpers to write the tables ------------------------------------------------


def _camel(name: str) -> str:
    """``enclave-options.enabled`` -> ``EnclaveOptions.Enabled``."""
    return ".".join("".join(p.capitalize() for p in seg.split("-")) for seg in name.split("."))


def _plain(names: str) -> FilterSpec:
    """Filters whose path is the CamelCase of their name, e.g. ``image-id`` -> ``ImageId``."""
    return {name: _camel(name) for name in names.split()}


def _group(filter_prefix: str, path_prefix: str, fields: Mapping[str, str | Getter]) -> FilterSpec:
    """``{filter_prefix + name: path_prefix + path}`` for each entry of ``fields``."""
    return {filter_prefix + name: path_prefix + str(path) for name, path in fields.items()}


def _if_attached(path: str) -> Getter:
    """An instance field reported for each of its network interfaces (if it has one)."""

    def getter(item: Item) -> Any:
        return resolve(item, path) if item.get("NetworkInterfaces") else None

    return getter


def _tag_description_map(item: Item) -> dict[str, Any]:
    return {item["Key"]: item.get("Value", "")} if "Key" in item else {}


_OPERATOR = _plain("operator.managed operator.principal")

_IP_PERMISSION = {
    "cidr": "IpRanges.CidrIp",
    "group-id": "UserIdGroupPairs.GroupId",
    "group-name": "UserIdGroupPairs.GroupName",
    "ipv6-cidr": "Ipv6Ranges.CidrIpv6",
    "prefix-list-id": "PrefixListIds.PrefixListId",
    "protocol": "IpProtocol",
    "user-id": "UserIdGroupPairs.UserId",
    **_plain("from-port to-port"),
}

_ASSOCIATION = _plain("carrier-ip customer-owned-ip ip-owner-id public-dns-name public-ip")
_ATTACHMENT = _plain("attach-time attachment-id delete-on-termination device-index network-card-index status")
_IPV6_BLOCKS = {"state": "Ipv6CidrBlockState.State", **_plain("ipv6-cidr-block association-id")}

# --- the tables ------------------------------------------------------------------

_REGIONS = _plain("endpoint opt-in-status region-name")

_AVAILABILITY_ZONES: FilterSpec = {
    "message": "Messages.Message",
    **_plain("group-long-name group-name network-border-group opt-in-status parent-zone-id"),
    **_plain("parent-zone-name region-name state zone-id zone-name zone-type"),
}

_INSTANCE_TYPES: FilterSpec = {
    **_plain("auto-recovery-supported bare-metal burstable-performance-supported"),
    **_plain("current-generation dedicated-hosts-supported free-tier-eligible"),
    **_plain("hibernation-supported hypervisor instance-storage-supported instance-type"),
    **_plain("nitro-enclaves-support nitro-tpm-support nitro-tpm-info.supported-versions"),
    **_plain("reboot-migration-support"),
    **_plain("ebs-info.attachment-limit-type ebs-info.maximum-ebs-attachments"),
    **_plain("ebs-info.ebs-optimized-support ebs-info.encryption-support ebs-info.nvme-support"),
    **_group(
        "ebs-info.ebs-optimized-info.",
        "EbsInfo.EbsOptimizedInfo.",
        {
            "baseline-throughput-in-mbps": "BaselineThroughputInMBps",
            "maximum-throughput-in-mbps": "MaximumThroughputInMBps",
            **_plain("baseline-bandwidth-in-mbps baseline-iops maximum-bandwidth-in-mbps maximum-iops"),
        },
    ),
    "instance-storage-info.disk.count": "InstanceStorageInfo.Disks.Count",
    "instance-storage-info.disk.size-in-gb": "InstanceStorageInfo.Disks.SizeInGB",
    "instance-storage-info.disk.type": "InstanceStorageInfo.Disks.Type",
    "instance-storage-info.total-size-in-gb": "InstanceStorageInfo.TotalSizeInGB",
    **_plain("instance-storage-info.encryption-support instance-storage-info.nvme-support"),
    "memory-info.size-in-mib": "MemoryInfo.SizeInMiB",
    **_group(
        "network-info.",
        "NetworkInfo.",
        _plain(
            "bandwidth-weightings efa-info.maximum-efa-interfaces efa-supported ena-support"
            " flexible-ena-queues-support encryption-in-transit-supported"
            " ipv4-addresses-per-interface ipv6-addresses-per-interface ipv6-supported"
            " maximum-network-cards maximum-network-interfaces network-performance"
        ),
    ),
    "processor-info.supported-architecture": "ProcessorInfo.SupportedArchitectures",
    "processor-info.sustained-clock-speed-in-ghz": "ProcessorInfo.SustainedClockSpeedInGhz",
    "processor-info.supported-features": "ProcessorInfo.SupportedFeatures",
    "supported-boot-mode": "SupportedBootModes",
    "supported-root-device-type": "SupportedRootDeviceTypes",
    "supported-usage-class": "SupportedUsageClasses",
    "supported-virtualization-type": "SupportedVirtualizationTypes",
    "vcpu-info.default-vcpus": "VCpuInfo.DefaultVCpus",
    **_group(
        "vcpu-info.",
        "VCpuInfo.",
        _plain("default-cores default-threads-per-core valid-cores valid-threads-per-core"),
    ),
}

_KEY_PAIRS: FilterSpec = {"fingerprint": "KeyFingerprint", **_plain("key-pair-id key-name key-type")}

_IMAGES: FilterSpec = {
    **_plain("architecture boot-mode creation-date description ena-support free-tier-eligible"),
    **_plain("hypervisor image-allowed image-id image-type kernel-id name owner-id platform"),
    **_plain("public-ssm-parameter-name ramdisk-id root-device-name root-device-type"),
    **_plain("source-image-id source-image-region source-instance-id state"),
    **_plain("sriov-net-support virtualization-type"),
    "state-reason-code": "StateReason.Code",
    "state-reason-message": "StateReason.Message",
    **_group(
        "block-device-mapping.",
        "BlockDeviceMappings.",
        {
            "device-name": "DeviceName",
            **_group(
                "", "Ebs.", _plain("delete-on-termination snapshot-id volume-size volume-type encrypted")
            ),
        },
    ),
    **_group(
        "image-watermark.",
        "ImageWatermarks.",
        _plain(
            "source-image-creation-time source-image-id source-image-region"
            " watermark-creation-time watermark-key"
        ),
    ),
    "instance-type-specification.supported-instance-type": (
        "InstanceTypeSpecification.SupportedInstanceTypes.InstanceType"
    ),
    "instance-type-specification.unsupported-instance-type": (
        "InstanceTypeSpecification.UnsupportedInstanceTypes.InstanceType"
    ),
    "is-public": "Public",
    "manifest-location": "ImageLocation",
    "owner-alias": "ImageOwnerAlias",
    "product-code": "ProductCodes.ProductCodeId",
    "product-code.type": "ProductCodes.ProductCodeType",
    **_group(
        "scan-result.",
        "ScanResults.",
        _plain(
            "critical-fix-available-since finding-scan-date high-fix-available-since"
            " highest-finding-severity-label informational-fix-available-since"
            " low-fix-available-since medium-fix-available-since"
        ),
    ),
}

_TAGS: FilterSpec = {
    "tag:": _tag_description_map,
    **_plain("key resource-id resource-type value"),
    # What every other Describe calls them; EC2 takes them here too (ec2api-tempest-plugin).
    "tag-key": "Key",
    "tag-value": "Value",
}

_SECURITY_GROUPS: FilterSpec = {
    **_plain("description group-id group-name owner-id vpc-id"),
    **_group("egress.ip-permission.", "IpPermissionsEgress.", _IP_PERMISSION),
    **_group("ip-permission.", "IpPermissions.", _IP_PERMISSION),
}

_SECURITY_GROUP_RULES = _plain("group-id security-group-rule-id")

_VPCS: FilterSpec = {
    "cidr": "CidrBlock",
    **_group(
        "cidr-block-association.",
        "CidrBlockAssociationSet.",
        {"state": "CidrBlockState.State", **_plain("cidr-block association-id")},
    ),
    **_group(
        "ipv6-cidr-block-association.",
        "Ipv6CidrBlockAssociationSet.",
        {**_IPV6_BLOCKS, **_plain("ipv6-pool")},
    ),
    **_plain("dhcp-options-id is-default owner-id state vpc-id"),
}

_SUBNETS: FilterSpec = {
    **_plain("availability-zone availability-zone-id available-ip-address-count cidr-block"),
    **_plain("customer-owned-ipv4-pool default-for-az enable-dns64 enable-lni-at-device-index"),
    **_plain("ipv6-native map-customer-owned-ip-on-launch map-public-ip-on-launch outpost-arn"),
    **_plain("owner-id state subnet-arn subnet-id vpc-id"),
    # Alternative names EC2 documents for DescribeSubnets.
    "availabilityZone": "AvailabilityZone",
    "availabilityZoneId": "AvailabilityZoneId",
    "cidr": "CidrBlock",
    "cidrBlock": "CidrBlock",
    "defaultForAz": "DefaultForAz",
    **_group("ipv6-cidr-block-association.", "Ipv6CidrBlockAssociationSet.", _IPV6_BLOCKS),
    **_group(
        "private-dns-name-options-on-launch.",
        "PrivateDnsNameOptionsOnLaunch.",
        {
            "enable-resource-name-dns-a-record": "EnableResourceNameDnsARecord",
            "enable-resource-name-dns-aaaa-record": "EnableResourceNameDnsAAAARecord",
            "hostname-type": "HostnameType",
        },
    ),
}

_INSTANCE_NI: FilterSpec = {
    **_group(
        "addresses.",
        "PrivateIpAddresses.",
        {
            **_plain("primary private-dns-name private-ip-address"),
            **_group("association.", "Association.", _ASSOCIATION),
        },
    ),
    **_group("association.", "Association.", _ASSOCIATION),
    **_group("attachment.", "Attachment.", _ATTACHMENT),
    "group-id": "Groups.GroupId",
    "group-name": "Groups.GroupName",
    "ipv4-prefixes.ipv4-prefix": "Ipv4Prefixes.Ipv4Prefix",
    "ipv6-address": "Ipv6Addresses.Ipv6Address",
    "ipv6-addresses.ipv6-address": "Ipv6Addresses.Ipv6Address",
    "ipv6-addresses.is-primary-ipv6": "Ipv6Addresses.IsPrimaryIpv6",
    "ipv6-prefixes.ipv6-prefix": "Ipv6Prefixes.Ipv6Prefix",
    "public-dns-name": "Association.PublicDnsName",
    **_OPERATOR,
    **_plain("description mac-address network-interface-id owner-id private-dns-name"),
    **_plain("private-ip-address source-dest-check status subnet-id vpc-id"),
}

_INSTANCES: FilterSpec = {
    **_plain("architecture boot-mode capacity-reservation-id client-token current-instance-boot-mode"),
    **_plain("ebs-optimized ena-support enclave-options.enabled hibernation-options.configured"),
    **_plain("hypervisor iam-instance-profile.arn iam-instance-profile.id image-id instance-id"),
    **_plain("instance-lifecycle instance-type kernel-id key-name launch-time"),
    **_plain("maintenance-options.auto-recovery outpost-arn owner-id platform platform-details"),
    **_plain("private-dns-name private-ip-address ramdisk-id requester-id reservation-id"),
    **_plain("root-device-name root-device-type source-dest-check spot-instance-request-id"),
    **_plain("subnet-id tpm-support usage-operation usage-operation-update-time"),
    **_plain("virtualization-type vpc-id network-performance-options.bandwidth-weighting"),
    "state-reason-code": "StateReason.Code",
    "state-reason-message": "StateReason.Message",
    **_OPERATOR,
    "affinity": "Placement.Affinity",
    "availability-zone": "Placement.AvailabilityZone",
    "availability-zone-id": "Placement.AvailabilityZoneId",
    "host-id": "Placement.HostId",
    "placement-group-name": "Placement.GroupName",
    "placement-partition-number": "Placement.PartitionNumber",
    "tenancy": "Placement.Tenancy",
    **_group(
        "block-device-mapping.",
        "BlockDeviceMappings.",
        {
            "device-name": "DeviceName",
            **_group("", "Ebs.", _plain("attach-time delete-on-termination status volume-id")),
        },
    ),
    **_group(
        "capacity-reservation-specification.",
        "CapacityReservationSpecification.",
        _plain(
            "capacity-reservation-preference capacity-reservation-target.capacity-reservation-id"
            " capacity-reservation-target.capacity-reservation-resource-group-arn"
        ),
    ),
    "dns-name": "PublicDnsName",
    "instance-state-code": "State.Code",
    "instance-state-name": "State.Name",
    "instance.group-id": "SecurityGroups.GroupId",
    "instance.group-name": "SecurityGroups.GroupName",
    "ip-address": "PublicIpAddress",
    "ipv6-address": "NetworkInterfaces.Ipv6Addresses.Ipv6Address",
    "launch-index": "AmiLaunchIndex",
    **_group(
        "metadata-options.",
        "MetadataOptions.",
        _plain(
            "http-endpoint http-protocol-ipv6 http-put-response-hop-limit http-tokens"
            " instance-metadata-tags state"
        ),
    ),
    "monitoring-state": "Monitoring.State",
    **_group("network-interface.", "NetworkInterfaces.", _INSTANCE_NI),
    "network-interface.attachment.instance-id": _if_attached("InstanceId"),
    "network-interface.attachment.instance-owner-id": _if_attached("OwnerId"),
    "network-interface.availability-zone": _if_attached("Placement.AvailabilityZone"),
    **_group(
        "private-dns-name-options.",
        "PrivateDnsNameOptions.",
        {
            "enable-resource-name-dns-a-record": "EnableResourceNameDnsARecord",
            "enable-resource-name-dns-aaaa-record": "EnableResourceNameDnsAAAARecord",
            "hostname-type": "HostnameType",
        },
    ),
    "product-code": "ProductCodes.ProductCodeId",
    "product-code.type": "ProductCodes.ProductCodeType",
    "reason": "StateTransitionReason",
}

_INSTANCE_STATUS: FilterSpec = {
    **_plain("availability-zone availability-zone-id"),
    **_group(
        "event.",
        "Events.",
        _plain("code description instance-event-id not-after not-before not-before-deadline"),
    ),
    "instance-state-code": "InstanceState.Code",
    "instance-state-name": "InstanceState.Name",
    # The only status detail EC2 reports is "reachability".
    "instance-status.reachability": "InstanceStatus.Details.Status",
    "system-status.reachability": "SystemStatus.Details.Status",
    **_plain("instance-status.status system-status.status"),
    **_plain("attached-ebs-status.status application-status.status"),
    **_OPERATOR,
}

_VOLUMES: FilterSpec = {
    **_group(
        "attachment.",
        "Attachments.",
        {"status": "State", **_plain("attach-time delete-on-termination device instance-id")},
    ),
    **_plain("availability-zone availability-zone-id create-time encrypted fast-restored"),
    **_plain("multi-attach-enabled size snapshot-id volume-id volume-type"),
    "status": "State",
    **_OPERATOR,
}

_SNAPSHOTS: FilterSpec = {
    **_plain("description encrypted owner-alias owner-id progress snapshot-id start-time"),
    **_plain("storage-tier transfer-type volume-id volume-size"),
    "status": "State",
}

_VOLUME_STATUS: FilterSpec = {
    **_group(
        "action.",
        "Actions.",
        {"code": "Code", "description": "Description", "event-id": "EventId"},
    ),
    **_group(
        "event.",
        "Events.",
        {
            "description": "Description",
            "event-id": "EventId",
            "event-type": "EventType",
            "not-after": "NotAfter",
            "not-before": "NotBefore",
        },
    ),
    "attachment-status.instance-id": "AttachmentStatuses.InstanceId",
    "attachment-status.io-performance": "AttachmentStatuses.IoPerformance",
    "availability-zone": "AvailabilityZone",
    "volume-status.details-name": "VolumeStatus.Details.Name",
    "volume-status.details-status": "VolumeStatus.Details.Status",
    "volume-status.status": "VolumeStatus.Status",
}

_VOLUMES_MODIFICATIONS: FilterSpec = {
    **_plain("modification-state original-iops original-size original-volume-type original-throughput"),
    **_plain("start-time target-iops target-size target-volume-type target-throughput volume-id"),
    "originalMultiAttachEnabled": "OriginalMultiAttachEnabled",
    "targetMultiAttachEnabled": "TargetMultiAttachEnabled",
}

_ADDRESSES = _plain(
    "allocation-id association-id domain instance-id network-border-group network-interface-id"
    " network-interface-owner-id private-ip-address public-ip"
)

_NETWORK_INTERFACES: FilterSpec = {
    "addresses.association.owner-id": "PrivateIpAddresses.Association.IpOwnerId",
    "addresses.association.public-ip": "PrivateIpAddresses.Association.PublicIp",
    "addresses.primary": "PrivateIpAddresses.Primary",
    "addresses.private-ip-address": "PrivateIpAddresses.PrivateIpAddress",
    **_group(
        "association.",
        "Association.",
        _plain("allocation-id association-id ip-owner-id public-ip public-dns-name"),
    ),
    **_group("attachment.", "Attachment.", {**_ATTACHMENT, **_plain("instance-id instance-owner-id")}),
    "group-id": "Groups.GroupId",
    "group-name": "Groups.GroupName",
    "ipv6-addresses.ipv6-address": "Ipv6Addresses.Ipv6Address",
    "private-ip-address": "PrivateIpAddresses.PrivateIpAddress",
    **_plain("availability-zone availability-zone-id description interface-type mac-address"),
    **_plain("network-interface-id owner-id private-dns-name requester-id requester-managed"),
    **_plain("source-dest-check status subnet-id vpc-id"),
    **_OPERATOR,
}

_INTERNET_GATEWAYS: FilterSpec = {
    "attachment.state": "Attachments.State",
    "attachment.vpc-id": "Attachments.VpcId",
    **_plain("internet-gateway-id owner-id"),
}

_ROUTE_TABLES: FilterSpec = {
    **_group(
        "association.",
        "Associations.",
        {
            "route-table-association-id": "RouteTableAssociationId",
            **_plain("gateway-id main route-table-id subnet-id"),
        },
    ),
    **_group(
        "route.",
        "Routes.",
        _plain(
            "destination-cidr-block destination-ipv6-cidr-block destination-prefix-list-id"
            " egress-only-internet-gateway-id gateway-id instance-id nat-gateway-id origin state"
            " transit-gateway-id vpc-peering-connection-id"
        ),
    ),
    **_plain("owner-id route-table-id vpc-id"),
}

_NAT_GATEWAYS = _plain("nat-gateway-id state subnet-id vpc-id")

_DHCP_OPTIONS: FilterSpec = {
    "key": "DhcpConfigurations.Key",
    "value": "DhcpConfigurations.Values.Value",
    **_plain("dhcp-options-id owner-id"),
}

_CUSTOMER_GATEWAYS = _plain("bgp-asn customer-gateway-id ip-address state type")

FILTERS: dict[str, FilterSpec] = {
    "DescribeRegions": _REGIONS,
    "DescribeAvailabilityZones": _AVAILABILITY_ZONES,
    "DescribeInstanceTypes": _INSTANCE_TYPES,
    "DescribeKeyPairs": _KEY_PAIRS,
    "DescribeImages": _IMAGES,
    "DescribeTags": _TAGS,
    "DescribeSecurityGroups": _SECURITY_GROUPS,
    "DescribeSecurityGroupRules": _SECURITY_GROUP_RULES,
    "DescribeVpcs": _VPCS,
    "DescribeSubnets": _SUBNETS,
    "DescribeInstances": _INSTANCES,
    "DescribeInstanceStatus": _INSTANCE_STATUS,
    "DescribeVolumes": _VOLUMES,
    "DescribeSnapshots": _SNAPSHOTS,
    "DescribeVolumeStatus": _VOLUME_STATUS,
    "DescribeVolumesModifications": _VOLUMES_MODIFICATIONS,
    "DescribeAddresses": _ADDRESSES,
    "DescribeNetworkInterfaces": _NETWORK_INTERFACES,
    "DescribeInternetGateways": _INTERNET_GATEWAYS,
    "DescribeRouteTables": _ROUTE_TABLES,
    "DescribeNatGateways": _NAT_GATEWAYS,
    "DescribeDhcpOptions": _DHCP_OPTIONS,
    "DescribeCustomerGateways": _CUSTOMER_GATEWAYS,
}
"""Filter table per Describe action.  DescribeAccountAttributes takes no filters."""

UNTAGGABLE: frozenset[str] = frozenset(
    {
        "DescribeRegions",
        "DescribeAvailabilityZones",
        "DescribeInstanceTypes",
        "DescribeTags",
        "DescribeInstanceStatus",
        "DescribeVolumeStatus",
        "DescribeVolumesModifications",
    }
)
"""Actions whose items carry no tags: no ``tag:*``/``tag-key``/``tag-value`` there."""

ITEM_SHAPES: dict[str, tuple[str, ...]] = {
    "DescribeRegions": ("Region",),
    "DescribeAvailabilityZones": ("AvailabilityZone",),
    "DescribeInstanceTypes": ("InstanceTypeInfo",),
    "DescribeKeyPairs": ("KeyPairInfo",),
    "DescribeImages": ("Image",),
    "DescribeTags": ("TagDescription",),
    "DescribeSecurityGroups": ("SecurityGroup",),
    "DescribeSecurityGroupRules": ("SecurityGroupRule",),
    "DescribeVpcs": ("Vpc",),
    "DescribeSubnets": ("Subnet",),
    # An Instance dict that also carries its Reservation's scalar members
    # (ReservationId, OwnerId, RequesterId); the handler groups by ReservationId.
    "DescribeInstances": ("Instance", "Reservation"),
    "DescribeInstanceStatus": ("InstanceStatus",),
    "DescribeVolumes": ("Volume",),
    "DescribeSnapshots": ("Snapshot",),
    "DescribeVolumeStatus": ("VolumeStatusItem",),
    "DescribeVolumesModifications": ("VolumeModification",),
    "DescribeAddresses": ("Address",),
    "DescribeNetworkInterfaces": ("NetworkInterface",),
    "DescribeInternetGateways": ("InternetGateway",),
    "DescribeRouteTables": ("RouteTable",),
    "DescribeNatGateways": ("NatGateway",),
    "DescribeDhcpOptions": ("DhcpOptions",),
    "DescribeCustomerGateways": ("CustomerGateway",),
}
"""botocore output shapes whose members form the filtered item of each action."""

NOT_SUPPORTED: dict[str, tuple[str, ...]] = {
    "DescribeInstances": (
        "metadata-options.http-protocol-ipv4",
        "network-interface.addresses.association.allocation-id",
        "network-interface.addresses.association.association-id",
        "network-interface.association.allocation-id",
        "network-interface.association.association-id",
        "network-interface.deny-all-igw-traffic",
        "network-interface.ipv6-native",
        "network-interface.outpost-arn",
        "network-interface.requester-id",
        "network-interface.requester-managed",
        "network-interface.tag-key",
        "network-interface.tag-value",
    ),
    "DescribeInstanceStatus": ("tag:<key>", "tag-key", "tag-value"),
    "DescribeVolumeStatus": ("tag:<key>", "tag-key", "tag-value"),
    "DescribeVolumesModifications": ("tag:<key>", "tag-key", "tag-value"),
}
"""Documented filters with no field in the output item: rejected as unknown."""
