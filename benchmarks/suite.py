"""The whole run: every server, every phase, the OCS-only rows, then the outputs.

Each phase starts its server afresh (instances terminated by the lifecycle phase
would otherwise stay visible and count as present), runs the client runner in a
process of its own, and stops the server by its PID. The servers run one at a
time, so that they never compete for the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import ocs_only, report
from benchmarks.modes import Mode
from benchmarks.servers import Moto, OcsAllInOne, OcsScaleOut, Server, Target

PHASES = ("lifecycle", "describe")
SERVERS = ("ocs", "moto", "ocs-scaleout")
#: The servers each mode measures unless told (``--servers``). Starting the scale-out
#: setup (a PostgreSQL database, RabbitMQ queues, a dozen processes) takes 10-20 s per
#: phase on a 2-core machine: it does not fit the quick mode's two minutes.
DEFAULT_SERVERS = {"full": SERVERS, "quick": ("ocs", "moto"), "tiny": ("ocs", "moto")}


def make_servers(names: list[str], mode: Mode, workdir: Path) -> list[Server]:
    most = max((*mode.levels, mode.batch * (mode.run_batch_calls + 1) + mode.run_one_calls))
    factories: dict[str, Callable[[], Server]] = {
        "ocs": lambda: OcsAllInOne(workdir, most),
        "moto": lambda: Moto(workdir),
        "ocs-scaleout": lambda: OcsScaleOut(workdir, most),
    }
    return [factories[n]() for n in names]


def run_client(target: Target, mode: Mode, phase: str, workdir: Path) -> dict[str, Any]:
    job = workdir / f"job-{target.name}-{phase}.json"
    out = workdir / f"out-{target.name}-{phase}.json"
    job.write_text(json.dumps({"target": target.to_json(), "mode": mode.to_json(), "phase": phase}))
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    subprocess.run([sys.executable, "-m", "benchmarks.client", str(job), str(out)], check=True, env=env)
    return dict(json.loads(out.read_text()))


def machine() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "boto3": version("boto3"), "moto": version("moto"), "ocs": version("ocs"), "ocs_commit": commit or None,
    }  # fmt: skip


def measure_servers(
    servers: list[Server], mode: Mode, workdir: Path, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, str]]:
    raw: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for server in servers:
        ok, why = server.available()
        if not ok:
            skipped[server.name] = why
            log(f"{server.label}: skipped ({why})")
            continue
        raw[server.name] = {}
        for phase in PHASES:
            t0 = time.perf_counter()
            target = server.start()
            try:
                raw[server.name][phase] = run_client(target, mode, phase, workdir)
            finally:
                server.stop()
            log(f"{server.label}: {phase} done in {time.perf_counter() - t0:.1f} s")
    return raw, skipped


def measure_ocs_only(mode: Mode, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = {"run_to_running": ocs_only.run_to_running(mode, workdir)}
    log(f"run→running done in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    data["scheduler"] = ocs_only.scheduler(mode)
    log(f"scheduler decisions done in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    data["libvirt"] = ocs_only.libvirt_boot(mode, workdir)
    log(f"libvirt boot: {data['libvirt'].get('skipped') or 'done'} ({time.perf_counter() - t0:.1f} s)")
    return data


def run(
    mode: Mode,
    out_dir: Path,
    servers: list[str] | None = None,
    *,
    with_ocs_only: bool = True,
    with_plot: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure, then write ``results.json`` (and ``latency.png``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = out_dir / "work"
    workdir.mkdir(exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    names = list(servers or DEFAULT_SERVERS.get(mode.name, SERVERS))
    raw, skipped = measure_servers(make_servers(names, mode, workdir), mode, workdir, log)
    rows = report.lifecycle_rows(raw, mode.batch) + report.describe_rows(raw, mode.page)
    rows += report.memory_rows(raw, mode.memory_level)
    report.add_ratios(rows)
    extra = measure_ocs_only(mode, workdir, log) if with_ocs_only and "ocs" in names else {}
    results = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": (dt.datetime.now(dt.UTC) - started).total_seconds(),
        "mode": mode.to_json(),
        "machine": machine(),
        "servers": [n for n in names if n in raw],
        "skipped": skipped,
        "rows": rows,
        "ocs_only": report.ocs_only_rows(extra),
        "libvirt": extra.get("libvirt"),
        "raw": raw,
    }
    if with_plot and raw:
        why = report.plot(raw, out_dir / "latency.png", mode.page)
        results["plot"] = None if why else "latency.png"
        if why:
            log(f"no plot: {why}")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    return results
