"""RunInstances with NetworkInterfaces: several interfaces at launch, existing interfaces
attached at launch, and EC2's errors for conflicting parameters. The fake hypervisor's
guest shows one NIC per interface."""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import code_of

FAST = {"Delay": 0.2, "MaxAttempts": 150}
_names = itertools.count()


@pytest.fixture
def net(cloud):
    client = cloud.client(cloud.create_account(f"nics-{next(_names)}"))
    vpc = client.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    a = client.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    b = client.create_subnet(VpcId=vpc, CidrBlock="10.60.2.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    group = client.create_security_group(VpcId=vpc, GroupName="nics", Description="nics")["GroupId"]
    return client, vpc, a["SubnetId"], b["SubnetId"], group


def guest_macs(cloud, instance_id: str) -> list[str]:
    for agent in cloud.aio.agents:
        found = agent.driver._guests.get(instance_id)
        if found is not None:
            return list(found.nics)
    return []


def launch(client, image_id, **params):
    [inst] = client.run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", **params
    )["Instances"]
    client.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=FAST)
    [inst] = client.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"]
    return inst


def refused(client, image_id, **params) -> str:
    before = client.describe_instances()["Reservations"]
    with pytest.raises(ClientError) as exc:
        client.run_instances(
            ImageId=image_id, InstanceType="t3.micro", **{"MinCount": 1, "MaxCount": 1, **params}
        )
    assert client.describe_instances()["Reservations"] == before  # nothing launched
    return code_of(exc)


def test_two_new_interfaces_at_launch(cloud, net, image_id):
    client, vpc, a, b, group = net
    inst = launch(
        client,
        image_id,
        NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": a, "Description": "front", "SecondaryPrivateIpAddressCount": 1},
            {
                "DeviceIndex": 1,
                "SubnetId": b,
                "Groups": [group],
                "PrivateIpAddress": "10.60.2.50",
                "DeleteOnTermination": False,
            },
        ],
    )
    nics = sorted(inst["NetworkInterfaces"], key=lambda n: n["Attachment"]["DeviceIndex"])
    assert [n["Attachment"]["DeviceIndex"] for n in nics] == [0, 1]
    assert [n["SubnetId"] for n in nics] == [a, b]
    assert nics[0]["Description"] == "front" and len(nics[0]["PrivateIpAddresses"]) == 2
    assert nics[0]["Attachment"]["DeleteOnTermination"] is True
    assert nics[1]["PrivateIpAddress"] == "10.60.2.50"
    assert [g["GroupId"] for g in nics[1]["Groups"]] == [group]
    assert nics[1]["Attachment"]["DeleteOnTermination"] is False
    assert inst["SubnetId"] == a and inst["PrivateIpAddress"] == nics[0]["PrivateIpAddress"]
    # The fake hypervisor's guest was spawned with both NICs.
    assert sorted(guest_macs(cloud, inst["InstanceId"])) == sorted(n["MacAddress"] for n in nics)
    # Several interfaces: the instance-level per-interface attributes are refused.
    with pytest.raises(ClientError) as exc:
        client.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="sourceDestCheck")
    assert code_of(exc) == "InvalidInstanceID"
    client.terminate_instances(InstanceIds=[inst["InstanceId"]])
    client.get_waiter("instance_terminated").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=FAST)
    # DeleteOnTermination: the primary went with the instance, the second stays, available.
    [kept] = client.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "NetworkInterfaces"
    ]
    assert kept["NetworkInterfaceId"] == nics[1]["NetworkInterfaceId"] and kept["Status"] == "available"
    client.delete_network_interface(NetworkInterfaceId=kept["NetworkInterfaceId"])


def test_existing_interfaces_at_launch(net, image_id):
    client, vpc, a, b, group = net
    first = client.create_network_interface(SubnetId=a, Groups=[group])["NetworkInterface"]
    second = client.create_network_interface(SubnetId=b)["NetworkInterface"]
    inst = launch(
        client,
        image_id,
        NetworkInterfaces=[
            {"NetworkInterfaceId": first["NetworkInterfaceId"], "DeviceIndex": 0},
            {"NetworkInterfaceId": second["NetworkInterfaceId"], "DeviceIndex": 2},
        ],
    )
    by_index = {n["Attachment"]["DeviceIndex"]: n for n in inst["NetworkInterfaces"]}
    assert sorted(by_index) == [0, 2]
    assert by_index[0]["NetworkInterfaceId"] == first["NetworkInterfaceId"]
    assert by_index[2]["NetworkInterfaceId"] == second["NetworkInterfaceId"]
    assert inst["PrivateIpAddress"] == first["PrivateIpAddress"]
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [group]
    # An interface in use cannot be launched with again.
    assert (
        refused(
            client,
            image_id,
            NetworkInterfaces=[{"NetworkInterfaceId": first["NetworkInterfaceId"], "DeviceIndex": 0}],
        )
        == "InvalidNetworkInterface.InUse"
    )
    client.terminate_instances(InstanceIds=[inst["InstanceId"]])
    client.get_waiter("instance_terminated").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=FAST)
    # Existing interfaces are kept at termination.
    left = client.describe_network_interfaces(
        NetworkInterfaceIds=[first["NetworkInterfaceId"], second["NetworkInterfaceId"]]
    )["NetworkInterfaces"]
    assert {n["Status"] for n in left} == {"available"}


def test_conflicting_parameters(net, image_id):
    client, vpc, a, b, group = net
    eni = client.create_network_interface(SubnetId=a)["NetworkInterface"]["NetworkInterfaceId"]
    existing = {"NetworkInterfaceId": eni, "DeviceIndex": 0}
    cases = [
        ({"NetworkInterfaces": [{**existing, "DeleteOnTermination": True}]}, "InvalidParameterCombination"),
        ({"NetworkInterfaces": [{**existing, "SubnetId": a}]}, "InvalidParameterCombination"),
        ({"NetworkInterfaces": [existing], "MaxCount": 2}, "InvalidParameterCombination"),
        (
            {"NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": a}], "SubnetId": a},
            "InvalidParameterCombination",
        ),
        (
            {"NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": a}], "SecurityGroupIds": [group]},
            "InvalidParameterCombination",
        ),
        (
            {"NetworkInterfaces": [{"SubnetId": a}, {"SubnetId": b}]},
            "InvalidParameterValue",
        ),
        (
            {"NetworkInterfaces": [{"DeviceIndex": 1, "SubnetId": a}, {"DeviceIndex": 1, "SubnetId": b}]},
            "InvalidParameterValue",
        ),
        ({"NetworkInterfaces": [{"DeviceIndex": 1, "SubnetId": a}]}, "InvalidParameterValue"),
        (
            {"NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": a}, {"DeviceIndex": 1}]},
            "MissingParameter",
        ),
        (
            {
                "NetworkInterfaces": [
                    {"DeviceIndex": 0, "SubnetId": a},
                    {"DeviceIndex": 1, "SubnetId": b, "PrivateIpAddress": "10.60.2.9"},
                ],
                "MaxCount": 2,
            },
            "InvalidParameterCombination",
        ),
    ]
    for params, code in cases:
        assert refused(client, image_id, **params) == code, params
    # Nothing was attached on the way.
    [left] = client.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert left["Status"] == "available"


def test_two_instances_each_with_two_interfaces(net, image_id):
    client, vpc, a, b, group = net
    out = client.run_instances(
        ImageId=image_id,
        MinCount=2,
        MaxCount=2,
        InstanceType="t3.micro",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a}, {"DeviceIndex": 1, "SubnetId": b}],
    )
    ids = [i["InstanceId"] for i in out["Instances"]]
    client.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    for reservation in client.describe_instances(InstanceIds=ids)["Reservations"]:
        for inst in reservation["Instances"]:
            assert sorted(n["SubnetId"] for n in inst["NetworkInterfaces"]) == sorted([a, b])
    enis = client.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "NetworkInterfaces"
    ]
    assert len({n["PrivateIpAddress"] for n in enis}) == 4
    client.terminate_instances(InstanceIds=ids)
    client.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    assert (
        client.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"]
        == []
    )
