"""``python -m benchmarks run [--quick]``: OCS and moto side by side (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import report, suite
from benchmarks.modes import MODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="measure OCS and moto, print the table, write JSON and PNG")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick",
                      help="every kind of row, up to 1,000 instances; under two minutes")  # fmt: skip
    size.add_argument("--tiny", action="store_const", dest="mode", const="tiny",
                      help="a few calls per workload (the smoke test)")  # fmt: skip
    run.set_defaults(mode="full")
    run.add_argument("--out", type=Path, help="directory for results.json, latency.png and logs "
                     "(default: a new directory under the temporary directory)")  # fmt: skip
    run.add_argument("--servers", help=f"comma-separated servers to measure, of {', '.join(suite.SERVERS)} "
                     "(default: all in the full run; ocs,moto with --quick and --tiny, where starting the "
                     "scale-out setup twice does not fit; unavailable ones are skipped)")  # fmt: skip
    run.add_argument(
        "--no-ocs-only", action="store_true", help="leave out run→running and the scheduler rows"
    )
    run.add_argument("--no-plot", action="store_true", help="do not draw latency.png")
    return parser


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = MODES[args.mode]
    out = args.out or Path(tempfile.mkdtemp(prefix=f"ocs-bench-{time.strftime('%Y%m%d-%H%M%S')}-"))
    chosen = args.servers or ",".join(suite.DEFAULT_SERVERS.get(mode.name, suite.SERVERS))
    servers = [s.strip() for s in chosen.split(",") if s.strip()]
    unknown = sorted(set(servers) - set(suite.SERVERS))
    if unknown:
        raise SystemExit(f"unknown servers: {', '.join(unknown)} (known: {', '.join(suite.SERVERS)})")
    log(f"mode {mode.name}; results in {out}")
    results = suite.run(
        mode, out, servers, with_ocs_only=not args.no_ocs_only, with_plot=not args.no_plot, log=log
    )
    print(report.table(results["rows"], results["servers"]))
    if results["ocs_only"]:
        print("\nOCS only")
        print(report.table(results["ocs_only"], ["ocs"]))
    if (results.get("libvirt") or {}).get("skipped"):
        print(f"\nGuest boot on libvirt: skipped, {results['libvirt']['skipped']}")
    for name, why in results["skipped"].items():
        print(f"{name}: skipped, {why}")
    print(f"\n{out / 'results.json'}" + (f"\n{out / results['plot']}" if results.get("plot") else ""))
    print(f"{results['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
