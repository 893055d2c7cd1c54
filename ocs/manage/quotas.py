"""``ocs-manage quota set|show``: per-account limits on instances, vCPUs, volume storage and snapshots.

An account without a limit of its own has the default (20 instances, 64 vCPUs,
as a new EC2 account's "Running On-Demand instances" limits). Running, pending,
stopping and shutting-down instances count; stopped and terminated ones do not.
RunInstances beyond a limit answers EC2's ``InstanceLimitExceeded`` or
``VcpuLimitExceeded``.

``volume_gib`` (the total size of the account's volumes) and ``snapshots`` (how many
it holds) default to ``[volume] gib_per_account`` and ``snapshots_per_account``;
CreateVolume and a growing ModifyVolume past the first answer
``VolumeLimitExceeded``, CreateSnapshot, CreateSnapshots and CopySnapshot past the
second ``SnapshotLimitExceeded``. ``provisioned_iops`` (the IOPS of the account's io1
and io2 volumes, ``[volume] provisioned_iops_per_account``) binds CreateVolume and
ModifyVolume with ``MaxIOPSLimitExceeded``.
"""

from __future__ import annotations

import argparse
from typing import Any

from oslo_config import cfg
from sqlalchemy.orm import Session

from ocs.db import accounts as db_accounts
from ocs.db import compute as repo
from ocs.db import volumes as db_volumes
from ocs.manage.common import print_json, print_table, session


def _report(conf: cfg.ConfigOpts, s: Session, account_id: str, name: str) -> dict[str, Any]:
    limits, used = repo.get_quotas(s, account_id), repo.usage(s, account_id)
    quotas = {
        resource: {
            "limit": limits[resource],
            "used": used[resource],
            "default": repo.DEFAULT_QUOTAS[resource],
        }
        for resource in repo.QUOTA_RESOURCES
    }
    gib, snapshots = int(conf.volume.gib_per_account), int(conf.volume.snapshots_per_account)
    quotas["volume_gib"] = {
        "limit": db_volumes.volume_gib_limit(s, account_id, gib),
        "used": db_volumes.volume_gib_used(s, account_id),
        "default": gib,
    }
    quotas["snapshots"] = {
        "limit": db_volumes.snapshot_limit(s, account_id, snapshots),
        "used": db_volumes.snapshots_used(s, account_id),
        "default": snapshots,
    }
    iops = int(conf.volume.provisioned_iops_per_account)
    quotas["provisioned_iops"] = {
        "limit": db_volumes.provisioned_iops_limit(s, account_id, iops),
        "used": db_volumes.provisioned_iops_used(s, account_id),
        "default": iops,
    }
    return {"account_id": account_id, "name": name, "quotas": quotas}


def _print(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(out)
        return
    print(f"account {out['account_id']} ({out['name']})")
    print_table(
        ["RESOURCE", "LIMIT", "USED", "DEFAULT"],
        [[r, q["limit"], q["used"], q["default"]] for r, q in out["quotas"].items()],
    )


def show(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        account = db_accounts.get_account(s, args.account)
        out = _report(conf, s, account.id, account.name)
    _print(out, args.json)
    return 0


def set_(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    wanted = {
        "instances": args.instances,
        "vcpus": args.vcpus,
        "volume_gib": args.volume_gib,
        "snapshots": args.snapshots,
        "provisioned_iops": args.provisioned_iops,
    }
    if all(v is None for v in wanted.values()) and not args.default:
        raise SystemExit(
            "ocs-manage: error: give --instances, --vcpus, --volume-gib, --snapshots, "
            "--provisioned-iops or --default"
        )
    with session(conf) as s:
        account = db_accounts.get_account(s, args.account)
        if args.default:
            for resource in repo.QUOTA_RESOURCES + repo.CONFIGURED_QUOTAS:
                repo.set_quota(s, account.id, resource, None)
        for resource, limit in wanted.items():
            if limit is not None:
                repo.set_quota(s, account.id, resource, limit)
        out = _report(conf, s, account.id, account.name)
    _print(out, args.json)
    return 0


def _limit(text: str) -> int | str:
    """An integer, or the text as given for the repository to refuse in one clear line."""
    try:
        return int(text)
    except ValueError:
        return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    q = sub.add_parser("quota", help="per-account limits on instances, vCPUs, volume GiB and snapshots")
    qsub = q.add_subparsers(dest="quota_command", required=True, metavar="COMMAND")
    p = qsub.add_parser("show", help="an account's limits and what it uses")
    p.add_argument("account", help="account name or ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=show)
    p = qsub.add_parser("set", help="change an account's limits")
    p.add_argument("account", help="account name or ID")
    p.add_argument("--instances", type=_limit, metavar="N", help="instances that may run at once")
    p.add_argument("--vcpus", type=_limit, metavar="N", help="vCPUs that may run at once")
    p.add_argument("--volume-gib", type=_limit, metavar="N", help="total GiB of the account's EBS volumes")
    p.add_argument("--snapshots", type=_limit, metavar="N", help="EBS snapshots the account may hold")
    p.add_argument(
        "--provisioned-iops", type=_limit, metavar="N", help="total IOPS of the account's io1 and io2 volumes"
    )
    p.add_argument("--default", action="store_true", help="back to the defaults first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=set_)
