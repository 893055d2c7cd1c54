"""``ocs-manage instance list``: every instance of the cloud, whoever owns it."""

from __future__ import annotations

import argparse
from typing import Any

from oslo_config import cfg

from ocs.db import accounts as db_accounts
from ocs.db import compute as repo
from ocs.db.models.compute import Instance
from ocs.manage.common import print_json, print_table, session


def _row(i: Instance) -> dict[str, Any]:
    return {
        "instance_id": i.id,
        "account_id": i.account_id,
        "state": i.state,
        "task": i.task,
        "instance_type": i.instance_type,
        "host": i.host,
        "availability_zone": i.availability_zone,
        "private_ip_address": i.private_ip_address,
        "launch_time": i.launch_time,
    }


def list_(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    if not args.all_accounts and not args.account:
        raise SystemExit("ocs-manage: error: give --account ACCOUNT or --all-accounts")
    with session(conf) as s:
        account_id = db_accounts.get_account(s, args.account).id if args.account else None
        rows = [_row(i) for i in repo.list_all(s, account_id)]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["INSTANCE", "ACCOUNT", "STATE", "TYPE", "HOST", "ZONE", "PRIVATE IP", "LAUNCHED"],
        [
            [
                r["instance_id"],
                r["account_id"],
                r["state"] + (f" ({r['task']})" if r["task"] else ""),
                r["instance_type"],
                r["host"] or "-",
                r["availability_zone"],
                r["private_ip_address"] or "-",
                f"{r['launch_time']:%Y-%m-%d %H:%M:%S}",
            ]
            for r in rows
        ],
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    it = sub.add_parser("instance", help="instances of every account")
    isub = it.add_subparsers(dest="instance_command", required=True, metavar="COMMAND")
    p = isub.add_parser("list", help="list instances, oldest first")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--all-accounts", action="store_true", help="every account's instances")
    scope.add_argument("--account", metavar="ACCOUNT", help="one account's instances (name or ID)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_)
