"""Security groups and their rules through boto3 and aws-cli, as the EC2 API reference describes them."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import error_of

SG_ID = re.compile(r"^sg-[0-9a-f]{17}$")
SGR_ID = re.compile(r"^sgr-[0-9a-f]{17}$")
_names = itertools.count()

SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}


@pytest.fixture
def account(cloud):
    return cloud.create_account(f"sg-{next(_names)}")


@pytest.fixture
def fresh(cloud, account):
    """A client of an account made for this test."""
    return cloud.client(account)


@pytest.fixture
def owner(fresh):
    return fresh.describe_vpcs()["Vpcs"][0]["OwnerId"]


@pytest.fixture
def group(fresh):
    """A new group in the default VPC."""
    made = fresh.create_security_group(GroupName="web", Description="web servers")
    return made["GroupId"]


def describe(client, group_id):
    return client.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


# --- the default group ----------------------------------------------------------------------


def test_default_group_has_ec2_default_rules(cloud, fresh, owner):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    [group] = fresh.describe_security_groups()["SecurityGroups"]
    assert SG_ID.match(group["GroupId"])
    assert group == {
        "GroupId": group["GroupId"],
        "GroupName": "default",
        "Description": "default VPC security group",
        "VpcId": vpc_id,
        "OwnerId": owner,
        "SecurityGroupArn": f"arn:aws:ec2:{cloud.region}:{owner}:security-group/{group['GroupId']}",
        "IpPermissions": [
            {
                "IpProtocol": "-1",
                "IpRanges": [],
                "Ipv6Ranges": [],
                "PrefixListIds": [],
                "UserIdGroupPairs": [{"UserId": owner, "GroupId": group["GroupId"]}],
            }
        ],
        "IpPermissionsEgress": [
            {
                "IpProtocol": "-1",
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [],
                "PrefixListIds": [],
                "UserIdGroupPairs": [],
            }
        ],
    }


def test_default_group_cannot_be_deleted(fresh):
    [group] = fresh.describe_security_groups()["SecurityGroups"]
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupId=group["GroupId"])
    assert error_of(exc) == (
        "CannotDelete",
        f'the specified group: "{group["GroupId"]}" name: "default" cannot be deleted by a user',
    )
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupName="default")
    assert error_of(exc)[0] == "CannotDelete"


def test_accounts_see_only_their_groups(cloud, fresh, group, ec2):
    theirs = ec2.describe_security_groups()["SecurityGroups"]
    assert group not in {g["GroupId"] for g in theirs}
    for call in (
        lambda: ec2.describe_security_groups(GroupIds=[group]),
        lambda: ec2.delete_security_group(GroupId=group),
        lambda: ec2.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        ),
        lambda: ec2.revoke_security_group_egress(
            GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("InvalidGroup.NotFound", f"The security group '{group}' does not exist")
    mine = {g["GroupId"] for g in theirs}
    assert not mine & {g["GroupId"] for g in fresh.describe_security_groups()["SecurityGroups"]}
    rule_ids = [r["SecurityGroupRuleId"] for r in fresh.describe_security_group_rules()["SecurityGroupRules"]]
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_group_rules(SecurityGroupRuleIds=rule_ids[:1])
    assert error_of(exc)[0] == "InvalidSecurityGroupRuleId.NotFound"


# --- CreateSecurityGroup --------------------------------------------------------------------


def test_create_security_group(cloud, fresh, owner):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    made = fresh.create_security_group(
        GroupName="api",
        Description="api servers",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": "api"}]}],
    )
    assert SG_ID.match(made["GroupId"])
    assert made["SecurityGroupArn"] == f"arn:aws:ec2:{cloud.region}:{owner}:security-group/{made['GroupId']}"
    assert made["Tags"] == [{"Key": "Name", "Value": "api"}]
    group = describe(fresh, made["GroupId"])
    assert (group["GroupName"], group["Description"], group["VpcId"]) == ("api", "api servers", vpc_id)
    assert group["IpPermissions"] == []
    assert group["IpPermissionsEgress"] == [
        {
            "IpProtocol": "-1",
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        }
    ]
    assert group["Tags"] == [{"Key": "Name", "Value": "api"}]
    fresh.get_waiter("security_group_exists").wait(GroupIds=[made["GroupId"]])


def test_create_errors(cloud, fresh, group):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    cases = [
        (
            {"GroupName": "web", "Description": "again"},
            "InvalidGroup.Duplicate",
            f"The security group 'web' already exists for VPC '{vpc_id}'",
        ),
        ({"GroupName": "default", "Description": "x"}, "InvalidGroup.Reserved", None),
        (
            {"GroupName": "sg-web", "Description": "x"},
            "InvalidParameterValue",
            "Value (sg-web) for parameter GroupName is invalid. Group names may not be in the format sg-*.",
        ),
        ({"GroupName": "x" * 256, "Description": "x"}, "InvalidParameterValue", None),
        ({"GroupName": "web2", "Description": "é"}, "InvalidParameterValue", None),
        ({"GroupName": "", "Description": "x"}, "MissingParameter", None),
        ({"GroupName": "web2", "Description": ""}, "MissingParameter", None),
        (
            {"GroupName": "web2", "Description": "x", "VpcId": "vpc-0123456789abcdef0"},
            "InvalidVpcID.NotFound",
            None,
        ),
        ({"GroupName": "web2", "Description": "x", "VpcId": "vpc-xyz"}, "InvalidVpcID.Malformed", None),
    ]
    for kwargs, code, message in cases:
        with pytest.raises(ClientError) as exc:
            fresh.create_security_group(**kwargs)
        assert error_of(exc)[0] == code, kwargs
        if message:
            assert error_of(exc)[1] == message


def test_same_name_in_another_vpc(fresh, group):
    vpc_id = fresh.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other = fresh.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    assert other != group
    assert describe(fresh, other)["VpcId"] == vpc_id


# --- DeleteSecurityGroup --------------------------------------------------------------------


def test_delete_by_id_and_by_name(fresh, group):
    assert fresh.delete_security_group(GroupId=group)["Return"] is True
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupId=group)
    assert error_of(exc) == ("InvalidGroup.NotFound", f"The security group '{group}' does not exist")
    fresh.create_security_group(GroupName="byname", Description="x")
    fresh.delete_security_group(GroupName="byname")
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupName="byname")
    assert error_of(exc) == (
        "InvalidGroup.NotFound",
        f"The security group 'byname' does not exist in default VPC '{vpc_id}'",
    )
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupId="sg-nope")
    assert error_of(exc)[0] == "InvalidGroupId.Malformed"


def test_delete_by_name_only_in_default_vpc(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    fresh.create_security_group(GroupName="elsewhere", Description="x", VpcId=vpc_id)
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupName="elsewhere")
    assert error_of(exc)[0] == "InvalidGroup.NotFound"


def test_delete_referenced_group(fresh, group):
    client = fresh.create_security_group(GroupName="client", Description="x")["GroupId"]
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "UserIdGroupPairs": [{"GroupId": client}]}]
    )
    with pytest.raises(ClientError) as exc:
        fresh.delete_security_group(GroupId=client)
    assert error_of(exc) == ("DependencyViolation", f"resource {client} has a dependent object")
    fresh.revoke_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "UserIdGroupPairs": [{"GroupId": client}]}]
    )
    fresh.delete_security_group(GroupId=client)


def test_group_referencing_itself_can_be_deleted(fresh, group):
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]}]
    )
    fresh.delete_security_group(GroupId=group)
    assert all(r["GroupId"] != group for r in fresh.describe_security_group_rules()["SecurityGroupRules"])


# --- AuthorizeSecurityGroupIngress/Egress ---------------------------------------------------


def test_rules_are_grouped_by_protocol_and_ports(fresh, group, owner):
    out = fresh.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                **SSH,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16", "Description": "home"}],
            },
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        ],
    )
    assert out["Return"] is True
    rules = out["SecurityGroupRules"]
    assert [r["CidrIpv4"] if "CidrIpv4" in r else r["CidrIpv6"] for r in rules] == [
        "10.0.0.0/8",
        "192.168.0.0/16",
        "::/0",
    ]
    for rule in rules:
        assert SGR_ID.match(rule["SecurityGroupRuleId"])
        assert rule["GroupId"] == group and rule["GroupOwnerId"] == owner and rule["IsEgress"] is False
    fresh.authorize_security_group_ingress(
        GroupId=group, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="172.16.0.0/12"
    )
    assert describe(fresh, group)["IpPermissions"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [
                {"CidrIp": "10.0.0.0/8"},
                {"CidrIp": "192.168.0.0/16", "Description": "home"},
                {"CidrIp": "172.16.0.0/12"},
            ],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [],
            "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
    ]


def test_protocols_are_stored_as_ec2_names(fresh, group):
    fresh.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "1.1.1.1/32"}]},
            {"IpProtocol": "UDP", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "1.1.1.1/32"}]},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "1.1.1.1/32"}]},
            {"IpProtocol": "50", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "1.1.1.1/32"}]},
        ],
    )
    perms = describe(fresh, group)["IpPermissions"]
    assert [(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in perms] == [
        ("tcp", 80, 80),
        ("udp", 53, 53),
        ("icmp", -1, -1),
        ("50", None, None),
    ]


def test_authorize_egress_and_source_group(fresh, group, owner):
    other = fresh.create_security_group(GroupName="db", Description="x")["GroupId"]
    out = fresh.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": other, "Description": "db"}],
            }
        ],
    )
    [rule] = out["SecurityGroupRules"]
    assert rule["IsEgress"] is True
    assert rule["ReferencedGroupInfo"] == {"GroupId": other, "UserId": owner}
    assert rule["Description"] == "db"
    egress = describe(fresh, group)["IpPermissionsEgress"]
    assert egress[1]["UserIdGroupPairs"] == [{"UserId": owner, "GroupId": other, "Description": "db"}]
    # the legacy form: a source group by name grants full TCP, UDP and ICMP access
    fresh.authorize_security_group_ingress(GroupName="web", SourceSecurityGroupName="db")
    perms = describe(fresh, group)["IpPermissions"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in perms] == [
        ("tcp", 0, 65535),
        ("udp", 0, 65535),
        ("icmp", -1, -1),
    ]
    assert all(p["UserIdGroupPairs"] == [{"UserId": owner, "GroupId": other}] for p in perms)


def test_duplicate_rules(fresh, group):
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "other"}]}],
        )
    assert error_of(exc) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists',
    )
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_egress(
            GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
    assert error_of(exc) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 0.0.0.0/0, ALL, ALLOW" already exists',
    )
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {**SSH, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]},
                {**SSH, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]},
            ],
        )
    assert error_of(exc)[0] == "InvalidParameterValue"
    # nothing of a failed request is kept
    assert len(describe(fresh, group)["IpPermissions"][0]["IpRanges"]) == 1


@pytest.mark.parametrize(
    ("perm", "code", "message"),
    [
        (
            {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "InvalidParameterValue",
            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
        ),
        (
            {"IpProtocol": "tcp", "FromPort": -1, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "InvalidPermission.Malformed",
            "TCP/UDP port (-1) out of range",
        ),
        (
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 70000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "InvalidPermission.Malformed",
            "TCP/UDP port (70000) out of range",
        ),
        (
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "InvalidParameterValue",
            None,
        ),
        (
            {"IpProtocol": "bogus", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "InvalidParameterValue",
            "Invalid value 'bogus' for IP protocol. Unknown protocol.",
        ),
        (
            {**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/33"}]},
            "InvalidParameterValue",
            "CIDR block 10.0.0.0/33 is malformed",
        ),
        (
            {**SSH, "IpRanges": [{"CidrIp": "10.0.0.1"}]},
            "InvalidParameterValue",
            "CIDR block 10.0.0.1 is malformed",
        ),
        ({**SSH, "Ipv6Ranges": [{"CidrIpv6": "not-v6/64"}]}, "InvalidParameterValue", None),
        ({**SSH}, "MissingParameter", None),
        (
            {**SSH, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]},
            "InvalidGroup.NotFound",
            "The security group 'sg-0123456789abcdef0' does not exist",
        ),
        ({**SSH, "UserIdGroupPairs": [{"GroupName": "nope"}]}, "InvalidGroup.NotFound", None),
        ({**SSH, "PrefixListIds": [{"PrefixListId": "pl-12345678"}]}, "InvalidPrefixListID.NotFound", None),
    ],
)
def test_authorize_errors(fresh, group, perm, code, message):
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
    assert error_of(exc)[0] == code
    if message:
        assert error_of(exc)[1] == message


def test_authorize_unknown_or_malformed_group(fresh):
    perm = [{**SSH, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(GroupId="sg-0123456789abcdef0", IpPermissions=perm)
    assert error_of(exc)[0] == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(GroupId="nope", IpPermissions=perm)
    assert error_of(exc)[0] == "InvalidGroupId.Malformed"
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(GroupName="nope", IpPermissions=perm)
    assert error_of(exc)[0] == "InvalidGroup.NotFound"


def test_peer_group_in_another_vpc(fresh, group):
    vpc_id = fresh.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    other = fresh.create_security_group(GroupName="far", Description="x", VpcId=vpc_id)["GroupId"]
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[{**SSH, "UserIdGroupPairs": [{"GroupId": other}]}]
        )
    assert error_of(exc)[0] == "InvalidParameterValue"


def test_rule_limit(fresh, group):
    perm = {**SSH, "IpRanges": [{"CidrIp": f"10.0.{i}.0/24"} for i in range(60)]}
    fresh.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
    with pytest.raises(ClientError) as exc:
        fresh.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.1.0.0/24"}]}]
        )
    assert error_of(exc)[0] == "RulesPerSecurityGroupLimitExceeded"
    # the limit is per direction: egress still has room (one rule of 60 used)
    fresh.authorize_security_group_egress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.1.0.0/24"}]}]
    )


def test_tags_on_new_rules(fresh, group):
    out = fresh.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    [rule] = out["SecurityGroupRules"]
    assert rule["Tags"] == [{"Key": "k", "Value": "v"}]
    found = fresh.describe_security_group_rules(Filters=[{"Name": "tag:k", "Values": ["v"]}])[
        "SecurityGroupRules"
    ]
    assert [r["SecurityGroupRuleId"] for r in found] == [rule["SecurityGroupRuleId"]]
    tags = fresh.describe_tags(Filters=[{"Name": "resource-id", "Values": [rule["SecurityGroupRuleId"]]}])[
        "Tags"
    ]
    assert tags[0]["ResourceType"] == "security-group-rule"


# --- Revoke ---------------------------------------------------------------------------------


def test_revoke_by_permission_and_by_rule_id(fresh, group):
    rules = fresh.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "11.0.0.0/8"}]}],
    )["SecurityGroupRules"]
    out = fresh.revoke_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    )
    assert out["Return"] is True
    assert out["RevokedSecurityGroupRules"][0]["SecurityGroupRuleId"] == rules[0]["SecurityGroupRuleId"]
    assert "UnknownIpPermissions" not in out
    assert describe(fresh, group)["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "11.0.0.0/8"}]
    out = fresh.revoke_security_group_ingress(
        GroupId=group, SecurityGroupRuleIds=[rules[1]["SecurityGroupRuleId"]]
    )
    assert out["Return"] is True
    assert describe(fresh, group)["IpPermissions"] == []
    with pytest.raises(ClientError) as exc:
        fresh.revoke_security_group_ingress(
            GroupId=group, SecurityGroupRuleIds=[rules[1]["SecurityGroupRuleId"]]
        )
    assert error_of(exc)[0] == "InvalidSecurityGroupRuleId.NotFound"
    egress = describe(fresh, group)["IpPermissionsEgress"]
    fresh.revoke_security_group_egress(GroupId=group, IpPermissions=egress)
    assert describe(fresh, group)["IpPermissionsEgress"] == []


def test_revoke_unknown_rule_outside_the_default_vpc(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    group = fresh.create_security_group(GroupName="x", Description="x", VpcId=vpc_id)["GroupId"]
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    )
    with pytest.raises(ClientError) as exc:
        fresh.revoke_security_group_ingress(
            GroupId=group,
            IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "9.0.0.0/8"}]}],
        )
    assert error_of(exc)[0] == "InvalidPermission.NotFound"
    assert describe(fresh, group)["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.0.0.0/8"}]


def test_revoke_unknown_rule_in_the_default_vpc(fresh, group):
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    )
    out = fresh.revoke_security_group_ingress(
        GroupId=group,
        IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "9.0.0.0/8"}]}],
    )
    assert [r["CidrIpv4"] for r in out["RevokedSecurityGroupRules"]] == ["10.0.0.0/8"]
    assert out["UnknownIpPermissions"] == [
        {
            **SSH,
            "IpRanges": [{"CidrIp": "9.0.0.0/8"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        }
    ]
    assert describe(fresh, group)["IpPermissions"] == []


def test_revoke_rule_of_the_other_direction_by_id(fresh, group):
    egress = fresh.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroupRules"
    ][0]
    assert egress["IsEgress"] is True
    with pytest.raises(ClientError) as exc:
        fresh.revoke_security_group_ingress(
            GroupId=group, SecurityGroupRuleIds=[egress["SecurityGroupRuleId"]]
        )
    assert error_of(exc)[0] == "InvalidSecurityGroupRuleId.NotFound"


# --- DescribeSecurityGroups -----------------------------------------------------------------


def test_describe_by_ids_and_names(fresh, group):
    default = fresh.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    assert default["GroupName"] == "default"
    both = fresh.describe_security_groups(GroupNames=["web"], GroupIds=[default["GroupId"]])["SecurityGroups"]
    assert {g["GroupId"] for g in both} == {group, default["GroupId"]}
    with pytest.raises(ClientError) as exc:
        fresh.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])
    assert error_of(exc) == (
        "InvalidGroup.NotFound",
        "The security group 'sg-0123456789abcdef0' does not exist",
    )
    with pytest.raises(ClientError) as exc:
        fresh.describe_security_groups(GroupIds=["bad"])
    assert error_of(exc)[0] == "InvalidGroupId.Malformed"
    vpc_id = fresh.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    fresh.create_security_group(GroupName="hidden", Description="x", VpcId=vpc_id)
    with pytest.raises(ClientError) as exc:
        fresh.describe_security_groups(GroupNames=["hidden"])
    assert error_of(exc)[0] == "InvalidGroup.NotFound"


def test_describe_filters(fresh, group, owner):
    db = fresh.create_security_group(
        GroupName="db",
        Description="databases",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "data"}]}],
    )["GroupId"]
    fresh.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": group}]},
            {**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        ],
    )
    fresh.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "8.8.8.8/32"}]}
        ],
    )
    default = fresh.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]

    def ids(*filters):
        return {g["GroupId"] for g in fresh.describe_security_groups(Filters=list(filters))["SecurityGroups"]}

    assert ids({"Name": "group-name", "Values": ["db"]}) == {db}
    assert ids({"Name": "group-name", "Values": ["w*"]}) == {group}
    assert ids({"Name": "group-id", "Values": [group]}) == {group}
    assert ids({"Name": "description", "Values": ["databases"]}) == {db}
    assert ids({"Name": "owner-id", "Values": [owner]}) == {db, group, default}
    assert ids({"Name": "vpc-id", "Values": [fresh.describe_vpcs()["Vpcs"][0]["VpcId"]]}) == {
        db,
        group,
        default,
    }
    assert ids({"Name": "ip-permission.from-port", "Values": ["5432"]}) == {db}
    assert ids({"Name": "ip-permission.to-port", "Values": ["22"]}) == {db}
    assert ids({"Name": "ip-permission.cidr", "Values": ["10.0.0.0/8"]}) == {db}
    assert ids({"Name": "ip-permission.protocol", "Values": ["tcp"]}) == {db}
    assert ids({"Name": "ip-permission.group-id", "Values": [group]}) == {db}
    assert ids({"Name": "ip-permission.user-id", "Values": [owner]}) == {db, default}
    assert ids({"Name": "egress.ip-permission.protocol", "Values": ["udp"]}) == {group}
    assert ids({"Name": "egress.ip-permission.cidr", "Values": ["0.0.0.0/0"]}) == {db, group, default}
    assert ids({"Name": "tag:tier", "Values": ["data"]}) == {db}
    assert ids({"Name": "tag-key", "Values": ["tier"]}, {"Name": "group-name", "Values": ["web"]}) == set()


def test_describe_paginator_returns_each_once(cloud, account, fresh):
    made = {fresh.create_security_group(GroupName=f"g{i}", Description="x")["GroupId"] for i in range(7)}
    pages = list(fresh.get_paginator("describe_security_groups").paginate(PaginationConfig={"PageSize": 5}))
    seen = [g["GroupId"] for page in pages for g in page["SecurityGroups"]]
    assert len(pages) == 2
    assert len(seen) == len(set(seen)) == 8
    assert made < set(seen)
    unchecked = cloud.client(account, parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        unchecked.describe_security_groups(MaxResults=4)
    assert error_of(exc)[0] == "InvalidParameterValue"


def test_aws_cli_describe_security_groups(cloud, account, fresh, group):
    result = cloud.aws("ec2", "describe-security-groups", "--group-ids", group, account=account)
    assert result.returncode == 0, result.stderr
    [described] = json.loads(result.stdout)["SecurityGroups"]
    assert described["GroupName"] == "web"
    assert described["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    result = cloud.aws(
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        group,
        "--protocol",
        "tcp",
        "--port",
        "22",
        "--cidr",
        "203.0.113.0/24",
        account=account,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Return"] is True
    result = cloud.aws(
        "ec2", "describe-security-groups", "--filters", "Name=group-name,Values=web", account=account
    )
    [described] = json.loads(result.stdout)["SecurityGroups"]
    assert described["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "203.0.113.0/24"}]
    result = cloud.aws("ec2", "describe-security-groups", "--group-names", "nope", account=account)
    assert result.returncode != 0 and "InvalidGroup.NotFound" in result.stderr


# --- DescribeSecurityGroupRules / Modify / Update descriptions ---------------------------------


def test_describe_security_group_rules(fresh, group, owner):
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "lan"}]}]
    )
    rules = fresh.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroupRules"
    ]
    by_direction = {r["IsEgress"]: r for r in rules}
    assert set(by_direction) == {True, False}
    ingress, egress = by_direction[False], by_direction[True]
    assert ingress["IpProtocol"] == "tcp" and (ingress["FromPort"], ingress["ToPort"]) == (22, 22)
    assert ingress["CidrIpv4"] == "10.0.0.0/8" and ingress["Description"] == "lan"
    assert ingress["GroupOwnerId"] == owner
    assert ingress["SecurityGroupRuleArn"].endswith(
        f":{owner}:security-group-rule/{ingress['SecurityGroupRuleId']}"
    )
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("-1", -1, -1)
    one = fresh.describe_security_group_rules(SecurityGroupRuleIds=[ingress["SecurityGroupRuleId"]])[
        "SecurityGroupRules"
    ]
    assert one == [ingress]
    with pytest.raises(ClientError) as exc:
        fresh.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": ["foobar"]}])
    assert error_of(exc) == ("InvalidGroupId.Malformed", "The security group ID 'foobar' is malformed")
    with pytest.raises(ClientError) as exc:
        fresh.describe_security_group_rules(SecurityGroupRuleIds=["sgr-0f80c7e764c18b3c0"])
    assert error_of(exc) == (
        "InvalidSecurityGroupRuleId.NotFound",
        "The security group rule ID 'sgr-0f80c7e764c18b3c0' does not exist",
    )
    assert (
        fresh.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": ["sg-005216b55886f0fdc"]}]
        )["SecurityGroupRules"]
        == []
    )


def test_describe_security_group_rules_paginator(fresh, group):
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": f"10.9.{i}.0/24"} for i in range(9)]}]
    )
    pages = list(
        fresh.get_paginator("describe_security_group_rules").paginate(PaginationConfig={"PageSize": 5})
    )
    seen = [r["SecurityGroupRuleId"] for page in pages for r in page["SecurityGroupRules"]]
    # 9 new rules, the new group's egress rule, the default group's two rules
    assert len(seen) == len(set(seen)) == 12
    assert len(pages) == 3


def test_modify_security_group_rules(fresh, group):
    [rule] = fresh.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 30900,
                "ToPort": 31000,
                "IpRanges": [{"CidrIp": "1.2.3.4/32", "Description": "orig"}],
            }
        ],
    )["SecurityGroupRules"]
    rule_id = rule["SecurityGroupRuleId"]
    change = {
        "IpProtocol": "udp",
        "FromPort": 27010,
        "ToPort": 27011,
        "CidrIpv4": "2.3.4.5/32",
        "Description": "new",
    }
    assert (
        fresh.modify_security_group_rules(
            GroupId=group, SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": change}]
        )["Return"]
        is True
    )
    [after] = fresh.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert (
        after["IpProtocol"],
        after["FromPort"],
        after["ToPort"],
        after["CidrIpv4"],
        after["Description"],
    ) == ("udp", 27010, 27011, "2.3.4.5/32", "new")
    cases = [
        (
            "sg-00000000",
            rule_id,
            change,
            "InvalidGroup.NotFound",
            "The security group 'sg-00000000' does not exist",
        ),
        (
            group,
            "sgr-00000000",
            change,
            "InvalidSecurityGroupRuleId.NotFound",
            "The security group rule ID 'sgr-00000000' does not exist",
        ),
        (
            group,
            rule_id,
            {k: v for k, v in change.items() if k != "IpProtocol"},
            "InvalidParameterValue",
            "Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly.",
        ),
        (
            group,
            rule_id,
            {"IpProtocol": "tcp", "CidrIpv4": "1.1.1.1/32"},
            "InvalidParameterValue",
            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
        ),
        (
            group,
            rule_id,
            {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2},
            "MissingParameter",
            "The request must contain exactly one of: cidrIp, cidrIpv6, prefixListId, or referencedGroupId",
        ),
        (
            group,
            rule_id,
            {**change, "ReferencedGroupId": group},
            "InvalidParameterCombination",
            "Only one of cidrIp, cidrIpv6, prefixListId, or referencedGroupId can be specified",
        ),
    ]
    for group_id, rid, req, code, message in cases:
        with pytest.raises(ClientError) as exc:
            fresh.modify_security_group_rules(
                GroupId=group_id, SecurityGroupRules=[{"SecurityGroupRuleId": rid, "SecurityGroupRule": req}]
            )
        assert error_of(exc) == (code, message)


def test_update_rule_descriptions(fresh, group):
    fresh.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    )
    fresh.update_security_group_rule_descriptions_ingress(
        GroupId=group,
        IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "office"}]}],
    )
    assert describe(fresh, group)["IpPermissions"][0]["IpRanges"] == [
        {"CidrIp": "10.0.0.0/8", "Description": "office"}
    ]
    egress = [
        r
        for r in fresh.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"
        ]
        if r["IsEgress"]
    ]
    fresh.update_security_group_rule_descriptions_egress(
        GroupId=group,
        SecurityGroupRuleDescriptions=[
            {"SecurityGroupRuleId": egress[0]["SecurityGroupRuleId"], "Description": "out"}
        ],
    )
    assert describe(fresh, group)["IpPermissionsEgress"][0]["IpRanges"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "out"}
    ]
    with pytest.raises(ClientError) as exc:
        fresh.update_security_group_rule_descriptions_ingress(
            GroupId=group, IpPermissions=[{**SSH, "IpRanges": [{"CidrIp": "9.0.0.0/8", "Description": "x"}]}]
        )
    assert error_of(exc)[0] == "InvalidPermission.NotFound"
