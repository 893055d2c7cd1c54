"""``ocs-manage instance-type create|list|delete``: the sizes the cloud offers."""

from __future__ import annotations

import argparse
from typing import Any

from oslo_config import cfg

from ocs.db import instance_types as repo
from ocs.db.models.instance_types import ARCHITECTURES, InstanceType
from ocs.manage.common import print_json, print_table, session


def _row(t: InstanceType) -> dict[str, Any]:
    return {
        "name": t.name,
        "vcpus": t.vcpus,
        "memory_mib": t.memory_mib,
        "root_disk_gib": t.root_disk_gib,
        "architecture": t.architecture,
        "threads_per_core": t.threads_per_core,
        "burstable": t.burstable,
        "free_tier_eligible": t.free_tier_eligible,
        "max_network_interfaces": t.max_network_interfaces,
        "ipv4_addresses_per_interface": t.ipv4_addresses_per_interface,
        "network_performance": t.network_performance,
    }


def create(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    spec = repo.Spec(
        name=args.name,
        vcpus=args.vcpus,
        memory_mib=args.memory_mib,
        root_disk_gib=args.root_disk_gib,
        architecture=args.arch,
        threads_per_core=args.threads_per_core,
        burstable=args.burstable,
        free_tier_eligible=args.free_tier_eligible,
    )
    repo.validate(spec)  # before touching the database: a typo needs no connection
    with session(conf) as s:
        out = _row(repo.create_instance_type(s, spec))
    if args.json:
        print_json(out)
    else:
        print(
            f"instance type {out['name']} created: {out['vcpus']} vCPUs, {out['memory_mib']} MiB, "
            f"{out['root_disk_gib']} GiB root disk, {out['architecture']}"
        )
    return 0


def list_(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        rows = [_row(t) for t in repo.list_instance_types(s)]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["NAME", "VCPUS", "MEMORY MIB", "ROOT DISK GIB", "ARCH"],
            [[r["name"], r["vcpus"], r["memory_mib"], r["root_disk_gib"], r["architecture"]] for r in rows],
        )
    return 0


def delete(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        repo.delete_instance_type(s, args.name)
    print(f"instance type {args.name} deleted")
    return 0


def _number(text: str) -> int | str:
    """An integer argument, or the text as given: the repository's checks then
    report anything else in one clear line, as they report 0 or -1."""
    try:
        return int(text)
    except ValueError:
        return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    it = sub.add_parser("instance-type", help="instance types (sizes) offered to every account")
    itsub = it.add_subparsers(dest="instance_type_command", required=True, metavar="COMMAND")
    p = itsub.add_parser("create", help="offer a new instance type")
    p.add_argument("name", help="like t3.micro: a family and a size joined by a dot")
    p.add_argument("--vcpus", type=_number, required=True, metavar="N")
    p.add_argument("--memory-mib", type=_number, required=True, metavar="MIB")
    p.add_argument(
        "--root-disk-gib",
        type=_number,
        required=True,
        metavar="GIB",
        help="root disk size when the image does not say",
    )
    p.add_argument("--arch", default="x86_64", choices=ARCHITECTURES)
    p.add_argument(
        "--threads-per-core",
        type=_number,
        default=1,
        metavar="N",
        help="how the vCPUs are presented to the guest (default 1)",
    )
    p.add_argument("--burstable", action="store_true", help="report BurstablePerformanceSupported")
    p.add_argument("--free-tier-eligible", action="store_true", help="report FreeTierEligible")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=create)
    p = itsub.add_parser("list", help="list instance types")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_)
    p = itsub.add_parser("delete", help="stop offering an instance type")
    p.add_argument("name")
    p.set_defaults(func=delete)
