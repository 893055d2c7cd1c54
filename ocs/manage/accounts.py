"""``ocs-manage account ...`` and ``ocs-manage access-key ...``."""

from __future__ import annotations

import argparse
import json
import os

from oslo_config import cfg

from ocs.api_ec2.service import endpoint_url
from ocs.api_gce import keyfile
from ocs.db import accounts as repo
from ocs.db import gce as db_gce
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


def gce_key(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    """A new service-account key for the Compute Engine API: its public half is stored, the
    key file (with the private half) is written to --output (mode 0600) or printed, once."""
    private_pem, public_pem = keyfile.generate()
    with session(conf) as s:
        account = repo.get_account(s, args.name)
        key_id = db_gce.new_key_id()
        email = keyfile.client_email(account.name, key_id)
        key = db_gce.create_service_key(s, account.id, email, public_pem, key_id)
        content = keyfile.key_file(
            project=account.name,
            key_id=key.id,
            private_key_pem=private_pem,
            email=email,
            endpoint=endpoint_url(conf),
        )
    text = json.dumps(content, indent=2) + "\n"
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        print(
            f"service-account key {content['private_key_id']} of project {account.name} written to {args.output}"
        )
    else:
        print(text, end="")
    return 0


def gce_key_list(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        account = repo.get_account(s, args.name)
        rows = [
            {"private_key_id": k.id, "client_email": k.client_email, "created_at": k.created_at}
            for k in db_gce.list_service_keys(s, account.id)
        ]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["KEY ID", "CLIENT EMAIL", "CREATED"],
            [[r["private_key_id"], r["client_email"], r["created_at"]] for r in rows],
        )
    return 0


def gce_key_revoke(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        account = repo.get_account(s, args.name)
        key = db_gce.get_service_key(s, args.key_id)
        if key is None or key.account_id != account.id:
            print(f"no service-account key {args.key_id} in account {account.name}")
            return 1
        db_gce.delete_service_key(s, key.id)
    print(f"service-account key {args.key_id} revoked")
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
    p = accsub.add_parser("gce-key", help="a service-account key file for the Compute Engine API")
    p.add_argument("name", help="account name or id (its name is the GCE project id)")
    p.add_argument("--output", help="write the key file here (mode 0600) instead of printing it")
    p.set_defaults(func=gce_key)
    p = accsub.add_parser("gce-key-list", help="list an account's service-account keys")
    p.add_argument("name", help="account name or id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=gce_key_list)
    p = accsub.add_parser("gce-key-revoke", help="revoke a service-account key (its tokens stop working)")
    p.add_argument("name", help="account name or id")
    p.add_argument("key_id", help="the key file's private_key_id")
    p.set_defaults(func=gce_key_revoke)

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
