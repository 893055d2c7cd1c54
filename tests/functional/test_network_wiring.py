"""The network service wired in, on the all-in-one (fake hypervisor, noop network driver):
guests are plugged in through setup_port, and the API tells every host's network
service when security groups change."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ocs.network.plan import bridge_name, tap_name
from tests.framework.cloud import Cloud


def wait(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def test_guests_are_plugged_in_and_groups_changes_reach_the_hosts(cloud: Cloud, ec2: Any) -> None:
    aio = cloud.aio
    heard: list[list[str]] = []
    lock = threading.Lock()
    network = aio.networks[0]
    original = network.endpoint.security_groups_changed

    def recording(req: Any) -> None:
        with lock:
            heard.append(sorted(req.group_ids))
        original(req)

    network.endpoint.security_groups_changed = recording  # type: ignore[method-assign]
    image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]["ImageId"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="wiring", Description="wiring", VpcId=vpc)["GroupId"]
    other = ec2.create_security_group(GroupName="wiring-2", Description="wiring", VpcId=vpc)["GroupId"]
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SecurityGroupIds=[sg])["Instances"][0][
        "InstanceId"
    ]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.2})
    item = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    eni = item["NetworkInterfaces"][0]["NetworkInterfaceId"]
    host = next(a for a in aio.agents if iid in {g.instance_id for g in a.driver.list_guests()})
    (nic,) = host.driver._guests[iid].nics.values()  # type: ignore[attr-defined]
    assert (nic.bridge, nic.tap, nic.ip) == (bridge_name(vpc), tap_name(eni), item["PrivateIpAddress"])
    driver = aio.network(host.settings.host).endpoint.driver
    wait(lambda: driver.plan is not None and [p.instance_id for p in driver.plan.ports] == [iid])

    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=rule)
    wait(lambda: [sg] in heard)
    heard.clear()
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=rule)
    wait(lambda: [sg] in heard)
    heard.clear()
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[other])
    wait(lambda: sorted([sg, other]) in heard)
    heard.clear()
    ec2.terminate_instances(InstanceIds=[iid])
    wait(lambda: [other] in heard)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.2})
    wait(lambda: driver.plan is not None and driver.plan.ports == ())  # torn down
