"""``ocs-manage host list|show|disable|enable`` and ``ocs-manage service list``.

A host appears with its agent's first heartbeat. It is *up* while its last
heartbeat is at most ``[scheduler] service_down_time`` seconds old; a host that
is down or disabled gets no new instances (the ones it runs keep running).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from oslo_config import cfg
from sqlalchemy import func, select

from ocs.db import hosts as repo
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Host, Instance, ServiceRecord
from ocs.manage.common import print_json, print_table, session
from ocs.scheduler.core import HostState, Ratios


def _age(when: dt.datetime | None, now: dt.datetime) -> str:
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


def _up(when: dt.datetime | None, now: dt.datetime, down_after: float) -> bool:
    return when is not None and (now - when).total_seconds() <= down_after


def _ratios(conf: cfg.ConfigOpts) -> Ratios:
    s = conf.scheduler
    return Ratios(s.cpu_allocation_ratio, s.ram_allocation_ratio, s.disk_allocation_ratio)


def host_row(h: Host, conf: cfg.ConfigOpts, now: dt.datetime) -> dict[str, Any]:
    limits = HostState(
        name=h.name,
        availability_zone=h.availability_zone,
        total_vcpus=h.vcpus,
        total_memory_mib=h.memory_mib,
        total_disk_gib=h.disk_gib,
    ).limits(_ratios(conf))
    return {
        "name": h.name,
        "availability_zone": h.availability_zone,
        "enabled": h.enabled,
        "disabled_reason": h.disabled_reason,
        "up": _up(h.last_heartbeat, now, conf.scheduler.service_down_time),
        "last_heartbeat": h.last_heartbeat.isoformat() if h.last_heartbeat else None,
        "hypervisor_type": h.hypervisor_type,
        "hypervisor_version": h.hypervisor_version,
        "architectures": repo.architectures_of(h),
        "vcpus": h.vcpus,
        "vcpus_used": h.vcpus_used,
        "vcpus_limit": limits.vcpus,
        "memory_mib": h.memory_mib,
        "memory_mib_used": h.memory_mib_used,
        "memory_mib_limit": limits.memory_mib,
        "disk_gib": h.disk_gib,
        "disk_gib_used": h.disk_gib_used,
        "disk_gib_limit": limits.disk_gib,
        "instances": h.instance_count,
    }


def host_status(row: dict[str, Any]) -> str:
    return ("enabled" if row["enabled"] else "disabled") + (" up" if row["up"] else " down")


def host_list(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    now = utcnow()
    with session(conf) as s:
        rows = [host_row(h, conf, now) for h in repo.list_hosts(s)]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["HOST", "ZONE", "STATUS", "VCPUS", "MEMORY MIB", "DISK GIB", "INSTANCES", "HEARTBEAT"],
        [
            [
                r["name"],
                r["availability_zone"],
                host_status(r),
                f"{r['vcpus_used']}/{r['vcpus_limit']}",
                f"{r['memory_mib_used']}/{r['memory_mib_limit']}",
                f"{r['disk_gib_used']}/{r['disk_gib_limit']}",
                r["instances"],
                _age(dt.datetime.fromisoformat(r["last_heartbeat"]) if r["last_heartbeat"] else None, now),
            ]
            for r in rows
        ],
    )
    return 0


def _show(conf: cfg.ConfigOpts, name: str) -> dict[str, Any]:
    now = utcnow()
    with session(conf) as s:
        row = host_row(repo.get_host(s, name), conf, now)
        states = s.execute(
            select(Instance.state, func.count()).where(Instance.host == name).group_by(Instance.state)
        )
        row["instance_states"] = {state: count for state, count in states if state != "terminated"}
    return row


def _print_host(row: dict[str, Any]) -> None:
    width = max(len(k) for k in row)
    for key, value in row.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "-"
        print(f"{key.ljust(width)}  {'-' if value is None else value}")


def host_show(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    row = _show(conf, args.name)
    if args.json:
        print_json(row)
    else:
        _print_host(row)
    return 0


def _set_enabled(conf: cfg.ConfigOpts, args: argparse.Namespace, enabled: bool) -> int:
    with session(conf) as s:
        repo.set_enabled(s, args.name, enabled, getattr(args, "reason", None))
    row = _show(conf, args.name)
    if args.json:
        print_json(row)
    elif enabled:
        print(f"host {args.name} enabled: it takes new instances again")
    else:
        why = f" ({row['disabled_reason']})" if row["disabled_reason"] else ""
        print(f"host {args.name} disabled{why}: it gets no new instances; the ones it runs keep running")
    return 0


def host_disable(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    return _set_enabled(conf, args, False)


def host_enable(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    return _set_enabled(conf, args, True)


def _service_row(r: ServiceRecord, conf: cfg.ConfigOpts, now: dt.datetime) -> dict[str, Any]:
    return {
        "service": r.service,
        "host": r.host,
        "up": _up(r.last_heartbeat, now, conf.scheduler.service_down_time),
        "last_heartbeat": r.last_heartbeat.isoformat(),
        "started_at": r.started_at.isoformat(),
        "pid": r.pid or None,
        "version": r.version or None,
    }


def service_list(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    now = utcnow()
    with session(conf) as s:
        records = repo.list_services(s)
        rows = [_service_row(r, conf, now) for r in records]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["SERVICE", "HOST", "STATE", "LAST HEARTBEAT", "PID", "VERSION"],
        [
            [
                r["service"],
                r["host"],
                "up" if r["up"] else "down",
                _age(rec.last_heartbeat, now),
                r["pid"],
                r["version"],
            ]
            for r, rec in zip(rows, records, strict=True)
        ],
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    host = sub.add_parser("host", help="compute hosts: capacity, use, heartbeat; disable and enable")
    hsub = host.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    p = hsub.add_parser("list", help="every compute host, up or down")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=host_list)
    p = hsub.add_parser("show", help="one host in detail")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=host_show)
    p = hsub.add_parser("disable", help="give a host no new instances (running ones stay)")
    p.add_argument("name")
    p.add_argument("--reason", help="why, shown by host list/show")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=host_disable)
    p = hsub.add_parser("enable", help="let a disabled host take new instances again")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=host_enable)
    service = sub.add_parser("service", help="service processes and their heartbeats")
    ssub = service.add_subparsers(dest="service_command", required=True, metavar="COMMAND")
    p = ssub.add_parser("list", help="each service and compute host with its last heartbeat, up or down")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=service_list)
