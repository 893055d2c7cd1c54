"""The client runner: one phase of workloads against one server, in a process of its own.

    python -m benchmarks.client JOB.json OUT.json

``JOB.json`` holds ``target`` (:class:`benchmarks.servers.Target`), ``mode``
(:class:`benchmarks.modes.Mode`) and ``phase``:

- ``lifecycle``: RunInstances of 1 and of ``batch``, TerminateInstances of 1 and
  of ``batch``, on a server that starts empty;
- ``describe``: grows the population level by level and measures the
  DescribeInstances queries at each (and the concurrent clients' throughput, and
  the server's resident memory).

``OUT.json`` gets the raw samples (milliseconds); the suite computes the figures.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import workloads
from benchmarks.modes import Mode
from benchmarks.servers import Target, rss_kib


def lifecycle(target: Target, mode: Mode) -> dict[str, Any]:
    ec2 = workloads.make_client(target.to_json())
    env = workloads.prepare(ec2)
    return {"samples": workloads.run_and_terminate(ec2, env, mode)}


def describe(target: Target, mode: Mode) -> dict[str, Any]:
    ec2 = workloads.make_client(target.to_json())
    env = workloads.prepare(ec2)
    ids: list[str] = []
    k = 0
    levels = []
    for level in mode.levels:
        t0 = time.perf_counter()
        made, k = workloads.populate(ec2, env, len(ids), level, mode.batch, k)
        ids += made
        workloads.wait_running(ec2)
        record: dict[str, Any] = {"present": level, "populate_seconds": time.perf_counter() - t0}
        record["samples"] = workloads.describe_queries(ec2, ids, mode, k)
        if level in mode.throughput_levels:
            page_max = record["samples"]["max_results"]["page"]
            record["throughput"] = workloads.throughput(target.to_json(), mode, page_max, "boto3")
            record["throughput_raw"] = workloads.throughput(target.to_json(), mode, page_max, "raw")
        record["rss_kib"] = {str(pid): rss_kib(pid) for pid in target.pids}
        levels.append(record)
        print(f"  {target.name}: {level} instances measured", file=sys.stderr, flush=True)
    return {"levels": levels}


PHASES = {"lifecycle": lifecycle, "describe": describe}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    target, mode = Target.from_json(job["target"]), Mode.from_json(job["mode"])
    t0 = time.perf_counter()
    out = PHASES[job["phase"]](target, mode)
    out["seconds"] = time.perf_counter() - t0
    Path(args[1]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
