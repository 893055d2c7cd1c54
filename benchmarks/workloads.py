"""The workloads: plain boto3 calls, the same code for every server.

Each timed call is measured around the boto3 call (signing, HTTP on loopback,
the server, parsing the answer), as a user of the SDK sees it. Every workload is
bounded in calls and in seconds (:func:`timed`).

The population used for DescribeInstances is launched by RunInstances of
``batch`` instances per call into a /16 subnet of a VPC of its own (10,000
instances do not fit in a default /20 subnet). Call ``k`` launches
``t3.small`` when ``k`` is odd, else ``t3.micro``, tagged ``bench=yes`` and
``group=g<k mod 5>``; the filter-heavy query (state running, ``tag:group=g3``,
type ``t3.small``) therefore matches the calls with ``k mod 10 == 3``, a tenth of
the instances once there are ten calls or more.
"""

from __future__ import annotations

import http.client
import multiprocessing
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

ZONE = "us-east-1a"
HOST_DEFAULT = "127.0.0.1"
VPC_CIDR = "10.0.0.0/16"
FILTER_GROUP = "g3"
FILTER_TYPE = "t3.small"


def make_client(target: dict[str, Any]) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=target["endpoint"],
        region_name=target["region"],
        aws_access_key_id=target["access_key_id"],
        aws_secret_access_key=target["secret_access_key"],
        config=Config(retries={"max_attempts": 0}, read_timeout=300, connect_timeout=10),
    )


def timed(call: Callable[[int], Any], calls: int, budget: float) -> list[float]:
    """Latencies in ms of ``call(i)`` for i = 0.. until ``calls`` or ``budget`` seconds (at least one)."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    for i in range(calls):
        t0 = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() > deadline:
            break
    return samples


@dataclass(frozen=True)
class Env:
    image_id: str
    subnet_id: str


def find_image(ec2: Any) -> str:
    """OCS's demo image, else the first x86_64 image Amazon owns (moto's built-in list)."""
    own = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    if own:
        return str(own[0]["ImageId"])
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])[
        "Images"
    ]
    linux = [i for i in images if not i.get("Platform")] or images
    return str(sorted(i["ImageId"] for i in linux)[0])


def prepare(ec2: Any) -> Env:
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=VPC_CIDR, AvailabilityZone=ZONE)["Subnet"]["SubnetId"]
    return Env(image_id=find_image(ec2), subnet_id=subnet)


def run(ec2: Any, env: Env, count: int, *, k: int = 0, tagged: bool = False) -> list[str]:
    """RunInstances of ``count`` instances; their IDs."""
    params: dict[str, Any] = {
        "ImageId": env.image_id,
        "InstanceType": FILTER_TYPE if k % 2 else "t3.micro",
        "MinCount": count,
        "MaxCount": count,
        "SubnetId": env.subnet_id,
    }
    if tagged:
        tags = [{"Key": "bench", "Value": "yes"}, {"Key": "group", "Value": f"g{k % 5}"}]
        params["TagSpecifications"] = [{"ResourceType": "instance", "Tags": tags}]
    return [i["InstanceId"] for i in ec2.run_instances(**params)["Instances"]]


# --- lifecycle workloads ---------------------------------------------------------------------


def run_and_terminate(ec2: Any, env: Env, mode: Any) -> dict[str, list[float]]:
    """RunInstances of 1 and of ``batch``, then TerminateInstances of 1 and of ``batch``."""
    singles: list[str] = []
    batches: list[list[str]] = []
    out: dict[str, list[float]] = {}
    budget = mode.budget_seconds
    run(ec2, env, 1)  # warm up both ends (connections, lazy setup)
    out["run_1"] = timed(lambda i: singles.extend(run(ec2, env, 1)), mode.run_one_calls, budget)
    out["run_batch"] = timed(
        lambda i: batches.append(run(ec2, env, mode.batch)), mode.run_batch_calls, budget
    )
    out["terminate_1"] = timed(
        lambda i: ec2.terminate_instances(InstanceIds=[singles[i]]),
        min(mode.terminate_calls, len(singles)),
        budget,
    )
    out["terminate_batch"] = timed(
        lambda i: ec2.terminate_instances(InstanceIds=batches[i]), len(batches), budget
    )
    return out


# --- DescribeInstances -----------------------------------------------------------------------


def populate(
    ec2: Any, env: Env, present: int, target: int, batch: int, first_call: int
) -> tuple[list[str], int]:
    """Launch instances until ``target`` are present; the new IDs and the next call number."""
    made: list[str] = []
    k = first_call
    while present + len(made) < target:
        made += run(ec2, env, min(batch, target - present - len(made)), k=k, tagged=True)
        k += 1
    return made, k


def wait_running(ec2: Any, timeout: float = 600.0) -> None:
    """Until no instance is pending (OCS builds them on its fake hosts; moto starts them running)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["pending"]}], MaxResults=5
        )["Reservations"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"instances still pending after {timeout:g} s")
        time.sleep(0.2)


def filter_query() -> dict[str, Any]:
    return {
        "Filters": [
            {"Name": "instance-state-name", "Values": ["running"]},
            {"Name": "tag:group", "Values": [FILTER_GROUP]},
            {"Name": "instance-type", "Values": [FILTER_TYPE]},
        ]
    }


def filter_matches(calls: int, batch: int) -> int:
    """Instances the filter-heavy query matches after ``calls`` populating calls of ``batch``."""
    return sum(batch for k in range(calls) if k % 2 and f"g{k % 5}" == FILTER_GROUP)


def count_instances(reservations: list[dict[str, Any]]) -> int:
    return sum(len(r["Instances"]) for r in reservations)


def max_results_for(ec2: Any, want: int, **query: Any) -> int:
    """The MaxResults that yields a page of ``want`` instances.

    EC2 and OCS count MaxResults in instances; moto counts reservations
    (getmoto/moto ``moto/ec2/responses/instances.py``), so ``MaxResults=100``
    over reservations of 100 would return 10,000 instances there. Both servers
    are asked for a page of the same number of instances: if the first answer
    holds more than ``want``, MaxResults becomes the number of reservations that
    hold ``want`` instances.
    """
    reservations = ec2.describe_instances(MaxResults=want, **query)["Reservations"]
    if count_instances(reservations) <= want:
        return want
    total = 0
    for n, reservation in enumerate(reservations, 1):
        total += len(reservation["Instances"])
        if total >= want:
            return n
    return want


def describe_queries(ec2: Any, ids: list[str], mode: Any, calls: int) -> dict[str, Any]:
    """One page of ``page``, one instance by ID, and the filter-heavy query (a page of it).

    ``calls`` populating calls were made: the filter's matches are known.
    """
    page_max = max_results_for(ec2, mode.page)
    filter_max = max_results_for(ec2, mode.page, **filter_query())
    expected = {"page": mode.page, "by_id": 1, "filter": min(mode.page, filter_matches(calls, mode.batch))}
    got: dict[str, int] = {}

    def page(i: int) -> None:
        got["page"] = count_instances(ec2.describe_instances(MaxResults=page_max)["Reservations"])

    def by_id(i: int) -> None:
        wanted = ids[(i * 7919) % len(ids)]
        got["by_id"] = count_instances(ec2.describe_instances(InstanceIds=[wanted])["Reservations"])

    def filtered(i: int) -> None:
        answer = ec2.describe_instances(MaxResults=filter_max, **filter_query())
        got["filter"] = count_instances(answer["Reservations"])

    out: dict[str, Any] = {"max_results": {"page": page_max, "filter": filter_max}}
    for name, call in (("page", page), ("by_id", by_id), ("filter", filtered)):
        call(-1)  # warm up
        out[name] = timed(call, mode.describe_calls, mode.budget_seconds)
    for name, want in expected.items():
        if got.get(name) != want:
            raise AssertionError(f"DescribeInstances {name}: {got.get(name)} instances, expected {want}")
    return out


def boto3_sender(target: dict[str, Any], max_results: int) -> Callable[[], None]:
    """DescribeInstances (one page) through boto3: signed, sent, the answer parsed."""
    ec2 = make_client(target)

    def send() -> None:
        ec2.describe_instances(MaxResults=max_results)

    return send


def raw_sender(target: dict[str, Any], max_results: int) -> Callable[[], None]:
    """The same request signed by botocore's SigV4 and sent over one keep-alive
    connection, the XML answer checked but not parsed: the server's rate, not the
    client's (parsing 100 instances costs boto3 more CPU than it costs OCS to answer)."""
    creds = Credentials(target["access_key_id"], target["secret_access_key"])
    url = urllib.parse.urlsplit(target["endpoint"])
    conn = http.client.HTTPConnection(url.hostname or HOST_DEFAULT, url.port, timeout=300)
    body = f"Action=DescribeInstances&Version=2016-11-15&MaxResults={max_results}"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

    def send() -> None:
        request = AWSRequest(method="POST", url=target["endpoint"] + "/", data=body, headers=headers)
        SigV4Auth(creds, "ec2", target["region"]).add_auth(request)
        conn.request("POST", "/", body=body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        data = response.read()
        if response.status != 200 or b"<reservationSet>" not in data:
            raise RuntimeError(f"DescribeInstances answered {response.status}: {data[:200]!r}")

    return send


SENDERS = {"boto3": boto3_sender, "raw": raw_sender}


def _throughput_worker(
    target: dict[str, Any], how: str, max_results: int, seconds: float, barrier: Any, results: Any
) -> None:
    send = SENDERS[how](target, max_results)
    send()  # connect and warm up before the clock starts
    barrier.wait()
    done, errors = 0, 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        try:
            send()
            done += 1
        except (ClientError, BotoCoreError, RuntimeError, OSError, http.client.HTTPException):
            errors += 1  # counted, not hidden: the report shows errors
    results.put((done, errors, time.perf_counter() - t0))


def throughput(target: dict[str, Any], mode: Any, max_results: int, how: str = "boto3") -> dict[str, float]:
    """Requests per second of DescribeInstances (one page: ``max_results`` from
    :func:`max_results_for`) from concurrent client processes, each sending with
    ``how`` (:data:`SENDERS`)."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(mode.throughput_clients + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_throughput_worker,
            args=(target, how, max_results, mode.throughput_seconds, barrier, results),
            daemon=True,
        )
        for _ in range(mode.throughput_clients)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    counts = [results.get(timeout=mode.throughput_seconds + 600) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return {
        "rps": sum(done / elapsed for done, _, elapsed in counts),  # each client's rate, added up
        "requests": sum(c[0] for c in counts),
        "errors": sum(c[1] for c in counts),
        "clients": len(counts),
        "seconds": max(c[2] for c in counts),
    }
