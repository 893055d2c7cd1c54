"""Request throttling as EC2 does it: token buckets per account and action.

EC2's rules ("Request throttling for the Amazon EC2 API", the EC2 developer
guide), which this module follows:

* every account has, per API action, a *request* bucket; each request takes
  one token, and a request that finds the bucket empty fails with
  ``RequestLimitExceeded``. Requests of other actions and of other accounts are
  not affected ("each API is evaluated individually ... requests for other API
  are not affected");
* a bucket holds at most its *capacity* (the burst) and refills continuously
  at its *refill rate* (tokens per second, fractional rates exist);
* the bucket's size comes from the action's class: non-mutating
  (``Describe*``, ``List*``, ``Search*``, ``Get*``) 100/20; the same few
  Describe actions called with neither a filter nor pagination use a smaller,
  separate bucket, 50/10; mutating 50/5; resource-intensive 50/5; and a table
  of "uncategorized" actions with sizes of their own (``RunInstances`` 5/2,
  ``CreateTags`` 100/10 ...);
* ``RunInstances``, ``StartInstances``, ``StopInstances`` and
  ``TerminateInstances`` also take tokens from a *resource* bucket, one per
  instance the request touches (RunInstances 1000/2 ...).

The buckets live in the memory of one process: an ``ocs-api`` with N gunicorn
workers holds N independent sets, so an account may reach N times the
configured rates there. The module is pure: the clock is injected, no
database, bus or configuration is imported.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: The request-bucket classes of EC2's table.
NON_MUTATING = "non-mutating"
UNFILTERED = "unfiltered-non-mutating"
MUTATING = "mutating"
RESOURCE_INTENSIVE = "resource-intensive"
CLASSES = (NON_MUTATING, UNFILTERED, MUTATING, RESOURCE_INTENSIVE)

NON_MUTATING_PREFIXES = ("Describe", "List", "Search", "Get")

#: Non-mutating actions that, called without a filter or pagination, draw from
#: the smaller ``unfiltered-non-mutating`` bucket.
UNFILTERED_ACTIONS = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)

RESOURCE_INTENSIVE_ACTIONS = frozenset(
    {
        "AcceptVpcPeeringConnection",
        "AuthorizeSecurityGroupIngress",
        "CancelSpotInstanceRequests",
        "CreateKeyPair",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "RevokeSecurityGroupIngress",
        "RequestSpotInstances",
    }
)

# Parameters whose presence makes a Describe call filtered or paginated.
_NARROWING = re.compile(r"^(Filter\.|MaxResults$|NextToken$)")
_INSTANCE_ID = re.compile(r"^InstanceId\.[0-9]+$")


@dataclass(frozen=True)
class Limit:
    """A bucket's size: ``capacity`` tokens at most, ``refill`` tokens per second."""

    capacity: float
    refill: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill < 0:
            raise ValueError(f"a bucket needs capacity >= 1 and refill >= 0, not {self}")


def parse_limit(text: str) -> Limit:
    """``"CAPACITY/REFILL"`` (``"5/2"``, ``"4/0.3"``) as a :class:`Limit`; ValueError if not."""
    capacity, sep, refill = text.partition("/")
    if not sep:
        raise ValueError(f"expected CAPACITY/REFILL, not {text!r}")
    return Limit(float(capacity), float(refill))


#: EC2's request buckets per class (bucket maximum capacity, refill rate).
EC2_CLASS_LIMITS: Mapping[str, Limit] = {
    NON_MUTATING: Limit(100, 20),
    UNFILTERED: Limit(50, 10),
    MUTATING: Limit(50, 5),
    RESOURCE_INTENSIVE: Limit(50, 5),
}

#: EC2's "uncategorized actions" that OCS implements or is about to.
EC2_ACTION_LIMITS: Mapping[str, Limit] = {
    "AssignPrivateIpAddresses": Limit(100, 5),
    "CopyImage": Limit(100, 1),
    "CreateDefaultSubnet": Limit(1, 1),
    "CreateDefaultVpc": Limit(1, 1),
    "CreateNatGateway": Limit(10, 1),
    "CreateNetworkInterface": Limit(100, 5),
    "CreateSnapshot": Limit(100, 5),
    "CreateSnapshots": Limit(100, 5),
    "CreateTags": Limit(100, 10),
    "CreateVolume": Limit(100, 5),
    "DeleteNatGateway": Limit(10, 1),
    "DeleteNetworkInterface": Limit(100, 5),
    "DeleteSnapshot": Limit(100, 5),
    "DeleteTags": Limit(100, 10),
    "DeleteVolume": Limit(100, 5),
    "DeregisterImage": Limit(100, 5),
    "ModifyImageAttribute": Limit(100, 5),
    "ModifyInstanceMetadataOptions": Limit(100, 5),
    "ModifyNetworkInterfaceAttribute": Limit(100, 5),
    "ModifySnapshotAttribute": Limit(100, 5),
    "RunInstances": Limit(5, 2),
    "StartInstances": Limit(5, 2),
    "TerminateInstances": Limit(100, 5),
    "UnassignPrivateIpAddresses": Limit(100, 5),
}

#: EC2's resource buckets: tokens per instance the request touches.
EC2_RESOURCE_LIMITS: Mapping[str, Limit] = {
    "RunInstances": Limit(1000, 2),
    "TerminateInstances": Limit(1000, 20),
    "StartInstances": Limit(1000, 2),
    "StopInstances": Limit(1000, 20),
}


def action_class(action: str, params: Mapping[str, object]) -> str:
    """The class of a request of ``action`` with the flat query ``params``."""
    if action in RESOURCE_INTENSIVE_ACTIONS:
        return RESOURCE_INTENSIVE
    if action.startswith(NON_MUTATING_PREFIXES):
        if action in UNFILTERED_ACTIONS and not any(_NARROWING.match(k) for k in params):
            return UNFILTERED
        return NON_MUTATING
    return MUTATING


def _count(value: object) -> int:
    text = value[0] if isinstance(value, list) and value else value
    try:
        return int(str(text))
    except ValueError:
        return 1  # the parser answers the bad value; the request costs one


def resource_cost(action: str, params: Mapping[str, object]) -> int:
    """How many resource tokens the request takes: the instances it touches (at least 1)."""
    if action == "RunInstances":
        return max(1, _count(params.get("MaxCount", 1)))
    ids = {str(v) for k, v in params.items() if _INSTANCE_ID.match(k)}
    return max(1, len(ids))


@dataclass(frozen=True)
class Policy:
    """Which bucket sizes apply: per class, per action (overriding its class) and per resource."""

    classes: Mapping[str, Limit] = field(default_factory=lambda: dict(EC2_CLASS_LIMITS))
    actions: Mapping[str, Limit] = field(default_factory=lambda: dict(EC2_ACTION_LIMITS))
    resources: Mapping[str, Limit] = field(default_factory=lambda: dict(EC2_RESOURCE_LIMITS))

    def request_bucket(self, action: str, params: Mapping[str, object]) -> tuple[str, Limit]:
        """(bucket name, limit) of a request: the action's own entry, else its class's."""
        limit = self.actions.get(action)
        if limit is not None:
            return action, limit
        klass = action_class(action, params)
        return f"{action}:{klass}", self.classes[klass]


class TokenBucket:
    """One bucket, full when made; refilled lazily from the clock readings it is given."""

    __slots__ = ("limit", "stamp", "tokens")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.capacity)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.limit.capacity, self.tokens + (now - self.stamp) * self.limit.refill)
            self.stamp = now

    def take(self, n: float, now: float) -> bool:
        """Take ``n`` tokens if the bucket holds them (then True); else take none."""
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.limit.capacity


Key = tuple[str, str, str]  # (account, "request" | "resource", bucket name)


class Throttle:
    """Admits or refuses requests, per account, with EC2's buckets; thread-safe.

    ``clock`` returns seconds (monotonic); tests pass a fake one. When more
    than ``max_buckets`` buckets exist, the full ones are forgotten (a full
    bucket is the same as a new one), so memory stays bounded by the accounts
    that are busy right now.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        self.policy = policy or Policy()
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[Key, TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, account_id: str, action: str, params: Mapping[str, object]) -> bool:
        """Whether ``account_id`` may make this request now; takes its tokens if so.

        The request token is spent even when the resource bucket then refuses,
        as the request was made.
        """
        name, limit = self.policy.request_bucket(action, params)
        resource = self.policy.resources.get(action)
        with self._lock:
            now = self.clock()
            if not self._bucket((account_id, "request", name), limit, now).take(1, now):
                return False
            if resource is None:
                return True
            cost = min(resource_cost(action, params), resource.capacity)
            return self._bucket((account_id, "resource", action), resource, now).take(cost, now)

    def _bucket(self, key: Key, limit: Limit, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._forget_full(now)
            bucket = self._buckets[key] = TokenBucket(limit, now)
        return bucket

    def _forget_full(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
