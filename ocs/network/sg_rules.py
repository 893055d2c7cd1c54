"""Security-group rules as EC2 speaks of them: parsed, checked, compared and grouped.

A pure module. A rule is a :class:`RuleSpec`: direction, protocol, port range and
exactly one peer (an IPv4 or IPv6 block, a prefix list, or another group).
EC2's API talks about *permissions* instead (``IpPermission``: one protocol and
port range with lists of peers); :func:`specs_from_permission` splits one into
rules and :func:`group_permissions` joins rules back into permissions, one per
(protocol, from port, to port) in the order rules were added, as DescribeSecurityGroups
shows them.

Normalization, as EC2 stores rules: protocol names are lower-cased and the
numbers of tcp (6), udp (17), icmp (1) and icmpv6 (58) become their names; ``-1``
and ``all`` mean every protocol; for every protocol other than tcp, udp, icmp and
icmpv6 the ports are ignored (EC2 allows every port then). CIDR blocks are masked
to their network (``10.0.0.28/29`` is stored as ``10.0.0.24/29``).

Errors (EC2's codes; messages from EC2 answers quoted in public issues):

* no protocol: ``InvalidParameterValue`` "Invalid value 'null' for protocol. VPC
  security group rules must specify protocols explicitly."
* unknown protocol: ``InvalidParameterValue`` "Invalid value 'x' for IP protocol.
  Unknown protocol."
* tcp/udp without both ports: ``InvalidParameterValue`` "Invalid value for
  portRange. Must specify both from and to ports with TCP/UDP." (ICMP likewise)
* a port outside 0..65535: ``InvalidPermission.Malformed`` "TCP/UDP port (-1) out
  of range" (boto/boto3#336)
* a bad block: ``InvalidParameterValue`` "CIDR block x is malformed" (aws/aws-cli#2428)
* a permission with no peer: ``MissingParameter`` "Missing source specification:
  include source security group or CIDR information" (boto/boto3#1078)
* the same rule twice in one request: ``InvalidParameterValue`` "The same permission
  must not appear multiple times" (input-output-hk/bitte#24)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ocs import errors
from ocs.network import cidr

ALL = "-1"
PORTED = frozenset({"tcp", "udp"})
ICMP = frozenset({"icmp", "icmpv6"})
MAX_RULES_PER_DIRECTION = 60
"""EC2's default quota of inbound (and, separately, outbound) rules per group."""

_NAMES = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "icmpv6": "icmpv6",
    "58": "icmpv6",
    "-1": ALL,
    "all": ALL,
}


@dataclass(frozen=True)
class RuleSpec:
    """One rule. ``group_id``/``group_owner`` name a referenced group once resolved;
    ``group_name`` is a reference by name still to resolve."""

    is_egress: bool
    protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    group_owner: str | None = None
    description: str | None = None

    @property
    def peer(self) -> str:
        return (
            self.cidr_ipv4 or self.cidr_ipv6 or self.prefix_list_id or self.group_id or self.group_name or ""
        )

    def fingerprint(self) -> str:
        """What makes two rules the same rule (the description does not)."""
        kind = "4" if self.cidr_ipv4 else "6" if self.cidr_ipv6 else "pl" if self.prefix_list_id else "sg"
        ports = "" if self.from_port is None else f"{self.from_port}:{self.to_port}"
        direction = "out" if self.is_egress else "in"
        return f"{direction}|{self.protocol}|{ports}|{kind}|{self.peer}"

    def summary(self) -> str:
        """How EC2 names the rule in its errors.

        ``peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW``, ``peer: sg-1, ALL,
        ALLOW``, ``peer: 10.0.0.0/24, ICMP, type: ALL, code: ALL, ALLOW`` (timkay/aws#103),
        ``peer: 0.0.0.0/0, protocol: 50, ALLOW`` (ansible/ansible-modules-core#3258).
        """
        if self.protocol == ALL:
            what = "ALL"
        elif self.protocol in PORTED:
            what = f"{self.protocol.upper()}, from port: {self.from_port}, to port: {self.to_port}"
        elif self.protocol in ICMP:
            what = f"{self.protocol.upper()}, type: {_all(self.from_port)}, code: {_all(self.to_port)}"
        else:
            what = f"protocol: {self.protocol}"
        return f"peer: {self.peer}, {what}, ALLOW"


def _all(value: int | None) -> str:
    return "ALL" if value is None or value == -1 else str(value)


# --- checking --------------------------------------------------------------------------


def normalize_protocol(value: object) -> str:
    """EC2's stored form of an ``IpProtocol`` value, or InvalidParameterValue."""
    if value is None or value == "":
        raise errors.InvalidParameterValue(
            "Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly."
        )
    text = str(value).strip().lower()
    if text in _NAMES:
        return _NAMES[text]
    if text.isdigit() and int(text) <= 255:
        return str(int(text))
    raise errors.InvalidParameterValue(f"Invalid value '{value}' for IP protocol. Unknown protocol.")


def check_ports(protocol: str, from_port: int | None, to_port: int | None) -> tuple[int | None, int | None]:
    """The port range EC2 stores for ``protocol`` (None, None where ports do not apply)."""
    if protocol in PORTED:
        if from_port is None or to_port is None:
            raise errors.InvalidParameterValue(
                "Invalid value for portRange. Must specify both from and to ports with TCP/UDP."
            )
        for port in (from_port, to_port):
            if not 0 <= port <= 65535:
                raise errors.InvalidParameterValue(
                    f"TCP/UDP port ({port}) out of range", code="InvalidPermission.Malformed"
                )
        if from_port > to_port:
            raise errors.InvalidParameterValue(
                f"Invalid TCP/UDP port range: the from port ({from_port}) is greater than "
                f"the to port ({to_port})."
            )
        return from_port, to_port
    if protocol in ICMP:
        return _check_icmp(protocol, from_port, to_port)
    return None, None


def _check_icmp(protocol: str, icmp_type: int | None, code: int | None) -> tuple[int, int]:
    label = "ICMP" if protocol == "icmp" else "ICMPv6"
    if icmp_type is None or code is None:
        raise errors.InvalidParameterValue(
            f"Invalid value for portRange. Must specify both from and to ports with {label}."
        )
    if not -1 <= icmp_type <= 255:
        raise errors.InvalidParameterValue(
            f"Invalid {label} type ({icmp_type})", code="InvalidPermission.Malformed"
        )
    if not -1 <= code <= 255:
        raise errors.InvalidParameterValue(
            f"Invalid {label} code ({code})", code="InvalidPermission.Malformed"
        )
    if icmp_type == -1 and code != -1:
        raise errors.InvalidParameterValue(
            f"Invalid {label} code ({code}): specify the code -1 with the type -1 (all types)."
        )
    return icmp_type, code


def _ipv4(text: object) -> str:
    net = cidr.ipv4_network(text, strict=False)
    if net is None:
        raise errors.InvalidParameterValue(f"CIDR block {text} is malformed")
    return str(net)


def _ipv6(text: object) -> str:
    net = cidr.ipv6_network(text, strict=False)
    if net is None:
        raise errors.InvalidParameterValue(f"CIDR block {text} is malformed")
    return str(net)


def _description(item: Mapping[str, Any]) -> str | None:
    text = item.get("Description")
    if text is None:
        return None
    text = str(text)
    if len(text) > 255:
        raise errors.InvalidParameterValue(
            value=text, name="Description", reason="Descriptions are at most 255 characters."
        )
    return text


# --- parsing requests ---------------------------------------------------------------------


def specs_from_permission(
    perm: Mapping[str, Any], *, is_egress: bool, require_peer: bool = True
) -> list[RuleSpec]:
    """The rules of one ``IpPermission`` of a request, checked and normalized."""
    protocol = normalize_protocol(perm.get("IpProtocol"))
    from_port, to_port = check_ports(protocol, perm.get("FromPort"), perm.get("ToPort"))
    base = RuleSpec(is_egress=is_egress, protocol=protocol, from_port=from_port, to_port=to_port)
    specs: list[RuleSpec] = []
    for item in perm.get("IpRanges") or []:
        specs.append(replace(base, cidr_ipv4=_ipv4(item.get("CidrIp")), description=_description(item)))
    for item in perm.get("Ipv6Ranges") or []:
        specs.append(replace(base, cidr_ipv6=_ipv6(item.get("CidrIpv6")), description=_description(item)))
    for item in perm.get("PrefixListIds") or []:
        pl = item.get("PrefixListId")
        if not pl:
            raise errors.MissingParameter(name="prefixListId")
        specs.append(replace(base, prefix_list_id=str(pl), description=_description(item)))
    for item in perm.get("UserIdGroupPairs") or []:
        group_id, group_name = item.get("GroupId"), item.get("GroupName")
        if not group_id and not group_name:
            raise errors.MissingParameter(name="groupId")
        specs.append(
            replace(
                base,
                group_id=group_id or None,
                group_name=None if group_id else group_name,
                group_owner=item.get("UserId") or None,
                description=_description(item),
            )
        )
    if not specs and require_peer:
        raise errors.MissingParameter(
            "Missing source specification: include source security group or CIDR information"
        )
    return specs


def specs_from_request(params: Mapping[str, Any], *, is_egress: bool) -> list[RuleSpec]:
    """Every rule of an Authorize/Revoke request: its ``IpPermissions`` or the legacy flat form.

    The flat form (``IpProtocol``, ``FromPort``, ``ToPort``, ``CidrIp``,
    ``SourceSecurityGroupName``/``OwnerId``) describes one permission; a source
    group without a protocol grants full TCP, UDP and ICMP access, as EC2 documents.
    Two equal rules in one request are refused.
    """
    flat = [
        k
        for k in ("IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName")
        if params.get(k) is not None
    ]
    perms = params.get("IpPermissions")
    if perms and flat:
        raise errors.InvalidParameterCombination(
            reason=f"The parameter ipPermissions cannot be used with the parameter {_wire(flat[0])}"
        )
    if perms:
        specs = [s for perm in perms for s in specs_from_permission(perm, is_egress=is_egress)]
    elif flat:
        specs = _flat_specs(params, is_egress=is_egress)
    else:
        raise errors.MissingParameter(name="ipPermissions")
    seen: set[str] = set()
    for spec in specs:
        if spec.fingerprint() in seen:
            raise errors.InvalidParameterValue("The same permission must not appear multiple times")
        seen.add(spec.fingerprint())
    return specs


def spec_from_rule_request(request: Mapping[str, Any], *, is_egress: bool) -> RuleSpec:
    """The rule a ModifySecurityGroupRules ``SecurityGroupRuleRequest`` asks for.

    Exactly one peer (``CidrIpv4``, ``CidrIpv6``, ``PrefixListId``,
    ``ReferencedGroupId``) is required [moto, tests verified on AWS].
    """
    protocol = normalize_protocol(request.get("IpProtocol"))
    from_port, to_port = check_ports(protocol, request.get("FromPort"), request.get("ToPort"))
    peers = [k for k in ("CidrIpv4", "CidrIpv6", "PrefixListId", "ReferencedGroupId") if request.get(k)]
    if len(peers) > 1:
        raise errors.InvalidParameterCombination(
            reason="Only one of cidrIp, cidrIpv6, prefixListId, or referencedGroupId can be specified"
        )
    if not peers:
        raise errors.MissingParameter(
            "The request must contain exactly one of: cidrIp, cidrIpv6, prefixListId, or referencedGroupId"
        )
    spec = RuleSpec(
        is_egress=is_egress,
        protocol=protocol,
        from_port=from_port,
        to_port=to_port,
        description=_description(request),
    )
    peer = peers[0]
    if peer == "CidrIpv4":
        return replace(spec, cidr_ipv4=_ipv4(request[peer]))
    if peer == "CidrIpv6":
        return replace(spec, cidr_ipv6=_ipv6(request[peer]))
    if peer == "PrefixListId":
        return replace(spec, prefix_list_id=str(request[peer]))
    return replace(spec, group_id=str(request[peer]))


def _wire(member: str) -> str:
    return member[0].lower() + member[1:]


def _flat_specs(params: Mapping[str, Any], *, is_egress: bool) -> list[RuleSpec]:
    source = params.get("SourceSecurityGroupName")
    if source and params.get("CidrIp"):
        raise errors.InvalidParameterCombination(
            reason="The parameter cidrIp cannot be used with the parameter sourceSecurityGroupName"
        )
    pair = {"GroupName": source, "UserId": params.get("SourceSecurityGroupOwnerId")}
    if source and params.get("IpProtocol") is None:
        perms = [
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [pair]},
            {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [pair]},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [pair]},
        ]
    else:
        perm: dict[str, Any] = {k: params.get(k) for k in ("IpProtocol", "FromPort", "ToPort")}
        if source:
            perm["UserIdGroupPairs"] = [pair]
        elif params.get("CidrIp") is not None:
            perm["IpRanges"] = [{"CidrIp": params["CidrIp"]}]
        perms = [perm]
    return [s for perm in perms for s in specs_from_permission(perm, is_egress=is_egress)]


# --- output ----------------------------------------------------------------------------------


def _pair(spec: RuleSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"UserId": spec.group_owner, "GroupId": spec.group_id}
    if spec.description is not None:
        out["Description"] = spec.description
    return out


def _with_description(out: dict[str, Any], spec: RuleSpec) -> dict[str, Any]:
    if spec.description is not None:
        out["Description"] = spec.description
    return out


def permission_skeleton(spec: RuleSpec) -> dict[str, Any]:
    """An empty ``IpPermission`` for the protocol and ports of ``spec``."""
    perm: dict[str, Any] = {"IpProtocol": spec.protocol}
    if spec.from_port is not None:
        perm["FromPort"] = spec.from_port
        perm["ToPort"] = spec.to_port
    perm.update(IpRanges=[], Ipv6Ranges=[], PrefixListIds=[], UserIdGroupPairs=[])
    return perm


def add_to_permission(perm: dict[str, Any], spec: RuleSpec) -> None:
    """Put the peer of ``spec`` into the matching list of ``perm``."""
    if spec.cidr_ipv4:
        perm["IpRanges"].append(_with_description({"CidrIp": spec.cidr_ipv4}, spec))
    elif spec.cidr_ipv6:
        perm["Ipv6Ranges"].append(_with_description({"CidrIpv6": spec.cidr_ipv6}, spec))
    elif spec.prefix_list_id:
        perm["PrefixListIds"].append(_with_description({"PrefixListId": spec.prefix_list_id}, spec))
    else:
        perm["UserIdGroupPairs"].append(_pair(spec))


def group_permissions(specs: Iterable[RuleSpec]) -> list[dict[str, Any]]:
    """``IpPermission`` dicts: one per (protocol, from, to), in first-seen order."""
    grouped: dict[tuple[str, int | None, int | None], dict[str, Any]] = {}
    for spec in specs:
        key = (spec.protocol, spec.from_port, spec.to_port)
        if key not in grouped:
            grouped[key] = permission_skeleton(spec)
        add_to_permission(grouped[key], spec)
    return list(grouped.values())


def rule_fields(spec: RuleSpec) -> dict[str, Any]:
    """The protocol, ports and peer members of a ``SecurityGroupRule`` (ports -1 when none)."""
    out: dict[str, Any] = {
        "IsEgress": spec.is_egress,
        "IpProtocol": spec.protocol,
        "FromPort": -1 if spec.from_port is None else spec.from_port,
        "ToPort": -1 if spec.to_port is None else spec.to_port,
    }
    if spec.cidr_ipv4:
        out["CidrIpv4"] = spec.cidr_ipv4
    elif spec.cidr_ipv6:
        out["CidrIpv6"] = spec.cidr_ipv6
    elif spec.prefix_list_id:
        out["PrefixListId"] = spec.prefix_list_id
    else:
        out["ReferencedGroupInfo"] = {"GroupId": spec.group_id, "UserId": spec.group_owner}
    if spec.description is not None:
        out["Description"] = spec.description
    return out


def count_by_direction(specs: Sequence[RuleSpec]) -> tuple[int, int]:
    """(inbound, outbound) rule counts."""
    outbound = sum(1 for s in specs if s.is_egress)
    return len(specs) - outbound, outbound
