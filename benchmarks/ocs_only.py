"""Measurements with no peer in moto: run→running, scheduler decisions, real guests.

- :func:`run_to_running`: :mod:`benchmarks.run_to_running` in a process of its
  own (it hooks the scheduler of an all-in-one it runs in that process).
- :func:`scheduler_core`: the pure core ``Scheduler.schedule`` over N simulated
  host states, for requests of 1 instance (one decision per call) and of 100.
- :func:`scheduler_service`: the scheduler service's ``schedule_instances`` as
  RunInstances calls it, on SQLite with N simulated hosts: host states read from
  the database, the core, claims by conditional UPDATE, instances assigned, the
  spawn casts built (and dropped: there are no agents); one call at a time, and
  16 at once (decided in batches, as when that many wait in its queue).
- :func:`libvirt_boot`: real guests on libvirt (:mod:`benchmarks.libvirt_boot`, by
  the libvirt issue): from the driver's ``spawn`` to the guest's first userspace
  line; skipped, saying why, without libvirt or the built test image.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.modes import Mode

ZONE = "us-east-1a"


def run_to_running(mode: Mode, workdir: Path) -> dict[str, Any]:
    out = workdir / "run_to_running.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run_to_running",
        "--rounds",
        str(mode.r2r_rounds),
        "--json",
        str(out),
    ]
    for size in mode.r2r_sizes:
        cmd += ["--only", str(size)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return dict(json.loads(out.read_text()))


def _host_states(n: int) -> list[Any]:
    from ocs.scheduler.core import HostState

    return [
        HostState(
            name=f"sim-{i:04d}",
            availability_zone=ZONE,
            total_vcpus=64,
            total_memory_mib=256 * 1024,
            total_disk_gib=4096,
            used_vcpus=(i * 7) % 48,
            used_memory_mib=((i * 13) % 128) * 1024,
            instances=(i * 7) % 24,
        )
        for i in range(n)
    ]


def _rate(call: Any, seconds: float, per_call: int) -> dict[str, float]:
    call()  # warm up
    calls = 0
    t0 = time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return {"per_second": calls * per_call / elapsed, "calls": calls, "seconds": elapsed}


def scheduler_core(hosts: int, seconds: float) -> dict[str, Any]:
    """Placements per second of the pure core (spread weigher, default filters)."""
    from ocs.scheduler.core import Request, make_scheduler

    states = _host_states(hosts)
    scheduler = make_scheduler()
    out = {}
    for count in (1, 100):
        request = Request(vcpus=2, memory_mib=1024, disk_gib=8, count=count)
        out[f"request_{count}"] = _rate(lambda r=request: scheduler.schedule(states, r), seconds, count)
    return out


class _NoAgents:
    """Stands in for ComputeApi: the casts are built, then dropped."""

    def __init__(self) -> None:
        self.sent = 0

    def _send(self, message: object) -> None:
        self.sent += 1

    spawn = destroy = stop = start = reboot = _send


def _service_fixture(hosts: int, tmp: Path, url: str | None = None) -> tuple[Any, Any, str]:
    from ocs.db import accounts, migration
    from ocs.db import engine as db_engine
    from ocs.db import hosts as db_hosts
    from ocs.scheduler.service import SchedulerEndpoint, SchedulerSettings

    url = url or f"sqlite:///{tmp / 'scheduler.sqlite'}"
    migration.sync(url)
    engine = db_engine.make_engine(url)
    sessions = db_engine.session_factory(engine)
    with db_engine.transaction(sessions) as s:
        account = accounts.create_account(s, "bench").id
        for i in range(hosts):
            facts = db_hosts.HostFacts(
                name=f"sim-{i:04d}", availability_zone=ZONE, hypervisor_type="fake",
                hypervisor_version="1", architectures=("x86_64",),
                vcpus=100_000, memory_mib=100_000 * 1024, disk_gib=1_000_000,
            )  # fmt: skip
            db_hosts.upsert_host(s, facts)
    settings = SchedulerSettings(service_down_time=3600.0)
    return SchedulerEndpoint(sessions, _NoAgents(), settings), sessions, account  # type: ignore[arg-type]


def _launch(sessions: Any, account: str, count: int) -> list[str]:
    from ocs.db import compute as repo
    from ocs.db import engine as db_engine

    spec = repo.LaunchSpec(
        image_id="ami-00000000000000001", instance_type="t3.micro", vcpus=2, memory_mib=1024,
        disk_gib=8, architecture="x86_64", availability_zone=ZONE, subnet_id="subnet-00000000000000001",
        subnet_cidr="10.0.0.0/8", vpc_id="vpc-00000000000000001", security_group_ids=(),
        root_device_name="/dev/sda1",
    )  # fmt: skip
    with db_engine.transaction(sessions) as s:
        _, made = repo.launch(s, account, spec, count)
        return [i.id for i in made]


def scheduler_service(
    hosts: int, seconds: float, url: str | None = None, counts: tuple[int, ...] = (1, 100), at_once: int = 1
) -> dict[str, Any]:
    """Instances placed per second by ``schedule_instances`` (launching them is not timed),
    on a SQLite file of its own or on ``url`` (an empty database, e.g. PostgreSQL).

    ``at_once`` calls are made together from as many threads, as the bus server's
    workers make them when that many requests wait in the scheduler's queue (its
    combiner then decides them in batches); the time is from their start to the last
    answer."""
    from ocs.scheduler.rpcapi import ScheduleInstances

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ocs-bench-sched-") as tmp, ThreadPoolExecutor(at_once) as pool:
        endpoint, sessions, account = _service_fixture(hosts, Path(tmp), url)

        def decide(ids: list[str]) -> Any:
            return endpoint.schedule_instances(ScheduleInstances(instance_ids=ids, min_count=len(ids)))

        for count in counts:
            timed, calls, placed = 0.0, 0, 0
            while calls < 2 * at_once or timed < seconds:
                launches = [_launch(sessions, account, count) for _ in range(at_once)]
                t0 = time.perf_counter()
                results = list((pool.map if at_once > 1 else map)(decide, launches))
                timed += time.perf_counter() - t0
                calls += at_once
                placed += sum(len(r.placed) for r in results)
            out[f"request_{count}"] = {"per_second": placed / timed, "calls": calls, "seconds": timed}
        out["largest_batch"] = endpoint.combiner.largest
        sessions.kw["bind"].dispose()
    return out


#: Requests made at once in the scheduler's batched rows (what its queue may hold).
AT_ONCE = 16


def scheduler(mode: Mode) -> dict[str, Any]:
    return {
        str(n): {
            "core": scheduler_core(n, mode.scheduler_seconds),
            "service": scheduler_service(n, mode.scheduler_seconds),
            "service_batched": scheduler_service(n, mode.scheduler_seconds, at_once=AT_ONCE),
        }
        for n in mode.scheduler_hosts
    }


def _test_image_ready() -> str | None:
    """Why the libvirt boot cannot be measured now, or None if it can."""
    try:
        import libvirt  # type: ignore[import-not-found]  # noqa: F401

        from tests.framework import guest_image as gi
    except ImportError as exc:
        return f"libvirt-python or the test framework is missing ({exc}); pip install 'ocs[libvirt]'"
    try:
        built = gi._load(gi.cache_root() / gi._script_digest()) is not None
    except (AttributeError, OSError) as exc:
        return f"cannot tell whether the test image is built ({exc})"
    if not built:
        return (
            "the guest test image is not built (python -m ocs.images.test_image; the libvirt tests build it)"
        )
    return None


def libvirt_boot(mode: Mode, workdir: Path) -> dict[str, Any]:
    """Real guests: :mod:`benchmarks.libvirt_boot` (LibvirtDriver.spawn → the guest's first
    userspace line on its console), in a process of its own; says why when it cannot run."""
    if mode.libvirt_runs < 1:
        return {"skipped": f"not measured in {mode.name} mode"}
    why = _test_image_ready()
    if why:
        return {"skipped": why}
    out = workdir / "libvirt_boot.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.libvirt_boot",
        "--runs",
        str(mode.libvirt_runs),
        "--json",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"skipped": f"benchmarks.libvirt_boot failed: {done.stderr.strip()[-500:]}"}
    return dict(json.loads(out.read_text()))
