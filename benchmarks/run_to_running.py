"""Run→running latency of instances on the all-in-one (one process, memory bus,
fake hypervisor with zero boot delay, SQLite).

For 1, 10 and 100 instances per RunInstances, it launches through boto3 and
takes, for each instance, the time from sending RunInstances until the
scheduler has committed it ``running`` (the moment DescribeInstances would show
it), then terminates them. Prints p50/p95 per batch size, and the latency of the
RunInstances answer itself::

    /work/venv/bin/python benchmarks/run_to_running.py [--rounds 20] [--hosts 4]
    /work/venv/bin/python benchmarks/run_to_running.py --profile /tmp/run.prof --only 1

``python -m benchmarks run`` runs it as one of its OCS-only rows, in a process
of its own, with ``--json FILE`` (the rows, as printed, in a JSON document).

``--profile FILE`` profiles every thread of the cloud (the API's, the
scheduler's, the agents') with yappi when it is importable (``pip install
yappi``; wall-clock time), else only this thread with cProfile, and writes
pstats data to FILE (``python -m pstats FILE``); it prints the 30 functions
with the most cumulative time too.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from ocs.allinone import AllInOne, read_ocsrc
from ocs.conf import make_conf
from ocs.db import compute as db_compute
from ocs.db import engine as db_engine
from ocs.scheduler.rpcapi import InstanceEvent

ZONE = "us-east-1a"


class Watch:
    """Records when each instance was committed running, and terminated."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str], float] = {}
        self.cond = threading.Condition()

    def hook(self, handler: Callable[[InstanceEvent], None]) -> Callable[[InstanceEvent], None]:
        def watched(ev: InstanceEvent) -> None:
            handler(ev)
            with self.cond:
                self.at[(ev.instance_id, ev.event)] = time.perf_counter()
                self.cond.notify_all()

        return watched

    def wait(self, ids: list[str], event: str, timeout: float = 60.0) -> list[float]:
        with self.cond:
            ok = self.cond.wait_for(lambda: all((i, event) in self.at for i in ids), timeout)
        if not ok:
            raise TimeoutError(f"{event} of {len(ids)} instances not seen in {timeout} s")
        return [self.at[(i, event)] for i in ids]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def start_cloud(state: str, hosts: int) -> AllInOne:
    conf = make_conf()
    conf([])
    conf.set_override("state_dir", state)
    conf.set_override("listen", "127.0.0.1:0", group="api")
    if "throttling" in conf.api:
        conf.set_override("throttling", False, group="api")  # EC2's rate limits are policy, not speed
    for key, value in {
        "fake_hosts": hosts,
        "fake_boot_delay": 0.0,
        "availability_zone": ZONE,
        "fake_vcpus": 512,
        "fake_memory_mib": 1 << 22,
    }.items():
        conf.set_override(key, value, group="compute")
    aio = AllInOne(conf)
    aio.start()
    engine = db_engine.make_engine(db_engine.default_url(state), pool_size=1)
    with db_engine.transaction(db_engine.session_factory(engine)) as s:
        from ocs.db import accounts

        admin = accounts.get_account(s, "admin")
        db_compute.set_quota(s, admin.id, "instances", 100_000)
        db_compute.set_quota(s, admin.id, "vcpus", 1_000_000)
    engine.dispose()
    return aio


def client(aio: AllInOne) -> Any:
    env = read_ocsrc(aio.ocsrc)
    return boto3.client(
        "ec2",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 0}),
    )


def one_round(ec2: Any, watch: Watch, image: str, count: int) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    out = ec2.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=count,
        MaxCount=count,
        Placement={"AvailabilityZone": ZONE},
    )
    answered = time.perf_counter() - t0
    ids = [i["InstanceId"] for i in out["Instances"]]
    running = [t - t0 for t in watch.wait(ids, "spawned")]
    ec2.terminate_instances(InstanceIds=ids)
    watch.wait(ids, "destroyed")
    return running, answered


def measure(aio: AllInOne, sizes: list[int], rounds: int) -> list[dict[str, Any]]:
    assert aio.scheduler is not None
    watch = Watch()
    endpoint = aio.scheduler.endpoint
    endpoint.instance_event = watch.hook(endpoint.instance_event)  # type: ignore[method-assign]
    ec2 = client(aio)
    image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]["ImageId"]
    one_round(ec2, watch, image, 1)  # warm up: default network, caches, connections
    rows = []
    for size in sizes:
        samples: list[float] = []
        answers: list[float] = []
        for _ in range(max(3, rounds * 5 // (size + 4))):  # 20 rounds of 1, 7 of 10, 3 of 100
            running, answered = one_round(ec2, watch, image, size)
            samples += running
            answers.append(answered)
        rows.append(
            {
                "instances": size,
                "samples": len(samples),
                "p50_ms": statistics.median(samples) * 1000,
                "p95_ms": percentile(samples, 0.95) * 1000,
                "max_ms": max(samples) * 1000,
                "answer_p50_ms": statistics.median(answers) * 1000,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'instances':>9}  {'samples':>7}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}  {'RunInstances p50 ms':>19}"
    )
    for r in rows:
        print(
            f"{r['instances']:>9}  {r['samples']:>7}  {r['p50_ms']:>8.1f}  {r['p95_ms']:>8.1f}  "
            f"{r['max_ms']:>8.1f}  {r['answer_p50_ms']:>19.1f}"
        )


class Profiler:
    """yappi over every thread (wall clock) if installed, else cProfile on this one."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.yappi: Any = None
        self.cprofile: cProfile.Profile | None = None
        if path is None:
            return
        try:
            import yappi  # type: ignore[import-not-found]

            self.yappi = yappi
        except ImportError:
            print("yappi is not installed: profiling the main thread only (cProfile)", file=sys.stderr)
            self.cprofile = cProfile.Profile()

    def __enter__(self) -> Profiler:
        if self.yappi is not None:
            self.yappi.set_clock_type(os.environ.get("OCS_PROFILE_CLOCK", "wall"))
            self.yappi.start()
        elif self.cprofile is not None:
            self.cprofile.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.yappi is not None:
            self.yappi.stop()
        elif self.cprofile is not None:
            self.cprofile.disable()

    def report(self) -> None:
        if self.path is None:
            return
        if self.yappi is not None:
            self.yappi.get_func_stats().save(self.path, type="pstat")
        elif self.cprofile is not None:
            self.cprofile.dump_stats(self.path)
        pstats.Stats(self.path).sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=20, help="RunInstances calls of one instance (default 20)"
    )
    parser.add_argument("--hosts", type=int, default=4, help="simulated hosts (default 4)")
    parser.add_argument("--only", type=int, action="append", help="batch size(s) to run (default 1, 10, 100)")
    parser.add_argument("--profile", metavar="FILE", help="write profile stats there (see above)")
    parser.add_argument(
        "--log-level", default="WARNING", help="OCS log level while measuring (default WARNING)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the rows there as JSON")
    args = parser.parse_args(argv)
    profiler = Profiler(args.profile)
    with tempfile.TemporaryDirectory(prefix="ocs-bench-") as state:
        aio = start_cloud(state, args.hosts)
        logging.getLogger("ocs").setLevel(args.log_level)
        try:
            with profiler:
                rows = measure(aio, args.only or [1, 10, 100], args.rounds)
        finally:
            aio.stop()
    print(f"run→running on the all-in-one: {args.hosts} fake hosts, zero boot delay, SQLite, memory bus")
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hosts": args.hosts, "rows": rows}, f)
    profiler.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
