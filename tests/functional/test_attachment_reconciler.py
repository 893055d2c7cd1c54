"""Attachments stuck ``attaching`` or ``detaching`` because a message was lost are settled.

Messages are really dropped, on the real (in-process) bus: the compute agent or the
scheduler service stops taking messages, the request or the report waits in its
queue, and the queue is purged before the consumer comes back, as a broker that
loses a message would leave it. Nothing is mocked. After ``attachment_timeout``
the volume service asks the host which volumes its guest really has and records
that:

* the agent plugged the volume in but its report was lost → ``attached``;
* the request to attach never reached the agent → the attachment is gone and the
  volume ``available`` (and the guest does not get it later);
* the request to detach never reached the agent → ``attached`` again, so the user
  can detach once more.
"""

from __future__ import annotations

import secrets
import time

import pytest

from tests.framework.cloud import Cloud
from tests.functional.test_instances import FAST, Tenant
from tests.functional.test_volume_attach import guest_volumes, one_volume, volume, wait, zone_of


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    overrides = {
        "volume": {"sweep_interval": 0.2, "attachment_timeout": 1.0},
        "compute": {"fake_hosts": 1},
    }
    c = Cloud(tmp_path_factory.mktemp("cloud"), overrides).start()
    yield c
    c.stop()


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"settle-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def image_id_of(ec2) -> str:
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]


def purge(cloud, topic: str) -> int:
    """Drop every message waiting on ``topic``'s queue (a lost message)."""
    bus = cloud.aio.bus
    with bus.connection() as conn:
        return int(bus.topic_queue(topic)(conn.default_channel).purge() or 0)


def attachment_state(ec2, vol: str) -> str | None:
    attachments = one_volume(ec2, vol)["Attachments"]
    return attachments[0]["State"] if attachments else None


def test_a_lost_report_of_an_attach_is_settled_attached(cloud, tenant):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id_of(ec2))
    vol = volume(ec2, zone_of(tenant, iid))
    scheduler = cloud.aio.scheduler
    scheduler.server.stop()  # the agent's VolumeEvent waits in the scheduler's queue...
    try:
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        wait(lambda: vol in guest_volumes(cloud, iid))
        time.sleep(0.3)  # the report is on its way to the queue
        assert purge(cloud, "scheduler") >= 1  # ...and is lost
    finally:
        scheduler.server.start()
    assert attachment_state(ec2, vol) == "attaching"
    wait(lambda: attachment_state(ec2, vol) == "attached", timeout=15)
    assert one_volume(ec2, vol)["State"] == "in-use" and vol in guest_volumes(cloud, iid)


def test_a_lost_request_to_attach_is_settled_detached(cloud, tenant):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id_of(ec2))
    vol = volume(ec2, zone_of(tenant, iid))
    agent = cloud.aio.agents[0]
    agent.server.stop()  # the agent is down: the request waits in its queue...
    try:
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        assert purge(cloud, f"compute.{agent.endpoint.settings.host}") >= 1  # ...and is lost
    finally:
        agent.server.start()
    assert attachment_state(ec2, vol) == "attaching"
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 0.2, "MaxAttempts": 75})
    assert one_volume(ec2, vol)["Attachments"] == [] and vol not in guest_volumes(cloud, iid)
    # The volume is free for real: it attaches again, and this time the report comes.
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol], WaiterConfig=FAST)
    wait(lambda: attachment_state(ec2, vol) == "attached")
    assert vol in guest_volumes(cloud, iid)


def test_a_lost_request_to_detach_is_settled_attached(cloud, tenant):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id_of(ec2))
    vol = volume(ec2, zone_of(tenant, iid))
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    wait(lambda: attachment_state(ec2, vol) == "attached")
    agent = cloud.aio.agents[0]
    agent.server.stop()
    try:
        ec2.detach_volume(VolumeId=vol)
        assert attachment_state(ec2, vol) == "detaching"
        assert purge(cloud, f"compute.{agent.endpoint.settings.host}") >= 1
    finally:
        agent.server.start()
    wait(lambda: attachment_state(ec2, vol) == "attached", timeout=15)
    assert vol in guest_volumes(cloud, iid)
    ec2.detach_volume(VolumeId=vol)  # and a detach that is not lost works
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    assert vol not in guest_volumes(cloud, iid)
