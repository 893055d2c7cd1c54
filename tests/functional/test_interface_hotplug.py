"""Secondary network interfaces reach the guest (fake hypervisor, noop network driver).

AttachNetworkInterface to a running instance hot-plugs the interface into its guest,
DetachNetworkInterface unplugs it; a stopped instance gets the interfaces attached
or detached meanwhile when it starts; a guest built again boots with all of them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ocs.network.plan import bridge_name, tap_name
from tests.framework.errors import code_of
from tests.functional.test_instances import FAST, Tenant
from tests.functional.test_network_interfaces import subnet_in


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"hotplug-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def wait(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def guest(cloud, instance_id: str) -> Any:
    """The fake hypervisor's guest of the instance (None: no host has it)."""
    for agent in cloud.aio.agents:
        found = agent.driver._guests.get(instance_id)
        if found is not None:
            return found
    return None


def macs(cloud, instance_id: str) -> list[str]:
    found = guest(cloud, instance_id)
    return sorted(found.nics) if found is not None else []


def new_interface(ec2) -> dict:
    subnet = subnet_in(ec2)
    return ec2.create_network_interface(SubnetId=subnet["SubnetId"])["NetworkInterface"]


def test_attach_hot_plugs_and_detach_unplugs(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    item = tenant.one(iid)
    primary = item["NetworkInterfaces"][0]
    eni = new_interface(ec2)
    attachment = ec2.attach_network_interface(
        NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1
    )["AttachmentId"]
    wait(lambda: eni["MacAddress"] in macs(cloud, iid))
    nic = guest(cloud, iid).nics[eni["MacAddress"]]
    assert (nic.bridge, nic.tap, nic.ip, nic.device_index, nic.interface_id) == (
        bridge_name(item["VpcId"]),
        tap_name(eni["NetworkInterfaceId"]),
        eni["PrivateIpAddress"],
        1,
        eni["NetworkInterfaceId"],
    )
    assert macs(cloud, iid) == sorted([primary["MacAddress"], eni["MacAddress"]])
    assert {n["Attachment"]["Status"] for n in tenant.one(iid)["NetworkInterfaces"]} == {"attached"}

    with pytest.raises(ClientError) as primary_detach:
        ec2.detach_network_interface(AttachmentId=primary["Attachment"]["AttachmentId"], Force=True)
    assert code_of(primary_detach) == "OperationNotPermitted"
    assert "device index 0" in primary_detach.value.response["Error"]["Message"]

    ec2.detach_network_interface(AttachmentId=attachment)
    wait(lambda: macs(cloud, iid) == [primary["MacAddress"]])
    [detached] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert detached["Status"] == "available" and "Attachment" not in detached
    with pytest.raises(ClientError) as again:
        ec2.detach_network_interface(AttachmentId=attachment)
    assert code_of(again) == "InvalidAttachmentID.NotFound"

    # Force, and attaching again at once: the guest follows each change.
    attachment = ec2.attach_network_interface(
        NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=2
    )["AttachmentId"]
    wait(lambda: eni["MacAddress"] in macs(cloud, iid))
    assert guest(cloud, iid).nics[eni["MacAddress"]].device_index == 2
    ec2.detach_network_interface(AttachmentId=attachment, Force=True)
    wait(lambda: macs(cloud, iid) == [primary["MacAddress"]])


def test_a_stopped_instance_gets_its_interfaces_when_it_starts(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    primary = tenant.one(iid)["NetworkInterfaces"][0]["MacAddress"]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    eni = new_interface(ec2)
    attachment = ec2.attach_network_interface(
        NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1
    )["AttachmentId"]
    time.sleep(0.3)
    assert macs(cloud, iid) == [primary]  # recorded only: plugged in at the start
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    assert macs(cloud, iid) == sorted([primary, eni["MacAddress"]])

    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    ec2.detach_network_interface(AttachmentId=attachment)
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    assert macs(cloud, iid) == [primary]


def test_a_guest_built_again_boots_with_every_attached_interface(cloud, tenant, image_id):
    """A start whose host lost the guest spawns it again: the spawn spec has both NICs,
    the primary first. Termination then leaves the secondary detached and available."""
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    primary = tenant.one(iid)["NetworkInterfaces"][0]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    eni = new_interface(ec2)
    ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1)
    agent = next(a for a in cloud.aio.agents if iid in a.driver._guests)
    agent.driver.destroy(iid)  # the host lost it
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    spec = guest(cloud, iid).spec
    assert [(n.interface_id, n.mac, n.device_index) for n in spec.nics] == [
        (primary["NetworkInterfaceId"], primary["MacAddress"], 0),
        (eni["NetworkInterfaceId"], eni["MacAddress"], 1),
    ]
    assert macs(cloud, iid) == sorted([primary["MacAddress"], eni["MacAddress"]])

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    [left] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert left["Status"] == "available" and "Attachment" not in left
    with pytest.raises(ClientError) as gone:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[primary["NetworkInterfaceId"]])
    assert code_of(gone) == "InvalidNetworkInterfaceID.NotFound"
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
