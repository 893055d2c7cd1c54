"""What the fault tests of this directory share: a client burst that records every
request's outcome, and reads of the cluster's database and processes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select

from ocs import devcluster as dc
from ocs.allinone import read_ocsrc
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.compute import Instance
from tests import services
from tests.framework.devcluster import DevCluster
from tests.framework.outages import missing_prerequisites

#: Error codes of a server fault that EC2 clients retry (HTTP 5xx).
SERVER_FAULTS = ("Unavailable", "ServiceUnavailable", "InternalError")


def require_private(kind: str) -> None:
    """Skip (or fail, on CI) unless a private ``kind`` server can run here."""
    why = missing_prerequisites(kind)
    if why is None:
        return
    if services.services_required():
        pytest.fail(why + " and OCS_TEST_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(why)


def ec2_client(cluster: DevCluster, read_timeout: float) -> Any:
    env = read_ocsrc(cluster.state_dir / "ocsrc")
    return boto3.client(
        "ec2",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 0}, connect_timeout=5, read_timeout=read_timeout),
    )


@dataclass
class Outcome:
    """One HTTP request: when it began and ended, and its result or error."""

    action: str
    began: float
    ended: float
    ok: bool
    code: str = ""
    status: int = 0
    value: Any = None

    @property
    def took(self) -> float:
        return self.ended - self.began


def attempt(action: str, fn: Callable[[], Any]) -> Outcome:
    began = time.monotonic()
    try:
        value = fn()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return Outcome(action, began, time.monotonic(), False, str(err.get("Code", "")), status)
    except BotoCoreError as exc:  # a timeout or a cut connection: no answer at all
        return Outcome(action, began, time.monotonic(), False, type(exc).__name__, 0)
    return Outcome(action, began, time.monotonic(), True, value=value)


@dataclass
class Launch:
    """One RunInstances with its ClientToken, retried with the same token until it succeeds."""

    token: str
    tries: list[Outcome] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


class Burst:
    """``clients`` threads launching ``per_call`` instances a call until :meth:`stop`;
    a call that fails is retried with its ClientToken (as the AWS SDKs do) until it
    succeeds or ``give_up`` seconds after it began."""

    def __init__(
        self,
        cluster: DevCluster,
        image_id: str,
        zone: str,
        *,
        clients: int,
        per_call: int,
        read_timeout: float,
        give_up: float,
        pause: float = 0.3,
    ) -> None:
        self.cluster, self.image_id, self.zone = cluster, image_id, zone
        self.per_call, self.read_timeout, self.give_up, self.pause = per_call, read_timeout, give_up, pause
        self.launches: list[Launch] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "a client is still waiting for an answer"

    def _client(self) -> None:
        ec2 = ec2_client(self.cluster, self.read_timeout)
        while not self._stop.is_set():
            launch = Launch(token=uuid.uuid4().hex)
            with self._lock:
                self.launches.append(launch)
            first, token = time.monotonic(), launch.token
            while True:
                out = attempt("RunInstances", lambda: self._run(ec2, token))  # noqa: B023
                launch.tries.append(out)
                if out.ok:
                    launch.ids = [i["InstanceId"] for i in out.value["Instances"]]
                    break
                if time.monotonic() - first > self.give_up:
                    break
                time.sleep(self.pause)
            time.sleep(self.pause)

    def _run(self, ec2: Any, token: str) -> Any:
        return ec2.run_instances(
            ImageId=self.image_id,
            InstanceType="t3.micro",
            MinCount=self.per_call,
            MaxCount=self.per_call,
            Placement={"AvailabilityZone": self.zone},
            ClientToken=token,
        )

    @property
    def tries(self) -> list[Outcome]:
        return [t for launch in self.launches for t in launch.tries]


def describe(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
    return {i["InstanceId"]: i for page in pages for r in page["Reservations"] for i in r["Instances"]}


def wait_states(
    ec2: Any, ids: list[str], deadline: float, done: tuple[str, ...] = ("running",)
) -> dict[str, str]:
    """Poll until every instance of ``ids`` is in one of ``done`` or ``deadline`` passes;
    the last states seen."""
    while True:
        states = {i: item["State"]["Name"] for i, item in describe(ec2, ids).items()} if ids else {}
        if len(states) == len(ids) and all(s in done for s in states.values()):
            return states
        if time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def instance_rows(database_url: str) -> dict[str, tuple[str, str | None]]:
    """``{id: (state, host)}`` of every instance in the cluster's database."""
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with transaction(session_factory(engine)) as s:
            return {r.id: (r.state, r.host) for r in s.scalars(select(Instance))}
    finally:
        engine.dispose()


def pids(cluster: DevCluster) -> dict[str, list[int]]:
    """The live PIDs of each process of the cluster (a gunicorn master and its workers)."""
    return {p.name: dc.members(p) for p in cluster.state.processes}


def demo_image(cluster: DevCluster) -> str:
    ec2 = ec2_client(cluster, 30)
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return str(images[0]["ImageId"])
