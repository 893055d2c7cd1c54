"""NAT gateways through boto3: create, describe (filters, waiters), delete, routes to them, and their errors."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from botocore.exceptions import ClientError

from ocs.scheduler.periodic import Periodic
from ocs.scheduler.service import SchedulerEndpoint
from tests.framework.errors import error_of

NAT_ID = re.compile(r"^nat-[0-9a-f]{17}$")
FAST = {"Delay": 0.2, "MaxAttempts": 20}
_names = itertools.count()


@pytest.fixture
def fresh(cloud):
    return cloud.client(cloud.create_account(f"nat-{next(_names)}"))


@pytest.fixture
def allocation(fresh) -> str:
    """One of the account's elastic IPs (a public NAT gateway needs one)."""
    return fresh.allocate_address(Domain="vpc")["AllocationId"]


@pytest.fixture
def net(fresh):
    """A VPC with a public and a private subnet and an attached internet gateway."""
    vpc = fresh.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    public = fresh.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24")["Subnet"]["SubnetId"]
    private = fresh.create_subnet(VpcId=vpc, CidrBlock="10.50.2.0/24")["Subnet"]["SubnetId"]
    igw = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    fresh.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    return {"vpc": vpc, "public": public, "private": private, "igw": igw}


def test_create_public_nat_gateway(fresh, net, allocation):
    request = {
        "SubnetId": net["public"],
        "AllocationId": allocation,
        "ClientToken": "nat-token",
        "TagSpecifications": [{"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": "egress"}]}],
    }
    answer = fresh.create_nat_gateway(**request)
    nat = answer["NatGateway"]
    assert answer["ClientToken"] == "nat-token"
    assert NAT_ID.match(nat["NatGatewayId"])
    assert nat["State"] == "pending"
    assert nat["SubnetId"] == net["public"] and nat["VpcId"] == net["vpc"]
    assert nat["ConnectivityType"] == "public"
    assert nat["CreateTime"]
    assert nat["Tags"] == [{"Key": "Name", "Value": "egress"}]
    [address] = nat["NatGatewayAddresses"]
    assert address["AllocationId"] == allocation
    [eip] = fresh.describe_addresses(AllocationIds=[allocation])["Addresses"]
    assert address["PublicIp"] == eip["PublicIp"]
    assert address["NetworkInterfaceId"].startswith("eni-") and address["IsPrimary"] is True
    again = fresh.create_nat_gateway(**request)
    assert again["NatGateway"]["NatGatewayId"] == nat["NatGatewayId"]
    fresh.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig=FAST)
    [seen] = fresh.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"]
    assert seen["State"] == "available" and "DeleteTime" not in seen


def test_private_nat_gateway_needs_no_gateway_nor_address(fresh):
    vpc = fresh.create_vpc(CidrBlock="10.51.0.0/16")["Vpc"]["VpcId"]
    subnet = fresh.create_subnet(VpcId=vpc, CidrBlock="10.51.1.0/24")["Subnet"]["SubnetId"]
    nat = fresh.create_nat_gateway(SubnetId=subnet, ConnectivityType="private")["NatGateway"]
    assert nat["ConnectivityType"] == "private"
    assert "AllocationId" not in nat["NatGatewayAddresses"][0]
    [seen] = fresh.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"]
    assert seen["State"] == "available"


def test_public_nat_gateway_fails_without_an_internet_gateway(fresh, allocation):
    vpc = fresh.create_vpc(CidrBlock="10.52.0.0/16")["Vpc"]["VpcId"]
    subnet = fresh.create_subnet(VpcId=vpc, CidrBlock="10.52.1.0/24")["Subnet"]["SubnetId"]
    nat = fresh.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)["NatGateway"]
    assert nat["State"] == "failed"
    assert nat["FailureCode"] == "Gateway.NotAttached"
    assert nat["FailureMessage"] == f"Network {vpc} has no Internet gateway attached"
    with pytest.raises(Exception, match="Waiter encountered a terminal failure state"):
        fresh.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig=FAST)
    fresh.delete_subnet(SubnetId=subnet)  # a failed gateway holds on to nothing


def test_one_allocation_per_live_gateway(fresh, net, allocation):
    fresh.create_nat_gateway(SubnetId=net["public"], AllocationId=allocation)
    second = fresh.create_nat_gateway(SubnetId=net["private"], AllocationId=allocation)["NatGateway"]
    assert second["State"] == "failed"
    assert second["FailureCode"] == "Resource.AlreadyAssociated"


def test_delete_keeps_it_visible_as_deleted(fresh, net, allocation):
    nat_id = fresh.create_nat_gateway(SubnetId=net["public"], AllocationId=allocation)["NatGateway"][
        "NatGatewayId"
    ]
    with pytest.raises(ClientError) as exc:
        fresh.delete_subnet(SubnetId=net["public"])
    assert error_of(exc)[0] == "DependencyViolation"
    assert fresh.delete_nat_gateway(NatGatewayId=nat_id)["NatGatewayId"] == nat_id
    fresh.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat_id], WaiterConfig=FAST)
    [seen] = fresh.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    assert seen["State"] == "deleted" and seen["DeleteTime"] >= seen["CreateTime"]
    with pytest.raises(ClientError) as exc:
        fresh.delete_nat_gateway(NatGatewayId=nat_id)
    assert error_of(exc) == ("NatGatewayNotFound", f"The Nat Gateway {nat_id} was not found")
    fresh.delete_subnet(SubnetId=net["public"])
    # Its allocation ID is free again.
    other = fresh.create_nat_gateway(SubnetId=net["private"], AllocationId=allocation)["NatGateway"]
    assert other["State"] == "pending"


def test_errors(fresh, net, allocation):
    def code(**kwargs):
        with pytest.raises(ClientError) as exc:
            fresh.create_nat_gateway(**kwargs)
        return error_of(exc)

    assert code(SubnetId=net["public"])[0] == "MissingParameter"
    assert code(SubnetId=net["public"], AllocationId="eipalloc-xyz")[0] == "InvalidAllocationID.Malformed"
    unknown = "eipalloc-0123456789abcdef0"
    assert code(SubnetId=net["public"], AllocationId=unknown)[0] == "InvalidAllocationID.NotFound"
    assert code(SubnetId=net["public"], ConnectivityType="private", AllocationId=allocation)[0] == (
        "InvalidParameterCombination"
    )
    assert code(SubnetId="subnet-0123456789abcdef0", AllocationId=allocation)[0] == "InvalidSubnetID.NotFound"
    assert code(AllocationId=allocation)[0] == "MissingParameter"
    assert code(SubnetId=net["public"], AllocationId=allocation, DryRun=True)[0] == "DryRunOperation"
    assert fresh.describe_nat_gateways()["NatGateways"] == []
    with pytest.raises(ClientError) as exc:
        fresh.describe_nat_gateways(NatGatewayIds=["nat-0123456789abcdef0"])
    assert error_of(exc) == ("NatGatewayNotFound", "The Nat Gateway nat-0123456789abcdef0 was not found")
    with pytest.raises(ClientError) as exc:
        fresh.delete_nat_gateway(NatGatewayId="nat-0123456789abcdef0")
    assert error_of(exc)[0] == "NatGatewayNotFound"
    with pytest.raises(ClientError) as exc:
        fresh.delete_nat_gateway(NatGatewayId="nat-oops")
    assert error_of(exc)[0] == "NatGatewayMalformed"


def test_filters(fresh, net, allocation):
    nat = fresh.create_nat_gateway(
        SubnetId=net["public"],
        AllocationId=allocation,
        TagSpecifications=[{"ResourceType": "natgateway", "Tags": [{"Key": "tier", "Value": "edge"}]}],
    )["NatGateway"]["NatGatewayId"]
    gone = fresh.create_nat_gateway(SubnetId=net["private"], ConnectivityType="private")["NatGateway"][
        "NatGatewayId"
    ]
    fresh.delete_nat_gateway(NatGatewayId=gone)
    fresh.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat], WaiterConfig=FAST)

    def ids(*filters):
        return {n["NatGatewayId"] for n in fresh.describe_nat_gateways(Filter=list(filters))["NatGateways"]}

    assert ids({"Name": "state", "Values": ["available"]}) == {nat}
    assert ids({"Name": "state", "Values": ["deleted"]}) == {gone}
    assert ids({"Name": "subnet-id", "Values": [net["private"]]}) == {gone}
    assert ids({"Name": "vpc-id", "Values": [net["vpc"]]}) == {nat, gone}
    assert ids({"Name": "nat-gateway-id", "Values": [nat]}) == {nat}
    assert ids({"Name": "tag:tier", "Values": ["edge"]}) == {nat}
    assert ids({"Name": "tag-key", "Values": ["tier"]}) == {nat}
    with pytest.raises(ClientError) as exc:
        fresh.describe_nat_gateways(Filter=[{"Name": "owner-id", "Values": ["x"]}])
    assert error_of(exc)[0] == "InvalidParameterValue"


def test_routes_to_a_nat_gateway(fresh, net, allocation):
    nat = fresh.create_nat_gateway(SubnetId=net["public"], AllocationId=allocation)["NatGateway"][
        "NatGatewayId"
    ]
    table = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    fresh.associate_route_table(RouteTableId=table, SubnetId=net["private"])
    fresh.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    # EC2 also takes a NAT gateway given as GatewayId.
    fresh.create_route(RouteTableId=table, DestinationCidrBlock="1.1.1.0/24", GatewayId=nat)

    def described():
        [t] = fresh.describe_route_tables(RouteTableIds=[table])["RouteTables"]
        return {r["DestinationCidrBlock"]: r for r in t["Routes"]}

    routes = described()
    assert routes["0.0.0.0/0"] == {
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": nat,
        "Origin": "CreateRoute",
        "State": "active",
    }
    assert routes["1.1.1.0/24"]["NatGatewayId"] == nat
    found = fresh.describe_route_tables(Filters=[{"Name": "route.nat-gateway-id", "Values": [nat]}])[
        "RouteTables"
    ]
    assert [t["RouteTableId"] for t in found] == [table]
    other_vpc = fresh.create_vpc(CidrBlock="10.53.0.0/16")["Vpc"]["VpcId"]
    other_table = fresh.create_route_table(VpcId=other_vpc)["RouteTable"]["RouteTableId"]
    with pytest.raises(ClientError) as exc:
        fresh.create_route(RouteTableId=other_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    assert error_of(exc)[0] == "InvalidParameterValue"
    fresh.delete_nat_gateway(NatGatewayId=nat)
    assert described()["0.0.0.0/0"]["State"] == "blackhole"
    with pytest.raises(ClientError) as exc:
        fresh.create_route(RouteTableId=table, DestinationCidrBlock="2.2.2.0/24", GatewayId=nat)
    assert error_of(exc) == ("InvalidGatewayID.NotFound", f"The gateway ID '{nat}' does not exist")


def test_deleted_gateways_are_purged_after_an_hour(cloud, fresh, net, allocation):
    nat_id = fresh.create_nat_gateway(SubnetId=net["public"], AllocationId=allocation)["NatGateway"][
        "NatGatewayId"
    ]
    fresh.create_tags(Resources=[nat_id], Tags=[{"Key": "k", "Value": "v"}])
    fresh.delete_nat_gateway(NatGatewayId=nat_id)
    fresh.get_waiter("nat_gateway_deleted").wait(
        NatGatewayIds=[nat_id], WaiterConfig=FAST
    )  # its host tore it down
    ep = cloud.aio.scheduler.endpoint
    Periodic(ep).purge()  # not an hour yet: still there
    assert fresh.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"] == "deleted"
    later = SchedulerEndpoint(
        ep.sessions, ep.compute, ep.settings, now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61)
    )
    Periodic(later).purge()
    with pytest.raises(ClientError) as exc:
        fresh.describe_nat_gateways(NatGatewayIds=[nat_id])
    assert error_of(exc)[0] == "NatGatewayNotFound"
    assert fresh.describe_tags(Filters=[{"Name": "resource-id", "Values": [nat_id]}])["Tags"] == []


def test_states_and_addresses_follow_the_host_that_carries_it(fresh, net, allocation):
    """pending until a host's network service built it, available, deleting until it tore
    it down, deleted; its interface (requester-managed, an address of its subnet) holds
    the elastic IP, and both go with it."""
    nat = fresh.create_nat_gateway(SubnetId=net["public"], AllocationId=allocation)["NatGateway"]
    nat_id = nat["NatGatewayId"]
    assert nat["State"] == "pending"
    fresh.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat_id], WaiterConfig=FAST)
    [seen] = fresh.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    [address] = seen["NatGatewayAddresses"]
    [eip] = fresh.describe_addresses(AllocationIds=[allocation])["Addresses"]
    assert address["PublicIp"] == eip["PublicIp"] and address["AllocationId"] == allocation
    assert address["PrivateIp"].startswith("10.50.1.") and address["Status"] == "succeeded"
    assert (
        eip["NetworkInterfaceId"]
        == address["NetworkInterfaceId"]
        == nat["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    )
    assert (
        eip["PrivateIpAddress"] == address["PrivateIp"] and eip["AssociationId"] == address["AssociationId"]
    )
    [eni] = fresh.describe_network_interfaces(NetworkInterfaceIds=[address["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert (eni["InterfaceType"], eni["RequesterManaged"], eni["Status"]) == ("nat_gateway", True, "in-use")
    assert eni["Description"] == f"Interface for NAT Gateway {nat_id}" and eni["SubnetId"] == net["public"]
    for call, kwargs in (
        (fresh.delete_network_interface, {}),
        (fresh.release_address, None),
    ):
        with pytest.raises(ClientError) as exc:
            if kwargs is None:
                call(AllocationId=allocation)
            else:
                call(NetworkInterfaceId=eni["NetworkInterfaceId"])
        assert error_of(exc)[0] in ("InvalidNetworkInterface.InUse", "InvalidIPAddress.InUse")
    # Its address is EC2's to manage while it lives.
    with pytest.raises(ClientError) as exc:
        fresh.disassociate_address(AssociationId=address["AssociationId"])
    assert error_of(exc)[0] == "AuthFailure"
    with pytest.raises(ClientError) as exc:
        other = fresh.allocate_address(Domain="vpc")["AllocationId"]
        fresh.associate_address(AllocationId=other, NetworkInterfaceId=address["NetworkInterfaceId"])
    assert error_of(exc)[0] == "AuthFailure"
    fresh.release_address(AllocationId=other)
    # Another gateway cannot take an address associated already.
    second = fresh.create_nat_gateway(SubnetId=net["private"], AllocationId=allocation)["NatGateway"]
    assert second["FailureCode"] == "Resource.AlreadyAssociated"

    fresh.delete_nat_gateway(NatGatewayId=nat_id)
    [going] = fresh.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    assert going["State"] in ("deleting", "deleted")
    fresh.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat_id], WaiterConfig=FAST)
    assert (
        fresh.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [net["public"]]}])[
            "NetworkInterfaces"
        ]
        == []
    )
    [eip] = fresh.describe_addresses(AllocationIds=[allocation])["Addresses"]
    assert "AssociationId" not in eip
    fresh.release_address(AllocationId=allocation)
