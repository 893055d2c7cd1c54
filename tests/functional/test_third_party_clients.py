"""Clients other than botocore against the whole cloud: apache-libcloud and boto 2.

botocore reads responses by name and forgives much; these clients read the XML
their own way (boto 2 with a SAX handler that ends an object at the first
nested ``</item>``), sign with Signature Version 2 by default, send bare list
parameters (``KeyName=x``) and scope SigV4 credentials by host name. What they
need is what EC2 does, so this module keeps OCS honest where botocore cannot.
"""

from __future__ import annotations

import time
import warnings
from urllib.parse import urlsplit

import pytest

with warnings.catch_warnings():  # boto 2 is old: imp, datetime.utcnow, escape sequences
    warnings.simplefilter("ignore")
    import boto.ec2.connection
    import boto.exception
    import boto.vpc
    from boto.ec2.regioninfo import RegionInfo

from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.base import NodeImage
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@ocs"


def host_port(cloud) -> tuple[str, int]:
    parts = urlsplit(cloud.endpoint)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def libcloud_driver(cloud, signature_version: str | None = None):
    host, port = host_port(cloud)
    kwargs = {"signature_version": signature_version} if signature_version else {}
    account = cloud.admin
    return get_driver(Provider.EC2)(
        account.access_key_id,
        account.secret_access_key,
        region=cloud.region,
        host=host,
        port=port,
        secure=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def lc(cloud):
    driver = libcloud_driver(cloud)
    assert driver.signature_version == "2"  # libcloud's default signer
    describe_addresses = driver.ex_describe_addresses

    def without_elastic_ips(nodes):
        # list_nodes asks DescribeAddresses for each node's elastic IPs; until
        # OCS has elastic IPs (InvalidAction), a node has none.
        try:
            return describe_addresses(nodes)
        except BaseHTTPError as exc:
            if "InvalidAction" not in str(exc):
                raise
            return {node.id: [] for node in nodes}

    driver.ex_describe_addresses = without_elastic_ips
    return driver


@pytest.fixture(scope="module")
def image(ec2) -> NodeImage:
    [found] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return NodeImage(found["ImageId"], found["Name"], driver=None)


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


# --- libcloud -----------------------------------------------------------------------------


@pytest.mark.parametrize("signature_version", ["2", "4"])
def test_libcloud_signs_either_way(cloud, signature_version):
    driver = libcloud_driver(cloud, signature_version)
    assert [loc.availability_zone.name for loc in driver.list_locations()] == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    ]


def test_libcloud_images_and_sizes(lc, image):
    images = {i.id: i for i in lc.list_images()}
    assert images[image.id].name == "ocs-demo"
    assert lc.get_image(image.id).id == image.id
    assert lc.list_images(ex_image_ids=[image.id])[0].extra["state"] == "available"
    sizes = {s.id for s in lc.list_sizes()}
    assert {"t2.micro", "t3.micro", "m5.large"} <= sizes


def test_libcloud_key_pairs(lc):
    created = lc.create_key_pair("lc-made")
    assert created.private_key.startswith("-----BEGIN")
    imported = lc.import_key_pair_from_string("lc-imported", PUBLIC_KEY)
    assert imported.name == "lc-imported"
    listed = {k.name: k.fingerprint for k in lc.list_key_pairs()}
    assert listed["lc-made"] == created.fingerprint
    got = lc.get_key_pair("lc-made")  # DescribeKeyPairs with KeyName=... (no index)
    assert (got.name, got.fingerprint) == ("lc-made", created.fingerprint)
    assert lc.delete_key_pair(got) is True
    assert lc.delete_key_pair(lc.get_key_pair("lc-imported")) is True
    assert "lc-made" not in {k.name for k in lc.list_key_pairs()}


def test_libcloud_security_groups(lc):
    made = lc.ex_create_security_group("lc-sg", "libcloud group")
    group_id = made["group_id"]
    assert group_id.startswith("sg-")
    assert lc.ex_authorize_security_group_ingress(group_id, 22, 22, ["10.0.0.0/8"]) is True
    groups = {g.id: g for g in lc.ex_get_security_groups(group_ids=[group_id])}
    rules = groups[group_id].ingress_rules
    assert [(r["protocol"], r["from_port"], r["to_port"], r["cidr_ips"]) for r in rules] == [
        ("tcp", "22", "22", ["10.0.0.0/8"])  # libcloud keeps the ports as text
    ]
    assert "lc-sg" in lc.ex_list_security_groups()
    assert lc.ex_delete_security_group_by_id(group_id) is True


def test_libcloud_node_lifecycle(lc, image):
    size = next(s for s in lc.list_sizes() if s.id == "t3.micro")
    lc.create_key_pair("lc-node-key")
    node = lc.create_node(name="lc-node", size=size, image=image, ex_keyname="lc-node-key")
    assert node.id.startswith("i-") and node.name == "lc-node"

    def state() -> str:
        [found] = lc.list_nodes(ex_node_ids=[node.id])
        return found.state

    wait_for(lambda: state() == NodeState.RUNNING)
    [listed] = [n for n in lc.list_nodes() if n.id == node.id]
    assert listed.name == "lc-node" and listed.extra["instance_type"] == "t3.micro"
    assert listed.extra["key_name"] == "lc-node-key" and listed.private_ips

    assert lc.ex_create_tags(node, {"env": "test", "Name": "renamed"}) is True
    assert lc.ex_describe_tags(node) == {"env": "test", "Name": "renamed"}
    assert lc.ex_delete_tags(node, {"env": "test"}) is True
    assert lc.ex_describe_tags(node) == {"Name": "renamed"}

    assert lc.reboot_node(node) is True
    assert lc.destroy_node(node) is True
    wait_for(lambda: state() == NodeState.TERMINATED)
    lc.delete_key_pair(lc.get_key_pair("lc-node-key"))


# --- boto 2 -----------------------------------------------------------------------------------


def boto2_connection(cloud, cls, *, sigv4: bool, monkeypatch):
    host, port = host_port(cloud)
    if sigv4:
        monkeypatch.setenv("EC2_USE_SIGV4", "True")
    else:
        monkeypatch.delenv("EC2_USE_SIGV4", raising=False)
    account = cloud.admin
    return cls(
        account.access_key_id,
        account.secret_access_key,
        region=RegionInfo(name=cloud.region, endpoint=host),
        port=port,
        is_secure=False,
    )


@pytest.mark.parametrize("sigv4", [False, True], ids=["sigv2", "sigv4-scope-from-host"])
def test_boto2_reads_ids(cloud, ec2, image, sigv4, monkeypatch):
    # SigV4 from boto 2 against 127.0.0.1 signs the scope .../0/127/aws4_request.
    conn = boto2_connection(cloud, boto.vpc.VPCConnection, sigv4=sigv4, monkeypatch=monkeypatch)
    vpcs = {v.id: v for v in conn.get_all_vpcs()}
    expected = {v["VpcId"]: v for v in ec2.describe_vpcs()["Vpcs"]}
    assert set(vpcs) == set(expected) and None not in vpcs
    for vpc_id, vpc in vpcs.items():
        # (boto 2 takes the association's nested <state> for the VPC's, against EC2 too)
        want = expected[vpc_id]
        assert (vpc.cidr_block, vpc.is_default, vpc.instance_tenancy, vpc.dhcp_options_id) == (
            want["CidrBlock"],
            want["IsDefault"],
            want["InstanceTenancy"],
            want["DhcpOptionsId"],
        )

    groups = conn.get_all_security_groups()
    assert {g.id for g in groups} == {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert all(g.id.startswith("sg-") and g.name and g.vpc_id for g in groups)
    assert [g.name for g in conn.get_all_security_groups(groupnames=["default"])] == ["default"]

    reservation = conn.run_instances(image.id, instance_type="t2.micro")
    [instance] = reservation.instances
    try:
        assert instance.id.startswith("i-") and reservation.id.startswith("r-")
        found = [i for r in conn.get_all_instances() for i in r.instances if i.id == instance.id]
        assert [(i.id, i.image_id, i.instance_type) for i in found] == [(instance.id, image.id, "t2.micro")]
        assert [i.id for i in conn.get_only_instances(instance_ids=[instance.id])] == [instance.id]
        assert conn.create_tags([instance.id], {"Name": "b2"}) is True  # <return>true</return>
        deadline = time.monotonic() + 30  # a pending instance cannot be rebooted (IncorrectInstanceState)
        while instance.update() != "running":
            assert time.monotonic() < deadline, instance.state
            time.sleep(0.1)
        assert conn.reboot_instances([instance.id]) is True
        conn.get_console_output(instance.id)  # sends InstanceId.1
    finally:
        conn.terminate_instances([instance.id])


def test_boto2_errors_and_bare_names(cloud, monkeypatch):
    conn = boto2_connection(cloud, boto.ec2.connection.EC2Connection, sigv4=False, monkeypatch=monkeypatch)
    with pytest.raises(boto.exception.EC2ResponseError) as exc:
        conn.get_all_instances(["i-0"])
    assert exc.value.error_code == "InvalidInstanceID.NotFound"
    assert conn.get_key_pair("no-such-key") is None  # boto 2 turns InvalidKeyPair.NotFound into None
    conn.create_key_pair("b2-key")
    assert conn.get_key_pair("b2-key").name == "b2-key"  # KeyName.1
    assert [k.name for k in conn.get_all_key_pairs(keynames=["b2-key"])] == ["b2-key"]
    assert conn.delete_key_pair("b2-key") is True
