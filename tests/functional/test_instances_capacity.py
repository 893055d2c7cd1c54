"""MinCount/MaxCount against real capacity: a small cloud of two fake hosts of 4 vCPUs each.

Both hosts are in us-east-1a and the scheduler does not overcommit CPUs, so the
cloud holds exactly four t3.micro (2 vCPUs) instances.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ocs.db.models.compute import Instance, Reservation
from tests.framework.cloud import Cloud

FAST = {"Delay": 0.2, "MaxAttempts": 150}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    overrides = {
        "compute": {"fake_hosts": 2, "fake_vcpus": 4, "availability_zone": "us-east-1a"},
        "scheduler": {"cpu_allocation_ratio": 1.0},
    }
    cloud = Cloud(tmp_path_factory.mktemp("small-cloud"), overrides=overrides).start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module")
def ec2(small):
    return small.client()


@pytest.fixture(scope="module")
def image_id(ec2):
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]


def rows(cloud: Cloud) -> tuple[int, int]:
    with cloud.session() as s:
        return s.query(Instance).count(), s.query(Reservation).count()


def run(ec2, image_id, low, high):
    return ec2.run_instances(ImageId=image_id, MinCount=low, MaxCount=high, InstanceType="t3.micro")


def test_min_and_max_count_against_capacity(small, ec2, image_id):
    out = run(ec2, image_id, 1, 10)
    ids = [i["InstanceId"] for i in out["Instances"]]
    assert len(ids) == 4  # as many as fit, fewer than MaxCount
    assert [i["AmiLaunchIndex"] for i in out["Instances"]] == [0, 1, 2, 3]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    assert rows(small) == (4, 1)

    with pytest.raises(ClientError) as exc:
        run(ec2, image_id, 1, 1)
    assert exc.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert rows(small) == (4, 1)  # nothing created, nothing left pending

    ec2.terminate_instances(InstanceIds=ids[:2])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids[:2], WaiterConfig=FAST)
    with pytest.raises(ClientError) as exc:
        run(ec2, image_id, 3, 5)  # two fit, three are the minimum
    assert exc.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert rows(small) == (4, 1)

    again = run(ec2, image_id, 2, 2)
    more = [i["InstanceId"] for i in again["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=more, WaiterConfig=FAST)
    hosts = {}
    with small.session() as s:
        for instance_id in ids[2:] + more:
            hosts[instance_id] = s.get(Instance, instance_id).host
    assert sorted(set(hosts.values())) == ["fake-1", "fake-2"]
    ec2.terminate_instances(InstanceIds=ids[2:] + more)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids[2:] + more, WaiterConfig=FAST)


def test_a_stopped_instance_keeps_its_place(small, ec2, image_id):
    out = run(ec2, image_id, 4, 4)
    ids = [i["InstanceId"] for i in out["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    ec2.stop_instances(InstanceIds=ids[:1])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=ids[:1], WaiterConfig=FAST)
    with pytest.raises(ClientError) as exc:  # its claim stays on its host
        run(ec2, image_id, 1, 1)
    assert exc.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    ec2.start_instances(InstanceIds=ids[:1])
    ec2.get_waiter("instance_running").wait(InstanceIds=ids[:1], WaiterConfig=FAST)
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)


def test_a_stopped_instance_changing_type_changes_its_claim(small, ec2, image_id):
    from ocs.db.models.compute import Host

    def used() -> int:
        with small.session() as s:
            return sum(h.vcpus_used for h in s.query(Host).all())

    [instance_id] = [i["InstanceId"] for i in run(ec2, image_id, 1, 1)["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    assert used() == 2
    ec2.stop_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "t3.nano"})
    assert used() == 2  # t3.nano has 2 vCPUs too
    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "t3.xlarge"})
    assert used() == 4  # 4 vCPUs now claimed on its host
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    assert used() == 0  # released exactly what was claimed
