"""The metadata service on a real socket: IMDSv1, IMDSv2, caller isolation and the hop limit.

The app is served by ``serve_metadata`` on 127.0.0.1 (a free port). Instances
are told apart by their source address on the loopback network: instance A
calls from 127.0.0.1, B from 127.0.0.2, and 127.0.0.3 is nobody. The "network"
part of the caller key comes from ``network_caller_key``, as in a per-subnet
listener.

The hop limit is observed, not assumed: a client socket with ``IP_MINTTL = n``
drops every packet whose TTL is below ``n``, which is what a caller ``n - 1``
hops beyond the instance (a container behind the guest's bridge) would see of
an answer sent with a smaller TTL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import json
import socket
import urllib.request

import pytest
from botocore.utils import InstanceMetadataRegionFetcher

from ocs.network.metadata import (
    CallerKey,
    InstanceMetadata,
    InterfaceMetadata,
    MetadataOptions,
    create_metadata_app,
    hop_limit_lookup,
    network_caller_key,
    serve_metadata,
)

NET = "subnet-0f00f00f00f00f00f"
A_IP, B_IP, NOBODY_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"
TOKEN = "X-aws-ec2-metadata-token"
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
IP_MINTTL = 21  # Linux <netinet/in.h>; Python's socket module does not name it


def _instance(instance_id: str, ip: str, mac: str, **options) -> InstanceMetadata:
    return InstanceMetadata(
        instance_id=instance_id,
        ami_id="ami-0123456789abcdef0",
        instance_type="t3.small",
        account_id="123456789012",
        region="eu-west-1",
        availability_zone="eu-west-1b",
        local_ipv4=ip,
        local_hostname=f"ip-{ip.replace('.', '-')}.eu-west-1.compute.internal",
        pending_time=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        interfaces=(
            InterfaceMetadata(
                mac=mac,
                device_number=0,
                interface_id="eni-0123456789abcdef0",
                subnet_id=NET,
                subnet_ipv4_cidr_block="127.0.0.0/8",
                vpc_id="vpc-0123456789abcdef0",
                vpc_ipv4_cidr_blocks=("127.0.0.0/8",),
                local_ipv4s=(ip,),
                owner_id="123456789012",
                local_hostname=f"ip-{ip.replace('.', '-')}.eu-west-1.compute.internal",
            ),
        ),
        security_groups=("default",),
        public_keys={"deploy": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy deploy\n"},
        user_data=b"#cloud-config\nruncmd: [echo hi]\n",
        metadata_options=MetadataOptions(**options),
    )


INSTANCES = {
    CallerKey(NET, A_IP): _instance("i-0aaaaaaaaaaaaaaa1", A_IP, "02:00:7f:00:00:01"),
    CallerKey(NET, B_IP): _instance(
        "i-0bbbbbbbbbbbbbbb2",
        B_IP,
        "02:00:7f:00:00:02",
        http_tokens="required",
        http_put_response_hop_limit=2,
    ),
}


@pytest.fixture(scope="module")
def server():
    lookup = INSTANCES.get
    app = create_metadata_app(lookup, caller_key=network_caller_key(NET), token_secret=b"k" * 32)
    with serve_metadata(app, "127.0.0.1", 0, hop_limit_lookup(lookup, NET)) as srv:
        yield srv


def request(server, method, path, source=A_IP, headers=None, min_ttl=None, timeout=5.0):
    """One HTTP request from ``source``; returns (status, headers, body)."""
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
    conn.connect()
    if min_ttl is not None:
        conn.sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_imdsv1_with_urllib(server):
    with urllib.request.urlopen(server.url + "/latest/meta-data/instance-id", timeout=5) as response:
        assert response.read() == b"i-0aaaaaaaaaaaaaaa1"
        assert response.headers["Server"] == "EC2ws"
    with urllib.request.urlopen(server.url + "/latest/dynamic/instance-identity/document", timeout=5) as r:
        document = json.loads(r.read())
    assert (document["instanceId"], document["privateIp"], document["region"]) == (
        "i-0aaaaaaaaaaaaaaa1",
        A_IP,
        "eu-west-1",
    )


def test_imdsv2_with_urllib(server):
    put = urllib.request.Request(server.url + "/latest/api/token", method="PUT", headers={TTL: "300"})
    with urllib.request.urlopen(put, timeout=5) as response:
        token = response.read().decode()
        assert response.headers[TTL] == "300"
    get = urllib.request.Request(server.url + "/latest/user-data", headers={TOKEN: token})
    with urllib.request.urlopen(get, timeout=5) as response:
        assert response.read() == b"#cloud-config\nruncmd: [echo hi]\n"


def test_botocore_reads_the_region_through_imdsv2(server, monkeypatch):
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    fetcher = InstanceMetadataRegionFetcher(timeout=2, num_attempts=1, base_url=server.url)
    assert fetcher.retrieve_region() == "eu-west-1"


def test_each_instance_sees_only_itself(server):
    assert request(server, "GET", "/latest/meta-data/instance-id", A_IP)[2] == b"i-0aaaaaaaaaaaaaaa1"
    token_b = request(server, "PUT", "/latest/api/token", B_IP, {TTL: "60"})[2].decode()
    status, _, body = request(server, "GET", "/latest/meta-data/instance-id", B_IP, {TOKEN: token_b})
    assert (status, body) == (200, b"i-0bbbbbbbbbbbbbbb2")
    assert request(server, "GET", "/latest/meta-data/public-keys/", A_IP)[2] == b"0=deploy"


def test_required_tokens_and_foreign_tokens(server):
    assert request(server, "GET", "/latest/meta-data/instance-id", B_IP)[0] == 401
    token_a = request(server, "PUT", "/latest/api/token", A_IP, {TTL: "60"})[2].decode()
    status, _, body = request(server, "GET", "/latest/meta-data/instance-id", B_IP, {TOKEN: token_a})
    assert status == 401 and b"i-0a" not in body


def test_unknown_caller_gets_404_for_everything(server):
    token_a = request(server, "PUT", "/latest/api/token", A_IP, {TTL: "60"})[2].decode()
    for method, path, headers in [
        ("GET", "/", None),
        ("GET", "/latest/meta-data/instance-id", None),
        ("GET", "/latest/meta-data/instance-id", {TOKEN: token_a}),
        ("GET", "/latest/user-data", None),
        ("PUT", "/latest/api/token", {TTL: "60"}),
    ]:
        status, headers_out, body = request(server, method, path, NOBODY_IP, headers)
        assert status == 404, (method, path)
        assert b"<title>404 - Not Found</title>" in body
        assert b"i-0" not in body


def test_token_refused_through_a_proxy(server):
    status, _, body = request(
        server, "PUT", "/latest/api/token", A_IP, {TTL: "60", "X-Forwarded-For": "10.1.1.1"}
    )
    assert (status, body) == (403, b"")


def test_hop_limit_one_keeps_tokens_on_the_instance(server):
    """A's hop limit is 1: the token answer reaches A but not a container one hop further."""
    status, _, token = request(server, "PUT", "/latest/api/token", A_IP, {TTL: "60"}, min_ttl=1)
    assert status == 200 and token
    with pytest.raises(TimeoutError):
        request(server, "PUT", "/latest/api/token", A_IP, {TTL: "60"}, min_ttl=2, timeout=1.0)
    # As on EC2, IMDSv1 GETs are not hop-limited: the container still reads metadata.
    assert request(server, "GET", "/latest/meta-data/instance-id", A_IP, min_ttl=2)[0] == 200


def test_hop_limit_two_reaches_one_hop_further(server):
    """B's hop limit is 2: one extra hop is fine, two are not."""
    assert request(server, "PUT", "/latest/api/token", B_IP, {TTL: "60"}, min_ttl=2)[0] == 200
    with pytest.raises(TimeoutError):
        request(server, "PUT", "/latest/api/token", B_IP, {TTL: "60"}, min_ttl=3, timeout=1.0)


def test_hop_limit_follows_the_instance_options(server):
    """The listener asks the lookup on every PUT: a changed hop limit applies at once."""
    key = CallerKey(NET, A_IP)
    before = INSTANCES[key]
    INSTANCES[key] = dataclasses.replace(
        before, metadata_options=MetadataOptions(http_put_response_hop_limit=3)
    )
    try:
        assert request(server, "PUT", "/latest/api/token", A_IP, {TTL: "60"}, min_ttl=3)[0] == 200
    finally:
        INSTANCES[key] = before
