"""Route tables, routes and associations through boto3, with EC2's errors; paginators of the new Describes."""

from __future__ import annotations

import itertools
import re

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import error_of

RTB_ID = re.compile(r"^rtb-[0-9a-f]{17}$")
ASSOC_ID = re.compile(r"^rtbassoc-[0-9a-f]{17}$")
_names = itertools.count()


@pytest.fixture
def fresh(cloud):
    return cloud.client(cloud.create_account(f"rtb-{next(_names)}"))


@pytest.fixture
def net(fresh):
    """A VPC 10.30.0.0/16 with two subnets and an attached internet gateway."""
    vpc = fresh.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        fresh.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)
    ]
    igw = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    fresh.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    return {"vpc": vpc, "subnets": subnets, "igw": igw}


def tables_of(client, vpc_id):
    return client.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]


def main_table(client, vpc_id):
    found = client.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"]
    assert len(found) == 1
    return found[0]


def routes(client, table_id):
    [table] = client.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
    return {r["DestinationCidrBlock"]: r for r in table["Routes"]}


# --- main tables ----------------------------------------------------------------------------


def test_default_vpc_main_table_routes_to_its_gateway(fresh):
    vpc_id = fresh.describe_vpcs()["Vpcs"][0]["VpcId"]
    igw_id = fresh.describe_internet_gateways()["InternetGateways"][0]["InternetGatewayId"]
    [table] = fresh.describe_route_tables()["RouteTables"]
    assert RTB_ID.match(table["RouteTableId"])
    assert table["VpcId"] == vpc_id
    assert re.fullmatch(r"[0-9]{12}", table["OwnerId"])
    [assoc] = table["Associations"]
    assert assoc["Main"] is True and ASSOC_ID.match(assoc["RouteTableAssociationId"])
    assert assoc["RouteTableId"] == table["RouteTableId"] and "SubnetId" not in assoc
    assert assoc["AssociationState"] == {"State": "associated"}
    assert table["Routes"] == [
        {
            "DestinationCidrBlock": "172.31.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        },
        {
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": igw_id,
            "Origin": "CreateRoute",
            "State": "active",
        },
    ]


def test_new_vpc_gets_a_main_table_with_the_local_route(fresh):
    vpc_id = fresh.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]
    table = main_table(fresh, vpc_id)
    assert table["Routes"] == [
        {
            "DestinationCidrBlock": "10.31.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        }
    ]
    with pytest.raises(ClientError) as exc:
        fresh.delete_route_table(RouteTableId=table["RouteTableId"])
    assert error_of(exc) == (
        "DependencyViolation",
        f"The routeTable '{table['RouteTableId']}' has dependencies and cannot be deleted.",
    )
    fresh.delete_vpc(VpcId=vpc_id)  # the main table goes with it
    with pytest.raises(ClientError) as exc:
        fresh.describe_route_tables(RouteTableIds=[table["RouteTableId"]])
    assert error_of(exc) == (
        "InvalidRouteTableID.NotFound",
        f"The routeTable ID '{table['RouteTableId']}' does not exist",
    )


# --- route tables and associations ----------------------------------------------------------


def test_create_route_table(fresh, net):
    made = fresh.create_route_table(
        VpcId=net["vpc"],
        TagSpecifications=[{"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": "pub"}]}],
    )["RouteTable"]
    assert RTB_ID.match(made["RouteTableId"])
    assert made["VpcId"] == net["vpc"]
    assert made["Associations"] == []
    assert made["Tags"] == [{"Key": "Name", "Value": "pub"}]
    assert made["Routes"] == [
        {
            "DestinationCidrBlock": "10.30.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        }
    ]
    with pytest.raises(ClientError) as exc:
        fresh.create_route_table(VpcId="vpc-0123456789abcdef0")
    assert error_of(exc)[0] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.create_route_table(VpcId=net["vpc"], DryRun=True)
    assert error_of(exc)[0] == "DryRunOperation"
    assert len(tables_of(fresh, net["vpc"])) == 2


def test_client_token_makes_one_table(fresh, net):
    first = fresh.create_route_table(VpcId=net["vpc"], ClientToken="rtb-token")
    again = fresh.create_route_table(VpcId=net["vpc"], ClientToken="rtb-token")
    assert first["RouteTable"]["RouteTableId"] == again["RouteTable"]["RouteTableId"]
    assert first["ClientToken"] == "rtb-token"
    assert len(tables_of(fresh, net["vpc"])) == 2


def test_associate_disassociate_and_delete(fresh, net):
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    subnet = net["subnets"][0]
    answer = fresh.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
    assoc_id = answer["AssociationId"]
    assert ASSOC_ID.match(assoc_id) and answer["AssociationState"] == {"State": "associated"}
    [table] = fresh.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "RouteTables"
    ]
    assert table["RouteTableId"] == table_id
    assert table["Associations"] == [
        {
            "Main": False,
            "RouteTableAssociationId": assoc_id,
            "RouteTableId": table_id,
            "SubnetId": subnet,
            "AssociationState": {"State": "associated"},
        }
    ]
    by_assoc = fresh.describe_route_tables(
        Filters=[{"Name": "association.route-table-association-id", "Values": [assoc_id]}]
    )["RouteTables"]
    assert [t["RouteTableId"] for t in by_assoc] == [table_id]
    with pytest.raises(ClientError) as exc:
        fresh.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
    assert error_of(exc)[0] == "Resource.AlreadyAssociated"
    with pytest.raises(ClientError) as exc:
        fresh.delete_route_table(RouteTableId=table_id)
    assert error_of(exc)[0] == "DependencyViolation"
    with pytest.raises(ClientError) as exc:
        fresh.delete_vpc(VpcId=net["vpc"])
    assert error_of(exc)[0] == "DependencyViolation"
    fresh.disassociate_route_table(AssociationId=assoc_id)
    with pytest.raises(ClientError) as exc:
        fresh.disassociate_route_table(AssociationId=assoc_id)
    assert error_of(exc) == (
        "InvalidAssociationID.NotFound",
        f"The association ID '{assoc_id}' does not exist",
    )
    with pytest.raises(ClientError) as exc:
        fresh.disassociate_route_table(AssociationId="rtbassoc-xyz")
    assert error_of(exc)[0] == "InvalidAssociationID.Malformed"
    fresh.delete_route_table(RouteTableId=table_id)
    assert len(tables_of(fresh, net["vpc"])) == 1


def test_association_errors(fresh, net):
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    other_vpc = fresh.create_vpc(CidrBlock="10.32.0.0/16")["Vpc"]["VpcId"]
    other_subnet = fresh.create_subnet(VpcId=other_vpc, CidrBlock="10.32.1.0/24")["Subnet"]["SubnetId"]
    with pytest.raises(ClientError) as exc:
        fresh.associate_route_table(RouteTableId=table_id, SubnetId=other_subnet)
    assert error_of(exc) == (
        "InvalidParameterValue",
        f"Route table {table_id} and subnet {other_subnet} belong to different networks",
    )
    with pytest.raises(ClientError) as exc:
        fresh.associate_route_table(RouteTableId=table_id, SubnetId="subnet-0123456789abcdef0")
    assert error_of(exc)[0] == "InvalidSubnetID.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.associate_route_table(RouteTableId="rtb-0123456789abcdef0", SubnetId=net["subnets"][0])
    assert error_of(exc)[0] == "InvalidRouteTableID.NotFound"
    main_assoc = main_table(fresh, net["vpc"])["Associations"][0]["RouteTableAssociationId"]
    with pytest.raises(ClientError) as exc:
        fresh.disassociate_route_table(AssociationId=main_assoc)
    assert error_of(exc)[0] == "InvalidParameterValue"
    other_main = main_table(fresh, other_vpc)["RouteTableId"]
    with pytest.raises(ClientError) as exc:
        fresh.replace_route_table_association(AssociationId=main_assoc, RouteTableId=other_main)
    assert error_of(exc)[0] == "InvalidParameterValue"


def test_replace_subnet_and_main_associations(fresh, net):
    old_main = main_table(fresh, net["vpc"])
    first = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    second = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    subnet = net["subnets"][1]
    assoc = fresh.associate_route_table(RouteTableId=first, SubnetId=subnet)["AssociationId"]
    moved = fresh.replace_route_table_association(AssociationId=assoc, RouteTableId=second)
    assert ASSOC_ID.match(moved["NewAssociationId"]) and moved["NewAssociationId"] != assoc
    assert moved["AssociationState"] == {"State": "associated"}
    [table] = fresh.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "RouteTables"
    ]
    assert table["RouteTableId"] == second
    fresh.delete_route_table(RouteTableId=first)
    # The main association moves too; the old main table becomes deletable.
    new_main = fresh.replace_route_table_association(
        AssociationId=old_main["Associations"][0]["RouteTableAssociationId"], RouteTableId=second
    )["NewAssociationId"]
    table = main_table(fresh, net["vpc"])
    assert table["RouteTableId"] == second
    assert {(a["RouteTableAssociationId"], a["Main"]) for a in table["Associations"]} == {
        (new_main, True),
        (moved["NewAssociationId"], False),
    }
    fresh.delete_route_table(RouteTableId=old_main["RouteTableId"])


def test_delete_subnet_drops_its_association(fresh, net):
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    subnet = fresh.create_subnet(VpcId=net["vpc"], CidrBlock="10.30.9.0/24")["Subnet"]["SubnetId"]
    fresh.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
    fresh.delete_subnet(SubnetId=subnet)
    [table] = fresh.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
    assert table["Associations"] == []
    fresh.delete_route_table(RouteTableId=table_id)


def test_delete_vpc_after_its_tables_and_gateway_are_gone(fresh, net):
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    for subnet in net["subnets"]:
        fresh.delete_subnet(SubnetId=subnet)
    fresh.detach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    with pytest.raises(ClientError) as exc:
        fresh.delete_vpc(VpcId=net["vpc"])
    assert error_of(exc) == (
        "DependencyViolation",
        f"The vpc '{net['vpc']}' has dependencies and cannot be deleted.",
    )
    fresh.delete_route_table(RouteTableId=table_id)
    fresh.delete_vpc(VpcId=net["vpc"])
    assert tables_of(fresh, net["vpc"]) == []


# --- routes ---------------------------------------------------------------------------------


def test_routes_to_an_internet_gateway(fresh, net):
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    assert fresh.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])[
        "Return"
    ]
    assert routes(fresh, table_id)["0.0.0.0/0"] == {
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": net["igw"],
        "Origin": "CreateRoute",
        "State": "active",
    }
    with pytest.raises(ClientError) as exc:
        fresh.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    assert error_of(exc) == ("RouteAlreadyExists", "The route identified by 0.0.0.0/0 already exists.")
    fresh.create_route(RouteTableId=table_id, DestinationCidrBlock="192.168.0.0/16", GatewayId=net["igw"])

    def having(name, value):
        found = fresh.describe_route_tables(Filters=[{"Name": name, "Values": [value]}])["RouteTables"]
        return {t["RouteTableId"] for t in found}

    assert having("route.gateway-id", net["igw"]) == {table_id}
    assert having("route.destination-cidr-block", "192.168.0.0/16") == {table_id}
    assert table_id in having("route.state", "active")
    assert table_id in having("route.origin", "CreateRoute")
    # A detached gateway leaves its routes in place, as blackholes.
    fresh.detach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    assert routes(fresh, table_id)["0.0.0.0/0"]["State"] == "blackhole"
    assert having("route.state", "blackhole") == {table_id}
    fresh.attach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    fresh.delete_route(RouteTableId=table_id, DestinationCidrBlock="192.168.0.0/16")
    assert set(routes(fresh, table_id)) == {"10.30.0.0/16", "0.0.0.0/0"}


def test_route_errors(fresh, net):
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    loose = fresh.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]

    def code(call, **kwargs):
        with pytest.raises(ClientError) as exc:
            call(RouteTableId=table_id, **kwargs)
        return error_of(exc)

    assert code(fresh.create_route, DestinationCidrBlock="0.0.0.0/0", GatewayId=loose) == (
        "InvalidParameterValue",
        f"route table {table_id} and network gateway {loose} belong to different networks",
    )
    assert code(fresh.create_route, DestinationCidrBlock="10.30.0.0/16", GatewayId=net["igw"]) == (
        "RouteAlreadyExists",
        "The route identified by 10.30.0.0/16 already exists.",
    )
    assert code(fresh.create_route, DestinationCidrBlock="10.30.5.0/24", GatewayId=net["igw"])[0] == (
        "InvalidParameterValue"
    )
    assert code(fresh.create_route, DestinationCidrBlock="banana", GatewayId=net["igw"]) == (
        "InvalidParameterValue",
        "Value (banana) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.",
    )
    assert code(fresh.create_route, DestinationCidrBlock="0.0.0.0/0")[0] == "MissingParameter"
    assert (
        code(
            fresh.create_route,
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=net["igw"],
            NatGatewayId="nat-0123456789abcdef0",
        )[0]
        == "InvalidParameterCombination"
    )
    assert code(fresh.create_route, DestinationCidrBlock="0.0.0.0/0", GatewayId="igw-0123456789abcdef0")[
        0
    ] == ("InvalidInternetGatewayID.NotFound")
    assert code(fresh.create_route, DestinationCidrBlock="0.0.0.0/0", GatewayId="vgw-0123456789abcdef0")[
        0
    ] == ("InvalidGatewayID.NotFound")
    assert code(
        fresh.create_route, DestinationCidrBlock="0.0.0.0/0", NatGatewayId="nat-0123456789abcdef0"
    ) == (
        "InvalidNatGatewayID.NotFound",
        "The natGateway ID 'nat-0123456789abcdef0' does not exist",
    )
    assert (
        code(
            fresh.create_route, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId="eni-0123456789abcdef0"
        )[0]
        == "InvalidNetworkInterfaceID.NotFound"
    )
    assert (
        code(
            fresh.create_route,
            DestinationCidrBlock="0.0.0.0/0",
            VpcPeeringConnectionId="pcx-0123456789abcdef0",
        )[0]
        == "Unsupported"
    )
    assert code(fresh.delete_route, DestinationCidrBlock="8.8.8.0/24") == (
        "InvalidRoute.NotFound",
        f"no route with destination-cidr-block 8.8.8.0/24 in route table {table_id}",
    )
    assert code(fresh.delete_route, DestinationCidrBlock="10.30.0.0/16") == (
        "InvalidParameterValue",
        f"cannot remove local route 10.30.0.0/16 in route table {table_id}",
    )
    assert code(fresh.replace_route, DestinationCidrBlock="8.8.8.0/24", GatewayId=net["igw"]) == (
        "InvalidParameterValue",
        "There is no route defined for '8.8.8.0/24' in the route table. Use CreateRoute instead.",
    )
    assert code(fresh.replace_route, DestinationCidrBlock="10.30.0.0/16", GatewayId=net["igw"])[0] == (
        "InvalidRoute.InvalidState"
    )
    with pytest.raises(ClientError) as exc:
        fresh.create_route(
            RouteTableId="rtb-0123456789abcdef0", DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"]
        )
    assert error_of(exc)[0] == "InvalidRouteTableID.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.create_route(RouteTableId="rtb-x", DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    assert error_of(exc)[0] == "InvalidRouteTableID.Malformed"
    with pytest.raises(ClientError) as exc:
        fresh.create_route(
            RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"], DryRun=True
        )
    assert error_of(exc)[0] == "DryRunOperation"
    assert set(routes(fresh, table_id)) == {"10.30.0.0/16"}


def test_routes_to_an_instance_and_its_interface(cloud, ec2, fresh, net):
    [demo] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    image = fresh.register_image(Name="rtb-image", ImageLocation=demo["ImageLocation"])["ImageId"]
    [instance] = fresh.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t2.micro", SubnetId=net["subnets"][0]
    )["Instances"]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    table_id = fresh.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    fresh.create_route(
        RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", InstanceId=instance["InstanceId"]
    )
    by_instance = routes(fresh, table_id)["0.0.0.0/0"]
    assert by_instance["InstanceId"] == instance["InstanceId"]
    assert by_instance["NetworkInterfaceId"] == eni
    assert by_instance["InstanceOwnerId"] == instance["NetworkInterfaces"][0]["OwnerId"]
    # A block inside the VPC's may go to an interface (middlebox routing).
    fresh.create_route(RouteTableId=table_id, DestinationCidrBlock="10.30.2.0/24", NetworkInterfaceId=eni)
    by_eni = routes(fresh, table_id)["10.30.2.0/24"]
    assert by_eni["NetworkInterfaceId"] == eni and "InstanceId" not in by_eni
    found = fresh.describe_route_tables(
        Filters=[{"Name": "route.instance-id", "Values": [instance["InstanceId"]]}]
    )
    assert [t["RouteTableId"] for t in found["RouteTables"]] == [table_id]
    fresh.replace_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    replaced = routes(fresh, table_id)["0.0.0.0/0"]
    assert (
        replaced["GatewayId"] == net["igw"] and "InstanceId" not in replaced and replaced["State"] == "active"
    )
    fresh.terminate_instances(InstanceIds=[instance["InstanceId"]])
    fresh.get_waiter("instance_terminated").wait(
        InstanceIds=[instance["InstanceId"]], WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    assert routes(fresh, table_id)["10.30.2.0/24"]["State"] == "blackhole"


def test_other_accounts_tables_are_not_found(fresh, ec2):
    theirs = ec2.describe_route_tables()["RouteTables"][0]["RouteTableId"]
    with pytest.raises(ClientError) as exc:
        fresh.describe_route_tables(RouteTableIds=[theirs])
    assert error_of(exc)[0] == "InvalidRouteTableID.NotFound"
    with pytest.raises(ClientError) as exc:
        fresh.delete_route_table(RouteTableId=theirs)
    assert error_of(exc)[0] == "InvalidRouteTableID.NotFound"


# --- paginators of the new Describe actions -------------------------------------------------


def _fill(client):
    vpc = client.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    for _ in range(11):
        client.create_route_table(VpcId=vpc)
        client.create_internet_gateway()
        client.create_nat_gateway(SubnetId=subnet, ConnectivityType="private")


@pytest.mark.parametrize(
    ("operation", "key", "id_key", "page_size"),
    [
        ("describe_route_tables", "RouteTables", "RouteTableId", 5),
        ("describe_internet_gateways", "InternetGateways", "InternetGatewayId", 5),
        ("describe_nat_gateways", "NatGateways", "NatGatewayId", 5),
    ],
)
def test_paginators_return_each_item_once(cloud, operation, key, id_key, page_size):
    client = cloud.client(cloud.create_account(f"rtb-pages-{operation}"))
    _fill(client)
    everything = [x[id_key] for x in getattr(client, operation)()[key]]
    assert len(everything) >= 11
    pages = list(client.get_paginator(operation).paginate(PaginationConfig={"PageSize": page_size}))
    assert len(pages) > 2
    paged = [x[id_key] for page in pages for x in page[key]]
    assert sorted(paged) == sorted(everything)
    assert len(paged) == len(set(paged))
    assert all(len(page[key]) <= page_size for page in pages)
