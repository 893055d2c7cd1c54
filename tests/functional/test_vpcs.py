"""VPCs, subnets and every account's default network, through boto3 and aws-cli."""

from __future__ import annotations

import itertools
import json
import re
import threading

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import error_of

VPC_ID = re.compile(r"^vpc-[0-9a-f]{17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{17}$")
_names = itertools.count()


@pytest.fixture
def fresh(cloud):
    """A client of an account made for this test (its first request provisions it)."""
    return cloud.client(cloud.create_account(f"vpcs-{next(_names)}"))


@pytest.fixture(scope="module")
def zones(ec2):
    return [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]


# --- the default network --------------------------------------------------------------------


def test_new_account_has_exactly_one_default_vpc(cloud, fresh):
    vpcs = fresh.describe_vpcs()["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]
    assert VPC_ID.match(vpc["VpcId"])
    assert vpc["IsDefault"] is True
    assert vpc["CidrBlock"] == "172.31.0.0/16"
    assert vpc["State"] == "available"
    assert vpc["InstanceTenancy"] == "default"
    assert vpc["DhcpOptionsId"]
    assert re.fullmatch(r"[0-9]{12}", vpc["OwnerId"])
    [assoc] = vpc["CidrBlockAssociationSet"]
    assert assoc["CidrBlock"] == "172.31.0.0/16"
    assert assoc["CidrBlockState"] == {"State": "associated"}
    assert assoc["AssociationId"].startswith("vpc-cidr-assoc-")
    attrs = fresh.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"] == [{"AttributeValue": vpc["VpcId"]}]


def test_default_subnet_per_zone_with_slash_20s(cloud, fresh, zones):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = sorted(fresh.describe_subnets()["Subnets"], key=lambda s: s["CidrBlock"].split("."))
    assert [s["AvailabilityZone"] for s in subnets] == zones
    expected = [f"172.31.{16 * i}.0/20" for i in range(len(zones))]
    assert [s["CidrBlock"] for s in subnets] == expected
    owner = subnets[0]["OwnerId"]
    for subnet in subnets:
        assert SUBNET_ID.match(subnet["SubnetId"])
        assert subnet["VpcId"] == vpc_id
        assert subnet["DefaultForAz"] is True
        assert subnet["MapPublicIpOnLaunch"] is True
        assert subnet["State"] == "available"
        assert subnet["AvailableIpAddressCount"] == 4096 - 5
        assert subnet["SubnetArn"] == f"arn:aws:ec2:{cloud.region}:{owner}:subnet/{subnet['SubnetId']}"
        assert subnet["AvailabilityZoneId"]


def test_default_security_group_is_visible(fresh):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    [group] = fresh.describe_security_groups()["SecurityGroups"]
    assert group["GroupName"] == "default"
    assert group["VpcId"] == vpc_id


def test_accounts_see_only_their_own_network(cloud, fresh, ec2):
    mine = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    theirs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert mine != theirs
    assert [v["VpcId"] for v in fresh.describe_vpcs()["Vpcs"]] == [mine]
    with pytest.raises(ClientError) as exc:
        fresh.describe_vpcs(VpcIds=[theirs])
    assert error_of(exc) == ("InvalidVpcID.NotFound", f"The vpc ID '{theirs}' does not exist")
    their_subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [theirs]}])["Subnets"][0]
    with pytest.raises(ClientError) as exc:
        fresh.describe_subnets(SubnetIds=[their_subnet["SubnetId"]])
    assert error_of(exc)[0] == "InvalidSubnetID.NotFound"
    assert theirs not in {s["VpcId"] for s in fresh.describe_subnets()["Subnets"]}
    with pytest.raises(ClientError) as exc:
        fresh.create_subnet(VpcId=theirs, CidrBlock="172.31.200.0/24")
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"


def test_concurrent_first_requests_make_one_default_vpc(cloud):
    client = cloud.client(cloud.create_account(f"vpcs-race-{next(_names)}"))
    barrier = threading.Barrier(8)
    seen: list[int] = []
    failures: list[BaseException] = []

    def first_request() -> None:
        try:
            barrier.wait()
            seen.append(len(client.describe_vpcs()["Vpcs"]))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert seen == [1] * 8
    assert len(client.describe_vpcs()["Vpcs"]) == 1
    assert len(client.describe_security_groups()["SecurityGroups"]) == 1


def test_deleted_default_vpc_stays_deleted_until_create_default_vpc(cloud, fresh, zones):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    with pytest.raises(ClientError) as exc:
        fresh.delete_vpc(VpcId=vpc_id)
    assert error_of(exc) == (
        "DependencyViolation",
        f"The vpc '{vpc_id}' has dependencies and cannot be deleted.",
    )
    for subnet in fresh.describe_subnets()["Subnets"]:
        fresh.delete_subnet(SubnetId=subnet["SubnetId"])
    # As on EC2, the default VPC's internet gateway holds on to it until detached.
    [igw] = fresh.describe_internet_gateways()["InternetGateways"]
    with pytest.raises(ClientError) as exc:
        fresh.delete_vpc(VpcId=vpc_id)
    assert error_of(exc)[0] == "DependencyViolation"
    fresh.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
    fresh.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    fresh.delete_vpc(VpcId=vpc_id)
    assert fresh.describe_vpcs()["Vpcs"] == []
    assert fresh.describe_route_tables()["RouteTables"] == []
    assert fresh.describe_security_groups()["SecurityGroups"] == []
    attrs = fresh.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"] == [{"AttributeValue": "none"}]
    with pytest.raises(ClientError) as exc:
        fresh.create_security_group(GroupName="web", Description="web")
    assert error_of(exc)[0] == "VPCIdNotSpecified"
    made = fresh.create_default_vpc()["Vpc"]
    assert made["IsDefault"] is True and made["CidrBlock"] == "172.31.0.0/16"
    assert len(fresh.describe_subnets()["Subnets"]) == len(zones)
    with pytest.raises(ClientError) as exc:
        fresh.create_default_vpc()
    assert error_of(exc)[0] == "DefaultVpcAlreadyExists"


# --- VPCs -----------------------------------------------------------------------------------


def test_create_vpc(fresh):
    made = fresh.create_vpc(
        CidrBlock="10.0.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "main"}]}],
    )["Vpc"]
    assert VPC_ID.match(made["VpcId"])
    assert made["State"] == "pending"
    assert made["IsDefault"] is False
    assert made["Tags"] == [{"Key": "Name", "Value": "main"}]
    vpc = fresh.describe_vpcs(VpcIds=[made["VpcId"]])["Vpcs"][0]
    assert vpc["State"] == "available" and vpc["CidrBlock"] == "10.0.0.0/16"
    assert vpc["Tags"] == [{"Key": "Name", "Value": "main"}]
    fresh.get_waiter("vpc_available").wait(VpcIds=[made["VpcId"]])
    groups = fresh.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [made["VpcId"]]}])
    assert [g["GroupName"] for g in groups["SecurityGroups"]] == ["default"]
    assert fresh.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [made["VpcId"]]}])["Subnets"] == []


@pytest.mark.parametrize("block", ["10.0.0.0/15", "10.0.0.0/8", "10.0.0.0/29", "10.0.0.0/32"])
def test_create_vpc_out_of_range(ec2, block):
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc(CidrBlock=block)
    assert error_of(exc) == ("InvalidVpc.Range", f"The CIDR '{block}' is invalid.")


@pytest.mark.parametrize("block", ["10.0.0.0", "nonsense", "10.0.0.0/33", "10.0.0.1/16", "300.0.0.0/16"])
def test_create_vpc_not_a_block(ec2, block):
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc(CidrBlock=block)
    assert error_of(exc) == (
        "InvalidParameterValue",
        f"Value ({block}) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
    )


def test_create_vpc_tenancy(fresh):
    vpc = fresh.create_vpc(CidrBlock="10.1.0.0/16", InstanceTenancy="dedicated")["Vpc"]
    assert vpc["InstanceTenancy"] == "dedicated"
    with pytest.raises(ClientError) as exc:
        fresh.create_vpc(CidrBlock="10.1.0.0/16", InstanceTenancy="host")
    assert error_of(exc)[0] == "InvalidParameterValue"


def test_create_vpc_dry_run_makes_nothing(fresh):
    with pytest.raises(ClientError) as exc:
        fresh.create_vpc(CidrBlock="10.2.0.0/16", DryRun=True)
    assert error_of(exc)[0] == "DryRunOperation"
    assert len(fresh.describe_vpcs()["Vpcs"]) == 1


def test_delete_vpc_dependencies(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    subnet_id = fresh.create_subnet(VpcId=vpc_id, CidrBlock="10.3.1.0/24")["Subnet"]["SubnetId"]
    group_id = fresh.create_security_group(GroupName="app", Description="app", VpcId=vpc_id)["GroupId"]
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            fresh.delete_vpc(VpcId=vpc_id)
        assert error_of(exc)[0] == "DependencyViolation"
        if fresh.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
            fresh.delete_subnet(SubnetId=subnet_id)
    fresh.delete_security_group(GroupId=group_id)
    fresh.delete_vpc(VpcId=vpc_id)
    with pytest.raises(ClientError) as exc:
        fresh.describe_vpcs(VpcIds=[vpc_id])
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"
    assert all(g["VpcId"] != vpc_id for g in fresh.describe_security_groups()["SecurityGroups"])
    with pytest.raises(ClientError) as exc:
        fresh.delete_vpc(VpcId=vpc_id)
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"


@pytest.mark.parametrize("vpc_id", ["vpc-0", "vpc-12345678", "vpc-0123456789abcdef0"])
def test_short_hex_vpc_ids_are_well_formed_and_not_found(ec2, vpc_id):
    # ec2api-tempest-plugin: vpc-0 is InvalidVpcID.NotFound, not Malformed.
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as exc:
        ec2.describe_subnets(SubnetIds=["subnet-0"])
    assert error_of(exc)[0] == "InvalidSubnetID.NotFound"


@pytest.mark.parametrize("vpc_id", ["vpc-xyz", "subnet-12345678", "nonsense", "vpc-0123456789abcdef01"])
def test_malformed_vpc_ids(ec2, vpc_id):
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert error_of(exc)[0] == "InvalidVpcID.Malformed"


def test_vpc_filters(fresh):
    default = fresh.describe_vpcs()["Vpcs"][0]
    other = fresh.create_vpc(
        CidrBlock="10.4.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "env", "Value": "qa"}]}],
    )["Vpc"]

    def ids(*filters):
        return sorted(v["VpcId"] for v in fresh.describe_vpcs(Filters=list(filters))["Vpcs"])

    assert ids({"Name": "is-default", "Values": ["true"]}) == [default["VpcId"]]
    assert ids({"Name": "is-default", "Values": ["false"]}) == [other["VpcId"]]
    assert ids({"Name": "cidr", "Values": ["10.4.0.0/16"]}) == [other["VpcId"]]
    assert ids({"Name": "cidr-block-association.cidr-block", "Values": ["172.31.*"]}) == [default["VpcId"]]
    assert ids({"Name": "vpc-id", "Values": [other["VpcId"]]}) == [other["VpcId"]]
    assert ids({"Name": "state", "Values": ["available"]}) == sorted([default["VpcId"], other["VpcId"]])
    assert ids({"Name": "owner-id", "Values": [default["OwnerId"]]}) == sorted(
        [default["VpcId"], other["VpcId"]]
    )
    assert ids({"Name": "dhcp-options-id", "Values": [default["DhcpOptionsId"]]}) == sorted(
        [default["VpcId"], other["VpcId"]]
    )
    assert ids({"Name": "tag:env", "Values": ["qa"]}) == [other["VpcId"]]
    assert ids({"Name": "tag-key", "Values": ["env"]}, {"Name": "is-default", "Values": ["true"]}) == []
    with pytest.raises(ClientError) as exc:
        fresh.describe_vpcs(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_of(exc)[0] == "InvalidParameterValue"


def test_vpc_paginator_returns_each_once(fresh):
    made = {fresh.create_vpc(CidrBlock=f"10.{10 + i}.0.0/16")["Vpc"]["VpcId"] for i in range(6)}
    pages = list(fresh.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5}))
    seen = [v["VpcId"] for page in pages for v in page["Vpcs"]]
    assert len(pages) == 2
    assert len(seen) == len(set(seen)) == 7
    assert made < set(seen)


def test_vpc_attributes(fresh):
    default = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    other = fresh.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]

    def attribute(vpc_id, name):
        out = fresh.describe_vpc_attribute(VpcId=vpc_id, Attribute=name)
        assert out["VpcId"] == vpc_id
        return out[name[0].upper() + name[1:]]["Value"]

    assert attribute(default, "enableDnsSupport") is True
    assert attribute(default, "enableDnsHostnames") is True
    assert attribute(other, "enableDnsHostnames") is False
    fresh.modify_vpc_attribute(VpcId=other, EnableDnsHostnames={"Value": True})
    assert attribute(other, "enableDnsHostnames") is True
    with pytest.raises(ClientError) as exc:
        fresh.modify_vpc_attribute(
            VpcId=other, EnableDnsHostnames={"Value": True}, EnableDnsSupport={"Value": True}
        )
    assert error_of(exc)[0] == "InvalidParameterCombination"


def test_tags_on_vpcs_and_subnets(fresh):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet_id = fresh.describe_subnets()["Subnets"][0]["SubnetId"]
    fresh.create_tags(Resources=[vpc_id, subnet_id], Tags=[{"Key": "team", "Value": "net"}])
    described = fresh.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"]) for t in described) == sorted(
        [(vpc_id, "vpc"), (subnet_id, "subnet")]
    )
    assert fresh.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["Tags"] == [
        {"Key": "team", "Value": "net"}
    ]


# --- subnets --------------------------------------------------------------------------------


def test_create_subnet(cloud, fresh, zones):
    vpc_id = fresh.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    made = fresh.create_subnet(
        VpcId=vpc_id,
        CidrBlock="10.6.1.0/24",
        AvailabilityZone=zones[-1],
        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "a"}]}],
    )["Subnet"]
    assert SUBNET_ID.match(made["SubnetId"])
    assert made["VpcId"] == vpc_id
    assert made["AvailabilityZone"] == zones[-1]
    assert made["CidrBlock"] == "10.6.1.0/24"
    assert made["AvailableIpAddressCount"] == 251
    assert made["DefaultForAz"] is False and made["MapPublicIpOnLaunch"] is False
    assert made["Tags"] == [{"Key": "Name", "Value": "a"}]
    fresh.get_waiter("subnet_available").wait(SubnetIds=[made["SubnetId"]])
    described = fresh.describe_subnets(SubnetIds=[made["SubnetId"]])["Subnets"][0]
    assert described["SubnetArn"].endswith(f":subnet/{made['SubnetId']}")


def test_create_subnet_spreads_over_zones(fresh, zones):
    vpc_id = fresh.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    picked = [
        fresh.create_subnet(VpcId=vpc_id, CidrBlock=f"10.7.{i}.0/24")["Subnet"]["AvailabilityZone"]
        for i in range(len(zones))
    ]
    assert sorted(picked) == sorted(zones)


def test_create_subnet_errors(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    fresh.create_subnet(VpcId=vpc_id, CidrBlock="10.8.0.0/24")
    cases = [
        ("10.9.0.0/24", "InvalidSubnet.Range", "The CIDR '10.9.0.0/24' is invalid."),
        ("10.8.0.0/29", "InvalidSubnet.Range", "The CIDR '10.8.0.0/29' is invalid."),
        ("10.8.0.0/25", "InvalidSubnet.Conflict", "The CIDR '10.8.0.0/25' conflicts with another subnet"),
        ("10.8.0.0/23", "InvalidSubnet.Conflict", "The CIDR '10.8.0.0/23' conflicts with another subnet"),
        (
            "10.8.1",
            "InvalidParameterValue",
            "Value (10.8.1) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
        ),
    ]
    for block, code, message in cases:
        with pytest.raises(ClientError) as exc:
            fresh.create_subnet(VpcId=vpc_id, CidrBlock=block)
        assert error_of(exc) == (code, message), block
    with pytest.raises(ClientError) as exc:
        fresh.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="10.8.9.0/24")
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.create_subnet(VpcId=vpc_id)
    assert error_of(exc)[0] == "MissingParameter"


def test_create_subnet_unknown_zone(fresh, zones):
    vpc_id = fresh.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    with pytest.raises(ClientError) as exc:
        fresh.create_subnet(VpcId=vpc_id, CidrBlock="10.9.0.0/24", AvailabilityZone="mars-1a")
    assert error_of(exc) == (
        "InvalidParameterValue",
        "Value (mars-1a) for parameter availabilityZone is invalid. Subnets can currently only be "
        f"created in the following availability zones: {', '.join(zones)}.",
    )


def test_delete_subnet(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_id = fresh.create_subnet(VpcId=vpc_id, CidrBlock="10.20.0.0/24")["Subnet"]["SubnetId"]
    fresh.delete_subnet(SubnetId=subnet_id)
    with pytest.raises(ClientError) as exc:
        fresh.delete_subnet(SubnetId=subnet_id)
    assert error_of(exc) == ("InvalidSubnetID.NotFound", f"The subnet ID '{subnet_id}' does not exist")
    with pytest.raises(ClientError) as exc:
        fresh.delete_subnet(SubnetId="subnet-nope")
    assert error_of(exc)[0] == "InvalidSubnetID.Malformed"


def test_modify_subnet_map_public_ip(fresh):
    subnet_id = fresh.describe_subnets()["Subnets"][0]["SubnetId"]
    fresh.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": False})
    assert fresh.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["MapPublicIpOnLaunch"] is False
    fresh.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    assert fresh.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["MapPublicIpOnLaunch"] is True


def test_subnet_filters(fresh, zones):
    default_vpc = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    vpc_id = fresh.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    mine = fresh.create_subnet(VpcId=vpc_id, CidrBlock="10.21.0.0/24", AvailabilityZone=zones[0])["Subnet"]

    def ids(*filters):
        return {s["SubnetId"] for s in fresh.describe_subnets(Filters=list(filters))["Subnets"]}

    defaults = ids({"Name": "vpc-id", "Values": [default_vpc]})
    assert len(defaults) == len(zones)
    assert ids({"Name": "vpc-id", "Values": [vpc_id]}) == {mine["SubnetId"]}
    assert ids({"Name": "default-for-az", "Values": ["true"]}) == defaults
    assert ids({"Name": "defaultForAz", "Values": ["false"]}) == {mine["SubnetId"]}
    assert ids({"Name": "cidr-block", "Values": ["10.21.0.0/24"]}) == {mine["SubnetId"]}
    assert ids({"Name": "subnet-id", "Values": [mine["SubnetId"]]}) == {mine["SubnetId"]}
    in_zone = ids({"Name": "availability-zone", "Values": [zones[0]]})
    assert mine["SubnetId"] in in_zone and len(in_zone) == 2
    assert ids({"Name": "state", "Values": ["available"]}) == defaults | {mine["SubnetId"]}
    assert ids({"Name": "map-public-ip-on-launch", "Values": ["false"]}) == {mine["SubnetId"]}


def test_subnet_paginator_returns_each_once(fresh, zones):
    vpc_id = fresh.create_vpc(CidrBlock="10.22.0.0/16")["Vpc"]["VpcId"]
    for i in range(5):
        fresh.create_subnet(VpcId=vpc_id, CidrBlock=f"10.22.{i}.0/24")
    pages = list(fresh.get_paginator("describe_subnets").paginate(PaginationConfig={"PageSize": 5}))
    seen = [s["SubnetId"] for page in pages for s in page["Subnets"]]
    assert len(seen) == len(set(seen)) == 5 + len(zones)
    assert len(pages) == -(-len(seen) // 5)


def test_aws_cli_describe_vpcs_and_subnets(cloud):
    account = cloud.create_account(f"vpcs-cli-{next(_names)}")
    result = cloud.aws("ec2", "describe-vpcs", account=account)
    assert result.returncode == 0, result.stderr
    [vpc] = json.loads(result.stdout)["Vpcs"]
    assert vpc["IsDefault"] is True and vpc["CidrBlock"] == "172.31.0.0/16"
    result = cloud.aws(
        "ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc['VpcId']}", account=account
    )
    assert result.returncode == 0, result.stderr
    assert {s["VpcId"] for s in json.loads(result.stdout)["Subnets"]} == {vpc["VpcId"]}
    result = cloud.aws("ec2", "describe-vpcs", "--vpc-ids", "vpc-0123456789abcdef0", account=account)
    assert result.returncode != 0 and "InvalidVpcID.NotFound" in result.stderr
