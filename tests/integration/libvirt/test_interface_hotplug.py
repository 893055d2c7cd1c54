"""A secondary network interface hot-plugged into a real guest and unplugged again:
boto3 → ocs-api → agent → network service (``linux`` driver, bridges in a test
namespace) → libvirt → QEMU.

AttachNetworkInterface gives the running domain a second ``<interface>`` with the
ENI's MAC, whose tap the network service moves onto the VPC's bridge in the test's
host namespace, and the guest sees a second NIC; DetachNetworkInterface takes it
away again; in between, a stop and a start keep it. The domain is read through libvirt-python (``virsh domiflist``).
"""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from ocs.compute_agent.domain_xml import domain_name
from ocs.network.plan import bridge_name, tap_name
from tests.framework.cloud import Cloud
from tests.framework.guest_image import GuestImage
from tests.integration.libvirt.test_api_path import WAIT, console, register
from tests.integration.libvirt.test_network_e2e import netcloud  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

#: Prints the guest's network devices every half second (in the background).
WATCH_NICS = """#!/bin/sh
(n=0; while [ $n -lt 240 ]; do n=$((n + 1)); echo "OCS-NICS $n: $(ls /sys/class/net | tr '\\n' ' ')";
 sleep 0.5; done) &
echo "OCS-NICS: watching"
"""


def domain_interfaces(uri: str, instance_id: str) -> list[tuple[str, str]]:
    """(MAC, target device) of each ``<interface>`` of the live domain, as virsh domiflist."""
    import libvirt

    conn = libvirt.open(uri)
    try:
        root = ET.fromstring(conn.lookupByName(domain_name(instance_id)).XMLDesc(0))
    finally:
        conn.close()
    out = []
    for iface in root.iterfind("devices/interface"):
        mac, target = iface.find("mac"), iface.find("target")
        out.append(
            (
                mac.get("address", "") if mac is not None else "",
                target.get("dev", "") if target is not None else "",
            )
        )
    return out


def master_of(ns: str, link: str) -> str | None:
    """The bridge ``link`` is on in namespace ``ns`` ("" none; None: no such link there)."""
    done = subprocess.run(["ip", "-n", ns, "-o", "link", "show", link], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    words = done.stdout.split()
    return words[words.index("master") + 1] if "master" in words else ""


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)
    return value


def last_nics(ec2: Any, iid: str) -> str:
    out = ec2.get_console_output(InstanceId=iid).get("Output", "")
    lines = [line for line in out.splitlines() if line.startswith("OCS-NICS ")]
    return lines[-1] if lines else ""


def test_a_secondary_interface_is_hot_plugged_into_a_real_guest(
    netcloud: Cloud,  # noqa: F811 - the fixture imported above
    test_image: GuestImage,
) -> None:
    ami = register(netcloud, test_image)
    ec2 = netcloud.client()
    uri = netcloud.conf.libvirt.uri
    ns = netcloud.conf.network.host_namespace
    started = time.monotonic()
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=WATCH_NICS)["Instances"][0][
        "InstanceId"
    ]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        console(ec2, iid, "OCS-NICS: watching", timeout=60)
        item = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        primary = item["NetworkInterfaces"][0]
        bridge = bridge_name(item["VpcId"])
        assert [m for m, _ in domain_interfaces(uri, iid)] == [primary["MacAddress"]]
        assert "eth1" not in last_nics(ec2, iid)

        eni = ec2.create_network_interface(SubnetId=item["SubnetId"], Description="hot-plugged")[
            "NetworkInterface"
        ]
        eni_id, mac, tap = eni["NetworkInterfaceId"], eni["MacAddress"], tap_name(eni["NetworkInterfaceId"])
        attach = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=iid, DeviceIndex=1)
        plugged = time.monotonic()
        two = wait(lambda: len(found := domain_interfaces(uri, iid)) == 2 and found, 30, "a second interface")
        assert two == [(primary["MacAddress"], tap_name(primary["NetworkInterfaceId"])), (mac, tap)]
        wait(lambda: master_of(ns, tap) == bridge, 15, f"{tap} on {bridge} in {ns}")
        print(f"AttachNetworkInterface to the tap on the VPC bridge: {time.monotonic() - plugged:.2f} s")
        wait(lambda: "eth1" in last_nics(ec2, iid), 20, "the guest seeing eth1")

        # A stop and a start: the guest's taps are made again, both plugged in.
        ec2.stop_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        ec2.start_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        assert [m for m, _ in domain_interfaces(uri, iid)] == [primary["MacAddress"], mac]
        for link in (tap_name(primary["NetworkInterfaceId"]), tap):
            wait(lambda link=link: master_of(ns, link) == bridge, 15, f"{link} on {bridge} after the start")
        console(ec2, iid, "OCS-NICS: watching", count=2, timeout=60)
        wait(lambda: "eth1" in last_nics(ec2, iid), 20, "the guest seeing eth1 after the start")

        ec2.detach_network_interface(AttachmentId=attach["AttachmentId"])
        unplugged = time.monotonic()
        wait(lambda: [m for m, _ in domain_interfaces(uri, iid)] == [primary["MacAddress"]], 30, "unplugged")
        wait(lambda: master_of(ns, tap) is None, 15, f"{tap} gone from {ns}")
        print(f"DetachNetworkInterface to the interface gone: {time.monotonic() - unplugged:.2f} s")
        wait(lambda: "eth1" not in last_nics(ec2, iid) and last_nics(ec2, iid), 20, "eth1 gone in the guest")
        assert master_of(ns, tap_name(primary["NetworkInterfaceId"])) == bridge  # the primary untouched
        [left] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
        assert left["Status"] == "available"
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    print(f"whole test: {time.monotonic() - started:.2f} s")
