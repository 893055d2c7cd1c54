"""Internet gateways through boto3: create, attach, detach, delete, describe, and their errors."""

from __future__ import annotations

import itertools
import re
import threading

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import error_of

IGW_ID = re.compile(r"^igw-[0-9a-f]{17}$")
_names = itertools.count()


@pytest.fixture
def fresh(cloud):
    return cloud.client(cloud.create_account(f"igw-{next(_names)}"))


def test_default_vpc_has_an_attached_gateway(fresh):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    [igw] = fresh.describe_internet_gateways()["InternetGateways"]
    assert IGW_ID.match(igw["InternetGatewayId"])
    assert igw["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    assert re.fullmatch(r"[0-9]{12}", igw["OwnerId"])


def test_create_attach_detach_delete(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    made = fresh.create_internet_gateway(
        TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": [{"Key": "Name", "Value": "gw"}]}]
    )["InternetGateway"]
    igw_id = made["InternetGatewayId"]
    assert IGW_ID.match(igw_id)
    assert made["Attachments"] == []
    assert made["Tags"] == [{"Key": "Name", "Value": "gw"}]
    fresh.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    [seen] = fresh.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    assert seen["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    with pytest.raises(ClientError) as exc:
        fresh.delete_internet_gateway(InternetGatewayId=igw_id)
    assert error_of(exc) == (
        "DependencyViolation",
        f"The internetGateway '{igw_id}' has dependencies and cannot be deleted.",
    )
    with pytest.raises(ClientError) as exc:
        fresh.delete_vpc(VpcId=vpc_id)
    assert error_of(exc)[0] == "DependencyViolation"
    fresh.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    assert (
        fresh.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]["Attachments"]
        == []
    )
    fresh.delete_internet_gateway(InternetGatewayId=igw_id)
    with pytest.raises(ClientError) as exc:
        fresh.describe_internet_gateways(InternetGatewayIds=[igw_id])
    assert error_of(exc) == (
        "InvalidInternetGatewayID.NotFound",
        f"The internetGateway ID '{igw_id}' does not exist",
    )
    fresh.delete_vpc(VpcId=vpc_id)


def test_attach_errors(fresh):
    vpc_a = fresh.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    vpc_b = fresh.create_vpc(CidrBlock="10.22.0.0/16")["Vpc"]["VpcId"]
    first = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    second = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    fresh.attach_internet_gateway(InternetGatewayId=first, VpcId=vpc_a)
    with pytest.raises(ClientError) as exc:
        fresh.attach_internet_gateway(InternetGatewayId=first, VpcId=vpc_b)
    assert error_of(exc) == (
        "Resource.AlreadyAssociated",
        f"resource {first} is already attached to network {vpc_a}",
    )
    with pytest.raises(ClientError) as exc:
        fresh.attach_internet_gateway(InternetGatewayId=second, VpcId=vpc_a)
    assert error_of(exc) == (
        "InvalidParameterValue",
        f"Network {vpc_a} already has an internet gateway attached",
    )
    with pytest.raises(ClientError) as exc:
        fresh.detach_internet_gateway(InternetGatewayId=second, VpcId=vpc_a)
    assert error_of(exc) == ("Gateway.NotAttached", f"resource {second} is not attached to network {vpc_a}")
    with pytest.raises(ClientError) as exc:
        fresh.detach_internet_gateway(InternetGatewayId=first, VpcId=vpc_b)
    assert error_of(exc)[0] == "Gateway.NotAttached"
    with pytest.raises(ClientError) as exc:
        fresh.attach_internet_gateway(InternetGatewayId="igw-nothex", VpcId=vpc_a)
    assert error_of(exc)[0] == "InvalidInternetGatewayID.Malformed"
    with pytest.raises(ClientError) as exc:
        fresh.attach_internet_gateway(InternetGatewayId="igw-0123456789abcdef0", VpcId=vpc_a)
    assert error_of(exc)[0] == "InvalidInternetGatewayID.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.attach_internet_gateway(InternetGatewayId=second, VpcId="vpc-0123456789abcdef0")
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"


def test_dry_run(fresh):
    with pytest.raises(ClientError) as exc:
        fresh.create_internet_gateway(DryRun=True)
    assert error_of(exc)[0] == "DryRunOperation"
    assert len(fresh.describe_internet_gateways()["InternetGateways"]) == 1


def test_filters(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.23.0.0/16")["Vpc"]["VpcId"]
    attached = fresh.create_internet_gateway(
        TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": [{"Key": "team", "Value": "blue"}]}]
    )["InternetGateway"]["InternetGatewayId"]
    loose = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    fresh.attach_internet_gateway(InternetGatewayId=attached, VpcId=vpc_id)

    def ids(*filters):
        found = fresh.describe_internet_gateways(Filters=list(filters))["InternetGateways"]
        return {g["InternetGatewayId"] for g in found}

    assert ids({"Name": "attachment.vpc-id", "Values": [vpc_id]}) == {attached}
    assert attached in ids({"Name": "attachment.state", "Values": ["available"]})
    assert loose not in ids({"Name": "attachment.state", "Values": ["available"]})
    assert ids({"Name": "internet-gateway-id", "Values": [loose]}) == {loose}
    assert ids({"Name": "tag:team", "Values": ["blue"]}) == {attached}
    assert ids({"Name": "tag-key", "Values": ["team"]}) == {attached}
    owner = fresh.describe_internet_gateways()["InternetGateways"][0]["OwnerId"]
    assert loose in ids({"Name": "owner-id", "Values": [owner]})
    with pytest.raises(ClientError) as exc:
        fresh.describe_internet_gateways(Filters=[{"Name": "bogus", "Values": ["x"]}])
    assert error_of(exc) == ("InvalidParameterValue", "The filter 'bogus' is invalid")


def test_tags_via_create_tags_and_describe_tags(fresh):
    igw_id = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    fresh.create_tags(Resources=[igw_id], Tags=[{"Key": "k", "Value": "v"}])
    tags = fresh.describe_tags(Filters=[{"Name": "resource-id", "Values": [igw_id]}])["Tags"]
    assert tags == [{"Key": "k", "Value": "v", "ResourceId": igw_id, "ResourceType": "internet-gateway"}]


def test_other_accounts_gateways_are_not_found(cloud, fresh, ec2):
    [theirs] = ec2.describe_internet_gateways(
        Filters=[
            {
                "Name": "attachment.vpc-id",
                "Values": [
                    ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0][
                        "VpcId"
                    ]
                ],
            }
        ]
    )["InternetGateways"]
    with pytest.raises(ClientError) as exc:
        fresh.describe_internet_gateways(InternetGatewayIds=[theirs["InternetGatewayId"]])
    assert error_of(exc)[0] == "InvalidInternetGatewayID.NotFound"


def test_concurrent_attaches_to_one_vpc_let_exactly_one_win(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.24.0.0/16")["Vpc"]["VpcId"]
    gateways = [fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"] for _ in range(4)]
    barrier = threading.Barrier(len(gateways))
    outcomes: list[str] = []

    def attach(igw_id: str) -> None:
        barrier.wait()
        try:
            fresh.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
            outcomes.append("attached")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=attach, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["InvalidParameterValue"] * 3 + ["attached"]
    attached = fresh.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    assert len(attached["InternetGateways"]) == 1
