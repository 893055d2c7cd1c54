"""Profile the OCS all-in-one while one boto3 workload runs against it (py-spy).

    python -m benchmarks.profile_server terminate_batch [--calls 5] [--batch 100] [--top 40]
    python -m benchmarks.profile_server scheduler --hosts 1000 [--count 1]

Starts the all-in-one as the suite does (:class:`benchmarks.servers.OcsAllInOne`),
prepares what the workload needs (a subnet, instances to terminate, a population
to describe), then samples the server with ``py-spy record --format raw`` (every
thread, native frames off, idle threads left out) for exactly the timed calls,
and prints the functions by inclusive and by self time, counted over the samples
of the threads that were busy (a function is counted once per sample however deep
it recurs). ``scheduler`` profiles the scheduler service's ``schedule_instances``
on SQLite in this process (:func:`benchmarks.ocs_only.scheduler_service`) instead.
The raw stacks stay in ``--out`` for speedscope or a flame graph.

py-spy comes from PyPI (``pip install py-spy``); it needs ptrace on the server's PID
(root, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import workloads
from benchmarks.servers import OcsAllInOne

WORKLOADS = ("run_1", "run_batch", "terminate_1", "terminate_batch", "describe_by_id", "describe_page")


def _pyspy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


class Sampler:
    """``py-spy record`` on one PID, from :meth:`start` until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        self.cmd = [_pyspy(), "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
        self.cmd += ["--rate", str(rate), "--threads", "--nonblocking"]
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches and starts sampling

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-1000:]}")


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def summarize(raw: Path, top: int, keep: Callable[[list[str]], bool] = lambda _s: True) -> str:
    """Inclusive and self time per function over the busy samples of ``raw`` (py-spy's raw format)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";")[1:] if f]  # the first is the thread
        if not frames or not keep(frames):
            continue
        n = int(count_text)
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    lines = [f"{total} busy samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"\n-- by {title} time --")
        for name, n in counter.most_common(top):
            lines.append(f"{100 * n / max(total, 1):6.1f}%  {n:6d}  {name}")
    return "\n".join(lines)


def _prepare(ec2: Any, env: workloads.Env, workload: str, calls: int, batch: int) -> list[list[str]]:
    if workload == "terminate_1":
        return [workloads.run(ec2, env, 1) for _ in range(calls + 1)]
    if workload == "terminate_batch":
        return [workloads.run(ec2, env, batch) for _ in range(calls + 1)]
    if workload.startswith("describe"):
        made, _ = workloads.populate(ec2, env, 0, 1_000, batch, 0)
        workloads.wait_running(ec2)
        return [made]
    return []


def _call(
    ec2: Any, env: workloads.Env, workload: str, batch: int, ready: list[list[str]]
) -> Callable[[int], Any]:
    calls: dict[str, Callable[[int], Any]] = {
        "run_1": lambda i: workloads.run(ec2, env, 1),
        "run_batch": lambda i: workloads.run(ec2, env, batch),
        "terminate_1": lambda i: ec2.terminate_instances(InstanceIds=ready[i]),
        "terminate_batch": lambda i: ec2.terminate_instances(InstanceIds=ready[i]),
        "describe_by_id": lambda i: ec2.describe_instances(
            InstanceIds=[ready[0][(i * 7919) % len(ready[0])]]
        ),
        "describe_page": lambda i: ec2.describe_instances(MaxResults=100),
    }
    return calls[workload]


def profile_workload(args: argparse.Namespace, workdir: Path) -> str:
    server = OcsAllInOne(workdir, max(1_000, args.batch * (args.calls + 2)))
    target = server.start()
    try:
        ec2 = workloads.make_client(target.to_json())
        env = workloads.prepare(ec2)
        ready = _prepare(ec2, env, args.workload, args.calls, args.batch)
        call = _call(ec2, env, args.workload, args.batch, ready)
        if args.workload.startswith("terminate"):
            call(args.calls)  # warm up on the spare launch
        else:
            call(0)
        sampler = Sampler(target.pids[0], workdir / f"{args.workload}.raw", args.rate)
        sampler.start()
        samples = workloads.timed(call, args.calls, 120.0)
        sampler.stop()
    finally:
        server.stop()
    ordered = sorted(samples)
    head = f"{args.workload}: {len(samples)} calls, p50 {ordered[len(ordered) // 2]:.1f} ms (profiled)"
    return head + "\n" + summarize(sampler.out, args.top) + f"\n\nraw stacks: {sampler.out}"


def profile_scheduler(args: argparse.Namespace, workdir: Path) -> str:
    from pyinstrument import Profiler  # pip install pyinstrument

    from benchmarks import ocs_only

    profiler = Profiler(interval=0.0005)
    profiler.start()
    out = ocs_only.scheduler_service(args.hosts, args.seconds, counts=(args.count,))
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    (workdir / "scheduler.txt").write_text(text)
    return f"{out}\n{text}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workload", choices=(*WORKLOADS, "scheduler"))
    parser.add_argument("--calls", type=int, default=20, help="timed calls (default 20)")
    parser.add_argument("--batch", type=int, default=100, help="instances per batch (default 100)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default 250)")
    parser.add_argument("--top", type=int, default=40, help="functions listed (default 40)")
    parser.add_argument("--hosts", type=int, default=1000, help="scheduler: simulated hosts")
    parser.add_argument("--count", type=int, default=1, help="scheduler: instances per request")
    parser.add_argument("--seconds", type=float, default=3.0, help="scheduler: seconds measured")
    parser.add_argument(
        "--out", type=Path, help="directory for the raw stacks (default: a new temporary one)"
    )
    args = parser.parse_args(argv)
    workdir = args.out or Path(tempfile.mkdtemp(prefix="ocs-profile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    if args.workload == "scheduler":
        print(profile_scheduler(args, workdir))
    else:
        print(profile_workload(args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
