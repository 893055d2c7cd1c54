"""EC2-shaped resource IDs: generation, validation and the errors they raise.

IDs are a prefix, a dash and 17 lowercase hex digits (``i-0123456789abcdef0``).
On input any 1 to 17 hex digits are well-formed, as EC2 takes them (the 8-digit
legacy form, and ``vpc-0`` or ``i-0``, which the ec2api-tempest-plugin expects
to be ``*.NotFound``); only a wrong prefix or a non-hex digit is ``*.Malformed``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ocs import errors


@dataclass(frozen=True)
class Kind:
    prefix: str
    not_found: str
    malformed: str
    noun: str


KINDS: dict[str, Kind] = {
    "instance": Kind("i", "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "instance ID"),
    "reservation": Kind(
        "r", "InvalidReservationID.NotFound", "InvalidReservationID.Malformed", "reservation ID"
    ),
    "image": Kind("ami", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "image id"),
    "kernel": Kind("aki", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "kernel id"),
    "ramdisk": Kind("ari", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "ramdisk id"),
    "key_pair": Kind("key", "InvalidKeyPair.NotFound", "InvalidKeyPair.Malformed", "key pair ID"),
    "vpc": Kind("vpc", "InvalidVpcID.NotFound", "InvalidVpcID.Malformed", "vpc ID"),
    "subnet": Kind("subnet", "InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed", "subnet ID"),
    "security_group": Kind("sg", "InvalidGroup.NotFound", "InvalidGroupId.Malformed", "security group"),
    "security_group_rule": Kind(
        "sgr",
        "InvalidSecurityGroupRuleId.NotFound",
        "InvalidSecurityGroupRuleId.Malformed",
        "security group rule ID",
    ),
    "network_interface": Kind(
        "eni",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidNetworkInterfaceID.Malformed",
        "network interface ID",
    ),
    "network_interface_attachment": Kind(
        "eni-attach",
        "InvalidAttachmentID.NotFound",
        "InvalidAttachmentID.Malformed",
        "interface attachment ID",
    ),
    "allocation": Kind(
        "eipalloc", "InvalidAllocationID.NotFound", "InvalidAllocationID.Malformed", "allocation ID"
    ),
    "association": Kind(
        "eipassoc", "InvalidAssociationID.NotFound", "InvalidAssociationID.Malformed", "association ID"
    ),
    "volume": Kind("vol", "InvalidVolume.NotFound", "InvalidVolumeID.Malformed", "volume"),
    "snapshot": Kind("snap", "InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed", "snapshot"),
    "internet_gateway": Kind(
        "igw", "InvalidInternetGatewayID.NotFound", "InvalidInternetGatewayID.Malformed", "internetGateway ID"
    ),
    "route_table": Kind(
        "rtb", "InvalidRouteTableID.NotFound", "InvalidRouteTableID.Malformed", "routeTable ID"
    ),
    "route_table_association": Kind(
        "rtbassoc", "InvalidAssociationID.NotFound", "InvalidAssociationID.Malformed", "association ID"
    ),
    "nat_gateway": Kind("nat", "NatGatewayNotFound", "NatGatewayMalformed", "natGateway ID"),
    "network_acl": Kind(
        "acl", "InvalidNetworkAclID.NotFound", "InvalidNetworkAclID.Malformed", "network ACL ID"
    ),
    "dhcp_options": Kind(
        "dopt", "InvalidDhcpOptionID.NotFound", "InvalidDhcpOptionsID.Malformed", "DHCP options ID"
    ),
    "customer_gateway": Kind(
        "cgw",
        "InvalidCustomerGatewayID.NotFound",
        "InvalidCustomerGatewayID.Malformed",
        "customer gateway ID",
    ),
}

_HEX = re.compile(r"^(?P<prefix>[a-z]+(?:-[a-z]+)?)-(?P<hex>[0-9a-f]{1,17})$")


def new_id(kind: str) -> str:
    """A fresh random ID of ``kind`` (``i-`` + 17 hex digits, ...)."""
    return f"{KINDS[kind].prefix}-{secrets.token_hex(9)[:17]}"


def is_valid(kind: str, value: str) -> bool:
    m = _HEX.match(value or "")
    return m is not None and m.group("prefix") == KINDS[kind].prefix


def validate(kind: str, value: str) -> str:
    """Return ``value`` or raise the kind's ``*.Malformed`` error."""
    if not isinstance(value, str) or not is_valid(kind, value):
        raise malformed(kind, value)
    return value


def not_found(kind: str, value: object) -> errors.NotFound:
    k = KINDS[kind]
    return errors.NotFound(f"The {k.noun} '{value}' does not exist", code=k.not_found, id=value)


def malformed(kind: str, value: object) -> errors.Malformed:
    k = KINDS[kind]
    return errors.Malformed(f'Invalid id: "{value}" (expecting "{k.prefix}-...")', code=k.malformed, id=value)


def kind_of(value: str) -> str | None:
    """The kind whose prefix ``value`` carries, or None."""
    m = _HEX.match(value or "")
    if not m:
        return None
    for name, k in KINDS.items():
        if k.prefix == m.group("prefix"):
            return name
    return None
