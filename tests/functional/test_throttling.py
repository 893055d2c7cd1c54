"""Request throttling as EC2 does it, on a cloud with tiny buckets.

EC2 answers a request that finds its account's bucket empty with
``RequestLimitExceeded`` (HTTP 503, "Request limit exceeded."); the buckets are
per account and per action, so one noisy account never slows down another.
The bucket sizes here are configured small through ``[api]`` so that bursts,
refill and retries take well under a second each.
"""

from __future__ import annotations

import secrets
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ocs.api_ec2.service import throttle_from_conf
from ocs.api_ec2.throttle import Limit
from ocs.conf import make_conf
from tests.framework.cloud import Cloud
from tests.framework.raw import call

SLOW = 0.2  # tokens per second of the class buckets: a burst is refused even on a slow machine
FAST = 4.0  # tokens per second of the buckets that show refill (DescribeKeyPairs, DescribeRegions)
OVERRIDES = {
    "api": {
        "throttling": True,
        "throttle_non_mutating": f"5/{SLOW:g}",
        "throttle_unfiltered_non_mutating": f"3/{SLOW:g}",
        "throttle_actions": {
            "RunInstances": "2/0.1",
            "DescribeKeyPairs": f"3/{FAST:g}",
            "DescribeRegions": f"3/{FAST / 2:g}",
        },
        "throttle_resources": {"TerminateInstances": "3/0.1"},
    }
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = Cloud(tmp_path_factory.mktemp("throttled"), overrides=OVERRIDES).start()
    yield c
    c.stop()


@pytest.fixture
def account(cloud):
    return cloud.create_account(f"throttle-{secrets.token_hex(4)}")


def outcomes(cloud, account, action: str, n: int, **params: str) -> list[str]:
    """The error code (or "ok") of ``n`` requests sent back to back."""
    out = []
    for _ in range(n):
        reply = call(cloud, account, action, **params)
        out.append("ok" if reply.status == 200 else reply.error()[0])
    return out


def test_a_burst_beyond_the_bucket_gets_request_limit_exceeded(cloud, account):
    results = outcomes(cloud, account, "DescribeVpcs", 9)
    assert results[:5] == ["ok"] * 5
    assert results.count("RequestLimitExceeded") >= 3  # at most one token refilled meanwhile
    reply = call(cloud, account, "DescribeVpcs")
    assert reply.status == 503
    code, message, request_id = reply.error()
    assert (code, message) == ("RequestLimitExceeded", "Request limit exceeded.")
    assert len(request_id) == 36


def drain(cloud, account, action: str) -> None:
    """Call ``action`` until its bucket refuses."""
    for _ in range(50):
        if call(cloud, account, action).status == 503:
            return
    raise AssertionError(f"{action} was never throttled")


def test_refill_restores_service(cloud, account):
    drain(cloud, account, "DescribeKeyPairs")
    time.sleep(1.5 / FAST)  # more than one token
    assert call(cloud, account, "DescribeKeyPairs").status == 200
    time.sleep(3 / FAST + 0.3)  # the whole bucket
    assert outcomes(cloud, account, "DescribeKeyPairs", 3) == ["ok"] * 3


def test_another_account_is_unaffected_at_the_same_time(cloud, account):
    quiet = cloud.create_account(f"quiet-{secrets.token_hex(4)}")
    stop = threading.Event()
    refused = []

    def hammer() -> None:
        while not stop.is_set():
            reply = call(cloud, account, "DescribeVpcs")
            if reply.status == 503:
                refused.append(reply.error()[0])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        quiet_results = outcomes(cloud, quiet, "DescribeVpcs", 5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert quiet_results == ["ok"] * 5
    assert refused and set(refused) == {"RequestLimitExceeded"}


def test_each_action_has_its_own_bucket(cloud, account):
    outcomes(cloud, account, "DescribeVpcs", 8)
    assert call(cloud, account, "DescribeVpcs").status == 503
    assert outcomes(cloud, account, "DescribeSubnets", 5) == ["ok"] * 5


def test_unfiltered_describe_instances_uses_the_smaller_bucket(cloud, account):
    results = outcomes(cloud, account, "DescribeInstances", 5)
    assert results[:3] == ["ok"] * 3 and "RequestLimitExceeded" in results
    # Filtered (or paginated) calls draw from the larger non-mutating bucket.
    filtered = {"Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running"}
    assert outcomes(cloud, account, "DescribeInstances", 5, **filtered) == ["ok"] * 5


def test_run_instances_has_its_own_small_bucket_dry_runs_included(cloud, account, ec2):
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    params = {"ImageId": image["ImageId"], "MinCount": "1", "MaxCount": "1", "DryRun": "true"}
    assert outcomes(cloud, account, "RunInstances", 3, **params) == [
        "DryRunOperation",
        "DryRunOperation",
        "RequestLimitExceeded",
    ]


def test_terminate_takes_one_resource_token_per_instance(cloud, account):
    ids = {f"InstanceId.{n}": f"i-{secrets.token_hex(9)[:17]}" for n in range(1, 4)}
    # Three instances empty the resource bucket of three (they need not exist to count).
    assert outcomes(cloud, account, "TerminateInstances", 1, **ids) == ["InvalidInstanceID.NotFound"]
    one = {"InstanceId.1": ids["InstanceId.1"]}
    assert outcomes(cloud, account, "TerminateInstances", 1, **one) == ["RequestLimitExceeded"]


def test_boto3_standard_retries_ride_out_the_throttle(cloud, account):
    drain(cloud, account, "DescribeRegions")
    with pytest.raises(ClientError) as exc:
        cloud.client(account).describe_regions()  # the test clients never retry
    assert exc.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    patient = boto3.client(
        "ec2",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        aws_access_key_id=account.access_key_id,
        aws_secret_access_key=account.secret_access_key,
        config=Config(retries={"mode": "standard", "max_attempts": 10}),
    )
    retried = 0
    for _ in range(8):  # far more than the bucket holds: every call still ends in success
        out = patient.describe_regions()
        assert [r["RegionName"] for r in out["Regions"]] == [cloud.region]
        retried += out["ResponseMetadata"]["RetryAttempts"]
    assert retried >= 1


def test_throttling_is_configured_in_the_api_group(cloud):
    conf = make_conf()
    conf([])
    assert conf.api.throttling is True  # on by default, as in EC2
    assert (conf.api.throttle_non_mutating, conf.api.throttle_unfiltered_non_mutating) == ("100/20", "50/10")
    assert (conf.api.throttle_mutating, conf.api.throttle_resource_intensive) == ("50/5", "50/5")
    assert throttle_from_conf(conf) is not None
    conf.set_override("throttling", False, group="api")
    assert throttle_from_conf(conf) is None
    policy = throttle_from_conf(cloud.conf).policy
    assert policy.classes["non-mutating"] == Limit(5, SLOW)
    assert policy.actions["RunInstances"] == Limit(2, 0.1)
    assert policy.actions["CreateTags"] == Limit(100, 10)  # built-in EC2 size kept


def test_a_request_that_waited_too_long_for_the_api_is_refused_unserved(cloud):
    """ocs-api's worker tells the app how long a request waited for a thread (the
    X-OCS-QUEUED-SECONDS header its gthread worker sets, replacing a client's own); past
    ``[api] max_queue_wait`` (20 s) the request is answered at once with
    RequestLimitExceeded and nothing is done (no instance, no throttle token taken), so
    that an overloaded API answers "slow down" before the client's own timeout instead
    of dropping it. Here the header is sent directly (the test cloud has no gunicorn)."""
    account = cloud.create_account("late")
    ec2 = cloud.client(account)
    image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]["ImageId"]
    run = {
        "Action": "RunInstances",
        "Version": "2016-11-15",
        "ImageId": image,
        "MinCount": "1",
        "MaxCount": "1",
        "InstanceType": "t2.micro",
    }
    from tests.framework.raw import signed_post

    for _ in range(2):
        late = signed_post(cloud, account, run, extra_headers={"X-OCS-QUEUED-SECONDS": "20.5"})
        assert late.status == 503 and late.error()[0] == "RequestLimitExceeded", late.text
        assert "overloaded" in late.error()[1]
    assert ec2.describe_instances()["Reservations"] == []  # nothing was launched
    for _ in range(2):  # the bucket (2/0.1) still has both tokens: the refused took none
        in_time = signed_post(cloud, account, run, extra_headers={"X-OCS-QUEUED-SECONDS": "19.5"})
        assert in_time.status == 200, in_time.text
    for junk in ("x", "-5", "nan"):
        reply = signed_post(
            cloud, account, {"Action": "DescribeRegions", "Version": "2016-11-15"},
            extra_headers={"X-OCS-QUEUED-SECONDS": junk},
        )  # fmt: skip
        assert reply.status == 200, (junk, reply.text)
