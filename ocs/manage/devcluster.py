"""``ocs-manage devcluster up|status|down``: every service its own process on this
machine, over its RabbitMQ and PostgreSQL (see :mod:`ocs.devcluster`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import platformdirs
from oslo_config import cfg

from ocs import devcluster as dc
from ocs.manage.common import print_json, print_table

DEFAULT_STATE_DIR = Path(platformdirs.user_data_dir("ocs")) / "devcluster"


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).expanduser().resolve() if args.state_dir else DEFAULT_STATE_DIR


def up(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    options = dc.Options(
        state_dir=_state_dir(args),
        hosts=args.hosts,
        api_workers=args.api_workers,
        schedulers=args.schedulers,
        database_url=args.database_url,
        transport_url=args.transport_url,
        config_files=tuple(Path(f).resolve() for f in args.config_file),
        wait=args.wait,
    )
    state, creds = dc.up(options)
    d = options.state_dir
    print(f"OCS dev cluster is running at {state.endpoint}")
    print(f"  state directory  {d}  (logs/, run/*.pid, conf/)")
    print(f"  configuration    {d / 'ocs.conf'}")
    print(f"  credentials      {d / 'ocsrc'}   (source it, then: aws ec2 describe-instances)")
    print(f"  access key       {creds.access_key_id}  (account admin)")
    print(f"  database         {state.database_url}")
    print(f"  bus              {state.transport_url}  exchange {state.exchange}")
    print_table(["PROCESS", "PID", "LOG"], [[p.name, p.pid, p.log] for p in state.processes])
    print(f"Stop it with: ocs-manage devcluster down --state-dir {d}")
    return 0


def _process_rows(state: dc.State) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "kind": p.kind, "pid": p.pid, "alive": dc.alive(p), "log": p.log}
        for p in state.processes
    ]


def status(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    from ocs.db.models.base import utcnow
    from ocs.manage import hosts
    from ocs.manage.common import session

    d = _state_dir(args)
    state = dc.State.load(d)
    if state is None:
        raise dc.DevClusterError(detail=f"no dev cluster in {d}")
    procs = _process_rows(state)
    cluster_conf = dc.load_conf([Path(f) for f in state.config_files])
    now = utcnow()
    with session(cluster_conf) as s:
        host_rows = [hosts.host_row(h, cluster_conf, now) for h in hosts.repo.list_hosts(s)]
    if args.json:
        print_json({"endpoint": state.endpoint, "processes": procs, "hosts": host_rows})
        return 0 if all(p["alive"] for p in procs) else 3
    print(f"endpoint {state.endpoint}  exchange {state.exchange}")
    print_table(
        ["PROCESS", "PID", "STATE", "LOG"],
        [[p["name"], p["pid"], "alive" if p["alive"] else "dead", p["log"]] for p in procs],
    )
    print()
    print_table(
        ["HOST", "ZONE", "STATUS", "INSTANCES", "LAST HEARTBEAT"],
        [
            [r["name"], r["availability_zone"], hosts.host_status(r), r["instances"], r["last_heartbeat"]]
            for r in host_rows
        ],
    )
    return 0 if all(p["alive"] for p in procs) else 3


def down(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    d = _state_dir(args)
    outcome = dc.down(d, purge=args.purge, timeout=args.timeout)
    print_table(["PROCESS", "OUTCOME"], sorted(outcome.items()))
    if args.purge:
        print("deleted the cluster's queues and exchanges (and its database, if up created it)")
    return 0


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, not {value:g}")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "devcluster",
        help="every service its own process on this machine, on its RabbitMQ and PostgreSQL",
        description="Start, inspect and stop a development cluster: ocs-api under gunicorn, "
        "schedulers, one ocs-network and fake compute hosts, each its own process. "
        "Files given with 'ocs-manage --config-file' are passed to every process after "
        "the generated configuration (timings, quotas of the fake hosts ...).",
    )
    dsub = p.add_subparsers(dest="devcluster_command", required=True, metavar="COMMAND")
    state_help = f"the cluster's directory: configuration, logs, PID files (default {DEFAULT_STATE_DIR})"
    u = dsub.add_parser("up", help="start a dev cluster")
    u.add_argument(
        "--hosts", type=_count(1, 200), default=2, metavar="N", help="fake compute hosts (default 2)"
    )
    u.add_argument(
        "--api-workers",
        type=_count(1, 32),
        default=2,
        metavar="W",
        help="gunicorn workers of ocs-api (default 2)",
    )
    u.add_argument(
        "--schedulers", type=_count(1, 16), default=1, metavar="S", help="ocs-scheduler processes (default 1)"
    )
    u.add_argument("--state-dir", help=state_help)
    u.add_argument(
        "--database-url",
        default=dc.DEFAULT_DATABASE_URL,
        help="SQLAlchemy URL of the cluster's database, created if missing on PostgreSQL "
        f"(default {dc.DEFAULT_DATABASE_URL})",
    )
    u.add_argument(
        "--transport-url",
        default=dc.DEFAULT_TRANSPORT_URL,
        help=f"RabbitMQ URL (default {dc.DEFAULT_TRANSPORT_URL})",
    )
    u.add_argument(
        "--wait", type=_seconds, default=90.0, help="seconds to wait for every service (default 90)"
    )
    u.set_defaults(func=up)
    s = dsub.add_parser("status", help="each process alive or dead, and the compute hosts up or down")
    s.add_argument("--state-dir", help=state_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=status)
    d = dsub.add_parser("down", help="stop exactly the processes 'up' started")
    d.add_argument("--state-dir", help=state_help)
    d.add_argument(
        "--purge",
        action="store_true",
        help="also delete the cluster's queues and exchanges, and its database if 'up' created it",
    )
    d.add_argument(
        "--timeout", type=_seconds, default=15.0, help="seconds between SIGTERM and SIGKILL (default 15)"
    )
    d.set_defaults(func=down)
