"""How much each mode measures: calls, seconds and populations.

``full`` is what the issue asks for (200 RunInstances, 1,000 and 10,000
instances present, 20 s of four concurrent clients); ``quick`` keeps every kind
of row but stops at 1,000 instances and finishes in under two minutes; ``tiny``
is the smoke test's (a few calls per workload, a few dozen instances).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Mode:
    name: str
    run_one_calls: int  # RunInstances of 1 instance
    run_batch_calls: int  # RunInstances of ``batch`` instances
    terminate_calls: int  # TerminateInstances of 1 instance
    describe_calls: int  # per DescribeInstances query and population
    levels: tuple[int, ...]  # instances present when DescribeInstances is measured
    throughput_levels: tuple[int, ...]  # populations with a concurrent-clients run
    throughput_seconds: float
    throughput_clients: int = 4
    batch: int = 100  # instances per RunInstances when populating, and of the batch row
    page: int = 100  # MaxResults of the "one page" and filter queries
    budget_seconds: float = 60.0  # no single workload runs longer than this
    r2r_rounds: int = 20  # run_to_running.py --rounds
    r2r_sizes: tuple[int, ...] = (1, 10, 100)
    scheduler_hosts: tuple[int, ...] = (100, 1000)
    scheduler_seconds: float = 2.0
    memory_level: int | None = 10_000  # population at which the servers' memory is reported
    libvirt_runs: int = 5  # real guest boots (benchmarks.libvirt_boot), 0: none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mode:
        fields = dict(data)
        for key in ("levels", "throughput_levels", "r2r_sizes", "scheduler_hosts"):
            fields[key] = tuple(fields[key])
        return cls(**fields)


FULL = Mode(
    name="full",
    run_one_calls=200,
    run_batch_calls=5,
    terminate_calls=100,
    describe_calls=30,
    levels=(1_000, 2_500, 5_000, 10_000),
    throughput_levels=(1_000, 10_000),
    throughput_seconds=20.0,
)

QUICK = Mode(
    name="quick",
    run_one_calls=60,
    run_batch_calls=2,
    terminate_calls=30,
    describe_calls=12,
    levels=(500, 1_000),
    throughput_levels=(1_000,),
    throughput_seconds=5.0,
    budget_seconds=15.0,
    r2r_rounds=5,
    scheduler_seconds=1.0,
    memory_level=1_000,
    libvirt_runs=2,
)

TINY = Mode(
    name="tiny",
    run_one_calls=3,
    run_batch_calls=1,
    terminate_calls=3,
    describe_calls=3,
    levels=(20,),
    throughput_levels=(20,),
    throughput_seconds=0.5,
    throughput_clients=2,
    batch=5,
    page=5,
    budget_seconds=5.0,
    r2r_rounds=1,
    r2r_sizes=(1, 10),
    scheduler_hosts=(100,),
    scheduler_seconds=0.1,
    memory_level=20,
    libvirt_runs=0,
)

MODES = {m.name: m for m in (FULL, QUICK, TINY)}
