"""Network interfaces (ENIs) through boto3: what EC2 documents for them, errors included.

Every test uses an account of its own. The cloud has one fake host in us-east-1a
(the default subnet there is 172.31.0.0/20), so instances run there.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import code_of
from tests.functional.test_instances import FAST, Tenant

ENI = re.compile(r"^eni-[0-9a-f]{17}$")
ATTACH = re.compile(r"^eni-attach-[0-9a-f]{17}$")
MAC = re.compile(r"^02(:[0-9a-f]{2}){5}$")


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"eni-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def subnet_in(ec2, zone: str = "us-east-1a") -> dict:
    [subnet] = ec2.describe_subnets(
        Filters=[
            {"Name": "availability-zone", "Values": [zone]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    return subnet


def describe_one(ec2, eni_id: str) -> dict:
    [item] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
    return item


def usable(cidr: str, address: str) -> bool:
    net = ipaddress.IPv4Network(cidr)
    value = int(ipaddress.IPv4Address(address))
    return int(net.network_address) + 4 <= value <= int(net.broadcast_address) - 1


# --- create / describe / delete -------------------------------------------------------------------


def test_create_answers_an_available_interface(tenant):
    ec2 = tenant.ec2
    subnet = subnet_in(ec2)
    before = subnet["AvailableIpAddressCount"]
    out = ec2.create_network_interface(
        SubnetId=subnet["SubnetId"],
        Description="my eni",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": "web"}]}],
    )
    eni = out["NetworkInterface"]
    assert ENI.match(eni["NetworkInterfaceId"])
    assert eni["Status"] == "available"
    assert "Attachment" not in eni
    assert eni["SubnetId"] == subnet["SubnetId"] and eni["VpcId"] == subnet["VpcId"]
    assert eni["AvailabilityZone"] == "us-east-1a"
    assert eni["Description"] == "my eni"
    assert MAC.match(eni["MacAddress"])
    assert eni["OwnerId"] == tenant.account.account_id
    assert eni["SourceDestCheck"] is True
    assert eni["RequesterManaged"] is False
    assert eni["InterfaceType"] == "interface"
    assert [g["GroupName"] for g in eni["Groups"]] == ["default"]
    assert usable(subnet["CidrBlock"], eni["PrivateIpAddress"])
    assert eni["PrivateDnsName"] == "ip-" + eni["PrivateIpAddress"].replace(".", "-") + ".ec2.internal"
    assert eni["PrivateIpAddresses"] == [
        {
            "Primary": True,
            "PrivateIpAddress": eni["PrivateIpAddress"],
            "PrivateDnsName": eni["PrivateDnsName"],
        }
    ]
    assert eni["TagSet"] == [{"Key": "Name", "Value": "web"}]
    assert describe_one(ec2, eni["NetworkInterfaceId"]) == eni
    assert subnet_in(ec2)["AvailableIpAddressCount"] == before - 1


def test_requested_and_secondary_addresses(tenant):
    ec2 = tenant.ec2
    subnet_id = subnet_in(ec2)["SubnetId"]
    eni = ec2.create_network_interface(
        SubnetId=subnet_id,
        PrivateIpAddresses=[
            {"PrivateIpAddress": "172.31.1.10", "Primary": True},
            {"PrivateIpAddress": "172.31.1.11", "Primary": False},
        ],
        SecondaryPrivateIpAddressCount=2,
    )["NetworkInterface"]
    assert eni["PrivateIpAddress"] == "172.31.1.10"
    addresses = eni["PrivateIpAddresses"]
    assert [a["Primary"] for a in addresses] == [True, False, False, False]
    assert addresses[1]["PrivateIpAddress"] == "172.31.1.11"
    assert len({a["PrivateIpAddress"] for a in addresses}) == 4
    single = ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="172.31.2.20")[
        "NetworkInterface"
    ]
    assert single["PrivateIpAddress"] == "172.31.2.20"
    with pytest.raises(ClientError) as taken:
        ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="172.31.1.11")
    assert code_of(taken) == "InvalidIPAddress.InUse"
    for reserved in ("172.31.0.0", "172.31.0.1", "172.31.0.3", "172.31.15.255"):
        with pytest.raises(ClientError) as bad:
            ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress=reserved)
        assert code_of(bad) == "InvalidParameterValue", reserved
    with pytest.raises(ClientError) as outside:
        ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.9.9.9")
    assert code_of(outside) == "InvalidParameterValue"


def test_create_errors(tenant):
    ec2 = tenant.ec2
    with pytest.raises(ClientError) as unknown:
        ec2.create_network_interface(SubnetId="subnet-0123456789abcdef0")
    assert code_of(unknown) == "InvalidSubnetID.NotFound"
    with pytest.raises(ClientError) as group:
        ec2.create_network_interface(SubnetId=subnet_in(ec2)["SubnetId"], Groups=["sg-0123456789abcdef0"])
    assert code_of(group) == "InvalidGroup.NotFound"


def test_delete_available_and_in_use(tenant, image_id):
    ec2 = tenant.ec2
    eni_id = ec2.create_network_interface(SubnetId=subnet_in(ec2)["SubnetId"])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    with pytest.raises(ClientError) as gone:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])
    assert code_of(gone) == "InvalidNetworkInterfaceID.NotFound"
    with pytest.raises(ClientError) as again:
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    assert code_of(again) == "InvalidNetworkInterfaceID.NotFound"
    with pytest.raises(ClientError) as malformed:
        ec2.delete_network_interface(NetworkInterfaceId="eni-nothex")
    assert code_of(malformed) == "InvalidNetworkInterfaceID.Malformed"
    [instance_id] = tenant.running(image_id)
    primary = tenant.one(instance_id)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as in_use:
        ec2.delete_network_interface(NetworkInterfaceId=primary)
    assert code_of(in_use) == "InvalidNetworkInterface.InUse"


def test_subnet_with_an_interface_cannot_be_deleted(tenant):
    ec2 = tenant.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")[
        "Subnet"
    ]["SubnetId"]
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    assert (
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0][
            "PrivateIpAddress"
        ]
        == "10.20.1.4"
    )
    with pytest.raises(ClientError) as dependency:
        ec2.delete_subnet(SubnetId=subnet_id)
    assert code_of(dependency) == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    ec2.delete_subnet(SubnetId=subnet_id)


# --- the primary interface of an instance -------------------------------------------------------------


def test_instance_has_a_primary_interface(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    inst = tenant.one(instance_id)
    [nic] = inst["NetworkInterfaces"]
    [eni] = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    assert eni["NetworkInterfaceId"] == nic["NetworkInterfaceId"]
    assert eni["Status"] == "in-use" == nic["Status"]
    attachment = eni["Attachment"]
    assert (
        ATTACH.match(attachment["AttachmentId"])
        and attachment["AttachmentId"] == nic["Attachment"]["AttachmentId"]
    )
    assert attachment["DeviceIndex"] == 0 and attachment["DeleteOnTermination"] is True
    assert attachment["Status"] == "attached"
    assert attachment["InstanceId"] == instance_id
    assert attachment["InstanceOwnerId"] == tenant.account.account_id
    assert eni["PrivateIpAddress"] == inst["PrivateIpAddress"] == nic["PrivateIpAddress"]
    assert eni["MacAddress"] == nic["MacAddress"]
    assert eni["Groups"] == nic["Groups"] == inst["SecurityGroups"]
    assert nic["PrivateIpAddresses"][0]["Primary"] is True
    with pytest.raises(ClientError) as primary:
        ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"])
    assert code_of(primary) == "OperationNotPermitted"
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    with pytest.raises(ClientError) as deleted:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])
    assert code_of(deleted) == "InvalidNetworkInterfaceID.NotFound"
    assert tenant.one(instance_id)["NetworkInterfaces"] == []


def test_attach_detach_and_terminate(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    subnet_id = subnet_in(ec2)["SubnetId"]
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    out = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)
    assert ATTACH.match(out["AttachmentId"])
    eni = describe_one(ec2, eni_id)
    assert eni["Status"] == "in-use"
    assert eni["Attachment"]["DeviceIndex"] == 1 and eni["Attachment"]["DeleteOnTermination"] is False
    assert eni["Attachment"]["InstanceId"] == instance_id
    nics = tenant.one(instance_id)["NetworkInterfaces"]
    assert [n["Attachment"]["DeviceIndex"] for n in nics] == [0, 1]
    with pytest.raises(ClientError) as busy:
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=2)
    assert code_of(busy) == "InvalidNetworkInterface.InUse"
    other = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as taken:
        ec2.attach_network_interface(NetworkInterfaceId=other, InstanceId=instance_id, DeviceIndex=1)
    assert code_of(taken) == "InvalidParameterValue"
    far = ec2.create_network_interface(SubnetId=subnet_in(ec2, "us-east-1b")["SubnetId"])["NetworkInterface"]
    with pytest.raises(ClientError) as zone:
        ec2.attach_network_interface(
            NetworkInterfaceId=far["NetworkInterfaceId"], InstanceId=instance_id, DeviceIndex=2
        )
    assert code_of(zone) == "InvalidParameterCombination"
    # t2.micro takes two interfaces
    with pytest.raises(ClientError) as limit:
        ec2.attach_network_interface(NetworkInterfaceId=other, InstanceId=instance_id, DeviceIndex=2)
    assert code_of(limit) == "AttachmentLimitExceeded"
    ec2.detach_network_interface(AttachmentId=out["AttachmentId"])
    assert describe_one(ec2, eni_id)["Status"] == "available"
    assert "Attachment" not in describe_one(ec2, eni_id)
    with pytest.raises(ClientError) as detached:
        ec2.detach_network_interface(AttachmentId=out["AttachmentId"])
    assert code_of(detached) == "InvalidAttachmentID.NotFound"
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    survivor = describe_one(ec2, eni_id)  # not delete-on-termination: detached, kept
    assert survivor["Status"] == "available" and "Attachment" not in survivor


def test_delete_on_termination_can_be_set(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    eni_id = ec2.create_network_interface(SubnetId=subnet_in(ec2)["SubnetId"])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    attachment_id = ec2.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1
    )["AttachmentId"]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni_id, Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True}
    )
    out = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni_id, Attribute="attachment")
    assert out["Attachment"]["DeleteOnTermination"] is True
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    with pytest.raises(ClientError) as gone:
        describe_one(ec2, eni_id)
    assert code_of(gone) == "InvalidNetworkInterfaceID.NotFound"


# --- private addresses ----------------------------------------------------------------------------


def test_assign_and_unassign_private_addresses(tenant, image_id):
    ec2 = tenant.ec2
    eni = ec2.create_network_interface(SubnetId=subnet_in(ec2)["SubnetId"])["NetworkInterface"]
    eni_id, primary = eni["NetworkInterfaceId"], eni["PrivateIpAddress"]
    out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=2)
    assert out["NetworkInterfaceId"] == eni_id
    assigned = [a["PrivateIpAddress"] for a in out["AssignedPrivateIpAddresses"]]
    assert len(assigned) == 2
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=["172.31.3.33"])
    listed = describe_one(ec2, eni_id)["PrivateIpAddresses"]
    assert [a["PrivateIpAddress"] for a in listed] == [primary, *assigned, "172.31.3.33"]
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": ["172.31.3.33"]}]
    )["NetworkInterfaces"]
    assert [e["NetworkInterfaceId"] for e in found] == [eni_id]
    with pytest.raises(ClientError) as taken:
        ec2.create_network_interface(SubnetId=eni["SubnetId"], PrivateIpAddress="172.31.3.33")
    assert code_of(taken) == "InvalidIPAddress.InUse"
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=["172.31.3.33"])
    assert len(describe_one(ec2, eni_id)["PrivateIpAddresses"]) == 3
    with pytest.raises(ClientError) as not_mine:
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=["172.31.3.33"])
    assert code_of(not_mine) == "InvalidParameterValue"
    with pytest.raises(ClientError) as main:
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=[primary])
    assert code_of(main) == "InvalidParameterValue"
    # The address is free again for anybody in the subnet.
    again = ec2.create_network_interface(SubnetId=eni["SubnetId"], PrivateIpAddress="172.31.3.33")
    assert again["NetworkInterface"]["PrivateIpAddress"] == "172.31.3.33"
    with pytest.raises(ClientError) as unattached_limit:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=60)
    assert code_of(unattached_limit) == "PrivateIpAddressLimitExceeded"
    # An attached interface holds what its instance type allows: 2 on a t2.micro.
    [instance_id] = tenant.running(image_id)
    primary_eni = tenant.one(instance_id)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.assign_private_ip_addresses(NetworkInterfaceId=primary_eni, SecondaryPrivateIpAddressCount=1)
    with pytest.raises(ClientError) as limit:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=primary_eni, SecondaryPrivateIpAddressCount=1)
    assert code_of(limit) == "PrivateIpAddressLimitExceeded"
    nic = tenant.one(instance_id)["NetworkInterfaces"][0]
    assert [a["Primary"] for a in nic["PrivateIpAddresses"]] == [True, False]


# --- attributes -------------------------------------------------------------------------------------


def test_modify_describe_and_reset_attributes(tenant):
    ec2 = tenant.ec2
    subnet = subnet_in(ec2)
    eni_id = ec2.create_network_interface(SubnetId=subnet["SubnetId"])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    sg = ec2.create_security_group(GroupName="eni-web", Description="web", VpcId=subnet["VpcId"])["GroupId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Description={"Value": "changed"})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=[sg])
    read = ec2.describe_network_interface_attribute
    assert read(NetworkInterfaceId=eni_id, Attribute="description")["Description"] == {"Value": "changed"}
    assert read(NetworkInterfaceId=eni_id, Attribute="sourceDestCheck")["SourceDestCheck"] == {"Value": False}
    assert read(NetworkInterfaceId=eni_id, Attribute="groupSet")["Groups"] == [
        {"GroupId": sg, "GroupName": "eni-web"}
    ]
    with pytest.raises(ClientError) as in_use:
        ec2.delete_security_group(GroupId=sg)
    assert code_of(in_use) == "DependencyViolation"
    ec2.reset_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck="sourceDestCheck")
    assert describe_one(ec2, eni_id)["SourceDestCheck"] is True
    with pytest.raises(ClientError) as two:
        ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni_id, Description={"Value": "x"}, SourceDestCheck={"Value": True}
        )
    assert code_of(two) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as bad_group:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=["sg-0123456789abcdef0"])
    assert code_of(bad_group) == "InvalidGroup.NotFound"


def test_instance_attributes_act_on_the_primary_interface(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    vpc_id = tenant.one(instance_id)["VpcId"]
    sg = ec2.create_security_group(GroupName="eni-app", Description="app", VpcId=vpc_id)["GroupId"]
    ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})
    ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[sg])
    inst = tenant.one(instance_id)
    assert inst["SourceDestCheck"] is False
    [nic] = inst["NetworkInterfaces"]
    assert nic["SourceDestCheck"] is False and [g["GroupId"] for g in nic["Groups"]] == [sg]
    eni = describe_one(ec2, nic["NetworkInterfaceId"])
    assert eni["SourceDestCheck"] is False and [g["GroupId"] for g in eni["Groups"]] == [sg]
    attr = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="sourceDestCheck")
    assert attr["SourceDestCheck"] == {"Value": False}


# --- filters and pages --------------------------------------------------------------------------------


def test_filters_and_pagination(tenant):
    ec2 = tenant.ec2
    east_a, east_b = subnet_in(ec2), subnet_in(ec2, "us-east-1b")
    made = []
    for i in range(7):
        subnet = east_a if i % 2 == 0 else east_b
        made.append(
            ec2.create_network_interface(
                SubnetId=subnet["SubnetId"],
                Description=f"n{i}",
                TagSpecifications=[
                    {"ResourceType": "network-interface", "Tags": [{"Key": "parity", "Value": str(i % 2)}]}
                ],
            )["NetworkInterface"]
        )

    def ids(*filters) -> set[str]:
        out = ec2.describe_network_interfaces(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return {e["NetworkInterfaceId"] for e in out["NetworkInterfaces"]}

    all_ids = {e["NetworkInterfaceId"] for e in made}
    evens = {e["NetworkInterfaceId"] for e in made[::2]}
    assert ids() == all_ids
    assert ids(("subnet-id", [east_a["SubnetId"]])) == evens
    assert ids(("availability-zone", ["us-east-1a"])) == evens
    assert ids(("tag:parity", ["0"])) == evens
    assert ids(("vpc-id", [east_a["VpcId"]])) == all_ids
    assert ids(("status", ["available"])) == all_ids
    assert ids(("status", ["in-use"])) == set()
    assert ids(("private-ip-address", [made[3]["PrivateIpAddress"]])) == {made[3]["NetworkInterfaceId"]}
    assert ids(("mac-address", [made[1]["MacAddress"]])) == {made[1]["NetworkInterfaceId"]}
    assert ids(("network-interface-id", [made[2]["NetworkInterfaceId"]])) == {made[2]["NetworkInterfaceId"]}
    assert ids(("group-id", [made[0]["Groups"][0]["GroupId"]])) == all_ids
    assert ids(("description", ["n1", "n5"])) == {
        made[1]["NetworkInterfaceId"],
        made[5]["NetworkInterfaceId"],
    }
    assert ids(("attachment.instance-id", ["i-0123456789abcdef0"])) == set()
    with pytest.raises(ClientError) as unknown:
        ids(("no-such-filter", ["x"]))
    assert code_of(unknown) == "InvalidParameterValue"
    seen: list[str] = []
    token = None
    while True:
        kwargs = {"MaxResults": 5, **({"NextToken": token} if token else {})}
        page = ec2.describe_network_interfaces(**kwargs)
        assert len(page["NetworkInterfaces"]) <= 5
        seen += [e["NetworkInterfaceId"] for e in page["NetworkInterfaces"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(all_ids)
    with pytest.raises(ClientError) as both:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[made[0]["NetworkInterfaceId"]], MaxResults=5)
    assert code_of(both) == "InvalidParameterCombination"


# --- isolation ----------------------------------------------------------------------------------------


def test_another_accounts_interface_does_not_exist(cloud, tenant, image_id):
    ec2 = tenant.ec2
    eni_id = ec2.create_network_interface(SubnetId=subnet_in(ec2)["SubnetId"])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    stranger = Tenant(cloud, f"eni-stranger-{secrets.token_hex(3)}")
    other = stranger.ec2
    assert other.describe_network_interfaces()["NetworkInterfaces"] == []
    [theirs] = stranger.running(image_id)
    try:
        calls = [
            lambda: other.describe_network_interfaces(NetworkInterfaceIds=[eni_id]),
            lambda: other.delete_network_interface(NetworkInterfaceId=eni_id),
            lambda: other.attach_network_interface(
                NetworkInterfaceId=eni_id, InstanceId=theirs, DeviceIndex=1
            ),
            lambda: other.modify_network_interface_attribute(
                NetworkInterfaceId=eni_id, Description={"Value": "x"}
            ),
            lambda: other.describe_network_interface_attribute(
                NetworkInterfaceId=eni_id, Attribute="description"
            ),
            lambda: other.assign_private_ip_addresses(
                NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=1
            ),
            lambda: other.create_tags(Resources=[eni_id], Tags=[{"Key": "a", "Value": "b"}]),
        ]
        for call in calls:
            with pytest.raises(ClientError) as info:
                call()
            assert code_of(info) == "InvalidNetworkInterfaceID.NotFound"
        theirs_eni = stranger.one(theirs)["NetworkInterfaces"][0]
        with pytest.raises(ClientError) as detach:
            ec2.detach_network_interface(AttachmentId=theirs_eni["Attachment"]["AttachmentId"])
        assert code_of(detach) == "InvalidAttachmentID.NotFound"
        with pytest.raises(ClientError) as attach:
            ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=theirs, DeviceIndex=1)
        assert code_of(attach) == "InvalidInstanceID.NotFound"
        assert describe_one(ec2, eni_id)["Description"] == ""
    finally:
        stranger.cleanup()


# --- one IPAM, under concurrency -----------------------------------------------------------------------


def test_parallel_launches_and_interfaces_never_share_an_address(tenant, image_id):
    ec2 = tenant.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    cidr = "10.30.0.0/28"  # 16 addresses, 11 usable
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]
    barrier = threading.Barrier(14)
    lock = threading.Lock()
    got: list[str] = []
    errors: list[str] = []

    def launch() -> None:
        barrier.wait()
        try:
            out = tenant.run(image_id, SubnetId=subnet_id)
        except ClientError as exc:
            with lock:
                errors.append(exc.response["Error"]["Code"])
            return
        with lock:
            got.extend(i["PrivateIpAddress"] for i in out["Instances"])

    def create() -> None:
        barrier.wait()
        try:
            eni = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]
        except ClientError as exc:
            with lock:
                errors.append(exc.response["Error"]["Code"])
            return
        with lock:
            got.append(eni["PrivateIpAddress"])

    threads = [threading.Thread(target=launch if i % 2 else create) for i in range(14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(got) == len(set(got)), got
    assert all(usable(cidr, a) for a in got)
    assert len(got) == 11 and len(errors) == 3, (got, errors)
    assert set(errors) == {"InsufficientFreeAddressesInSubnet"}
    held = {
        a["PrivateIpAddress"]
        for e in ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])[
            "NetworkInterfaces"
        ]
        for a in e["PrivateIpAddresses"]
    }
    assert held == set(got)
    [subnet] = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["AvailableIpAddressCount"] == 0
