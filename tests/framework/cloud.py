"""A whole OCS cloud in this process, reached over real HTTP with real clients."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ocs.allinone import AllInOne, read_ocsrc
from ocs.api_ec2.service import database_url
from ocs.conf import make_conf
from ocs.crypto import load_secret_box
from ocs.db import accounts as db_accounts
from ocs.db import engine as db_engine


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    access_key_id: str
    secret_access_key: str


class Cloud:
    """An all-in-one cloud on 127.0.0.1 with a random port, state in ``state_dir``."""

    def __init__(self, state_dir: Path, overrides: dict[str, dict[str, Any]] | None = None):
        self.state_dir = state_dir
        self.conf = make_conf()
        self.conf([])
        self.conf.set_override("state_dir", str(state_dir))
        self.conf.set_override("listen", "127.0.0.1:0", group="api")
        self.conf.set_override("throttling", False, group="api")  # tests that want it pass overrides
        for group, values in (overrides or {}).items():
            for key, value in values.items():
                self.conf.set_override(key, value, group=None if group == "DEFAULT" else group)
        self.aio = AllInOne(self.conf)

    def start(self) -> Cloud:
        self.aio.start()
        env = read_ocsrc(self.aio.ocsrc)
        self.endpoint = env["AWS_ENDPOINT_URL"]
        self.region = env["AWS_DEFAULT_REGION"]
        with self.session() as s:
            admin = db_accounts.get_account(s, "admin")
            self.admin = Account(admin.id, admin.name, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        return self

    def stop(self) -> None:
        self.aio.stop()

    def session(self):  # type: ignore[no-untyped-def]
        engine = db_engine.make_engine(database_url(self.conf))
        return db_engine.transaction(db_engine.session_factory(engine))

    def create_account(self, name: str) -> Account:
        box = load_secret_box(None, None, str(self.state_dir))
        with self.session() as s:
            account = db_accounts.create_account(s, name)
            key, secret = db_accounts.create_access_key(s, account.id, box)
            return Account(account.id, name, key.access_key_id, secret)

    def client(self, account: Account | None = None, service: str = "ec2", **config: Any) -> Any:
        account = account or self.admin
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=account.access_key_id,
            aws_secret_access_key=account.secret_access_key,
            config=Config(retries={"max_attempts": 0}, **config),
        )

    def aws_env(self, account: Account | None = None) -> dict[str, str]:
        account = account or self.admin
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=account.access_key_id,
            AWS_SECRET_ACCESS_KEY=account.secret_access_key,
            AWS_DEFAULT_REGION=self.region,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        return env

    def aws(self, *args: str, account: Account | None = None) -> subprocess.CompletedProcess[str]:
        """Run aws-cli against this cloud; output as JSON."""
        cli = Path(sys.executable).with_name("aws")
        return subprocess.run(
            [str(cli), "--output", "json", *args],
            env=self.aws_env(account),
            capture_output=True,
            text=True,
            timeout=60,
        )
