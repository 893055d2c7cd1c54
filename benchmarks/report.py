"""From raw samples to rows: the table, the JSON document and the plot.

A row has one figure per server (``values``), the ratio OCS ÷ moto when both
are there, and the issue's target for it when it has one. Latency rows are
medians (p50) and 95th percentiles (nearest rank) in milliseconds; throughput
rows are requests per second added up over the concurrent clients.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

PEER = "moto"


def p50(samples: list[float]) -> float:
    return float(statistics.median(samples))


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)])


def _row(
    row_id: str, workload: str, metric: str, unit: str, better: str, target: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": row_id, "workload": workload, "metric": metric, "unit": unit, "better": better,
        "target": target, "values": {}, "samples": {}, **extra,
    }  # fmt: skip


def _latency_rows(
    row_id: str, workload: str, per_server: dict[str, list[float]], **extra: Any
) -> list[dict[str, Any]]:
    rows = []
    for metric, fn in (("p50", p50), ("p95", p95)):
        row = _row(f"{row_id}.{metric}", workload, metric, "ms", "lower", "ratio <= 0.5", **extra)
        for server, samples in per_server.items():
            if samples:
                row["values"][server] = fn(samples)
                row["samples"][server] = len(samples)
        rows.append(row)
    return rows


def lifecycle_rows(raw: dict[str, Any], batch: int) -> list[dict[str, Any]]:
    names = (
        ("run_1", "RunInstances of 1 instance"),
        ("run_batch", f"RunInstances of {batch} instances"),
        ("terminate_1", "TerminateInstances of 1 instance"),
        ("terminate_batch", f"TerminateInstances of {batch} instances"),
    )
    rows = []
    for key, label in names:
        per_server = {s: r["lifecycle"]["samples"][key] for s, r in raw.items() if "lifecycle" in r}
        rows += _latency_rows(key, label, per_server)
    return rows


QUERIES = (
    ("page", "DescribeInstances, one page of {page}"),
    ("by_id", "DescribeInstances, one instance by ID"),
    ("filter", "DescribeInstances, state + tag + type filters (page of {page})"),
)


def _levels(raw: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    return {
        s: {lv["present"]: lv for lv in r["describe"]["levels"]} for s, r in raw.items() if "describe" in r
    }


def describe_rows(raw: dict[str, Any], page: int) -> list[dict[str, Any]]:
    levels = _levels(raw)
    present = sorted({n for per in levels.values() for n in per})
    rows = []
    for n in present:
        for key, label in QUERIES:
            per_server = {s: per[n]["samples"][key] for s, per in levels.items() if n in per}
            rows += _latency_rows(
                f"describe_{key}.{n}", f"{label.format(page=page)}; {n} present", per_server, present=n
            )
        for key, how in (("throughput", "boto3 clients"), ("throughput_raw", "raw signed HTTP clients")):
            rows += _throughput_rows(levels, n, key, how)
    return rows


def _throughput_rows(
    levels: dict[str, dict[int, dict[str, Any]]], n: int, key: str, how: str
) -> list[dict[str, Any]]:
    measured = {s: per[n][key] for s, per in levels.items() if n in per and key in per[n]}
    if not measured:
        return []
    clients = next(iter(measured.values()))["clients"]
    row = _row(
        f"describe_{'rps' if key == 'throughput' else 'rps_raw'}.{n}",
        f"DescribeInstances, one page, {clients} concurrent {how}; {n} present",
        "throughput", "req/s", "higher", "ratio >= 5", present=n,
    )  # fmt: skip
    for s, tp in measured.items():
        row["values"][s] = tp["rps"]
        row["samples"][s] = tp["requests"]
        row.setdefault("errors", {})[s] = tp["errors"]
    return [row]


def memory_rows(raw: dict[str, Any], level: int | None) -> list[dict[str, Any]]:
    if level is None:
        return []
    row = _row(
        f"memory.{level}", f"Server resident memory; {level} instances present", "RSS", "MiB", "lower",
        present=level, note="OCS: the all-in-one process (API, scheduler and every compute agent)",
    )  # fmt: skip
    for s, per in _levels(raw).items():
        rss = per.get(level, {}).get("rss_kib") or {}
        known = [v for v in rss.values() if v]
        if known:
            row["values"][s] = sum(known) / 1024
    return [row] if row["values"] else []


def add_ratios(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        peer = row["values"].get(PEER)
        row["ratio"] = {
            s: (v / peer if peer else None)
            for s, v in row["values"].items()
            if s != PEER and peer is not None
        }
        row["met"] = None
        target = row.get("target") or ""
        ratio = row["ratio"].get("ocs")
        if ratio is not None and target.startswith("ratio <="):
            row["met"] = ratio <= float(target.split()[-1])
        elif ratio is not None and target.startswith("ratio >="):
            row["met"] = ratio >= float(target.split()[-1])


def ocs_only_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    r2r = data.get("run_to_running") or {}
    for r in r2r.get("rows", []):
        n = r["instances"]
        for metric in ("p50", "p95"):
            target = "< 100" if metric == "p50" else None
            row = _row(f"run_to_running_{n}.{metric}", f"run→running, fake driver, {n} per RunInstances",
                       metric, "ms", "lower", target)  # fmt: skip
            row["values"]["ocs"] = r[f"{metric}_ms"]
            row["samples"]["ocs"] = r["samples"]
            row["met"] = r[f"{metric}_ms"] < 100 if target else None
            rows.append(row)
    for hosts, kinds in (data.get("scheduler") or {}).items():
        for kind, label in (
            ("core", "pure core"),
            ("service", "service on SQLite, with claims"),
            ("service_batched", "service on SQLite, with claims, 16 requests at once"),
        ):
            for count in (1, 100):
                if kind not in kinds:
                    continue
                m = kinds[kind][f"request_{count}"]
                target = ">= 2000" if hosts == "1000" else None
                row = _row(
                    f"scheduler_{kind}_{count}.{hosts}",
                    f"Scheduler decisions, {label}, requests of {count}; {hosts} hosts",
                    "instances placed/s", "1/s", "higher", target, present=int(hosts),
                )  # fmt: skip
                row["values"]["ocs"] = m["per_second"]
                row["samples"]["ocs"] = m["calls"]
                row["met"] = m["per_second"] >= 2000 if target else None
                rows.append(row)
    rows += _libvirt_rows(data.get("libvirt") or {})
    return rows


def _libvirt_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Real guests (QEMU via libvirt): seconds from LibvirtDriver.spawn to each console marker."""
    summary = data.get("summary")
    if not summary:
        return []
    rows = []
    kind = data.get("virt_type", "?")
    labels = {
        "spawn": "spawn() returned",
        "userspace": "guest's first userspace line",
        "ready": "guest userspace ready",
    }
    for key, label in labels.items():
        target = "<= 3.5" if key == "userspace" else None
        row = _row(f"libvirt_{key}.p50", f"Guest boot on libvirt ({kind}), spawn → {label}", "p50", "s",
                   "lower", target)  # fmt: skip
        row["values"]["ocs"] = summary[key]["p50"]
        row["samples"]["ocs"] = len(data.get("samples", []))
        row["met"] = summary[key]["p50"] <= 3.5 if target else None
        rows.append(row)
    return rows


# --- output --------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def table(rows: list[dict[str, Any]], servers: list[str]) -> str:
    others = [s for s in servers if s != PEER]
    head = [
        "workload",
        "metric",
        *servers,
        *(f"{s}/{PEER}" for s in others if PEER in servers),
        "target",
        "met",
    ]
    lines = []
    for row in rows:
        ratios = [_ratio_text(row.get("ratio", {}).get(s)) for s in others if PEER in servers]
        met = {True: "yes", False: "NO", None: ""}[row.get("met")]
        values = [_fmt(row["values"].get(s)) for s in servers]
        lines.append(
            [
                row["workload"],
                f"{row['metric']} {row['unit']}",
                *values,
                *ratios,
                row.get("target") or "",
                met,
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    out = []
    for i, line in enumerate([head, *lines]):
        cells = [
            str(c).ljust(w) if j < 2 else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _ratio_text(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def plot(raw: dict[str, Any], path: Path, page: int) -> str | None:
    """latency.png: p50 of each DescribeInstances query against instances present."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'ocs[bench]')"
    levels = _levels(raw)
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = {"ocs": "tab:blue", "moto": "tab:orange", "ocs-scaleout": "tab:green"}
    markers = {"page": "o", "by_id": "s", "filter": "^"}
    for server, per in levels.items():
        xs = sorted(per)
        for key, label in QUERIES:
            ys = [p50(per[n]["samples"][key]) for n in xs]
            ax.plot(xs, ys, marker=markers[key], color=colors.get(server), linestyle="-" if server != PEER else "--",
                    label=f"{server}: {label.format(page=page).removeprefix('DescribeInstances, ')}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    present = sorted({n for per in levels.values() for n in per})
    ax.set_xticks(present, [f"{n:,}" for n in present])
    ax.minorticks_off()
    ax.set_xlabel("instances present")
    ax.set_ylabel("DescribeInstances latency, p50 (ms)")
    ax.set_title("DescribeInstances latency against instances present (boto3 client, loopback)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
