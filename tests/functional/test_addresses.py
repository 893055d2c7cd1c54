"""Elastic IP addresses through boto3: allocation from the pool, association, errors as EC2 answers.

Every test uses an account of its own; the pool is the default
``[network] public_address_pool`` (198.51.100.0/24) and the limit 5 per account.
"""

from __future__ import annotations

import ipaddress
import re
import secrets

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import code_of
from tests.functional.test_instances import FAST, Tenant

ALLOC = re.compile(r"^eipalloc-[0-9a-f]{17}$")
ASSOC = re.compile(r"^eipassoc-[0-9a-f]{17}$")
POOL = ipaddress.IPv4Network("198.51.100.0/24")


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"eip-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def one_address(ec2, allocation_id: str) -> dict:
    [item] = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    return item


def test_allocate_describe_release(tenant):
    ec2 = tenant.ec2
    out = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": "front"}]}],
    )
    assert ALLOC.match(out["AllocationId"])
    assert out["Domain"] == "vpc"
    public = ipaddress.IPv4Address(out["PublicIp"])
    assert public in POOL and public not in (POOL.network_address, POOL.broadcast_address)
    item = one_address(ec2, out["AllocationId"])
    assert item["PublicIp"] == out["PublicIp"] and item["Domain"] == "vpc"
    assert item["Tags"] == [{"Key": "Name", "Value": "front"}]
    assert "AssociationId" not in item and "InstanceId" not in item
    assert ec2.describe_addresses(PublicIps=[out["PublicIp"]])["Addresses"] == [item]
    tagged = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["front"]}])["Addresses"]
    assert [a["AllocationId"] for a in tagged] == [out["AllocationId"]]
    ec2.release_address(AllocationId=out["AllocationId"])
    with pytest.raises(ClientError) as gone:
        ec2.describe_addresses(AllocationIds=[out["AllocationId"]])
    assert code_of(gone) == "InvalidAllocationID.NotFound"
    with pytest.raises(ClientError) as again:
        ec2.release_address(AllocationId=out["AllocationId"])
    assert code_of(again) == "InvalidAllocationID.NotFound"
    with pytest.raises(ClientError) as unknown_ip:
        ec2.describe_addresses(PublicIps=["198.51.100.254"])
    assert code_of(unknown_ip) == "InvalidAddress.NotFound"


def test_vpc_addresses_are_named_by_allocation_and_association_ids(tenant, image_id):
    """PublicIp names an address only in EC2-Classic: a VPC address is released by its
    allocation ID and unmapped by its association ID, and nothing changes otherwise."""
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    alloc = ec2.allocate_address(Domain="vpc")
    ip, allocation_id = alloc["PublicIp"], alloc["AllocationId"]

    def refused(call, **kwargs):
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]

    assert refused(ec2.release_address, PublicIp=ip, AllocationId=allocation_id)[0] == (
        "InvalidParameterCombination"
    )
    assert refused(ec2.release_address, PublicIp=ip) == (
        "InvalidParameterValue",
        "You must specify an allocation id when releasing a VPC elastic IP address",
    )
    unmapping = (
        "InvalidParameterValue",
        "You must specify an association id when unmapping an address from a VPC instance",
    )
    assert refused(ec2.disassociate_address, PublicIp=ip) == unmapping  # not associated
    association_id = ec2.associate_address(AllocationId=allocation_id, InstanceId=instance_id)[
        "AssociationId"
    ]
    assert refused(ec2.disassociate_address, PublicIp=ip) == unmapping  # associated
    assert one_address(ec2, allocation_id)["AssociationId"] == association_id
    ec2.disassociate_address(AssociationId=association_id)
    assert "AssociationId" not in one_address(ec2, allocation_id)
    # DescribeAddresses: something that is no IP address is a bad value, a well-formed one is not found.
    assert refused(ec2.describe_addresses, PublicIps=["invalidIp"])[0] == "InvalidParameterValue"
    assert refused(ec2.describe_addresses, PublicIps=["198.51.100.254"])[0] == "InvalidAddress.NotFound"
    ec2.release_address(AllocationId=allocation_id)


def test_two_accounts_never_get_one_address_and_the_limit_is_five(cloud, tenant):
    ec2 = tenant.ec2
    other = cloud.client(cloud.create_account(f"eip-other-{secrets.token_hex(3)}"))
    mine = [ec2.allocate_address(Domain="vpc") for _ in range(5)]
    theirs = other.allocate_address(Domain="vpc")
    assert len({a["PublicIp"] for a in [*mine, theirs]}) == 6
    with pytest.raises(ClientError) as limit:
        ec2.allocate_address(Domain="vpc")
    assert code_of(limit) == "AddressLimitExceeded"
    ec2.release_address(AllocationId=mine[0]["AllocationId"])
    assert ALLOC.match(ec2.allocate_address(Domain="vpc")["AllocationId"])
    other.release_address(AllocationId=theirs["AllocationId"])


def test_associate_with_an_instance(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    alloc = ec2.allocate_address(Domain="vpc")
    association_id = ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance_id)[
        "AssociationId"
    ]
    assert ASSOC.match(association_id)
    inst = tenant.one(instance_id)
    [nic] = inst["NetworkInterfaces"]
    address = one_address(ec2, alloc["AllocationId"])
    assert address["AssociationId"] == association_id
    assert address["InstanceId"] == instance_id
    assert address["NetworkInterfaceId"] == nic["NetworkInterfaceId"]
    assert address["NetworkInterfaceOwnerId"] == tenant.account.account_id
    assert address["PrivateIpAddress"] == inst["PrivateIpAddress"]
    public_dns = "ec2-" + alloc["PublicIp"].replace(".", "-") + ".compute-1.amazonaws.com"
    assert inst["PublicIpAddress"] == alloc["PublicIp"]
    assert inst["PublicDnsName"] == public_dns
    assert nic["Association"] == {
        "IpOwnerId": tenant.account.account_id,
        "PublicDnsName": public_dns,
        "PublicIp": alloc["PublicIp"],
    }
    assert nic["PrivateIpAddresses"][0]["Association"]["PublicIp"] == alloc["PublicIp"]
    [eni] = ec2.describe_network_interfaces(NetworkInterfaceIds=[nic["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert eni["Association"]["AllocationId"] == alloc["AllocationId"]
    assert eni["Association"]["AssociationId"] == association_id
    assert eni["Association"]["PublicIp"] == alloc["PublicIp"]

    def found(name: str, value: str) -> list[str]:
        out = ec2.describe_addresses(Filters=[{"Name": name, "Values": [value]}])["Addresses"]
        return [a["AllocationId"] for a in out]

    for name, value in (
        ("allocation-id", alloc["AllocationId"]),
        ("association-id", association_id),
        ("instance-id", instance_id),
        ("network-interface-id", nic["NetworkInterfaceId"]),
        ("private-ip-address", inst["PrivateIpAddress"]),
        ("public-ip", alloc["PublicIp"]),
        ("domain", "vpc"),
    ):
        assert found(name, value) == [alloc["AllocationId"]], name
    assert found("instance-id", "i-0123456789abcdef0") == []
    by_ip = ec2.describe_instances(Filters=[{"Name": "ip-address", "Values": [alloc["PublicIp"]]}])
    assert [i["InstanceId"] for r in by_ip["Reservations"] for i in r["Instances"]] == [instance_id]

    with pytest.raises(ClientError) as in_use:
        ec2.release_address(AllocationId=alloc["AllocationId"])
    assert code_of(in_use) == "InvalidIPAddress.InUse"
    ec2.disassociate_address(AssociationId=association_id)
    with pytest.raises(ClientError) as twice:
        ec2.disassociate_address(AssociationId=association_id)
    assert code_of(twice) == "InvalidAssociationID.NotFound"
    inst = tenant.one(instance_id)
    # EC2: a running instance of a MapPublicIpOnLaunch subnet gets a new public address of its own
    assert inst["PublicIpAddress"] not in ("", alloc["PublicIp"])
    assert inst["NetworkInterfaces"][0]["Association"]["IpOwnerId"] == "amazon"
    ec2.release_address(AllocationId=alloc["AllocationId"])


def test_reassociation_and_secondary_addresses(tenant, image_id):
    ec2 = tenant.ec2
    first, second = tenant.running(image_id, count=2)
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=alloc, InstanceId=first)
    with pytest.raises(ClientError) as associated:
        ec2.associate_address(AllocationId=alloc, InstanceId=second, AllowReassociation=False)
    assert code_of(associated) == "Resource.AlreadyAssociated"
    moved = ec2.associate_address(AllocationId=alloc, InstanceId=second, AllowReassociation=True)
    assert one_address(ec2, alloc)["InstanceId"] == second
    assert one_address(ec2, alloc)["AssociationId"] == moved["AssociationId"]
    eip = one_address(ec2, alloc)["PublicIp"]
    # the instance the elastic IP left gets a public address of its own again (EC2)
    first_public = tenant.one(first)["PublicIpAddress"]
    assert first_public != eip
    # A target that has an elastic IP loses it to the new one (which stays allocated).
    other = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=other, InstanceId=second)
    assert "AssociationId" not in one_address(ec2, alloc)
    assert one_address(ec2, other)["InstanceId"] == second
    # A secondary private address, named with the interface.
    eni_id = tenant.one(first)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    [secondary] = [
        a["PrivateIpAddress"]
        for a in ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=1)[
            "AssignedPrivateIpAddresses"
        ]
    ]
    ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni_id, PrivateIpAddress=secondary)
    item = one_address(ec2, alloc)
    assert item["PrivateIpAddress"] == secondary and item["NetworkInterfaceId"] == eni_id
    # the instance's public IP is its primary address's: still its own
    assert tenant.one(first)["PublicIpAddress"] == first_public
    with pytest.raises(ClientError) as wrong_ip:
        ec2.associate_address(AllocationId=other, NetworkInterfaceId=eni_id, PrivateIpAddress="172.31.9.9")
    assert code_of(wrong_ip) == "InvalidParameterValue"
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=[secondary])
    assert "AssociationId" not in one_address(ec2, alloc)
    with pytest.raises(ClientError) as missing:
        ec2.associate_address(AllocationId=alloc)
    assert code_of(missing) == "MissingParameter"


def test_terminating_disassociates_but_keeps_the_allocation(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance_id)
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    item = one_address(ec2, alloc["AllocationId"])
    assert item["PublicIp"] == alloc["PublicIp"]
    assert "AssociationId" not in item and "InstanceId" not in item
    with pytest.raises(ClientError) as terminated:
        ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance_id)
    assert code_of(terminated) == "IncorrectInstanceState"
    ec2.release_address(AllocationId=alloc["AllocationId"])


def test_another_accounts_addresses_do_not_exist(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    alloc = ec2.allocate_address(Domain="vpc")
    association_id = ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance_id)[
        "AssociationId"
    ]
    stranger = Tenant(cloud, f"eip-stranger-{secrets.token_hex(3)}")
    other = stranger.ec2
    try:
        assert other.describe_addresses()["Addresses"] == []
        [theirs] = stranger.running(image_id)
        for call in (
            lambda: other.describe_addresses(AllocationIds=[alloc["AllocationId"]]),
            lambda: other.release_address(AllocationId=alloc["AllocationId"]),
            lambda: other.associate_address(AllocationId=alloc["AllocationId"], InstanceId=theirs),
            lambda: other.create_tags(Resources=[alloc["AllocationId"]], Tags=[{"Key": "a", "Value": "b"}]),
        ):
            with pytest.raises(ClientError) as info:
                call()
            assert code_of(info) == "InvalidAllocationID.NotFound"
        with pytest.raises(ClientError) as by_ip:
            other.release_address(PublicIp=alloc["PublicIp"])
        assert code_of(by_ip) == "AuthFailure"
        with pytest.raises(ClientError) as assoc:
            other.disassociate_address(AssociationId=association_id)
        assert code_of(assoc) == "InvalidAssociationID.NotFound"
        own = other.allocate_address(Domain="vpc")["AllocationId"]
        with pytest.raises(ClientError) as their_instance:
            other.associate_address(AllocationId=own, InstanceId=instance_id)
        assert code_of(their_instance) == "InvalidInstanceID.NotFound"
        other.release_address(AllocationId=own)
        assert one_address(ec2, alloc["AllocationId"])["AssociationId"] == association_id
    finally:
        stranger.cleanup()
    ec2.disassociate_address(AssociationId=association_id)
    ec2.release_address(AllocationId=alloc["AllocationId"])
    with pytest.raises(ClientError) as malformed:
        ec2.release_address(AllocationId="eipalloc-zz")
    assert code_of(malformed) == "InvalidAllocationID.Malformed"


def test_an_address_maps_only_into_a_vpc_with_an_internet_gateway(tenant):
    """EC2: Gateway.NotAttached "Network vpc-x is not attached to any internet gateway"."""
    ec2 = tenant.ec2
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    with pytest.raises(ClientError) as exc:
        ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=eni)
    assert code_of(exc) == "Gateway.NotAttached"
    assert vpc in exc.value.response["Error"]["Message"]
    assert "AssociationId" not in one_address(ec2, allocation)

    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    association = ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=eni)["AssociationId"]
    assert one_address(ec2, allocation)["AssociationId"] == association
    ec2.disassociate_address(AssociationId=association)
    ec2.release_address(AllocationId=allocation)
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)
