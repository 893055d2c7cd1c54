"""``ocs-manage account ...`` and ``ocs-manage access-key ...``."""

from __future__ import annotations

import argparse

from oslo_config import cfg

from ocs.db import accounts as repo
from ocs.manage.common import print_json, print_table, secret_box, session


def account_create(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    box = secret_box(conf)
    with session(conf) as s:
        account = repo.create_account(s, args.name)
        key, secret = repo.create_access_key(s, account.id, box)
        out = {
            "account_id": account.id,
            "name": account.name,
            "access_key_id": key.access_key_id,
            "secret_access_key": secret,
        }
    if args.json:
        print_json(out)
    else:
        print(f"account           {out['account_id']} ({out['name']})")
        print(f"access key id     {out['access_key_id']}")
        print(f"secret access key {out['secret_access_key']}")
        print("The secret access key is shown only now; store it safely.")
    return 0


def account_list(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        rows = [
            {"account_id": a.id, "name": a.name, "enabled": a.enabled, "created_at": a.created_at}
            for a in repo.list_accounts(s)
        ]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["ACCOUNT", "NAME", "ENABLED", "CREATED"],
            [[r["account_id"], r["name"], r["enabled"], r["created_at"]] for r in rows],
        )
    return 0


def key_create(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    box = secret_box(conf)
    with session(conf) as s:
        account = repo.get_account(s, args.account)
        key, secret = repo.create_access_key(s, account.id, box)
        out = {"account_id": account.id, "access_key_id": key.access_key_id, "secret_access_key": secret}
    if args.json:
        print_json(out)
    else:
        print(f"access key id     {out['access_key_id']}")
        print(f"secret access key {out['secret_access_key']}")
        print("The secret access key is shown only now; store it safely.")
    return 0


def key_list(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        account = repo.get_account(s, args.account) if args.account else None
        rows = [
            {
                "access_key_id": k.access_key_id,
                "account_id": k.account_id,
                "status": k.status,
                "created_at": k.created_at,
            }
            for k in repo.list_access_keys(s, account.id if account else None)
        ]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["ACCESS KEY ID", "ACCOUNT", "STATUS", "CREATED"],
            [[r["access_key_id"], r["account_id"], r["status"], r["created_at"]] for r in rows],
        )
    return 0


def key_revoke(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        repo.revoke_access_key(s, args.access_key_id)
    print(f"access key {args.access_key_id} revoked")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    acc = sub.add_parser("account", help="accounts (tenants) of the cloud")
    accsub = acc.add_subparsers(dest="account_command", required=True, metavar="COMMAND")
    p = accsub.add_parser("create", help="create an account and its first access key")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=account_create)
    p = accsub.add_parser("list", help="list accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=account_list)

    key = sub.add_parser("access-key", help="access keys that sign API requests")
    keysub = key.add_subparsers(dest="key_command", required=True, metavar="COMMAND")
    p = keysub.add_parser("create", help="create another access key for an account")
    p.add_argument("account", help="account name or id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=key_create)
    p = keysub.add_parser("list", help="list access keys (never their secrets)")
    p.add_argument("--account", help="only this account's keys (name or id)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=key_list)
    p = keysub.add_parser("revoke", help="make an access key unusable")
    p.add_argument("access_key_id")
    p.set_defaults(func=key_revoke)
