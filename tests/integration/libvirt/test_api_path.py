"""The whole API path with real guests: boto3 → ocs-api → scheduler → agent → libvirt → QEMU.

RunInstances of the OCS test image → ``running`` → GetConsoleOutput shows the
guest's markers and its user-data's output → StopInstances (the guest powers
off through ACPI) → StartInstances (it boots again) → TerminateInstances → no
domain and no file left.

The agent builds its driver from the configuration ([libvirt] options).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.framework.cloud import Cloud
from tests.framework.guest_image import GuestImage
from tests.framework.hostnet import host_network, merged

pytestmark = pytest.mark.slow

WAIT = {"Delay": 0.5, "MaxAttempts": 240}


@pytest.fixture
def cloud(libvirt_uri: str, workdir: Path, tmp_path: Path) -> Iterator[Cloud]:
    host = f"itest-api-{os.getpid()}"
    overrides = {
        # A host name of this run's own: the agent lists and reconciles only its own
        # guests, so concurrent runs on one libvirtd leave each other alone.
        "DEFAULT": {"host": host},
        "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
        "libvirt": {
            "uri": libvirt_uri,
            "instances_path": str(workdir / "api-instances"),
            "image_cache_path": str(workdir / "api-cache"),
        },
    }
    with host_network(host, required=False) as network:  # never the machine's own namespace
        cloud = Cloud(tmp_path / "state", merged(overrides, network)).start()
        try:
            yield cloud
        finally:
            cloud.stop()


def register(cloud: Cloud, image: GuestImage) -> str:
    """Import the test image as ``ocs-manage image import`` does; the AMI's id."""
    from ocs.conf.images import store_path
    from ocs.images import importer
    from ocs.images.store import ImageStore

    store = ImageStore(store_path(cloud.conf))
    owner = cloud.admin.account_id
    with cloud.session() as s:
        aki = importer.import_image(
            s, store, importer.ImportRequest(image.kernel, owner, "ocs test kernel", "kernel")
        )
        ari = importer.import_image(
            s, store, importer.ImportRequest(image.initrd, owner, "ocs test ramdisk", "ramdisk")
        )
        ami = importer.import_image(
            s,
            store,
            importer.ImportRequest(image.disk, owner, "ocs test image", kernel_id=aki.id, ramdisk_id=ari.id),
        )
        return ami.id


def console(ec2: Any, instance_id: str, marker: str, count: int = 1, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = ec2.get_console_output(InstanceId=instance_id).get("Output", "")
        if out.count(marker) >= count:
            return str(out)
        assert time.monotonic() < deadline, f"{marker!r} x{count} not on the console:\n{out[-3000:]}"
        time.sleep(0.2)


def test_run_stop_start_terminate_a_real_guest(cloud: Cloud, test_image: GuestImage, workdir: Path) -> None:
    ami = register(cloud, test_image)
    ec2 = cloud.client()
    started = time.monotonic()
    reply = ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, UserData="#!/bin/sh\necho hello from the API path\n"
    )
    iid = reply["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    out = console(ec2, iid, "OCS-TEST-IMAGE: user-data exit=0")
    boot = time.monotonic() - started
    assert f"config-drive instance-id={iid}" in out and "hello from the API path" in out
    print(f"RunInstances to the guest's user-data: {boot:.2f} s")

    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    assert "OCS-TEST-IMAGE: shutting down" in console(ec2, iid, "OCS-TEST-IMAGE: shutting down")

    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    console(ec2, iid, "OCS-TEST-IMAGE: userspace ready", count=2)

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    assert not (workdir / "api-instances" / iid).exists()
    import libvirt

    conn = libvirt.open(cloud.aio.agents[0].driver.uri)
    try:
        assert f"ocs-{iid}" not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()


def test_a_restarted_cloud_keeps_its_running_guests_and_removes_strangers(
    libvirt_uri: str, workdir: Path, tmp_path: Path, test_image: GuestImage
) -> None:
    """Restarting every service (the agent included) leaves running guests alone:
    the same QEMU process keeps running, not rebooted; a guest of this host that
    the cloud does not know (left by a crash) is removed by the reconciliation."""
    host = f"itest-restart-{os.getpid()}"
    overrides = {
        "DEFAULT": {"host": host},
        "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
        "libvirt": {
            "uri": libvirt_uri,
            "instances_path": str(workdir / "restart-instances"),
            "image_cache_path": str(workdir / "restart-cache"),
        },
    }
    with host_network(host, required=False) as network:
        restarted(libvirt_uri, workdir, tmp_path, test_image, host, merged(overrides, network))


def restarted(
    libvirt_uri: str,
    workdir: Path,
    tmp_path: Path,
    test_image: GuestImage,
    host: str,
    overrides: dict[str, Any],
) -> None:
    import libvirt

    from ocs.compute_agent.libvirt.driver import LibvirtDriver

    first = Cloud(tmp_path / "state", overrides).start()
    try:
        ec2 = first.client()
        iid = ec2.run_instances(ImageId=register(first, test_image), MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"
        ]
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        console(ec2, iid, "OCS-TEST-IMAGE: userspace ready")
    finally:
        first.stop()

    # A guest of this host that no database knows: what a crash mid-spawn leaves.
    stranger = test_image.spec()
    rogue = LibvirtDriver(
        host,
        uri=libvirt_uri,
        instances_path=str(workdir / "restart-instances"),
        image_cache_path=str(workdir / "restart-cache"),
    )
    rogue.init_host()
    rogue.spawn(stranger)
    rogue.close()

    conn = libvirt.open(libvirt_uri)
    try:
        qemu_id = conn.lookupByName(f"ocs-{iid}").ID()
        again = Cloud(tmp_path / "state", overrides).start()
        try:
            ec2 = again.client()
            deadline = time.monotonic() + 60
            while f"ocs-{stranger.instance_id}" in [d.name() for d in conn.listAllDomains()]:
                assert time.monotonic() < deadline, "the stranger guest was not removed"
                time.sleep(0.5)
            assert not (workdir / "restart-instances" / stranger.instance_id).exists()

            item = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
            assert item["State"]["Name"] == "running"
            dom = conn.lookupByName(f"ocs-{iid}")
            assert dom.isActive() and dom.ID() == qemu_id  # the same QEMU process
            out = ec2.get_console_output(InstanceId=iid)["Output"]
            assert out.count("OCS-TEST-IMAGE: userspace ready") == 1  # never rebooted

            ec2.terminate_instances(InstanceIds=[iid])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
            assert f"ocs-{iid}" not in [d.name() for d in conn.listAllDomains()]
        finally:
            again.stop()
    finally:
        conn.close()
