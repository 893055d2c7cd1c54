"""Options of the [api] group: the EC2 front end process."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "api"

_LIMIT = r"^[0-9]+(\.[0-9]+)?/[0-9]+(\.[0-9]+)?$"  # CAPACITY/REFILL

OPTS = [
    cfg.StrOpt(
        "listen",
        default="127.0.0.1:8773",
        help="HOST:PORT on which ocs-api (and the all-in-one) serve the EC2 API.",
    ),
    cfg.IntOpt(
        "workers",
        default=2,
        min=1,
        help="Number of gunicorn worker processes of ocs-api. The all-in-one "
        "always serves from threads inside its single process.",
    ),
    cfg.IntOpt(
        "threads",
        default=8,
        min=1,
        help="Request threads of each gunicorn worker of ocs-api (gthread workers). "
        "Connections beyond them wait in the worker, not in a thread, until one is free.",
    ),
    cfg.IntOpt(
        "keepalive",
        default=75,
        min=0,
        help="Seconds ocs-api keeps an idle client connection open for its next "
        "request (0: one request per connection). Keep it well above how long the "
        "server may take to notice a request on a kept connection under load, and "
        "above the idle timeout of any load balancer in front: the server closes a "
        "connection it counts as idle even when a request has just arrived on it, and "
        "that client then sees a dropped connection (botocore's ConnectionClosedError). "
        "A worker holds at most 1000 connections; idle ones cost no thread.",
    ),
    cfg.FloatOpt(
        "max_queue_wait",
        default=20.0,
        min=0.0,
        help="Seconds a request of ocs-api may have waited for a free thread (the server "
        "overloaded) and still be served; one that waited longer is answered at once "
        "with RequestLimitExceeded (HTTP 503, nothing done), which the AWS SDKs retry "
        "with backoff, rather than after the client's own timeout (60 s in botocore; "
        "RunInstances itself may take 30). 0: serve every request however late.",
    ),
    cfg.StrOpt(
        "public_endpoint",
        help="URL by which clients reach the API, written into ocsrc as "
        "AWS_ENDPOINT_URL. Defaults to http://<listen>.",
    ),
    cfg.BoolOpt(
        "throttling",
        default=True,
        help="Whether the EC2 API throttles requests as EC2 does: every account has, "
        "per action, a token bucket sized by the action's class (the options "
        "throttle_*); a request that finds its bucket empty fails with "
        "RequestLimitExceeded (HTTP 503), which the AWS SDKs retry with backoff. One "
        "busy account never slows down another. The buckets live in each API "
        "process: with N gunicorn workers an account may reach N times these rates.",
    ),
    cfg.StrOpt(
        "throttle_non_mutating",
        default="100/20",
        regex=_LIMIT,
        help="CAPACITY/REFILL of the request bucket of non-mutating actions "
        "(Describe*, Get*, List*, Search*): at most CAPACITY requests in a burst, "
        "then REFILL requests per second (tokens may be fractional). EC2: 100/20.",
    ),
    cfg.StrOpt(
        "throttle_unfiltered_non_mutating",
        default="50/10",
        regex=_LIMIT,
        help="CAPACITY/REFILL of the separate, smaller bucket that DescribeInstances, "
        "DescribeInstanceStatus, DescribeSecurityGroups (and EC2's other costly "
        "Describe actions) use when called with neither a filter nor MaxResults/"
        "NextToken. EC2: 50/10.",
    ),
    cfg.StrOpt(
        "throttle_mutating",
        default="50/5",
        regex=_LIMIT,
        help="CAPACITY/REFILL of the request bucket of actions that create, change or "
        "delete resources and have no size of their own. EC2: 50/5.",
    ),
    cfg.StrOpt(
        "throttle_resource_intensive",
        default="50/5",
        regex=_LIMIT,
        help="CAPACITY/REFILL of the request bucket of EC2's resource-intensive "
        "actions (AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress, "
        "CreateKeyPair ...). EC2: 50/5.",
    ),
    cfg.DictOpt(
        "throttle_actions",
        default={},
        help="Request buckets of single actions, as ACTION:CAPACITY/REFILL pairs "
        "(e.g. 'RunInstances:10/4,CreateTags:200/20'), replacing the built-in "
        "sizes. Built in are EC2's 'uncategorized actions', among them RunInstances "
        "5/2, StartInstances 5/2, TerminateInstances 100/5, CreateTags and "
        "DeleteTags 100/10, DeregisterImage and ModifyImageAttribute 100/5, "
        "CreateDefaultVpc 1/1; every other action uses its class's bucket.",
    ),
    cfg.DictOpt(
        "throttle_resources",
        default={},
        help="Resource buckets, as ACTION:CAPACITY/REFILL pairs replacing the built-in "
        "ones: RunInstances, StartInstances, StopInstances and TerminateInstances "
        "also take one token per instance they touch from a bucket of their own "
        "(EC2: RunInstances and StartInstances 1000/2, StopInstances and "
        "TerminateInstances 1000/20).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
