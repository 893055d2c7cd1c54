"""The metadata service through falcon.testing: paths, formats, IMDSv2 tokens, caller isolation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket

import falcon.testing
import pytest

from ocs.network.metadata import (
    NETWORK_ID_HEADER,
    SOURCE_IP_HEADER,
    CallerKey,
    InstanceMetadata,
    InterfaceMetadata,
    MetadataOptions,
    create_metadata_app,
    hop_limit_lookup,
    network_caller_key,
    proxy_caller_key,
    set_hop_limit,
)
from ocs.network.metadata.app import NOT_FOUND_PAGE, error_page
from ocs.network.metadata.tokens import TokenAuthority, parse_ttl
from ocs.network.metadata.tree import VERSIONS, identity_document

NET = "subnet-0a1b2c3d4e5f60718"
OTHER_NET = "subnet-0ffffffffffffffff"
SECRET = b"s" * 32
TOKEN = "X-aws-ec2-metadata-token"
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
A_IP, B_IP, C_IP = "10.0.0.5", "10.0.0.6", "10.0.0.7"
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyOfA alice\n"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def nic(mac: str, device: int, ip: str, **kw) -> InterfaceMetadata:
    values = {
        "mac": mac,
        "device_number": device,
        "interface_id": f"eni-0{device}aaaaaaaaaaaaaaa",
        "subnet_id": NET,
        "subnet_ipv4_cidr_block": "10.0.0.0/24",
        "vpc_id": "vpc-0123456789abcdef0",
        "vpc_ipv4_cidr_blocks": ("10.0.0.0/16", "10.1.0.0/16"),
        "local_ipv4s": (ip,),
        "owner_id": "123456789012",
        "local_hostname": f"ip-{ip.replace('.', '-')}.ec2.internal",
        "security_group_ids": ("sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"),
        "security_groups": ("default", "web"),
    }
    values.update(kw)
    return InterfaceMetadata(**values)


def instance(instance_id: str, ip: str, **kw) -> InstanceMetadata:
    values = {
        "instance_id": instance_id,
        "ami_id": "ami-0123456789abcdef0",
        "instance_type": "t3.micro",
        "account_id": "123456789012",
        "region": "us-east-1",
        "availability_zone": "us-east-1a",
        "local_ipv4": ip,
        "local_hostname": f"ip-{ip.replace('.', '-')}.ec2.internal",
        "pending_time": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
        "interfaces": (nic("02:00:0a:00:00:05", 0, ip),),
        "security_groups": ("default", "web"),
        "reservation_id": "r-0123456789abcdef0",
    }
    values.update(kw)
    return InstanceMetadata(**values)


INSTANCE_A = instance(
    "i-0aaaaaaaaaaaaaaaa",
    A_IP,
    public_ipv4="203.0.113.25",
    public_keys={"alice": KEY_A, "spare": "ssh-rsa AAAAB3Nza spare"},
    user_data=b"#!/bin/sh\necho hello\n\xff",
    interfaces=(
        nic("02:00:0a:00:00:99", 1, "10.0.0.99", ipv6s=("2001:db8::99",)),
        nic(
            "02:00:0a:00:00:05",
            0,
            A_IP,
            ipv4_associations={"203.0.113.25": A_IP},
            local_ipv4s=(A_IP, "10.0.0.50"),
        ),
    ),
)
INSTANCE_B = instance("i-0bbbbbbbbbbbbbbbb", B_IP)


class Cloud:
    """A lookup over a dict, a fake clock and a client calling from chosen addresses."""

    def __init__(self, *instances: tuple[CallerKey, InstanceMetadata]):
        self.instances = dict(instances)
        self.clock = Clock()
        self.looked_up: list[CallerKey] = []
        app = create_metadata_app(
            self.lookup, caller_key=network_caller_key(NET), token_secret=SECRET, clock=self.clock
        )
        self.client = falcon.testing.TestClient(app)

    def lookup(self, key: CallerKey) -> InstanceMetadata | None:
        self.looked_up.append(key)
        return self.instances.get(key)

    def get(self, path: str, ip: str = A_IP, **headers: str) -> falcon.testing.Result:
        return self.client.simulate_get(path, remote_addr=ip, headers=headers)

    def put_token(
        self, ip: str = A_IP, ttl: str | None = "21600", path: str = "/latest/api/token", **headers
    ):
        if ttl is not None:
            headers[TTL] = ttl
        return self.client.simulate_put(path, remote_addr=ip, headers=headers)

    def token(self, ip: str = A_IP, ttl: str = "21600") -> str:
        result = self.put_token(ip, ttl)
        assert result.status_code == 200, result.text
        return result.text


@pytest.fixture
def cloud() -> Cloud:
    return Cloud((CallerKey(NET, A_IP), INSTANCE_A), (CallerKey(NET, B_IP), INSTANCE_B))


def _required(meta: InstanceMetadata, **options) -> InstanceMetadata:
    return dataclasses.replace(meta, metadata_options=MetadataOptions(http_tokens="required", **options))


# --- listings and values (IMDSv1) --------------------------------------------------


def test_root_lists_versions_without_a_trailing_newline(cloud):
    result = cloud.get("/")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/plain"
    assert result.text == "\n".join(VERSIONS)
    assert result.text.split("\n")[0] == "1.0" and result.text.endswith("\n2024-04-11\nlatest")


@pytest.mark.parametrize("path", ["/latest", "/latest/", "/2021-07-15/", "/2009-04-04"])
def test_version_root_lists_categories_without_slashes(cloud, path):
    assert cloud.get(path).text == "dynamic\nmeta-data\nuser-data"


def test_version_root_without_user_data(cloud):
    assert cloud.get("/latest/", ip=B_IP).text == "dynamic\nmeta-data"
    assert cloud.get("/latest/user-data", ip=B_IP).status_code == 404


def test_meta_data_listing(cloud):
    assert cloud.get("/latest/meta-data/").text.split("\n") == [
        "ami-id",
        "ami-launch-index",
        "ami-manifest-path",
        "hostname",
        "instance-action",
        "instance-id",
        "instance-life-cycle",
        "instance-type",
        "local-hostname",
        "local-ipv4",
        "mac",
        "network/",
        "placement/",
        "public-ipv4",
        "public-keys/",
        "reservation-id",
        "security-groups",
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("meta-data/instance-id", "i-0aaaaaaaaaaaaaaaa"),
        ("meta-data/ami-id", "ami-0123456789abcdef0"),
        ("meta-data/ami-launch-index", "0"),
        ("meta-data/ami-manifest-path", "(unknown)"),
        ("meta-data/instance-type", "t3.micro"),
        ("meta-data/instance-action", "none"),
        ("meta-data/instance-life-cycle", "on-demand"),
        ("meta-data/local-ipv4", A_IP),
        ("meta-data/public-ipv4", "203.0.113.25"),
        ("meta-data/hostname", "ip-10-0-0-5.ec2.internal"),
        ("meta-data/local-hostname", "ip-10-0-0-5.ec2.internal"),
        ("meta-data/reservation-id", "r-0123456789abcdef0"),
        ("meta-data/placement/", "availability-zone\nregion"),
        ("meta-data/placement/availability-zone", "us-east-1a"),
        ("meta-data/placement/region", "us-east-1"),
        ("meta-data/security-groups", "default\nweb"),
        ("meta-data/mac", "02:00:0a:00:00:05"),
        ("meta-data/public-keys/", "0=alice\n1=spare"),
        ("meta-data/public-keys", "0=alice\n1=spare"),
        ("meta-data/public-keys/0/", "openssh-key"),
        ("meta-data/public-keys/0", "openssh-key"),
        ("meta-data/public-keys/0/openssh-key", KEY_A),
        ("meta-data/public-keys/1/openssh-key", "ssh-rsa AAAAB3Nza spare"),
        ("meta-data/instance-id/", "i-0aaaaaaaaaaaaaaaa"),
        ("dynamic/", "instance-identity/"),
        ("dynamic/instance-identity/", "document"),
    ],
)
def test_values(cloud, path, value):
    result = cloud.get(f"/latest/{path}")
    assert (result.status_code, result.text) == (200, value)
    assert result.headers["content-type"] == "text/plain"
    assert cloud.get(f"/2024-04-11/{path}").text == value


def test_network_interfaces(cloud):
    macs = "/latest/meta-data/network/interfaces/macs/"
    assert cloud.get("/latest/meta-data/network/").text == "interfaces/"
    assert cloud.get("/latest/meta-data/network/interfaces/").text == "macs/"
    assert cloud.get(macs).text == "02:00:0a:00:00:05/\n02:00:0a:00:00:99/"  # device order
    primary = macs + "02:00:0a:00:00:05/"
    assert cloud.get(primary).text.split("\n") == [
        "device-number",
        "interface-id",
        "ipv4-associations/",
        "local-hostname",
        "local-ipv4s",
        "mac",
        "network-card-index",
        "owner-id",
        "public-ipv4s",
        "security-group-ids",
        "security-groups",
        "subnet-id",
        "subnet-ipv4-cidr-block",
        "vpc-id",
        "vpc-ipv4-cidr-block",
        "vpc-ipv4-cidr-blocks",
    ]
    expected = {
        "device-number": "0",
        "interface-id": "eni-00aaaaaaaaaaaaaaa",
        "ipv4-associations/": "203.0.113.25",
        "ipv4-associations/203.0.113.25": A_IP,
        "local-hostname": "ip-10-0-0-5.ec2.internal",
        "local-ipv4s": f"{A_IP}\n10.0.0.50",
        "mac": "02:00:0a:00:00:05",
        "owner-id": "123456789012",
        "public-ipv4s": "203.0.113.25",
        "security-group-ids": "sg-0aaaaaaaaaaaaaaaa\nsg-0bbbbbbbbbbbbbbbb",
        "security-groups": "default\nweb",
        "subnet-id": NET,
        "subnet-ipv4-cidr-block": "10.0.0.0/24",
        "vpc-id": "vpc-0123456789abcdef0",
        "vpc-ipv4-cidr-block": "10.0.0.0/16",
        "vpc-ipv4-cidr-blocks": "10.0.0.0/16\n10.1.0.0/16",
    }
    for name, value in expected.items():
        assert cloud.get(primary + name).text == value, name
    assert cloud.get(macs + "02:00:0a:00:00:99/device-number").text == "1"
    assert cloud.get(macs + "02:00:0a:00:00:99/ipv6s").text == "2001:db8::99"
    assert cloud.get(macs + "02:00:0a:00:00:99/public-ipv4s").status_code == 404


def test_user_data_is_served_as_bytes(cloud):
    result = cloud.get("/latest/user-data")
    assert result.status_code == 200
    assert result.content == b"#!/bin/sh\necho hello\n\xff"
    assert result.headers["content-type"] == "application/octet-stream"


def test_identity_document(cloud):
    result = cloud.get("/latest/dynamic/instance-identity/document")
    assert result.status_code == 200 and result.headers["content-type"] == "text/plain"
    document = json.loads(result.text)
    assert list(document) == [
        "accountId",
        "architecture",
        "availabilityZone",
        "billingProducts",
        "devpayProductCodes",
        "marketplaceProductCodes",
        "imageId",
        "instanceId",
        "instanceType",
        "kernelId",
        "pendingTime",
        "privateIp",
        "ramdiskId",
        "region",
        "version",
    ]
    assert document == {
        "accountId": "123456789012",
        "architecture": "x86_64",
        "availabilityZone": "us-east-1a",
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": "ami-0123456789abcdef0",
        "instanceId": "i-0aaaaaaaaaaaaaaaa",
        "instanceType": "t3.micro",
        "kernelId": None,
        "pendingTime": "2024-05-06T07:08:09Z",
        "privateIp": A_IP,
        "ramdiskId": None,
        "region": "us-east-1",
        "version": "2017-09-30",
    }
    # EC2's own layout: two-space indent, "key" : value, no trailing newline.
    assert result.text.startswith('{\n  "accountId" : "123456789012",\n  "architecture" : "x86_64",\n')
    assert result.text.endswith('  "region" : "us-east-1",\n  "version" : "2017-09-30"\n}')


def test_optional_categories_appear_when_set():
    meta = instance(
        "i-0ccccccccccccccc1",
        A_IP,
        kernel_id="aki-0123456789abcdef0",
        ramdisk_id="ari-0123456789abcdef0",
        architecture="arm64",
        block_device_mapping={"ami": "/dev/vda", "root": "/dev/vda"},
        public_hostname="ec2-203-0-113-25.compute-1.amazonaws.com",
    )
    cloud = Cloud((CallerKey(NET, A_IP), meta))
    listing = cloud.get("/latest/meta-data/").text.split("\n")
    assert {"kernel-id", "ramdisk-id", "block-device-mapping/", "public-hostname"} <= set(listing)
    assert "public-keys/" not in listing and "public-ipv4" not in listing
    assert cloud.get("/latest/meta-data/kernel-id").text == "aki-0123456789abcdef0"
    assert cloud.get("/latest/meta-data/block-device-mapping/").text == "ami\nroot"
    assert cloud.get("/latest/meta-data/block-device-mapping/root").text == "/dev/vda"
    document = json.loads(cloud.get("/latest/dynamic/instance-identity/document").text)
    assert (document["kernelId"], document["ramdiskId"], document["architecture"]) == (
        "aki-0123456789abcdef0",
        "ari-0123456789abcdef0",
        "arm64",
    )
    assert cloud.get("/latest/meta-data/public-keys/").status_code == 404


def test_tags_only_when_enabled():
    tags = {"Name": "web-1", "env": "prod", "a/b": "hidden"}
    off = instance("i-0ccccccccccccccc2", A_IP, tags=tags)
    on = dataclasses.replace(off, metadata_options=MetadataOptions(instance_metadata_tags="enabled"))
    assert Cloud((CallerKey(NET, A_IP), off)).get("/latest/meta-data/tags/instance").status_code == 404
    cloud = Cloud((CallerKey(NET, A_IP), on))
    assert cloud.get("/latest/meta-data/tags/").text == "instance/"
    assert cloud.get("/latest/meta-data/tags/instance").text == "Name\nenv"
    assert cloud.get("/latest/meta-data/tags/instance/Name").text == "web-1"
    assert cloud.get("/2021-03-23/meta-data/tags/instance/env").text == "prod"
    assert cloud.get("/2021-01-03/meta-data/tags/instance/env").status_code == 404


def test_dated_versions_show_only_what_existed_then(cloud):
    assert cloud.get("/1.0/meta-data/").text.split("\n") == [
        "ami-id",
        "ami-launch-index",
        "ami-manifest-path",
        "hostname",
        "instance-id",
        "local-ipv4",
        "public-keys/",
        "reservation-id",
        "security-groups",
    ]
    assert cloud.get("/1.0/").text == "meta-data\nuser-data"  # dynamic came in 2009-04-04
    assert cloud.get("/2008-02-01/meta-data/placement/availability-zone").text == "us-east-1a"
    assert cloud.get("/2008-02-01/meta-data/placement/region").status_code == 404
    assert cloud.get("/2008-02-01/meta-data/mac").status_code == 404
    assert cloud.get("/2011-01-01/meta-data/mac").text == "02:00:0a:00:00:05"
    nic_path = "/2016-04-19/meta-data/network/interfaces/macs/02:00:0a:00:00:05/"
    assert "vpc-ipv4-cidr-blocks" not in cloud.get(nic_path).text.split("\n")
    assert "vpc-ipv4-cidr-block" in cloud.get(nic_path).text.split("\n")


@pytest.mark.parametrize(
    "path",
    [
        "/latest/meta-data/nope",
        "/latest/meta-data/instance-id/more",
        "/latest/meta-data/public-keys/2",
        "/latest/meta-data/public-keys/0=alice",
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data//instance-id",
        "/latest/nope",
        "/2099-01-01/meta-data/",
        "/meta-data/",
        "/latest/dynamic/instance-identity/pkcs7",
    ],
)
def test_not_found_is_ec2s_page(cloud, path):
    result = cloud.get(path)
    assert result.status_code == 404
    assert result.text == NOT_FOUND_PAGE
    assert result.headers["content-type"] == "text/html"
    assert "<title>404 - Not Found</title>" in result.text


def test_every_answer_says_it_is_ec2ws(cloud):
    for result in (cloud.get("/"), cloud.get("/nope"), cloud.put_token(), cloud.get("/", ip=C_IP)):
        assert result.headers["server"] == "EC2ws"


def test_head_answers_without_a_body(cloud):
    result = cloud.client.simulate_head("/latest/meta-data/instance-id", remote_addr=A_IP)
    assert (result.status_code, result.content) == (200, b"")
    assert result.headers["content-length"] == str(len("i-0aaaaaaaaaaaaaaaa"))


def test_other_methods_are_not_allowed(cloud):
    result = cloud.client.simulate_post("/latest/meta-data/", remote_addr=A_IP)
    assert result.status_code == 405 and result.headers["allow"] == "GET, HEAD"
    assert "<title>405 - Method Not Allowed</title>" in result.text


# --- IMDSv2 tokens ---------------------------------------------------------------------


def test_token_then_get(cloud):
    result = cloud.put_token(ttl="60")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/plain"
    assert result.headers[TTL] == "60"
    token = result.text
    assert token and "\n" not in token
    assert cloud.get("/latest/meta-data/instance-id", **{TOKEN: token}).text == "i-0aaaaaaaaaaaaaaaa"
    assert cloud.get("/2021-03-23/meta-data/instance-id", **{TOKEN: token}).text == "i-0aaaaaaaaaaaaaaaa"


def test_tokens_are_unique(cloud):
    assert cloud.token() != cloud.token()


@pytest.mark.parametrize("ttl", ["1", "21600", "0060"])
def test_ttl_bounds_accepted(cloud, ttl):
    assert cloud.put_token(ttl=ttl).status_code == 200


@pytest.mark.parametrize("ttl", [None, "", "0", "21601", "-1", "1.5", "abc", "+5", "99999999999"])
def test_bad_or_missing_ttl_is_400(cloud, ttl):
    result = cloud.put_token(ttl=ttl)
    assert result.status_code == 400
    assert "<title>400 - Bad Request</title>" in result.text


def test_token_refused_through_a_proxy(cloud):
    result = cloud.put_token(**{"X-Forwarded-For": "198.51.100.7"})
    assert result.status_code == 403
    assert result.text == ""
    # GETs through a proxy are IMDSv1 as usual.
    assert (
        cloud.get("/latest/meta-data/instance-id", **{"X-Forwarded-For": "198.51.100.7"}).status_code == 200
    )


@pytest.mark.parametrize(
    "path", ["/2021-03-23/api/token", "/latest/api/token/", "/latest/meta-data/", "/latest/api/token2"]
)
def test_token_put_elsewhere_is_403(cloud, path):
    result = cloud.put_token(path=path)
    assert (result.status_code, result.text) == (403, "")


def test_token_endpoint_methods(cloud):
    result = cloud.get("/latest/api/token", **{TTL: "60"})
    assert result.status_code == 405 and result.headers["allow"] == "OPTIONS, PUT"
    options = cloud.client.simulate_options("/latest/api/token", remote_addr=A_IP)
    assert options.status_code == 200 and options.headers["allow"] == "OPTIONS, PUT"


def test_invalid_token_is_401_even_when_tokens_are_optional(cloud):
    for token in ("garbage", "", cloud.token() + "x", cloud.token()[:-2]):
        result = cloud.get("/latest/meta-data/instance-id", **{TOKEN: token})
        assert result.status_code == 401, token
        assert "<title>401 - Unauthorized</title>" in result.text


def test_token_expires(cloud):
    token = cloud.token(ttl="10")
    cloud.clock.now += 9.999
    assert cloud.get("/latest/meta-data/instance-id", **{TOKEN: token}).status_code == 200
    cloud.clock.now += 0.001
    assert cloud.get("/latest/meta-data/instance-id", **{TOKEN: token}).status_code == 401


def test_token_of_instance_a_is_useless_to_instance_b(cloud):
    token_a = cloud.token(ip=A_IP)
    assert cloud.get("/latest/meta-data/instance-id", ip=A_IP, **{TOKEN: token_a}).status_code == 200
    result = cloud.get("/latest/meta-data/instance-id", ip=B_IP, **{TOKEN: token_a})
    assert result.status_code == 401
    assert "i-0aaaaaaaaaaaaaaaa" not in result.text


def test_token_from_another_secret_is_refused(cloud):
    foreign = TokenAuthority(b"t" * 32, cloud.clock).issue(INSTANCE_A.instance_id, 60)
    assert cloud.get("/latest/meta-data/", **{TOKEN: foreign}).status_code == 401


def test_required_mode(cloud):
    cloud.instances[CallerKey(NET, A_IP)] = _required(INSTANCE_A)
    for path in ("/", "/latest/meta-data/instance-id", "/latest/user-data", "/latest/nope"):
        result = cloud.get(path)
        assert result.status_code == 401, path
    token = cloud.token()
    assert cloud.get("/latest/meta-data/instance-id", **{TOKEN: token}).text == "i-0aaaaaaaaaaaaaaaa"
    assert cloud.get("/latest/nope", **{TOKEN: token}).status_code == 404
    # The other instance still uses IMDSv1.
    assert cloud.get("/latest/meta-data/instance-id", ip=B_IP).text == "i-0bbbbbbbbbbbbbbbb"


def test_endpoint_disabled_is_403_for_everything(cloud):
    disabled = dataclasses.replace(INSTANCE_A, metadata_options=MetadataOptions(http_endpoint="disabled"))
    cloud.instances[CallerKey(NET, A_IP)] = disabled
    assert (cloud.get("/latest/meta-data/").status_code, cloud.get("/").text) == (403, "")
    assert cloud.put_token().status_code == 403


# --- who is calling ---------------------------------------------------------------------


def test_each_instance_sees_only_itself(cloud):
    assert cloud.get("/latest/meta-data/instance-id", ip=A_IP).text == "i-0aaaaaaaaaaaaaaaa"
    assert cloud.get("/latest/meta-data/instance-id", ip=B_IP).text == "i-0bbbbbbbbbbbbbbbb"
    assert cloud.get("/latest/meta-data/local-ipv4", ip=B_IP).text == B_IP


def test_unknown_caller_gets_404_for_everything(cloud):
    token_a = cloud.token(ip=A_IP)
    answers = [
        cloud.get("/", ip=C_IP),
        cloud.get("/latest/", ip=C_IP),
        cloud.get("/latest/meta-data/instance-id", ip=C_IP),
        cloud.get("/latest/meta-data/instance-id", ip=C_IP, **{TOKEN: token_a}),
        cloud.get("/latest/dynamic/instance-identity/document", ip=C_IP),
        cloud.get("/latest/user-data", ip=C_IP),
        cloud.get("/latest/api/token", ip=C_IP),
        cloud.put_token(ip=C_IP),
        cloud.put_token(ip=C_IP, ttl="0"),
        cloud.put_token(ip=C_IP, **{"X-Forwarded-For": "1.2.3.4"}),
        cloud.client.simulate_options("/latest/api/token", remote_addr=C_IP),
        cloud.client.simulate_post("/latest/meta-data/", remote_addr=C_IP),
    ]
    for result in answers:
        assert (result.status_code, result.text) == (404, NOT_FOUND_PAGE)


def test_same_address_in_two_subnets_are_two_callers():
    """Overlapping CIDRs in two VPCs: the key carries the subnet, so neither sees the other."""
    here = instance("i-0ddddddddddddddd1", A_IP)
    there = instance("i-0ddddddddddddddd2", A_IP)
    lookup = {CallerKey(NET, A_IP): here, CallerKey(OTHER_NET, A_IP): there}.get
    apps = {
        net: falcon.testing.TestClient(
            create_metadata_app(lookup, caller_key=network_caller_key(net), token_secret=SECRET)
        )
        for net in (NET, OTHER_NET)
    }
    get = "/latest/meta-data/instance-id"
    assert apps[NET].simulate_get(get, remote_addr=A_IP).text == "i-0ddddddddddddddd1"
    assert apps[OTHER_NET].simulate_get(get, remote_addr=A_IP).text == "i-0ddddddddddddddd2"
    token_here = apps[NET].simulate_put("/latest/api/token", remote_addr=A_IP, headers={TTL: "60"}).text
    assert apps[OTHER_NET].simulate_get(get, remote_addr=A_IP, headers={TOKEN: token_here}).status_code == 401


def test_caller_key_is_canonical():
    assert CallerKey(NET, "::ffff:10.0.0.5") == CallerKey(NET, "10.0.0.5")
    assert CallerKey(NET, "2001:DB8::0001").source_ip == "2001:db8::1"
    assert CallerKey(NET, "10.0.0.5") != CallerKey(OTHER_NET, "10.0.0.5")
    for bad in ("", "10.0.0.300", "host"):
        with pytest.raises(ValueError):
            CallerKey(NET, bad)
    with pytest.raises(ValueError):
        CallerKey("", "10.0.0.5")


def test_ipv4_mapped_peer_is_the_same_caller(cloud):
    assert cloud.get("/latest/meta-data/instance-id", ip="::ffff:10.0.0.5").text == "i-0aaaaaaaaaaaaaaaa"


def test_proxy_caller_key_trusts_only_its_proxies():
    seen: list[CallerKey] = []

    def lookup(key: CallerKey) -> InstanceMetadata | None:
        seen.append(key)
        return INSTANCE_A if key == CallerKey(NET, A_IP) else None

    app = create_metadata_app(lookup, caller_key=proxy_caller_key(["127.0.0.1"]), token_secret=SECRET)
    client = falcon.testing.TestClient(app)
    relayed = {NETWORK_ID_HEADER: NET, SOURCE_IP_HEADER: A_IP}
    path = "/latest/meta-data/instance-id"
    assert client.simulate_get(path, remote_addr="127.0.0.1", headers=relayed).text == "i-0aaaaaaaaaaaaaaaa"
    # A guest naming itself someone else, directly: no key at all.
    assert client.simulate_get(path, remote_addr=B_IP, headers=relayed).status_code == 404
    # The proxy without the headers, or with a bad address: no key.
    assert client.simulate_get(path, remote_addr="127.0.0.1").status_code == 404
    bad = {NETWORK_ID_HEADER: NET, SOURCE_IP_HEADER: "not-an-ip"}
    assert client.simulate_get(path, remote_addr="127.0.0.1", headers=bad).status_code == 404
    assert seen == [CallerKey(NET, A_IP)]


def test_lookup_failure_is_a_500_page():
    def broken(key: CallerKey) -> InstanceMetadata | None:
        raise RuntimeError("database is down")

    app = create_metadata_app(broken, caller_key=network_caller_key(NET), token_secret=SECRET)
    result = falcon.testing.TestClient(app).simulate_get("/latest/meta-data/", remote_addr=A_IP)
    assert result.status_code == 500
    assert result.text == error_page(500) and "500 - Internal Server Error" in result.text


def test_lookup_is_asked_every_time(cloud):
    cloud.get("/latest/meta-data/instance-id")
    cloud.instances[CallerKey(NET, A_IP)] = dataclasses.replace(INSTANCE_A, instance_type="m5.large")
    assert cloud.get("/latest/meta-data/instance-type").text == "m5.large"
    assert cloud.looked_up == [CallerKey(NET, A_IP)] * 2


# --- pieces -------------------------------------------------------------------------


def test_parse_ttl():
    assert [parse_ttl(v) for v in ("1", "21600", " 30 ")] == [1, 21600, 30]
    assert all(parse_ttl(v) is None for v in (None, "", "0", "21601", "1e3", "٣"))


def test_token_authority_checks_its_arguments():
    with pytest.raises(ValueError):
        TokenAuthority(b"short", Clock())
    with pytest.raises(ValueError):
        TokenAuthority(SECRET, Clock()).issue("i-1", 0)


def test_metadata_options_are_validated():
    assert MetadataOptions().http_put_response_hop_limit == 1
    for bad in (
        {"http_tokens": "sometimes"},
        {"http_endpoint": "on"},
        {"instance_metadata_tags": "yes"},
        {"http_put_response_hop_limit": 0},
        {"http_put_response_hop_limit": 65},
        {"http_put_response_hop_limit": True},
    ):
        with pytest.raises(ValueError):
            MetadataOptions(**bad)


def test_instance_defaults_hostname_and_mac():
    meta = instance(
        "i-0eeeeeeeeeeeeeee1", A_IP, interfaces=(nic("02:aa", 1, "10.0.0.8"), nic("02:bb", 0, A_IP))
    )
    assert (meta.hostname, meta.mac) == (meta.local_hostname, "02:bb")
    assert identity_document(meta).count("\n") == 16


def test_set_hop_limit_sets_the_socket_ttl():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        set_hop_limit(sock, 2)
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 2
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock6:
        set_hop_limit(sock6, 3)
        assert sock6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) == 3


def test_hop_limit_lookup_is_the_callers_own():
    two = dataclasses.replace(INSTANCE_A, metadata_options=MetadataOptions(http_put_response_hop_limit=2))
    hop_limit_for = hop_limit_lookup({CallerKey(NET, A_IP): two}.get, NET)
    assert hop_limit_for(A_IP) == 2
    assert hop_limit_for(B_IP) == 1  # unknown: EC2's default
    assert hop_limit_for("nonsense") == 1
