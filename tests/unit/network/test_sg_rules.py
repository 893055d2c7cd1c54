"""Security-group rules: parsing requests, EC2's errors, and grouping into permissions."""

from __future__ import annotations

import pytest

from ocs import errors
from ocs.network import sg_rules
from ocs.network.sg_rules import RuleSpec


def _codes(fn, *args, **kwargs):
    with pytest.raises(errors.OcsError) as info:
        fn(*args, **kwargs)
    return info.value.code, str(info.value)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("tcp", "tcp"),
        ("TCP", "tcp"),
        ("6", "tcp"),
        ("17", "udp"),
        ("1", "icmp"),
        ("58", "icmpv6"),
        ("-1", "-1"),
        ("all", "-1"),
        ("50", "50"),
        ("050", "50"),
        (47, "47"),
    ],
)
def test_protocols_are_normalized(given, stored):
    assert sg_rules.normalize_protocol(given) == stored


@pytest.mark.parametrize("given", ["foo", "256", "-2", "1.5"])
def test_unknown_protocols(given):
    code, message = _codes(sg_rules.normalize_protocol, given)
    assert code == "InvalidParameterValue"
    assert message == f"Invalid value '{given}' for IP protocol. Unknown protocol."


def test_missing_protocol():
    code, message = _codes(sg_rules.normalize_protocol, None)
    assert message.startswith("Invalid value 'null' for protocol.")


def test_ports():
    assert sg_rules.check_ports("tcp", 22, 22) == (22, 22)
    assert sg_rules.check_ports("-1", 22, 80) == (None, None)
    assert sg_rules.check_ports("50", None, None) == (None, None)
    assert sg_rules.check_ports("icmp", -1, -1) == (-1, -1)
    assert sg_rules.check_ports("icmp", 8, 0) == (8, 0)
    assert _codes(sg_rules.check_ports, "tcp", None, 22)[1] == (
        "Invalid value for portRange. Must specify both from and to ports with TCP/UDP."
    )
    assert _codes(sg_rules.check_ports, "udp", -1, 22) == (
        "InvalidPermission.Malformed",
        "TCP/UDP port (-1) out of range",
    )
    assert _codes(sg_rules.check_ports, "tcp", 1, 70000)[0] == "InvalidPermission.Malformed"
    assert _codes(sg_rules.check_ports, "tcp", 80, 22)[0] == "InvalidParameterValue"
    assert "ICMP" in _codes(sg_rules.check_ports, "icmp", None, None)[1]
    assert _codes(sg_rules.check_ports, "icmp", -1, 3)[0] == "InvalidParameterValue"


def test_permission_splits_into_rules_with_normalized_blocks():
    specs = sg_rules.specs_from_permission(
        {
            "IpProtocol": "6",
            "FromPort": 80,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "10.0.0.28/29", "Description": "office"}],
            "Ipv6Ranges": [{"CidrIpv6": "2001:DB8::/32"}],
            "UserIdGroupPairs": [{"GroupId": "sg-12345678", "UserId": "123456789012"}],
        },
        is_egress=False,
    )
    assert [s.peer for s in specs] == ["10.0.0.24/29", "2001:db8::/32", "sg-12345678"]
    assert {s.protocol for s in specs} == {"tcp"}
    assert specs[0].description == "office" and specs[1].description is None
    assert specs[2].group_owner == "123456789012"


def test_bad_blocks_and_missing_peers():
    perm = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/33"}]}
    assert _codes(sg_rules.specs_from_permission, perm, is_egress=False) == (
        "InvalidParameterValue",
        "CIDR block 10.0.0.0/33 is malformed",
    )
    code, message = _codes(
        sg_rules.specs_from_permission, {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2}, is_egress=False
    )
    assert code == "MissingParameter" and message.startswith("Missing source specification")


def test_flat_request_and_source_group_defaults():
    specs = sg_rules.specs_from_request(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}, is_egress=False
    )
    assert specs == [RuleSpec(False, "tcp", 22, 22, cidr_ipv4="0.0.0.0/0")]
    specs = sg_rules.specs_from_request({"SourceSecurityGroupName": "web"}, is_egress=False)
    assert [(s.protocol, s.from_port, s.to_port, s.group_name) for s in specs] == [
        ("tcp", 0, 65535, "web"),
        ("udp", 0, 65535, "web"),
        ("icmp", -1, -1, "web"),
    ]
    assert _codes(sg_rules.specs_from_request, {}, is_egress=False)[0] == "MissingParameter"
    both = {
        "IpProtocol": "tcp",
        "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    }
    assert _codes(sg_rules.specs_from_request, both, is_egress=False)[0] == "InvalidParameterCombination"


def test_same_rule_twice_in_one_request():
    perm = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}
    code, message = _codes(sg_rules.specs_from_request, {"IpPermissions": [perm, perm]}, is_egress=False)
    assert (code, message) == ("InvalidParameterValue", "The same permission must not appear multiple times")


def test_fingerprint_ignores_description_but_not_direction():
    a = RuleSpec(False, "tcp", 22, 22, cidr_ipv4="0.0.0.0/0", description="a")
    assert a.fingerprint() == RuleSpec(False, "tcp", 22, 22, cidr_ipv4="0.0.0.0/0").fingerprint()
    assert a.fingerprint() != RuleSpec(True, "tcp", 22, 22, cidr_ipv4="0.0.0.0/0").fingerprint()


@pytest.mark.parametrize(
    ("spec", "summary"),
    [
        (
            RuleSpec(False, "tcp", 22, 22, cidr_ipv4="0.0.0.0/0"),
            "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW",
        ),
        (RuleSpec(False, "-1", group_id="sg-1"), "peer: sg-1, ALL, ALLOW"),
        (
            RuleSpec(False, "icmp", -1, -1, cidr_ipv4="10.0.0.0/24"),
            "peer: 10.0.0.0/24, ICMP, type: ALL, code: ALL, ALLOW",
        ),
        (RuleSpec(False, "50", cidr_ipv4="0.0.0.0/0"), "peer: 0.0.0.0/0, protocol: 50, ALLOW"),
    ],
)
def test_summary_as_ec2_words_it(spec, summary):
    assert spec.summary() == summary


def test_grouping_one_permission_per_protocol_and_ports():
    specs = [
        RuleSpec(False, "tcp", 22, 22, cidr_ipv4="10.0.0.0/8"),
        RuleSpec(False, "-1", group_id="sg-1", group_owner="111122223333"),
        RuleSpec(False, "tcp", 22, 22, cidr_ipv4="192.168.0.0/16", description="home"),
        RuleSpec(False, "tcp", 22, 22, cidr_ipv6="::/0"),
    ]
    assert sg_rules.group_permissions(specs) == [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16", "Description": "home"}],
            "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
        {
            "IpProtocol": "-1",
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"UserId": "111122223333", "GroupId": "sg-1"}],
        },
    ]


def test_rule_fields_use_minus_one_for_absent_ports():
    fields = sg_rules.rule_fields(RuleSpec(True, "-1", cidr_ipv4="0.0.0.0/0"))
    assert fields == {
        "IsEgress": True,
        "IpProtocol": "-1",
        "FromPort": -1,
        "ToPort": -1,
        "CidrIpv4": "0.0.0.0/0",
    }


def test_modify_request_needs_exactly_one_peer():
    base = {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2}
    assert _codes(sg_rules.spec_from_rule_request, base, is_egress=False)[0] == "MissingParameter"
    two = {**base, "CidrIpv4": "1.2.3.4/32", "ReferencedGroupId": "sg-1"}
    assert _codes(sg_rules.spec_from_rule_request, two, is_egress=False)[0] == "InvalidParameterCombination"
    spec = sg_rules.spec_from_rule_request({**base, "CidrIpv4": "1.2.3.4/32"}, is_egress=True)
    assert spec == RuleSpec(True, "tcp", 1, 2, cidr_ipv4="1.2.3.4/32")
