"""Mixed load: many concurrent EC2 clients running, stopping, starting, terminating
and describing their own instances, for a while; then nothing may be stuck.

Each client (a thread with its own boto3 client, retries off) loops over
DescribeInstances (half the calls), RunInstances (while it holds fewer than
``per_client`` instances), StopInstances, StartInstances and TerminateInstances of
its own instances. Answers are counted by status: a 4xx that EC2 gives for a race
with the instance's own transitions (IncorrectInstanceState, for example) is a
client error, expected; a 5xx or a dropped connection is a server fault. After the
load every instance the clients launched must settle (``running``, ``stopped`` or
``terminated``) within ``settle`` seconds, and none may be missing.

Against a multi-process cluster on this machine's PostgreSQL and RabbitMQ::

    python -m benchmarks.load --devcluster 4 --clients 200 --seconds 60

or against any endpoint (credentials from the usual AWS variables)::

    python -m benchmarks.load --endpoint http://127.0.0.1:8773 --clients 50 --seconds 30

It prints p50/p99 latency per action, requests per second, the answers by code,
and what settled; ``--json FILE`` writes the same. The integration test
``tests/integration/cluster/test_mixed_load.py`` runs a short version in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

STABLE = ("running", "stopped", "terminated")

#: Answers that say "slow down" (HTTP 503 in EC2): the throttle's, not faults.
THROTTLED = ("RequestLimitExceeded",)


@dataclass
class LoadResult:
    """What a load run saw: latencies per action, answers by (action, code), instances."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)  # attempts boto3 retried, per action
    server_faults: list[str] = field(default_factory=list)
    launched: set[str] = field(default_factory=set)
    unsettled: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        return {
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "latency_ms": {
                action: {
                    "count": len(values),
                    "p50": round(statistics.median(values) * 1000, 1),
                    "p99": round(pct(values, 0.99), 1),
                }
                for action, values in sorted(self.latencies.items())
                if values
            },
            "answers": {f"{a} {c}": n for (a, c), n in sorted(self.answers.items())},
            "server_faults": len(self.server_faults),
            "retries": dict(sorted(self.retries.items())),
            "launched": len(self.launched),
            "unsettled": dict(sorted(self.unsettled.items())),
            "missing": sorted(self.missing),
        }


class _Client:
    """One simulated user: its own boto3 client and its own instances."""

    def __init__(self, ec2: Any, image_id: str, per_client: int, result: LoadResult, lock: threading.Lock):
        self.ec2, self.image_id, self.per_client = ec2, image_id, per_client
        self.result, self.lock = result, lock
        self.mine: dict[str, str] = {}  # instance id -> last state seen
        self.rng = random.Random()
        self.last_answer = 0.0  # when the previous answer came (monotonic; 0: none yet)

    def call(self, action: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        # How long this client's connection sat idle since its previous answer: a
        # connection the server closes as idle while the client reuses it shows here.
        idle = f"idle {started - self.last_answer:.1f} s" if self.last_answer else "first request"
        code, reply = "200", None
        retried = 0
        try:
            reply = fn()
            retried = reply.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        except ClientError as exc:
            retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            code = f"{status} {exc.response.get('Error', {}).get('Code', '?')}"
            if "overloaded" in exc.response.get("Error", {}).get("Message", ""):
                code += " (overloaded)"  # refused for waiting too long, not by the throttle
            if status >= 500 and code.split()[1] in THROTTLED:
                pass  # overload answered as EC2 does; a client's retries handle it
            elif status >= 500 or status == 0:
                self._fault(action, code)
        except BotoCoreError as exc:  # a dropped connection, a timeout: the server's fault
            code = f"--- {type(exc).__name__}"
            cause = getattr(exc, "kwargs", {}).get("error")  # urllib3's, with the socket's error
            why = repr(cause.args[-1]) if cause is not None and cause.args else str(exc)
            self._fault(action, f"{code} ({idle}, after {time.monotonic() - started:.1f} s): {why}")
        self.last_answer = time.monotonic()
        took = self.last_answer - started
        with self.lock:
            self.result.latencies[action].append(took)
            self.result.answers[(action, code)] += 1
            self.result.retries[action] += retried
        return reply

    def _fault(self, action: str, what: str) -> None:
        with self.lock:
            self.result.server_faults.append(f"{action}: {what}")

    def step(self) -> None:
        live = [i for i, s in self.mine.items() if s != "terminated"]
        roll = self.rng.random()
        if roll < 0.5 or not live and len(self.mine) >= self.per_client * 3:
            reply = self.call(
                "DescribeInstances", lambda: self.ec2.describe_instances(InstanceIds=live or [])
            )
            for r in (reply or {}).get("Reservations", []):
                for inst in r["Instances"]:
                    if inst["InstanceId"] in self.mine:
                        self.mine[inst["InstanceId"]] = inst["State"]["Name"]
        elif roll < 0.65 and len(live) < self.per_client:
            reply = self.call(
                "RunInstances",
                lambda: self.ec2.run_instances(
                    ImageId=self.image_id, MinCount=1, MaxCount=1, InstanceType="t2.micro"
                ),
            )
            for inst in (reply or {}).get("Instances", []):
                self.mine[inst["InstanceId"]] = "pending"
                with self.lock:
                    self.result.launched.add(inst["InstanceId"])
        elif live:
            target = self.rng.choice(live)
            state = self.mine[target]
            if roll < 0.77 and state == "running":
                self.call("StopInstances", lambda: self.ec2.stop_instances(InstanceIds=[target]))
            elif roll < 0.89 and state == "stopped":
                self.call("StartInstances", lambda: self.ec2.start_instances(InstanceIds=[target]))
            elif roll >= 0.89:
                self.call("TerminateInstances", lambda: self.ec2.terminate_instances(InstanceIds=[target]))
                self.mine[target] = "terminated"


def run_load(
    make_client: Callable[[], Any],
    image_id: str,
    *,
    clients: int,
    seconds: float,
    per_client: int = 2,
    settle: float = 120.0,
) -> LoadResult:
    """``clients`` threads for ``seconds``, then wait up to ``settle`` s for every
    launched instance to reach a stable state (see the module)."""
    result, lock = LoadResult(), threading.Lock()
    users = [_Client(make_client(), image_id, per_client, result, lock) for _ in range(clients)]
    stop_at = time.monotonic() + seconds
    ready = threading.Barrier(clients + 1)

    def loop(user: _Client) -> None:
        ready.wait()
        while time.monotonic() < stop_at:
            user.step()

    threads = [threading.Thread(target=loop, args=(u,), daemon=True) for u in users]
    for t in threads:
        t.start()
    ready.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    _settle(make_client(), result, settle)
    return result


def _settle(ec2: Any, result: LoadResult, timeout: float) -> None:
    wanted = sorted(result.launched)
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, str] = {}
        for start in range(0, len(wanted), 200):
            pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=wanted[start : start + 200])
            for page in pages:
                for r in page["Reservations"]:
                    for inst in r["Instances"]:
                        seen[inst["InstanceId"]] = inst["State"]["Name"]
        result.missing = set(wanted) - set(seen)
        result.unsettled = {i: s for i, s in seen.items() if s not in STABLE}
        if not result.unsettled or time.monotonic() > deadline:
            return
        time.sleep(1.0)


def print_summary(summary: dict[str, Any], out: Any = sys.stdout) -> None:
    print(
        f"{summary['requests']} requests in {summary['seconds']} s "
        f"({summary['requests_per_second']}/s); server faults: {summary['server_faults']}",
        file=out,
    )
    print(f"{'action':<20} {'count':>7} {'p50 ms':>9} {'p99 ms':>9}", file=out)
    for action, row in summary["latency_ms"].items():
        print(f"{action:<20} {row['count']:>7} {row['p50']:>9} {row['p99']:>9}", file=out)
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in summary["answers"].items()), file=out)
    if any(summary.get("retries", {}).values()):
        print("boto3 retries: " + ", ".join(f"{k}: {v}" for k, v in summary["retries"].items()), file=out)
    if summary.get("tcp"):
        print("tcp (machine-wide): " + ", ".join(f"{k} +{v}" for k, v in summary["tcp"].items()), file=out)
    print(
        f"instances launched {summary['launched']}, unsettled {len(summary['unsettled'])}, "
        f"missing {len(summary['missing'])}",
        file=out,
    )


def tcp_counters() -> dict[str, int]:
    """This machine's TCP counters that tell how connections ended badly (Linux's
    /proc/net/netstat; machine-wide): ``TCPAbortOnData`` counts sockets closed with
    unread data (the peer gets a reset: an idle connection closed while a request
    arrived on it), ``ListenOverflows`` connections the accept queue had no room for."""
    wanted = ("TCPAbortOnData", "ListenOverflows", "ListenDrops")
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        for name, value in zip(names.split()[1:], values.split()[1:], strict=True):
            if name in wanted:
                out[name] = int(value)
    return out


# --- command line --------------------------------------------------------------------------------


def _devcluster(
    state_dir: Path, hosts: int, database: str, transport: str, workers: int, throttling: bool, api: str = ""
) -> dict[str, str]:
    """``ocs-manage devcluster up`` (throttling on or off, ``api``: more lines of its
    [api] section); the credentials it wrote."""
    conf = state_dir / "load.conf"
    conf.write_text(
        f"[api]\nthrottling = {str(throttling).lower()}\n{api}"
        "[compute]\nfake_vcpus = 4096\nfake_memory_mib = 4194304\n"
    )
    subprocess.run(
        [sys.executable, "-m", "ocs.cmd.manage", "--config-file", str(conf), "devcluster", "up",
         "--state-dir", str(state_dir / "dc"), "--hosts", str(hosts), "--schedulers", "2",
         "--api-workers", str(workers), "--database-url", database, "--transport-url", transport],
        check=True, timeout=300,
    )  # fmt: skip
    from ocs import devcluster
    from ocs.allinone import read_ocsrc

    state = devcluster.State.load(state_dir / "dc")
    assert state is not None
    files = [a for f in state.config_files for a in ("--config-file", f)]
    subprocess.run(  # the load is about the cloud, not about the default quotas (20 instances)
        [sys.executable, "-m", "ocs.cmd.manage", *files, "quota", "set", "admin", "--instances", "100000",
         "--vcpus", "400000"],
        check=True, timeout=60,
    )  # fmt: skip
    return read_ocsrc(state_dir / "dc" / "ocsrc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--devcluster", type=int, metavar="HOSTS", help="start a dev cluster with HOSTS fake hosts"
    )
    where.add_argument("--endpoint", help="an EC2 endpoint (credentials from AWS_* variables)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--per-client", type=int, default=2, help="instances a client holds at most")
    parser.add_argument("--api-workers", type=int, default=4)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/ocs_load")
    parser.add_argument("--transport-url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--image", help="AMI to launch (default: the image named ocs-demo)")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument(
        "--throttling",
        action="store_true",
        help="leave the dev cluster's EC2 throttling on (RequestLimitExceeded is then no fault)",
    )
    parser.add_argument(
        "--api-keepalive", type=int, help="the dev cluster's [api] keepalive (default: OCS's own)"
    )
    parser.add_argument(
        "--retry-mode",
        choices=("off", "standard"),
        default="off",
        help="boto3's retries: off (every dropped connection counts) or its standard mode",
    )
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ocs-load-"))
    env: dict[str, str] = dict(os.environ)
    try:
        if args.devcluster:
            env.update(
                _devcluster(
                    tmp, args.devcluster, args.database_url, args.transport_url, args.api_workers,
                    args.throttling,
                    "" if args.api_keepalive is None else f"keepalive = {args.api_keepalive}\n",
                )
            )  # fmt: skip
        retries: dict[str, Any] = (
            {"max_attempts": 0} if args.retry_mode == "off" else {"mode": "standard", "max_attempts": 5}
        )
        config = Config(retries=retries, read_timeout=60, max_pool_connections=4)
        tcp_before = tcp_counters()

        def client() -> Any:
            return boto3.client(
                "ec2",
                endpoint_url=args.endpoint or env["AWS_ENDPOINT_URL"],
                region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                config=config,
            )

        image = (
            args.image
            or client().describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0][
                "ImageId"
            ]
        )
        result = run_load(
            client, image, clients=args.clients, seconds=args.seconds, per_client=args.per_client
        )
        summary = result.summary()
        summary["tcp"] = {k: v - tcp_before.get(k, 0) for k, v in tcp_counters().items()}
        print_summary(summary)
        for fault in result.server_faults[:20]:
            print(f"  fault: {fault}")
        if args.devcluster:
            print(f"logs: {tmp / 'dc' / 'logs'}")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        return 0 if not result.server_faults and not result.unsettled and not result.missing else 1
    finally:
        if args.devcluster:
            subprocess.run(
                [sys.executable, "-m", "ocs.cmd.manage", "devcluster", "down", "--state-dir", str(tmp / "dc"),
                 "--purge"],
                check=False, timeout=120,
            )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
