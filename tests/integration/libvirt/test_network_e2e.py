"""Real guests on OCS's network: boto3 → ocs-api → scheduler → agent → network service
(``linux`` driver: bridge, dnsmasq, nftables, metadata listener) → libvirt → QEMU.

The network service's bridges live in a namespace this test makes (``ocst…``), not
in the machine's own: libvirt makes each guest's tap (``ocst…``, the network
service's name) unattached, and the service moves it into that namespace and onto
the VPC's bridge. Nothing else is made outside namespaces: the guests' traffic
(DHCP, the metadata service at 169.254.169.254, each other) stays on that bridge
and in the subnet's namespace, which has no way out. Afterwards the driver's
teardown, then the namespace's deletion, remove everything.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.framework.cloud import Cloud
from tests.framework.dataplane import missing_dataplane_tools
from tests.framework.guest_image import GuestImage
from tests.framework.netns import Namespace, missing_prerequisites
from tests.integration.libvirt.test_api_path import WAIT, console, register

pytestmark = pytest.mark.slow


@pytest.fixture
def netcloud(libvirt_uri: str, workdir: Path, tmp_path: Path) -> Iterator[Cloud]:
    reason = missing_prerequisites() or missing_dataplane_tools()
    if reason:
        pytest.skip(reason)
    tag = "ocst" + secrets.token_hex(3)
    host_ns = Namespace(tag + "h")  # the "host" namespace: bridges, taps, security groups
    state = Path(f"/run/ocs-test-{tag}")  # dnsmasq reads it after dropping privileges
    state.mkdir(mode=0o755)
    overrides = {
        "DEFAULT": {"host": f"itest-net-{os.getpid()}-{tag}"},
        "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
        "libvirt": {
            "uri": libvirt_uri,
            "instances_path": str(workdir / "net-instances"),
            "image_cache_path": str(workdir / "net-cache"),
        },
        "network": {"driver": "linux", "host_namespace": host_ns.name, "state_dir": str(state)},
    }
    cloud = Cloud(tmp_path / "state", overrides).start()
    driver = cloud.aio.networks[0].endpoint.driver
    try:
        yield cloud
    finally:
        cloud.stop()
        try:
            driver.teardown()  # dnsmasq (by PID), subnet namespaces, devices, rulesets
        finally:
            host_ns.close()
            shutil.rmtree(state, ignore_errors=True)


def marker_script(marker: str, probe: str = "") -> str:
    """User-data that prints itself as read from the metadata service (and runs ``probe``)."""
    return (
        "#!/bin/sh\n"
        f"# {marker}\n"
        "printf 'GET /latest/user-data HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc 169.254.169.254 80 |"
        " grep -o 'wire-e2e-[0-9a-f][0-9a-f]*' | sed 's/^/user-data from metadata: /'\n" + probe
    )


def launch(ec2: Any, ami: str, user_data: str, groups: list[str] | None = None) -> str:
    extra = {"SecurityGroupIds": groups} if groups else {}
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


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
