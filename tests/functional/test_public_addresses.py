"""Public IPv4 addresses EC2 assigns by itself (MapPublicIpOnLaunch, AssociatePublicIpAddress), through boto3.

Every test uses an account of its own. The shared cloud has the default pool
(198.51.100.0/24); the tests of an exhausted pool run a cloud of their own whose
pool (a /29) holds six addresses.
"""

from __future__ import annotations

import ipaddress
import secrets

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from ocs.db.models.interfaces import AUTO, ElasticAddress
from ocs.network.metadata import CallerKey
from ocs.network.service import metadata_for
from tests.framework.cloud import Cloud
from tests.framework.errors import code_of, error_of
from tests.functional.test_instances import FAST, Tenant

POOL = ipaddress.IPv4Network("198.51.100.0/24")
TINY_POOL = "203.0.113.0/29"  # six addresses: .1 ... .6


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"pub-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def dns(ip: str) -> str:
    return "ec2-" + ip.replace(".", "-") + ".compute-1.amazonaws.com"


def auto_rows(cloud, interface_id: str) -> list[str]:
    """The auto-assigned public addresses stored for an interface."""
    with cloud.session() as s:
        return list(
            s.scalars(
                select(ElasticAddress.public_ip).where(
                    ElasticAddress.kind == AUTO, ElasticAddress.network_interface_id == interface_id
                )
            )
        )


def own_subnet(ec2, cidr: str = "10.40.1.0/24") -> str:
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]


def nic(subnet_id: str | None = None, **extra) -> list[dict]:
    spec: dict = {"DeviceIndex": 0, **extra}
    if subnet_id:
        spec["SubnetId"] = subnet_id
    return [spec]


def stop(tenant, instance_id: str) -> None:
    tenant.ec2.stop_instances(InstanceIds=[instance_id])
    tenant.ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig=FAST)


def start(tenant, instance_id: str) -> None:
    tenant.ec2.start_instances(InstanceIds=[instance_id])
    tenant.ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)


# --- assignment and how it shows --------------------------------------------------------------------


def test_default_subnet_instance_shows_its_public_address(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    inst = tenant.one(instance_id)
    public = inst["PublicIpAddress"]
    assert ipaddress.IPv4Address(public) in POOL
    assert inst["PublicDnsName"] == dns(public)
    association = {"IpOwnerId": "amazon", "PublicDnsName": dns(public), "PublicIp": public}
    [iface] = inst["NetworkInterfaces"]
    assert iface["Association"] == association
    assert iface["PrivateIpAddresses"][0]["Association"] == association
    [eni] = ec2.describe_network_interfaces(NetworkInterfaceIds=[iface["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert eni["Association"] == association  # no AllocationId nor AssociationId: not an elastic IP
    assert eni["PrivateIpAddresses"][0]["Association"] == association

    def instances_by(name: str, value: str) -> list[str]:
        found = tenant.instances(Filters=[{"Name": name, "Values": [value]}])
        return [i["InstanceId"] for i in found]

    for name in ("ip-address", "network-interface.addresses.association.public-ip", "dns-name"):
        value = dns(public) if name == "dns-name" else public
        assert instances_by(name, value) == [instance_id], name
    assert instances_by("ip-address", "198.51.100.254") == []

    def interfaces_by(name: str, value: str) -> list[str]:
        found = ec2.describe_network_interfaces(Filters=[{"Name": name, "Values": [value]}])
        return [n["NetworkInterfaceId"] for n in found["NetworkInterfaces"]]

    for name, value in (
        ("association.public-ip", public),
        ("addresses.association.public-ip", public),
        ("association.ip-owner-id", "amazon"),
        ("association.public-dns-name", dns(public)),
    ):
        assert interfaces_by(name, value) == [iface["NetworkInterfaceId"]], name

    # The metadata service reads the same mapping.
    with cloud.session() as s:
        meta = metadata_for(s, CallerKey(inst["SubnetId"], inst["PrivateIpAddress"]), "us-east-1")
    assert meta is not None
    assert meta.public_ipv4 == public and meta.public_hostname == dns(public)
    assert meta.interfaces[0].public_ipv4s == (public,)


def test_auto_addresses_are_not_elastic(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    public = tenant.one(instance_id)["PublicIpAddress"]
    assert ec2.describe_addresses()["Addresses"] == []
    with pytest.raises(ClientError) as described:
        ec2.describe_addresses(PublicIps=[public])
    assert error_of(described) == ("InvalidAddress.NotFound", f"Address '{public}' not found.")
    for call in (
        lambda: ec2.release_address(PublicIp=public),
        lambda: ec2.disassociate_address(PublicIp=public),
        lambda: ec2.associate_address(PublicIp=public, InstanceId=instance_id),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert error_of(refused) == ("AuthFailure", f"The address '{public}' does not belong to you.")
    assert tenant.one(instance_id)["PublicIpAddress"] == public
    # Not counted against the limit of five, and never handed out while in use.
    allocated = [ec2.allocate_address(Domain="vpc") for _ in range(5)]
    assert public not in {a["PublicIp"] for a in allocated}
    with pytest.raises(ClientError) as limit:
        ec2.allocate_address(Domain="vpc")
    assert code_of(limit) == "AddressLimitExceeded"
    for a in allocated:
        ec2.release_address(AllocationId=a["AllocationId"])


def test_associate_public_ip_address_overrides_the_subnet(tenant, image_id):
    ec2 = tenant.ec2
    subnet_id = own_subnet(ec2)
    [plain] = tenant.running(image_id, SubnetId=subnet_id)
    assert "PublicIpAddress" not in tenant.one(plain)  # a new subnet does not map public addresses
    [forced] = tenant.running(image_id, NetworkInterfaces=nic(subnet_id, AssociatePublicIpAddress=True))
    assert ipaddress.IPv4Address(tenant.one(forced)["PublicIpAddress"]) in POOL
    [refused] = tenant.running(image_id, NetworkInterfaces=nic(AssociatePublicIpAddress=False))
    assert "PublicIpAddress" not in tenant.one(refused)  # in a default subnet, which maps them
    assert "Association" not in tenant.one(refused)["NetworkInterfaces"][0]
    # ModifySubnetAttribute MapPublicIpOnLaunch turns the subnet's default on.
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    [subnet] = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["MapPublicIpOnLaunch"] is True
    [mapped] = tenant.running(image_id, SubnetId=subnet_id)
    assert "PublicIpAddress" in tenant.one(mapped)
    [still_refused] = tenant.running(
        image_id, NetworkInterfaces=nic(subnet_id, AssociatePublicIpAddress=False)
    )
    assert "PublicIpAddress" not in tenant.one(still_refused)
    launched = [
        i["InstanceId"] for i in tenant.run(image_id, SubnetId=subnet_id, MinCount=3, MaxCount=3)["Instances"]
    ]
    publics = [tenant.one(i)["PublicIpAddress"] for i in launched]
    assert len(set(publics)) == 3  # each instance its own


@pytest.mark.parametrize(
    ("interfaces", "message"),
    [
        (
            [{"DeviceIndex": 1, "AssociatePublicIpAddress": True}],
            "The associatePublicIPAddress parameter can only be specified for the network interface with "
            "DeviceIndex 0.",
        ),
        (
            [{"DeviceIndex": 0, "AssociatePublicIpAddress": True}, {"DeviceIndex": 1}],
            "The associatePublicIPAddress parameter cannot be specified when launching with multiple network "
            "interfaces.",
        ),
        (
            [
                {
                    "DeviceIndex": 0,
                    "AssociatePublicIpAddress": False,
                    "NetworkInterfaceId": "eni-0123456789abcdef0",
                }
            ],
            "The associatePublicIPAddress parameter cannot be specified for a network interface with an ID.",
        ),
    ],
)
def test_associate_public_ip_address_rules(tenant, image_id, interfaces, message):
    with pytest.raises(ClientError) as refused:
        tenant.run(image_id, NetworkInterfaces=interfaces)
    assert error_of(refused) == ("InvalidParameterCombination", message)
    assert tenant.instances() == []


# --- lifecycle --------------------------------------------------------------------------------------


def test_stop_releases_and_start_assigns_again(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [mapped] = tenant.running(image_id)
    [refused] = tenant.running(image_id, NetworkInterfaces=nic(AssociatePublicIpAddress=False))
    eni = tenant.one(mapped)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert len(auto_rows(cloud, eni)) == 1
    for instance_id in (mapped, refused):
        stop(tenant, instance_id)
    inst = tenant.one(mapped)
    assert "PublicIpAddress" not in inst and inst["PublicDnsName"] == ""
    assert "Association" not in inst["NetworkInterfaces"][0]
    assert auto_rows(cloud, eni) == []
    for instance_id in (mapped, refused):
        start(tenant, instance_id)
    public = tenant.one(mapped)["PublicIpAddress"]
    assert auto_rows(cloud, eni) == [public]
    assert tenant.one(mapped)["NetworkInterfaces"][0]["Association"]["IpOwnerId"] == "amazon"
    assert "PublicIpAddress" not in tenant.one(refused)  # the launch's choice holds at each start
    ec2.terminate_instances(InstanceIds=[mapped])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[mapped], WaiterConfig=FAST)
    assert "PublicIpAddress" not in tenant.one(mapped)
    assert auto_rows(cloud, eni) == []


def test_elastic_ip_replaces_the_public_address_and_gives_it_back(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    inst = tenant.one(instance_id)
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance_id)
    inst = tenant.one(instance_id)
    assert inst["PublicIpAddress"] == alloc["PublicIp"]
    assert inst["NetworkInterfaces"][0]["Association"]["IpOwnerId"] == tenant.account.account_id
    assert auto_rows(cloud, eni) == []  # released
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    inst = tenant.one(instance_id)
    assert inst["PublicIpAddress"] not in (None, alloc["PublicIp"])
    assert inst["NetworkInterfaces"][0]["Association"]["IpOwnerId"] == "amazon"
    assert auto_rows(cloud, eni) == [inst["PublicIpAddress"]]
    # Stopped with an elastic IP: no public address of its own at start, the elastic IP shows.
    stop(tenant, instance_id)
    association = ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance_id)
    start(tenant, instance_id)
    assert tenant.one(instance_id)["PublicIpAddress"] == alloc["PublicIp"]
    assert auto_rows(cloud, eni) == []
    # Disassociated while stopped: nothing until it starts.
    stop(tenant, instance_id)
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    assert "PublicIpAddress" not in tenant.one(instance_id)
    start(tenant, instance_id)
    assert tenant.one(instance_id)["NetworkInterfaces"][0]["Association"]["IpOwnerId"] == "amazon"
    ec2.release_address(AllocationId=alloc["AllocationId"])


def test_no_new_public_address_with_two_interfaces(cloud, tenant, image_id):
    """EC2: a released public address is not given back while more than one interface is attached."""
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    inst = tenant.one(instance_id)
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    second = ec2.create_network_interface(SubnetId=inst["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=instance_id, DeviceIndex=1)
    assert len(auto_rows(cloud, eni)) == 1  # kept while nothing releases it
    alloc = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eni)
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    assert "PublicIpAddress" not in tenant.one(instance_id)
    ec2.release_address(AllocationId=alloc["AllocationId"])


# --- an exhausted pool ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    c = Cloud(
        tmp_path_factory.mktemp("tiny"), overrides={"network": {"public_address_pool": [TINY_POOL]}}
    ).start()
    yield c
    c.stop()


@pytest.fixture
def tiny_tenant(tiny):
    t = Tenant(tiny, f"tiny-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


@pytest.fixture
def tiny_image(tiny):
    [image] = tiny.client().describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]


def test_exhausted_pool(tiny, tiny_tenant, tiny_image):
    """A public address asked for (AssociatePublicIpAddress) is refused past the pool's
    end with nothing half-made; the subnet's MapPublicIpOnLaunch alone is best effort:
    launches and starts go on without a public address rather than fail."""
    t, ec2 = tiny_tenant, tiny_tenant.ec2
    first = t.running(tiny_image, count=2)
    eips = [ec2.allocate_address(Domain="vpc") for _ in range(3)]  # one address of six left
    before = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    asked = nic(AssociatePublicIpAddress=True)
    with pytest.raises(ClientError) as out:
        t.run(tiny_image, MinCount=2, MaxCount=2, NetworkInterfaces=asked)
    assert code_of(out) == "InsufficientAddressCapacity"
    assert sorted(i["InstanceId"] for i in t.instances()) == sorted(first)  # nothing half-made
    after = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert [s["AvailableIpAddressCount"] for s in after] == [s["AvailableIpAddressCount"] for s in before]
    # MinCount/MaxCount: as many as the pool allows when each must have one.
    launched = t.run(tiny_image, MinCount=1, MaxCount=3, NetworkInterfaces=asked)["Instances"]
    assert len(launched) == 1
    third = launched[0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[third], WaiterConfig=FAST)
    assert t.one(third)["PublicIpAddress"]
    # The pool is out: the subnet's default launches instances without a public address.
    [private_only] = t.running(tiny_image)
    assert "PublicIpAddress" not in t.one(private_only)
    with pytest.raises(ClientError) as eip:
        ec2.allocate_address(Domain="vpc")
    assert code_of(eip) == "InsufficientAddressCapacity"
    # A stopped instance gives its address back; another takes it; the start goes on without one.
    stop(t, third)
    fourth = ec2.allocate_address(Domain="vpc")
    start(t, third)
    assert "PublicIpAddress" not in t.one(third)
    stop(t, third)
    # Disassociating an elastic IP with the pool out of addresses still works (no public address then).
    association = ec2.associate_address(AllocationId=eips[0]["AllocationId"], InstanceId=first[0])
    fifth = ec2.allocate_address(Domain="vpc")  # takes the address first[0] gave back
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    assert "PublicIpAddress" not in t.one(first[0])
    # Freed addresses serve a start again.
    ec2.release_address(AllocationId=fourth["AllocationId"])
    ec2.release_address(AllocationId=fifth["AllocationId"])
    start(t, third)
    assert ipaddress.IPv4Address(t.one(third)["PublicIpAddress"]) in ipaddress.IPv4Network(TINY_POOL)
    for e in eips:
        ec2.release_address(AllocationId=e["AllocationId"])
