"""RunInstances when the scheduler's answer never comes back: nothing lost, nothing doubled.

One process: an all-in-one cloud (memory bus, SQLite, two fake hosts of 4 vCPUs
each, so exactly four t3.micro fit) and a second EC2 endpoint on the same database
whose scheduler client loses what the bus would lose when the broker dies in the
middle of a call: :class:`LostReply` sends the call to the real scheduler (which
places and builds the instances) and drops its reply, as a broker dying between
the scheduler's reply and its delivery would; :class:`NeverSent` loses the
request itself (a scheduler that never saw it). Both then raise what the real
client raises, ``BusTimeout``.

Proves: the launch is answered with its reservation (every instance pending); a
retry with the same ClientToken answers the same reservation and launches
nothing; the instances the scheduler never placed are placed by its periodic
tasks (``orphan_timeout``) and run, or end ``terminated`` with
``Server.InsufficientInstanceCapacity`` when no host has room; a launch that
does not fit at all forgets its ClientToken, so that a retry runs anew.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import select

from ocs import errors
from ocs.api_ec2.app import create_app
from ocs.api_ec2.service import deps_from_conf
from ocs.db.models.compute import Instance, Reservation
from ocs.db.models.tags import ClientToken
from ocs.scheduler.rpcapi import ScheduleInstances, SchedulerApi, ScheduleResult
from ocs.wsgi_server import ThreadedWSGIServer
from tests.framework.cloud import Cloud
from tests.functional.test_scheduling import describe, wait_for, wait_states

ZONE = "us-east-1a"


class LostReply:
    """The scheduler client of an API whose bus loses every reply to schedule_instances."""

    def __init__(self, real: SchedulerApi) -> None:
        self.real = real

    def schedule_instances(self, req: ScheduleInstances) -> ScheduleResult:
        self.real.schedule_instances(req)  # placed and being built: only the answer is lost
        raise errors.BusTimeout(target="scheduler", method="schedule_instances", timeout="30")


class NeverSent:
    """The scheduler client of an API whose bus loses every schedule_instances call."""

    def schedule_instances(self, req: ScheduleInstances) -> ScheduleResult:
        raise errors.BusTimeout(target="scheduler", method="schedule_instances", timeout="30")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    overrides = {
        "compute": {"fake_hosts": 2, "fake_vcpus": 4, "availability_zone": ZONE},
        "scheduler": {"cpu_allocation_ratio": 1.0, "periodic_interval": 1, "orphan_timeout": 1},
    }
    c = Cloud(tmp_path_factory.mktemp("lost-placement"), overrides).start()
    yield c
    c.stop()


def lossy_client(cloud: Cloud, scheduler: Any) -> Iterator[Any]:
    assert cloud.aio.bus is not None
    real = {"scheduler": scheduler}
    server = ThreadedWSGIServer(create_app(deps_from_conf(cloud.conf, real)), "127.0.0.1", 0)
    server.start()
    try:
        account = cloud.admin
        yield boto3.client(
            "ec2",
            endpoint_url=server.url,
            region_name=cloud.region,
            aws_access_key_id=account.access_key_id,
            aws_secret_access_key=account.secret_access_key,
            config=Config(retries={"max_attempts": 0}),
        )
    finally:
        server.stop()


@pytest.fixture
def lost_reply(cloud: Cloud) -> Iterator[Any]:
    assert cloud.aio.bus is not None
    yield from lossy_client(cloud, LostReply(SchedulerApi(cloud.aio.bus)))


@pytest.fixture
def never_sent(cloud: Cloud) -> Iterator[Any]:
    yield from lossy_client(cloud, NeverSent())


@pytest.fixture
def ec2(cloud: Cloud) -> Iterator[Any]:
    client = cloud.client()
    yield client
    live = [i for i, s in describe(client, []).items() if s["State"]["Name"] != "terminated"]
    if live:
        client.terminate_instances(InstanceIds=live)
        wait_states(client, live, "terminated")


def image(ec2: Any) -> str:
    return ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]["ImageId"]


def launch(ec2: Any, low: int, high: int, **kw: Any) -> dict[str, Any]:
    return ec2.run_instances(ImageId=image(ec2), InstanceType="t3.micro", MinCount=low, MaxCount=high, **kw)


def ids_of(answer: dict[str, Any]) -> list[str]:
    return [i["InstanceId"] for i in answer["Instances"]]


def rows_with_token(cloud: Cloud, token: str) -> dict[str, str | None]:
    with cloud.session() as s:
        return dict(s.execute(select(Instance.id, Instance.host).where(Instance.client_token == token)).all())


def test_a_lost_reply_answers_the_reservation_and_a_retry_the_same(cloud, ec2, lost_reply):
    first = launch(lost_reply, 2, 2, ClientToken="lost-reply-1")
    ids = ids_of(first)
    assert len(ids) == 2 and {i["State"]["Name"] for i in first["Instances"]} == {"pending"}
    again = launch(ec2, 2, 2, ClientToken="lost-reply-1")  # through the healthy endpoint
    assert again["ReservationId"] == first["ReservationId"] and ids_of(again) == ids
    assert wait_states(ec2, ids, "running")
    assert sorted(rows_with_token(cloud, "lost-reply-1")) == sorted(ids)  # nothing doubled
    last = launch(lost_reply, 2, 2, ClientToken="lost-reply-1")  # and once answered, as stored
    assert last["ReservationId"] == first["ReservationId"] and ids_of(last) == ids


def test_a_launch_never_scheduled_is_placed_by_the_periodic_tasks(cloud, ec2, never_sent):
    first = launch(never_sent, 1, 3, ClientToken="never-sent-1")
    ids = ids_of(first)
    assert len(ids) == 3  # accepted: pending without a host for now
    assert set(rows_with_token(cloud, "never-sent-1").values()) == {None}
    again = launch(never_sent, 1, 3, ClientToken="never-sent-1")
    assert again["ReservationId"] == first["ReservationId"] and ids_of(again) == ids
    assert wait_states(ec2, ids, "running", timeout=20)
    assert all(rows_with_token(cloud, "never-sent-1").values())
    # the hosts are full now (3 of 4 slots): of two more, one runs, the other ends terminated
    more = ids_of(launch(never_sent, 2, 2))
    wait_for(lambda: {describe(ec2, more)[i]["State"]["Name"] for i in more} == {"running", "terminated"}, 20)
    [failed] = [item for item in describe(ec2, more).values() if item["State"]["Name"] == "terminated"]
    assert failed["StateReason"]["Code"] == "Server.InsufficientInstanceCapacity"


def test_a_launch_that_does_not_fit_forgets_its_token(cloud, ec2):
    for _ in range(2):  # the retry runs anew: a stale token would replay an empty reservation
        with pytest.raises(ClientError) as exc:
            launch(ec2, 5, 5, ClientToken="too-big-1")
        assert exc.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    with cloud.session() as s:
        assert s.scalar(select(ClientToken).where(ClientToken.token == "too-big-1")) is None
    assert not rows_with_token(cloud, "too-big-1")
    fits = launch(ec2, 1, 1, ClientToken="too-big-1")  # same token, other parameters: not a mismatch
    assert wait_states(ec2, ids_of(fits), "running")


def test_concurrent_retries_with_one_token_make_one_reservation(cloud, ec2):
    def once(_: int) -> dict[str, Any]:
        return launch(cloud.client(), 2, 2, ClientToken="raced-1")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(once, range(6)))
    assert len({a["ReservationId"] for a in answers}) == 1
    assert len({tuple(ids_of(a)) for a in answers}) == 1
    assert len(rows_with_token(cloud, "raced-1")) == 2
    with cloud.session() as s:
        assert s.scalar(select(Reservation).where(Reservation.id == answers[0]["ReservationId"]))


class LateScheduler:
    """The scheduler client of an API whose call reaches the scheduler only after the API
    gave up on it (answering the launch ``pending``): the test delivers it later."""

    def __init__(self) -> None:
        self.requests: list[ScheduleInstances] = []

    def schedule_instances(self, req: ScheduleInstances) -> ScheduleResult:
        self.requests.append(req)
        raise errors.BusTimeout(target="scheduler", method="schedule_instances", timeout="30")


def test_a_scheduler_working_past_the_api_timeout_deletes_nothing_the_client_was_told(cloud, ec2):
    """A scheduler still placing a launch after the API's 30 s call timeout (which answered
    every instance ``pending``) finds that they do not fit (MinCount 5, room for 4). It
    used to delete them: instance IDs the client had been given vanished
    (InvalidInstanceID.NotFound). Now what was launched longer ago than the API waits
    (LAUNCH_ANSWER_WINDOW) is kept; the periodic task places what fits and ends the rest
    ``terminated`` with Server.InsufficientInstanceCapacity."""
    late = LateScheduler()
    client = next(gen := lossy_client(cloud, late))
    try:
        answered = ids_of(launch(client, 5, 5))
    finally:
        gen.close()
    assert len(answered) == 5 and late.requests
    with cloud.session() as s:  # the scheduler gets to it past the API's timeout
        for row in s.scalars(select(Instance).where(Instance.id.in_(answered))):
            row.launch_time -= dt.timedelta(seconds=60)
        s.commit()
    assert cloud.aio.bus is not None
    with pytest.raises(errors.InsufficientInstanceCapacity):
        SchedulerApi(cloud.aio.bus).schedule_instances(late.requests[0])
    assert sorted(describe(ec2, answered)) == sorted(answered)  # none vanished
    wait_for(
        lambda: {s["State"]["Name"] for s in describe(ec2, answered).values()} <= {"running", "terminated"},
        30,
        "the launch settled",
    )
    ended = describe(ec2, answered)
    assert sorted(ended) == sorted(answered)
    failed = [i for i in ended.values() if i["State"]["Name"] == "terminated"]
    assert failed and all(i["StateReason"]["Code"] == "Server.InsufficientInstanceCapacity" for i in failed)
