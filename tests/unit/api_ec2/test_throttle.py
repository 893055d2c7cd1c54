"""The throttle core: EC2's token buckets, driven by a fake clock."""

from __future__ import annotations

import pytest

from ocs.api_ec2 import throttle
from ocs.api_ec2.throttle import Limit, Policy, Throttle, TokenBucket, parse_limit


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def burst(t: Throttle, account: str, action: str, n: int, params: dict | None = None) -> int:
    """How many of ``n`` immediate requests are admitted."""
    return sum(t.admit(account, action, params or {}) for _ in range(n))


def test_defaults_are_ec2s_documented_sizes():
    p = Policy()
    assert p.classes == {
        "non-mutating": Limit(100, 20),
        "unfiltered-non-mutating": Limit(50, 10),
        "mutating": Limit(50, 5),
        "resource-intensive": Limit(50, 5),
    }
    assert p.actions["RunInstances"] == Limit(5, 2)
    assert p.actions["StartInstances"] == Limit(5, 2)
    assert p.actions["TerminateInstances"] == Limit(100, 5)
    assert p.actions["CreateTags"] == p.actions["DeleteTags"] == Limit(100, 10)
    assert p.actions["CreateDefaultVpc"] == Limit(1, 1)
    assert p.resources == {
        "RunInstances": Limit(1000, 2),
        "StartInstances": Limit(1000, 2),
        "StopInstances": Limit(1000, 20),
        "TerminateInstances": Limit(1000, 20),
    }


@pytest.mark.parametrize(
    ("action", "params", "klass"),
    [
        ("DescribeVpcs", {}, "non-mutating"),
        ("GetConsoleOutput", {"InstanceId": "i-1"}, "non-mutating"),
        ("DescribeInstances", {}, "unfiltered-non-mutating"),
        ("DescribeInstances", {"InstanceId.1": "i-1"}, "unfiltered-non-mutating"),
        ("DescribeInstances", {"Filter.1.Name": "x", "Filter.1.Value.1": "y"}, "non-mutating"),
        ("DescribeInstances", {"MaxResults": "5"}, "non-mutating"),
        ("DescribeSecurityGroups", {"NextToken": "t"}, "non-mutating"),
        ("DescribeInstanceStatus", {}, "unfiltered-non-mutating"),
        ("CreateVpc", {}, "mutating"),
        ("ModifyVpcAttribute", {}, "mutating"),
        ("AuthorizeSecurityGroupIngress", {}, "resource-intensive"),
        ("CreateKeyPair", {}, "resource-intensive"),
    ],
)
def test_action_classes(action, params, klass):
    assert throttle.action_class(action, params) == klass


def test_parse_limit():
    assert parse_limit("5/2") == Limit(5, 2)
    assert parse_limit("4/0.3") == Limit(4, 0.3)
    for bad in ("5", "a/b", "0/1", "5/-1", ""):
        with pytest.raises(ValueError):
            parse_limit(bad)


def test_bucket_refills_continuously_up_to_its_capacity():
    b = TokenBucket(Limit(10, 2), now=0.0)
    assert all(b.take(1, 0.0) for _ in range(10))
    assert not b.take(1, 0.0)
    assert not b.take(1, 0.49)
    assert b.take(1, 0.5)  # 2 per second: one token after half a second
    assert b.is_full(100.0) and b.tokens == 10  # never more than the capacity


def test_a_burst_beyond_the_bucket_is_refused_then_refill_restores_service():
    clock = Clock()
    t = Throttle(clock=clock)
    assert burst(t, "a", "DescribeVpcs", 130) == 100
    assert not t.admit("a", "DescribeVpcs", {})
    clock.advance(1.0)  # 20 tokens per second
    assert burst(t, "a", "DescribeVpcs", 30) == 20
    clock.advance(5.0)
    assert burst(t, "a", "DescribeVpcs", 200) == 100


def test_accounts_and_actions_have_their_own_buckets():
    clock = Clock()
    t = Throttle(clock=clock)
    assert burst(t, "noisy", "CreateVpc", 60) == 50
    assert burst(t, "quiet", "CreateVpc", 50) == 50  # another account is not affected
    assert burst(t, "noisy", "DeleteVpc", 50) == 50  # nor another action of the same account
    assert burst(t, "noisy", "DescribeVpcs", 100) == 100


def test_unfiltered_describe_uses_a_smaller_separate_bucket():
    clock = Clock()
    t = Throttle(clock=clock)
    assert burst(t, "a", "DescribeInstances", 60) == 50
    filtered = {"Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running"}
    assert burst(t, "a", "DescribeInstances", 120, filtered) == 100


def test_run_instances_request_and_resource_buckets():
    clock = Clock()
    t = Throttle(clock=clock)
    assert burst(t, "a", "RunInstances", 7, {"MinCount": "1", "MaxCount": "1"}) == 5
    clock.advance(10.0)
    # The resource bucket: 1000 instances at once, then 2 per second.
    assert t.admit("a", "RunInstances", {"MinCount": "1", "MaxCount": "999"})
    assert not t.admit("a", "RunInstances", {"MaxCount": "2"})  # request admitted, 1 instance left
    assert t.admit("a", "RunInstances", {"MaxCount": "1"})
    clock.advance(1.0)
    assert t.admit("a", "RunInstances", {"MaxCount": "2"})


def test_terminate_counts_distinct_instances():
    params = {f"InstanceId.{i}": f"i-{i:017x}" for i in range(1, 11)}
    assert throttle.resource_cost("TerminateInstances", params) == 10
    assert throttle.resource_cost("StopInstances", {"InstanceId.1": "i-1", "InstanceId.2": "i-1"}) == 1
    assert throttle.resource_cost("RunInstances", {"MaxCount": "junk"}) == 1
    assert throttle.resource_cost("RunInstances", {"MaxCount": "-4"}) == 1


def test_a_request_bigger_than_the_resource_bucket_needs_a_full_bucket():
    clock = Clock()
    t = Throttle(Policy(resources={"RunInstances": Limit(10, 1)}), clock=clock)
    assert t.admit("a", "RunInstances", {"MaxCount": "5000"})  # charged the capacity, not refused forever
    assert not t.admit("a", "RunInstances", {"MaxCount": "1"})


def test_configured_sizes_and_fractional_refill():
    clock = Clock()
    t = Throttle(Policy(classes={**throttle.EC2_CLASS_LIMITS, "mutating": Limit(2, 0.25)}), clock=clock)
    assert burst(t, "a", "CreateVpc", 5) == 2
    clock.advance(3.9)
    assert not t.admit("a", "CreateVpc", {})
    clock.advance(0.1)
    assert t.admit("a", "CreateVpc", {})


def test_memory_is_bounded_by_busy_buckets():
    clock = Clock()
    t = Throttle(clock=clock, max_buckets=10)
    for i in range(10):
        t.admit(f"acct-{i}", "CreateVpc", {})
    clock.advance(60.0)  # all full again
    t.admit("newcomer", "CreateVpc", {})
    assert len(t) == 1


def test_a_clock_going_backwards_never_adds_tokens():
    clock = Clock()
    t = Throttle(Policy(classes={**throttle.EC2_CLASS_LIMITS, "mutating": Limit(1, 1)}), clock=clock)
    assert t.admit("a", "CreateVpc", {})
    clock.advance(-100.0)
    assert not t.admit("a", "CreateVpc", {})
