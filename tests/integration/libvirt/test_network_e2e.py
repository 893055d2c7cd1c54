"""Real guests on OCS's network: boto3 → ocs-api → scheduler → agent → network service
(``linux`` driver: bridge, dnsmasq, nftables, metadata listener) → libvirt → QEMU.

The network service's bridges live in a namespace this test makes (``ocst…``, see
:mod:`tests.framework.hostnet`), not in the machine's own: libvirt makes each
guest's tap (``ocst…``, the network service's name) unattached, and the service
moves it into that namespace and onto the VPC's bridge. Nothing else is made
outside namespaces: the guests' traffic (DHCP, the metadata service at
169.254.169.254, each other) stays on that bridge and in the subnet's namespace,
which has no way out. Afterwards everything is removed.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.framework.cloud import Cloud
from tests.framework.guest_image import GuestImage
from tests.framework.hostnet import host_network, merged
from tests.integration.libvirt.test_api_path import WAIT, console, register

pytestmark = pytest.mark.slow

PUBLIC_ROUTER = "198.51.100.1"


@pytest.fixture
def netcloud(libvirt_uri: str, workdir: Path, tmp_path: Path) -> Iterator[Cloud]:
    host = f"itest-net-{os.getpid()}-{secrets.token_hex(2)}"
    with host_network(host) as network:
        overrides = {
            "DEFAULT": {"host": host},
            "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
            "libvirt": {
                "uri": libvirt_uri,
                "instances_path": str(workdir / "net-instances"),
                "image_cache_path": str(workdir / "net-cache"),
            },
        }
        public = {  # the host (its namespace) is the public network's router
            "network": {
                "public_gateway": f"{PUBLIC_ROUTER}/24",
                "public_gateway_on_host": True,
                "public_address_pool": ["198.51.100.128/25"],
            }
        }
        cloud = Cloud(tmp_path / "state", merged(overrides, network, public)).start()
        try:
            yield cloud
        finally:
            cloud.stop()


def marker_script(marker: str, probe: str = "") -> str:
    """User-data that prints itself as read from the metadata service (and runs ``probe``)."""
    return (
        "#!/bin/sh\n"
        f"# {marker}\n"
        "printf 'GET /latest/user-data HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc 169.254.169.254 80 |"
        " grep -o 'wire-e2e-[0-9a-f][0-9a-f]*' | sed 's/^/user-data from metadata: /'\n" + probe
    )


def launch(ec2: Any, ami: str, user_data: str, groups: list[str] | None = None, subnet: str = "") -> str:
    extra: dict[str, Any] = {"SecurityGroupIds": groups} if groups else {}
    if subnet:
        extra["SubnetId"] = subnet
    reply = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=user_data, **extra)
    return str(reply["Instances"][0]["InstanceId"])


def host_links(ns: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-br", "link"], capture_output=True, text=True, check=True).stdout


def test_a_real_guest_gets_its_lease_and_its_metadata_from_ocs(
    netcloud: Cloud, test_image: GuestImage
) -> None:
    ami = register(netcloud, test_image)
    ec2 = netcloud.client()
    marker = "wire-e2e-" + secrets.token_hex(4)
    started = time.monotonic()
    iid = launch(ec2, ami, marker_script(marker))
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    out = console(ec2, iid, "OCS-TEST-IMAGE: user-data exit=", timeout=90)
    took = time.monotonic() - started
    item = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    found = re.search(r"OCS-TEST-IMAGE: dhcp ok ([0-9.]+)", out)
    assert found, out[-3000:]
    assert found.group(1) == item["PrivateIpAddress"]  # the lease OCS handed out
    assert f"OCS-TEST-IMAGE: metadata instance-id={iid}" in out
    assert f"user-data from metadata: {marker}" in out
    print(f"RunInstances to user-data read from the metadata service: {took:.2f} s")

    ns = netcloud.conf.network.host_namespace
    tap = next(n["NetworkInterfaceId"] for n in item["NetworkInterfaces"])
    assert "ocst" in host_links(ns) and tap  # the guest's tap is on the bridge in the namespace
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    deadline = time.monotonic() + 15
    while "ocsb" in host_links(ns):  # the host's last port gone: its bridge too
        assert time.monotonic() < deadline, host_links(ns)
        time.sleep(0.2)
    assert not [line for line in os.popen("ip -br link").read().splitlines() if line.startswith("ocst")]


LISTENER = """#!/bin/sh
(while true; do echo pong | timeout 5 nc -w 1 -l -p 8080 >/dev/null 2>&1; done) &
echo "OCS-WIRE: listening"
"""

PROBE = """#!/bin/sh
n=0
while [ $n -lt 150 ]; do
    n=$((n + 1))
    r=$(echo hi | timeout 3 nc -w 1 {ip} 8080 2>/dev/null)
    case "$r" in *pong*) echo "OCS-WIRE: probe $n ok";; *) echo "OCS-WIRE: probe $n failed";; esac
    sleep 0.5
done
"""


def probes(ec2: Any, iid: str) -> list[tuple[int, bool]]:
    out = ec2.get_console_output(InstanceId=iid).get("Output", "")
    return [(int(n), word == "ok") for n, word in re.findall(r"OCS-WIRE: probe (\d+) (ok|failed)", out)]


def wait_probe(ec2: Any, iid: str, ok: bool, after: int, timeout: float) -> tuple[int, float]:
    """The first probe numbered above ``after`` with this outcome, and when it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        for n, result in probes(ec2, iid):
            if n > after and result is ok:
                return n, time.monotonic()
        assert time.monotonic() < deadline, (
            f"no probe {'ok' if ok else 'failed'} after {after}: {probes(ec2, iid)}"
        )
        time.sleep(0.25)


def test_security_groups_between_two_real_guests(netcloud: Cloud, test_image: GuestImage) -> None:
    """Guest A reaches guest B's port while B's group allows A's group, and no longer
    once the rule is revoked; authorizing it again lets A back in. A and B are in two
    subnets of the VPC (its local route, from DHCP's classless static routes)."""
    ami = register(netcloud, test_image)
    ec2 = netcloud.client()
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group_a = ec2.create_security_group(GroupName="wire-a", Description="probes", VpcId=vpc)["GroupId"]
    group_b = ec2.create_security_group(GroupName="wire-b", Description="listens", VpcId=vpc)["GroupId"]
    rule = [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": group_a}]}
    ]
    ec2.authorize_security_group_ingress(GroupId=group_b, IpPermissions=rule)

    b = launch(ec2, ami, LISTENER, [group_b])
    ec2.get_waiter("instance_running").wait(InstanceIds=[b], WaiterConfig=WAIT)
    console(ec2, b, "OCS-WIRE: listening", timeout=90)
    item_b = ec2.describe_instances(InstanceIds=[b])["Reservations"][0]["Instances"][0]
    ip_b, zone = item_b["PrivateIpAddress"], item_b["Placement"]["AvailabilityZone"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.240.0/24", AvailabilityZone=zone)["Subnet"][
        "SubnetId"
    ]
    a = launch(ec2, ami, PROBE.format(ip=ip_b), [group_a], subnet_a)
    ec2.get_waiter("instance_running").wait(InstanceIds=[a], WaiterConfig=WAIT)

    n, _ = wait_probe(ec2, a, True, 0, 90)  # allowed: A's group is in B's rule
    for _ in range(3):  # and again and again: the listener takes one connection after another
        n, _ = wait_probe(ec2, a, True, n, 10)
    assert all(ok for m, ok in probes(ec2, a) if m >= n - 3), probes(ec2, a)
    ec2.revoke_security_group_ingress(GroupId=group_b, IpPermissions=rule)
    revoked = time.monotonic()
    last = max(m for m, _ in probes(ec2, a))
    failed, seen = wait_probe(ec2, a, False, last, 30)
    print(
        f"revoked: probes fail from probe {failed}, {seen - revoked:.2f} s after RevokeSecurityGroupIngress"
    )
    print("probes:", " ".join(f"{m}{'+' if ok else '-'}" for m, ok in probes(ec2, a)))
    assert all(not ok for m, ok in probes(ec2, a) if m > failed)  # and keep failing
    ec2.authorize_security_group_ingress(GroupId=group_b, IpPermissions=rule)
    wait_probe(ec2, a, True, max(m for m, _ in probes(ec2, a)), 30)

    ec2.terminate_instances(InstanceIds=[a, b])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a, b], WaiterConfig=WAIT)


def test_an_elastic_ip_reaches_a_real_guest(netcloud: Cloud, test_image: GuestImage) -> None:
    """From outside (the host, the public network's router), a guest's port is reachable
    at its elastic IP once its group allows it, and not any more once the address is
    disassociated; its private address is never reachable from there."""
    ami = register(netcloud, test_image)
    ec2 = netcloud.client()
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="wire-public", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    iid = launch(ec2, ami, LISTENER, [group])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    console(ec2, iid, "OCS-WIRE: listening", timeout=90)
    allocation = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=iid)
    public_ip = allocation["PublicIp"]
    item = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert item["PublicIpAddress"] == public_ip
    ns = netcloud.conf.network.host_namespace

    def pong(address: str) -> bool:
        code = (
            "import socket,sys\n"
            "try:\n"
            "  s=socket.create_connection((sys.argv[1],8080),timeout=2);s.sendall(b'hi\\n')\n"
            "  print(s.recv(16).decode().strip())\n"
            "except OSError as e:\n  print(e)\n"
        )
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code, address],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return out.stdout.strip() == "pong"

    deadline = time.monotonic() + 20
    while not pong(public_ip):
        assert time.monotonic() < deadline, f"{public_ip} never answered\n{host_links(ns)}"
        time.sleep(0.5)
    assert not pong(item["PrivateIpAddress"])  # private addresses stay private
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    deadline = time.monotonic() + 10
    while pong(public_ip):
        assert time.monotonic() < deadline, f"{public_ip} still answers after DisassociateAddress"
        time.sleep(0.5)
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    ec2.release_address(AllocationId=allocation["AllocationId"])


NAT_PROBE = """#!/bin/sh
n=0
while [ $n -lt 120 ]; do
    n=$((n + 1))
    r=$(echo hi | timeout 3 nc -w 1 {router} 9090 2>/dev/null)
    case "$r" in *seen-from-*) echo "OCS-NAT: probe $n $r";; *) echo "OCS-NAT: probe $n failed";; esac
    sleep 0.5
done
"""

NAT_LISTENER = (
    "import socket\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('198.51.100.1',9090));s.listen(8);print('ready',flush=True)\n"
    "while True:\n"
    "  c,a=s.accept();c.settimeout(2)\n"
    "  try:\n    c.recv(16);c.sendall(('seen-from-%s\\n'%a[0]).encode())\n"
    "  except OSError:\n    pass\n"
    "  c.close()\n"
)


def test_a_real_guest_in_a_private_subnet_goes_out_through_a_nat_gateway(
    netcloud: Cloud, test_image: GuestImage
) -> None:
    """A guest with no public address, in a subnet whose route table sends 0.0.0.0/0 to
    a NAT gateway, reaches the public network (the host, its router) with the NAT
    gateway's elastic IP as its source; it stops once the gateway is deleted."""
    ami = register(netcloud, test_image)
    ec2 = netcloud.client()
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    public = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.241.0/24", AvailabilityZone=zone)["Subnet"][
        "SubnetId"
    ]
    allocation = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation["AllocationId"])["NatGateway"]
    started = time.monotonic()
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig=WAIT)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=private)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"])
    ns = netcloud.conf.network.host_namespace
    listener = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", NAT_LISTENER],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        iid = launch(ec2, ami, NAT_PROBE.format(router=PUBLIC_ROUTER), subnet=private)
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        item = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        assert "PublicIpAddress" not in item
        out = console(ec2, iid, "OCS-NAT: probe", timeout=90)
        deadline = time.monotonic() + 60
        while f"seen-from-{allocation['PublicIp']}" not in out:
            assert time.monotonic() < deadline, out[-3000:]
            time.sleep(0.5)
            out = ec2.get_console_output(InstanceId=iid).get("Output", "")
        print(
            f"CreateNatGateway to a guest's first connection out through it: {time.monotonic() - started:.2f} s"
        )
        assert "seen-from-172.31." not in out  # never its private address
        ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
        ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig=WAIT)
        last = max(int(n) for n in re.findall(r"OCS-NAT: probe (\d+)", out))
        deadline = time.monotonic() + 20
        while True:
            out = ec2.get_console_output(InstanceId=iid).get("Output", "")
            after = [
                (int(n), r) for n, r in re.findall(r"OCS-NAT: probe (\d+) (\S+)", out) if int(n) > last + 2
            ]
            if len(after) >= 3:
                break
            assert time.monotonic() < deadline, out[-2000:]
            time.sleep(0.5)
        assert all(r == "failed" for _, r in after), after
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    finally:
        listener.terminate()
        listener.wait(timeout=5)
    ec2.release_address(AllocationId=allocation["AllocationId"])
