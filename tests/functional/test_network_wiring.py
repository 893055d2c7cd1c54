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


def test_public_address_and_route_changes_reach_the_hosts_carrying_the_vpc(cloud: Cloud, ec2: Any) -> None:
    """AssociateAddress, DisassociateAddress (the VPC the address leaves too), routes,
    route-table associations and internet gateways: the API fans ``routing_changed``
    out with the VPCs concerned, once the change has committed."""
    network = cloud.aio.networks[0]
    heard: list[list[str]] = []
    lock = threading.Lock()
    original = network.endpoint.routing_changed

    def recording(req: Any) -> None:
        with lock:
            heard.append(sorted(req.vpc_ids))
        original(req)

    network.endpoint.routing_changed = recording  # type: ignore[method-assign]

    def heard_now(expected: list[str]) -> None:
        wait(lambda: sorted(expected) in heard)
        with lock:
            heard.clear()

    image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]["ImageId"]
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    heard_now([vpc])
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    heard_now([vpc])
    assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    heard_now([vpc])
    a = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    b = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0][
        "InstanceId"
    ]
    ec2.get_waiter("instance_running").wait(InstanceIds=[a, b], WaiterConfig={"Delay": 0.2})
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=a)
    heard_now([default])
    moved = ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=b, AllowReassociation=True)
    heard_now([default, vpc])  # the VPC it left and the one it went to
    ec2.disassociate_address(AssociationId=moved["AssociationId"])
    heard_now([vpc])
    ec2.disassociate_route_table(AssociationId=assoc)
    heard_now([vpc])
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    heard_now([vpc])
    # A NAT gateway: its host builds it (available), routes to it reach the VPC's hosts,
    # and deleting it has the host tear it down (deleted).
    nat_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=nat_eip)["NatGateway"]["NatGatewayId"]
    heard_now([vpc])
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat], WaiterConfig={"Delay": 0.2})
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    heard_now([vpc])
    carriers = [n.endpoint for n in cloud.aio.networks if n.endpoint.plan and n.endpoint.plan.nat_gateways]
    assert [[g.nat_id for g in e.plan.nat_gateways] for e in carriers if e.plan] == [[nat]]
    ec2.delete_nat_gateway(NatGatewayId=nat)
    heard_now([vpc])
    ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat], WaiterConfig={"Delay": 0.2})
    assert carriers[0].plan is not None and carriers[0].plan.nat_gateways == ()
    ec2.release_address(AllocationId=nat_eip)
    ec2.terminate_instances(InstanceIds=[a, b])
    ec2.release_address(AllocationId=eip["AllocationId"])
