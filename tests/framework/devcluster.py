"""A dev cluster for tests: ``ocs-manage devcluster up`` on the machine's RabbitMQ and
PostgreSQL, in a throwaway database and its own exchange, torn down by PID.

:func:`dev_cluster` is a context manager; on the way out it runs ``devcluster down
--purge`` (SIGTERM, then SIGKILL, to exactly the processes ``up`` recorded, then the
cluster's queues, exchanges and database), and, should that command fail, stops the
recorded processes itself with the same code (:func:`ocs.devcluster.stop`). Nothing
else is ever signalled.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from sqlalchemy.engine import make_url

from ocs import devcluster as dc
from ocs.allinone import read_ocsrc
from tests import services

MANAGE = [sys.executable, "-m", "ocs.cmd.manage"]


def manage(*args: str, config_files: Sequence[str] = (), timeout: float = 120.0) -> str:
    """Run ``ocs-manage`` and return its standard output (raises on a failure)."""
    argv = [*MANAGE]
    for path in config_files:
        argv += ["--config-file", path]
    done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"ocs-manage {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return done.stdout


@dataclass
class DevCluster:
    state_dir: Path
    database_url: str

    @property
    def state(self) -> dc.State:
        state = dc.State.load(self.state_dir)
        assert state is not None, f"no dev cluster in {self.state_dir}"
        return state

    @property
    def config_files(self) -> list[str]:
        return self.state.config_files

    def process(self, name: str) -> dc.Process:
        return next(p for p in self.state.processes if p.name == name)

    def kill9(self, name: str) -> int:
        """SIGKILL one process of the cluster (checked to be the one ``up`` started)."""
        proc = self.process(name)
        assert dc.alive(proc), f"{name} is not running"
        pid = int((self.state_dir / "run" / f"{name}.pid").read_text())
        assert pid == proc.pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def ec2(self) -> Any:
        env = read_ocsrc(self.state_dir / "ocsrc")
        return boto3.client(
            "ec2",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 0}, read_timeout=60, max_pool_connections=20),
        )

    def manage(self, *args: str) -> str:
        return manage(*args, config_files=self.config_files)

    def status(self) -> dict[str, Any]:
        argv = [*MANAGE, "devcluster", "status", "--state-dir", str(self.state_dir), "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 3), done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)


@contextmanager
def dev_cluster(
    state_dir: Path,
    *args: str,
    config_text: str = "",
    wait: float = 60.0,
    postgres_url: str | None = None,
    transport_url: str | None = None,
) -> Iterator[DevCluster]:
    """``devcluster up ARGS`` in ``state_dir`` on a new database; torn down afterwards.

    By default on the machine's PostgreSQL and RabbitMQ (skipped without them);
    ``postgres_url`` (a server's admin URL) and ``transport_url`` put the cluster on
    other servers, e.g. the private ones of :mod:`tests.framework.outages`.
    """
    if postgres_url is None:
        postgres_url = services.require_postgres()
    amqp = transport_url if transport_url is not None else services.require_rabbitmq()
    url = make_url(postgres_url).set(database=f"ocs_test_dc_{secrets.token_hex(5)}")
    database_url = url.render_as_string(hide_password=False)
    extra = state_dir / "test.conf"
    state_dir.mkdir(parents=True, exist_ok=True)
    extra.write_text(config_text)
    cluster = DevCluster(state_dir, database_url)
    up = [
        "devcluster", "up", "--state-dir", str(state_dir), "--database-url", database_url,
        "--transport-url", amqp, "--wait", str(wait), *args,
    ]  # fmt: skip
    try:
        manage(*up, config_files=[str(extra)], timeout=wait + 60)
        yield cluster
    finally:
        _tear_down(cluster)


def _tear_down(cluster: DevCluster) -> None:
    if dc.State.load(cluster.state_dir) is None:  # up failed before it recorded anything
        dc.drop_database(cluster.database_url)
        return
    try:
        manage("devcluster", "down", "--state-dir", str(cluster.state_dir), "--purge", "--timeout", "10")
    except (AssertionError, subprocess.TimeoutExpired):
        state = dc.State.load(cluster.state_dir)
        if state is not None:
            dc.stop(state.processes, timeout=10)
            dc.drop_database(cluster.database_url)
        raise
