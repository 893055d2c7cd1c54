"""Instance, interface and image attributes: EC2's errors for requests that name no attribute,
two, an unknown one, or an instance attribute that belongs to one of several interfaces;
ResetInstanceAttribute and GetPasswordData; routes to an interface that is not attached."""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import code_of, error_of

FAST = {"Delay": 0.2, "MaxAttempts": 150}
_names = itertools.count()


@pytest.fixture
def fresh(cloud):
    return cloud.client(cloud.create_account(f"attr-{next(_names)}"))


@pytest.fixture
def subnet(fresh):
    vpc = fresh.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_id = fresh.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    return vpc, subnet_id


def running(client, image_id, **params) -> str:
    [inst] = client.run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t2.micro", **params
    )["Instances"]
    client.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=FAST)
    return inst["InstanceId"]


def failing(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return error_of(exc)


def test_modify_instance_attribute_needs_exactly_one_known_attribute(fresh, image_id):
    iid = running(fresh, image_id)
    assert failing(fresh.modify_instance_attribute, InstanceId=iid)[0] == "InvalidParameterCombination"
    assert (
        failing(
            fresh.modify_instance_attribute,
            InstanceId=iid,
            Attribute="disableApiTermination",
            Value="True",
            DisableApiTermination={"Value": False},
        )[0]
        == "InvalidParameterCombination"
    )
    assert failing(fresh.modify_instance_attribute, InstanceId=iid, Attribute="fake")[0] == (
        "InvalidParameterValue"
    )
    assert failing(fresh.modify_instance_attribute, InstanceId=iid, Attribute="disableApiTermination")[0] == (
        "MissingParameter"
    )
    # Nothing changed on the way.
    got = fresh.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    assert got["DisableApiTermination"] == {"Value": False}


def test_reset_instance_attribute(fresh, image_id):
    iid = running(fresh, image_id)
    for attribute in ("fake", "disableApiTermination", "groupSet", "instanceType", "userData"):
        assert failing(fresh.reset_instance_attribute, InstanceId=iid, Attribute=attribute)[0] == (
            "InvalidParameterValue"
        ), attribute
    # The attribute is checked before the instance, as EC2 does.
    code = failing(fresh.reset_instance_attribute, InstanceId="i-0", Attribute="disableApiTermination")[0]
    assert code == "InvalidParameterValue"
    code = failing(fresh.reset_instance_attribute, InstanceId="i-0123456789abcdef0", Attribute="kernel")[0]
    assert code == "InvalidInstanceID.NotFound"

    fresh.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})
    fresh.reset_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")
    got = fresh.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")
    assert got["SourceDestCheck"] == {"Value": True}
    [eni] = fresh.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])[
        "NetworkInterfaces"
    ]
    assert eni["SourceDestCheck"] is True

    assert failing(fresh.reset_instance_attribute, InstanceId=iid, Attribute="kernel") == (
        "IncorrectInstanceState",
        f"The instance '{iid}' is not in the 'stopped' state.",
    )
    fresh.stop_instances(InstanceIds=[iid])
    fresh.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    fresh.reset_instance_attribute(InstanceId=iid, Attribute="kernel")
    fresh.reset_instance_attribute(InstanceId=iid, Attribute="ramdisk")
    assert "Value" not in fresh.describe_instance_attribute(InstanceId=iid, Attribute="kernel").get(
        "KernelId", {}
    )


def test_get_password_data(fresh, image_id):
    iid = running(fresh, image_id)
    out = fresh.get_password_data(InstanceId=iid)
    assert out["InstanceId"] == iid and out["PasswordData"] == ""
    assert out["Timestamp"].tzinfo is not None
    code = failing(fresh.get_password_data, InstanceId="i-0123456789abcdef0")[0]
    assert code == "InvalidInstanceID.NotFound"
    assert failing(fresh.get_password_data, InstanceId="i-x")[0] == "InvalidInstanceID.Malformed"


def test_per_interface_attributes_of_an_instance_with_two_interfaces(fresh, image_id, subnet):
    vpc, subnet_id = subnet
    iid = running(fresh, image_id, SubnetId=subnet_id)
    # One interface: the instance's attribute is its primary interface's.
    assert fresh.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")[
        "SourceDestCheck"
    ] == {"Value": True}
    eni = fresh.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    fresh.attach_network_interface(InstanceId=iid, NetworkInterfaceId=eni, DeviceIndex=1)
    message = (
        f"There are multiple interfaces attached to instance '{iid}'. "
        "Please specify an interface ID for the operation instead."
    )
    for call, kwargs in (
        (fresh.describe_instance_attribute, {"Attribute": "groupSet"}),
        (fresh.describe_instance_attribute, {"Attribute": "sourceDestCheck"}),
        (fresh.modify_instance_attribute, {"Groups": ["sg-0123456789abcdef0"]}),
        (fresh.modify_instance_attribute, {"SourceDestCheck": {"Value": False}}),
        (fresh.reset_instance_attribute, {"Attribute": "sourceDestCheck"}),
    ):
        assert failing(call, InstanceId=iid, **kwargs) == ("InvalidInstanceID", message), (call, kwargs)
    # Other attributes still answer by instance.
    got = fresh.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert got["InstanceType"] == {"Value": "t2.micro"}


def test_network_interface_attribute_without_an_attribute(fresh, subnet):
    _, subnet_id = subnet
    eni = fresh.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    assert failing(fresh.describe_network_interface_attribute, NetworkInterfaceId=eni)[0] == (
        "InvalidParameterCombination"
    )
    assert failing(fresh.modify_network_interface_attribute, NetworkInterfaceId=eni)[0] == (
        "InvalidParameterCombination"
    )
    assert failing(fresh.describe_network_interface_attribute, NetworkInterfaceId=eni, Attribute="fake")[
        0
    ] == ("InvalidParameterValue")


def test_image_attribute_errors_for_a_public_image_of_another_account(fresh, image_id):
    # The demo image is the admin's, public: visible to all, its attributes only to its owner.
    assert failing(fresh.describe_image_attribute, ImageId=image_id, Attribute="description") == (
        "AuthFailure",
        f"Not authorized for image:{image_id}",
    )
    # An attribute EC2 does not know is refused before ownership is looked at.
    assert failing(fresh.describe_image_attribute, ImageId=image_id, Attribute="unsupported")[0] == (
        "InvalidRequest"
    )
    # So is a malformed change: the request is checked whole before the image.
    modify, reset = fresh.modify_image_attribute, fresh.reset_image_attribute
    assert failing(modify, ImageId=image_id, Attribute="description")[0] == "MissingParameter"
    assert failing(modify, ImageId=image_id, Attribute="launchPermission")[0] == "InvalidParameterCombination"
    assert failing(modify, ImageId=image_id)[0] == "InvalidParameterCombination"
    assert failing(reset, ImageId=image_id, Attribute="fake")[0] == "InvalidRequest"
    # A well-formed one is refused for not being the owner's.
    assert failing(modify, ImageId=image_id, Description={"Value": "x"})[0] == "AuthFailure"
    assert failing(reset, ImageId=image_id, Attribute="launchPermission")[0] == "AuthFailure"


def test_route_to_an_interface_that_is_not_attached(fresh, subnet):
    vpc, subnet_id = subnet
    eni = fresh.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    table = fresh.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    # The VPC's own block stays the local route's.
    with pytest.raises(ClientError) as exc:
        fresh.create_route(RouteTableId=table, DestinationCidrBlock="10.40.0.0/16", NetworkInterfaceId=eni)
    assert code_of(exc) == "InvalidParameterValue"
    fresh.create_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8", NetworkInterfaceId=eni)
    fresh.create_route(RouteTableId=table, DestinationCidrBlock="10.40.2.0/24", NetworkInterfaceId=eni)
    [rt] = fresh.describe_route_tables(RouteTableIds=[table])["RouteTables"]
    by_dest = {r["DestinationCidrBlock"]: r for r in rt["Routes"]}
    assert set(by_dest) == {"10.40.0.0/16", "10.0.0.0/8", "10.40.2.0/24"}
    # Nothing carries the traffic until the interface is attached to a running instance.
    assert by_dest["10.0.0.0/8"]["State"] == "blackhole"
    assert by_dest["10.0.0.0/8"]["NetworkInterfaceId"] == eni
    # The interface is in use by the route no more than by nothing: it can be deleted.
    fresh.delete_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8")
    fresh.delete_route(RouteTableId=table, DestinationCidrBlock="10.40.2.0/24")
    fresh.delete_network_interface(NetworkInterfaceId=eni)
