"""The compute repository (ocs.db.compute) and the API half of instances without the services.

The repository runs on every backend. The handlers of ocs.api_ec2.actions.instances
and .instance_attributes run on SQLite against a fake scheduler (which places
instances the way the scheduler service's contract says, in its own session) and
a fake compute client that records casts and checks, at each cast, that the
state it follows is already committed.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors
from ocs.api_ec2.actions import instance_attributes as lifecycle
from ocs.api_ec2.actions import instances as api
from ocs.api_ec2.context import RequestContext, Settings
from ocs.db import accounts, compute, images, secgroups, vpcs
from ocs.db import tags as db_tags
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.compute import Instance, Reservation
from ocs.db.models.tags import Tag
from ocs.scheduler.rpcapi import ScheduleInstances, ScheduleResult
from tests.dbfixtures import throwaway_database

ZONES = ("us-east-1a", "us-east-1b")
SETTINGS = Settings(region="us-east-1", availability_zones=ZONES, endpoint="http://ocs.test")


def _factory(backend: str) -> Iterator[sessionmaker[Session]]:
    with throwaway_database(backend) as url:
        engine = make_engine(url)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    yield from _factory(request.param)


@pytest.fixture
def sqlite_factory() -> Iterator[sessionmaker[Session]]:
    yield from _factory("sqlite")


def _account(factory: sessionmaker[Session], name: str = "alice") -> str:
    with transaction(factory) as s:
        account_id = accounts.create_account(s, name).id
        vpcs.ensure_default_network(s, account_id, vpc_cidr="172.31.0.0/16", zones=ZONES)
        return account_id


def _image(factory: sessionmaker[Session], owner: str, **fields: Any) -> str:
    with transaction(factory) as s:
        fields.setdefault("state", "available")
        fields.setdefault("root_device_name", "/dev/xvda")
        return images.create_image(s, owner, f"img-{len(fields)}-{id(fields)}", is_public=True, **fields).id


def _spec(s: Session, account_id: str, **over: Any) -> compute.LaunchSpec:
    subnet = vpcs.default_subnet_for_az(s, account_id, ZONES[0])
    assert subnet is not None
    values: dict[str, Any] = {
        "image_id": "ami-00000000000000001",
        "instance_type": "t3.micro",
        "vcpus": 2,
        "memory_mib": 1024,
        "disk_gib": 8,
        "architecture": "x86_64",
        "availability_zone": subnet.availability_zone,
        "subnet_id": subnet.id,
        "subnet_cidr": subnet.cidr_block,
        "vpc_id": subnet.vpc_id,
        "security_group_ids": (),
        "root_device_name": "/dev/xvda",
    }
    values.update(over)
    return compute.LaunchSpec(**values)


# --- repository ------------------------------------------------------------------------------------


def test_launch_allocates_the_lowest_free_addresses(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        spec = _spec(s, alice)
        reservation, made = compute.launch(s, alice, spec, 3)
        assert [i.private_ip_address for i in made] == ["172.31.0.4", "172.31.0.5", "172.31.0.6"]
        assert [i.launch_index for i in made] == [0, 1, 2]
        assert {i.reservation_id for i in made} == {reservation.id}
        assert all(i.state == "pending" and i.task == "scheduling" and i.host is None for i in made)
        assert len({i.mac_address for i in made}) == 3 and all(i.mac_address.startswith("02:") for i in made)
        assert all(i.network_interface_id.startswith("eni-") for i in made)
        assert compute.free_address_count(s, spec.subnet_id, spec.subnet_cidr) == 4096 - 5 - 3
        assert vpcs.used_addresses(s, [spec.subnet_id])[spec.subnet_id] == 3
        # Terminating releases the address: the primary interface is deleted with it.
        assert compute.update_if_unchanged(s, made[1], **compute.terminated_changes(dt.datetime.now(dt.UTC)))
        assert made[1].private_ip_address is None
        _, again = compute.launch(s, alice, spec, 1)
        assert again[0].private_ip_address == "172.31.0.5"


def test_concurrent_launches_never_share_an_address(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        spec = _spec(s, alice)
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with transaction(factory) as s:
                compute.launch(s, alice, spec, 3)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    with transaction(factory) as s:
        addresses = list(s.scalars(select(Instance.private_ip_address)))
    assert len(addresses) == 18 and len(set(addresses)) == 18


def test_requested_address_checks(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        spec = _spec(s, alice)
        compute.launch(s, alice, spec, 1)
        check = compute.check_requested_address
        assert check(s, spec.subnet_id, spec.subnet_cidr, "172.31.0.200") == "172.31.0.200"
        with pytest.raises(errors.InUse) as info:
            check(s, spec.subnet_id, spec.subnet_cidr, "172.31.0.4")
        assert info.value.code == "InvalidIPAddress.InUse"
        for bad in ("10.0.0.5", "172.31.0.1", "172.31.15.255", "nonsense"):
            with pytest.raises(errors.InvalidParameterValue):
                check(s, spec.subnet_id, spec.subnet_cidr, bad)
        _, [fixed] = compute.launch(s, alice, _spec(s, alice, private_ip_address="172.31.0.200"), 1)
        assert fixed.private_ip_address == "172.31.0.200"


def test_quotas(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        assert compute.get_quotas(s, alice) == {"instances": 20, "vcpus": 64}
        assert compute.usage(s, alice) == {"instances": 0, "vcpus": 0}
        compute.set_quota(s, alice, "instances", 3)
        compute.set_quota(s, alice, "vcpus", 5)
        assert compute.get_quotas(s, alice) == {"instances": 3, "vcpus": 5}
        assert compute.launch_allowance(s, alice, 2, 1, 10) == 2  # 5 vCPUs hold two of 2
        with pytest.raises(compute.VcpuLimitExceeded) as info:
            compute.launch_allowance(s, alice, 2, 3, 3)
        assert "current vCPU limit of 5 allows" in str(info.value)
        _, made = compute.launch(s, alice, _spec(s, alice, vcpus=1), 3)
        assert compute.usage(s, alice) == {"instances": 3, "vcpus": 3}
        with pytest.raises(compute.InstanceLimitExceeded) as info:
            compute.launch_allowance(s, alice, 1, 1, 1)
        assert str(info.value) == (
            "Your quota allows for 0 more running instance(s). You requested at least 1"
        )
        made[0].state, made[1].state = "stopped", "terminated"
        s.flush()
        assert compute.usage(s, alice) == {"instances": 1, "vcpus": 1}
        compute.check_start_quota(s, alice, [made[0]])
        compute.set_quota(s, alice, "instances", 1)
        with pytest.raises(compute.InstanceLimitExceeded):
            compute.check_start_quota(s, alice, [made[0]])
        compute.set_quota(s, alice, "instances", None)
        assert compute.get_quotas(s, alice)["instances"] == 20
        for resource, limit in (("instances", -1), ("disks", 3), ("vcpus", "many")):
            with pytest.raises(errors.InvalidParameterValue):
                compute.set_quota(s, alice, resource, limit)  # type: ignore[arg-type]


def test_lookups_are_per_account(factory: sessionmaker[Session]) -> None:
    alice, bob = _account(factory, "alice"), _account(factory, "bob")
    with transaction(factory) as s:
        _, [one, two] = compute.launch(s, alice, _spec(s, alice), 2)
        assert [i.id for i in compute.get_instances(s, alice, [two.id, one.id, two.id])] == [two.id, one.id]
        assert compute.instance_exists(s, alice, one.id) and not compute.instance_exists(s, bob, one.id)
        with pytest.raises(errors.NotFound) as info:
            compute.get_instances(s, bob, [one.id])
        assert (info.value.code, str(info.value)) == (
            "InvalidInstanceID.NotFound",
            f"The instance ID '{one.id}' does not exist",
        )
        with pytest.raises(errors.NotFound) as info:
            compute.list_instances(s, bob, [one.id, "i-0123456789abcdef0"])
        assert str(info.value) == f"The instance IDs '{one.id}, i-0123456789abcdef0' do not exist"
        with pytest.raises(errors.Malformed) as info2:
            compute.list_instances(s, alice, [one.id, "i-xyz"])
        assert info2.value.code == "InvalidInstanceID.Malformed"
        assert compute.list_instances(s, bob) == []
        assert [i.id for i in compute.list_all(s)] == [one.id, two.id]


def test_update_if_unchanged_refuses_a_stale_read(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        _, [row] = compute.launch(s, alice, _spec(s, alice), 1)
        instance_id = row.id
    with transaction(factory) as s:
        mine = s.get(Instance, instance_id)
        assert mine is not None
        s.commit()  # the read is done; SQLite holds no lock meanwhile
        with transaction(factory) as other:  # the scheduler, meanwhile
            other.execute(
                update(Instance).where(Instance.id == instance_id).values(state="running", version=2)
            )
        assert not compute.update_if_unchanged(s, mine, state="stopping")
        assert (mine.state, mine.version) == ("running", 2)
        assert compute.update_if_unchanged(s, mine, state="stopping")
        assert (mine.state, mine.version) == ("stopping", 3)


def test_delete_unplaced(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        reservation, made = compute.launch(s, alice, _spec(s, alice), 3)
        db_tags.set_tags(s, alice, [(i.id, "instance") for i in made], [{"Key": "k", "Value": "v"}])
        made[0].host = "host-1"
        s.flush()
        gone = compute.delete_unplaced(s, alice, reservation.id, [i.id for i in made])
        assert sorted(gone) == sorted([made[1].id, made[2].id])
        assert s.get(Reservation, reservation.id) is not None
        assert list(s.scalars(select(Tag.resource_id))) == [made[0].id]
        assert db_tags.tags_for(s, alice, [made[0].id])[made[0].id] == [{"Key": "k", "Value": "v"}]
        assert compute.delete_unplaced(s, alice, reservation.id, [made[0].id]) == []


def test_instances_keep_subnets_and_groups_in_use(factory: sessionmaker[Session]) -> None:
    alice = _account(factory)
    with transaction(factory) as s:
        vpc_id = vpcs.default_vpc_id(s, alice)
        assert vpc_id is not None
        web = secgroups.create_group(s, alice, vpc_id, "web", "web")
        _, [row] = compute.launch(s, alice, _spec(s, alice, security_group_ids=(web.id,)), 1)
        with pytest.raises(errors.InUse):
            vpcs.delete_subnet(s, alice, row.subnet_id or "")
        with pytest.raises(errors.InUse):
            secgroups.delete_group(s, alice, web)
        row.state = "terminated"
        s.flush()
        secgroups.delete_group(s, alice, web)


def test_roomiest_zone(factory: sessionmaker[Session]) -> None:
    from ocs.db.models.compute import Host

    with transaction(factory) as s:
        assert compute.roomiest_zone(s, ZONES) == ZONES[0]
        s.add(Host(name="h1", availability_zone=ZONES[1], vcpus=8, memory_mib=1, disk_gib=1))
        s.add(Host(name="h2", availability_zone=ZONES[0], vcpus=8, vcpus_used=6, memory_mib=1, disk_gib=1))
        s.flush()
        assert compute.roomiest_zone(s, ZONES) == ZONES[1]


# --- the API half, with fake services --------------------------------------------------------------


@dataclass
class FakeScheduler:
    """Places up to ``capacity`` instances on ``host`` as the scheduler service would."""

    factory: sessionmaker[Session]
    capacity: int = 100
    host: str = "host-1"
    fail: errors.OcsError | None = None
    calls: list[ScheduleInstances] = field(default_factory=list)

    def schedule_instances(self, request: ScheduleInstances) -> ScheduleResult:
        self.calls.append(request)
        if self.fail is not None:
            raise self.fail
        with transaction(self.factory) as s:
            rows = [s.get(Instance, i) for i in request.instance_ids]
            assert all(r is not None and r.task == "scheduling" for r in rows), "instances not committed"
            fit = min(self.capacity, len(rows))
            if fit < request.min_count:
                s.execute(delete(Instance).where(Instance.id.in_(request.instance_ids)))
                s.execute(delete(Reservation).where(Reservation.id == rows[0].reservation_id))  # type: ignore[union-attr]
                raise errors.InsufficientInstanceCapacity()
            placed = request.instance_ids[:fit]
            s.execute(update(Instance).where(Instance.id.in_(placed)).values(host=self.host, task="spawning"))
            s.execute(delete(Instance).where(Instance.id.in_(request.instance_ids[fit:])))
        return ScheduleResult(placed=placed)


@dataclass
class FakeCompute:
    """Records casts; at each cast the instance's committed state must already be the new one."""

    factory: sessionmaker[Session]
    casts: list[tuple[str, str, str, bool]] = field(default_factory=list)
    seen_states: list[str] = field(default_factory=list)
    console: str = base64.b64encode(b"login: ").decode()

    def _cast(self, op: str, request: Any) -> None:
        with transaction(self.factory) as s:
            row = s.get(Instance, request.instance_id)
            self.seen_states.append(row.state if row else "gone")
        self.casts.append((op, request.host, request.instance_id, request.force))

    def __getattr__(self, op: str) -> Callable[[Any], None]:
        if op in ("stop", "start", "reboot", "destroy"):
            return lambda request: self._cast(op, request)
        raise AttributeError(op)

    def console_output(self, request: Any) -> Any:
        from ocs.compute_agent.rpcapi import ConsoleOutput

        return ConsoleOutput(request.instance_id, self.console, "2024-05-01T10:00:00+00:00")


@dataclass
class Env:
    factory: sessionmaker[Session]
    account_id: str
    image_id: str
    scheduler: FakeScheduler
    compute: FakeCompute

    def call(
        self, handler: Callable[..., dict[str, Any]], account_id: str | None = None, **params: Any
    ) -> Any:
        with self.factory() as s:
            ctx = RequestContext(
                account_id=account_id or self.account_id,
                access_key_id="AKIATEST",
                request_id="req-1",
                action=handler.__name__,
                settings=SETTINGS,
                session=s,
                now=lambda: dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC),
                services={"scheduler": self.scheduler, "compute": self.compute},
            )
            try:
                result = handler(ctx, params)
                s.commit()
                return result
            except BaseException:
                s.rollback()
                raise

    def run(self, **params: Any) -> dict[str, Any]:
        params = {
            "ImageId": self.image_id,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": "t3.micro",
            **params,
        }
        return self.call(api.run_instances, **params)

    def count(self, model: type) -> int:
        with transaction(self.factory) as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def set_state(self, instance_id: str, **values: Any) -> None:
        with transaction(self.factory) as s:
            s.execute(update(Instance).where(Instance.id == instance_id).values(**values))


@pytest.fixture
def env(sqlite_factory: sessionmaker[Session]) -> Env:
    alice = _account(sqlite_factory)
    image_id = _image(sqlite_factory, alice, virtual_size=2 * 1024**3, location="x")
    return Env(sqlite_factory, alice, image_id, FakeScheduler(sqlite_factory), FakeCompute(sqlite_factory))


def test_run_answers_pending_and_describe_shows_the_instance(env: Env) -> None:
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    out = env.run(
        MaxCount=2,
        UserData=user_data,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}],
        ClientToken="tok-1",
    )
    assert out["OwnerId"] == env.account_id and out["ReservationId"].startswith("r-") and out["Groups"] == []
    assert [i["State"] for i in out["Instances"]] == [{"Code": 0, "Name": "pending"}] * 2
    first = out["Instances"][0]
    assert first["PrivateIpAddress"] == "172.31.0.4"
    assert first["PrivateDnsName"] == "ip-172-31-0-4.ec2.internal"
    assert first["Placement"]["AvailabilityZone"] == ZONES[0]
    assert first["SecurityGroups"][0]["GroupName"] == "default"
    assert first["ClientToken"] == "tok-1" and first["Tags"] == [{"Key": "Name", "Value": "web"}]
    assert first["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 2}
    [nic] = first["NetworkInterfaces"]
    assert nic["PrivateIpAddress"] == "172.31.0.4" and nic["Attachment"]["DeviceIndex"] == 0
    assert env.scheduler.calls[0].min_count == 1 and len(env.scheduler.calls[0].instance_ids) == 2

    described = env.call(api.describe_instances)
    [reservation] = described["Reservations"]
    assert {i["InstanceId"] for i in reservation["Instances"]} == {i["InstanceId"] for i in out["Instances"]}
    attr = env.call(
        lifecycle.describe_instance_attribute, InstanceId=first["InstanceId"], Attribute="userData"
    )
    assert base64.b64decode(attr["UserData"]["Value"]) == b"#!/bin/sh\necho hi\n"


def test_run_launches_as_many_as_fit_and_undoes_the_rest(env: Env) -> None:
    env.scheduler.capacity = 2
    out = env.run(
        MinCount=1,
        MaxCount=5,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
    )
    assert len(out["Instances"]) == 2
    assert env.count(Instance) == 2 and env.count(Tag) == 2
    with pytest.raises(errors.InsufficientInstanceCapacity):
        env.run(
            MinCount=3,
            MaxCount=3,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
        )
    assert env.count(Instance) == 2 and env.count(Reservation) == 1 and env.count(Tag) == 2


@pytest.mark.parametrize(
    "failure",
    [errors.ServiceUnavailable(), errors.InsufficientInstanceCapacity()],
)
def test_run_leaves_nothing_when_the_scheduler_surely_placed_nothing(
    env: Env, failure: errors.OcsError
) -> None:
    env.scheduler.fail = failure
    with pytest.raises(type(failure)):
        env.run(
            MaxCount=3, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}]
        )
    assert (env.count(Instance), env.count(Reservation), env.count(Tag)) == (0, 0, 0)


@pytest.mark.parametrize(
    "failure",
    [
        errors.BusTimeout(target="scheduler", method="schedule_instances", timeout=30),
        errors.InternalError(),
    ],
)
def test_run_leaves_the_launch_pending_when_the_scheduling_outcome_is_unknown(
    env: Env, failure: errors.OcsError
) -> None:
    """The scheduler may have placed some: nothing is deleted, all are answered pending
    (the scheduler's periodic tasks place or fail those it did not place)."""
    env.scheduler.fail = failure
    out = env.run(
        MaxCount=3, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}]
    )
    assert [i["State"]["Name"] for i in out["Instances"]] == ["pending"] * 3
    assert (env.count(Instance), env.count(Reservation), env.count(Tag)) == (3, 1, 3)


def test_run_validation_errors_create_nothing(env: Env) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"ImageId": "ami-0123456789abcdef0"}, "InvalidAMIID.NotFound"),
        ({"ImageId": "nonsense"}, "InvalidAMIID.Malformed"),
        ({"InstanceType": "t9.huge"}, "InvalidParameterValue"),
        ({"KeyName": "nokey"}, "InvalidKeyPair.NotFound"),
        ({"SubnetId": "subnet-0123456789abcdef0"}, "InvalidSubnetID.NotFound"),
        ({"SecurityGroupIds": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound"),
        ({"SecurityGroups": ["nogroup"]}, "InvalidGroup.NotFound"),
        ({"Placement": {"AvailabilityZone": "mars-1a"}}, "InvalidParameterValue"),
        ({"UserData": "!!not base64!!"}, "InvalidUserData.Malformed"),
        ({"UserData": base64.b64encode(bytes(16385)).decode()}, "InvalidParameterValue"),
        ({"MinCount": 0}, "InvalidParameterValue"),
        ({"MinCount": 3, "MaxCount": 2}, "InvalidParameterValue"),
        ({"InstanceInitiatedShutdownBehavior": "explode"}, "InvalidParameterValue"),
        (
            {"TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "a", "Value": "b"}]}]},
            "InvalidParameterValue",
        ),
        ({"IamInstanceProfile": {"Name": "x"}}, "Unsupported"),
        ({"PrivateIpAddress": "10.9.9.9"}, "InvalidParameterValue"),
        ({"PrivateIpAddress": "172.31.0.9", "MaxCount": 2}, "InvalidParameterCombination"),
    ]
    for params, code in bad:
        with pytest.raises(errors.OcsError) as info:
            env.run(**params)
        assert info.value.code == code, (params, info.value)
    assert (env.count(Instance), env.count(Reservation), env.count(Tag)) == (0, 0, 0)
    assert env.scheduler.calls == []


def test_run_enforces_quotas(env: Env) -> None:
    with transaction(env.factory) as s:
        compute.set_quota(s, env.account_id, "instances", 2)
    assert len(env.run(MaxCount=5)["Instances"]) == 2
    with pytest.raises(compute.InstanceLimitExceeded):
        env.run()
    with transaction(env.factory) as s:
        compute.set_quota(s, env.account_id, "instances", 10)
        compute.set_quota(s, env.account_id, "vcpus", 5)
    with pytest.raises(compute.VcpuLimitExceeded):
        env.run()  # 2 x 2 vCPUs run already, a third t3.micro needs 2 more
    assert env.count(Instance) == 2


def _launch(env: Env) -> str:
    instance_id = env.run()["Instances"][0]["InstanceId"]
    env.set_state(instance_id, state="running", task=None)
    return str(instance_id)


def test_stop_start_reboot_terminate_commit_before_casting(env: Env) -> None:
    instance_id = _launch(env)
    out = env.call(lifecycle.stop_instances, InstanceIds=[instance_id])
    [change] = out["StoppingInstances"]
    assert change["PreviousState"]["Name"] == "running" and change["CurrentState"]["Name"] == "stopping"
    assert env.compute.casts[-1] == ("stop", "host-1", instance_id, False)
    again = env.call(lifecycle.stop_instances, InstanceIds=[instance_id])["StoppingInstances"][0]
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "stopping"
    assert len(env.compute.casts) == 1
    env.call(lifecycle.stop_instances, InstanceIds=[instance_id], Force=True)
    assert env.compute.casts[-1] == ("stop", "host-1", instance_id, True)
    with pytest.raises(errors.IncorrectInstanceState) as info:
        env.call(lifecycle.start_instances, InstanceIds=[instance_id])
    assert str(info.value) == f"The instance '{instance_id}' is not in a state from which it can be started."

    env.set_state(instance_id, state="stopped", task=None)
    described = env.call(api.describe_instances, InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert described["StateTransitionReason"] == "User initiated (2024-05-01 10:00:00 GMT)"
    assert described["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    started = env.call(lifecycle.start_instances, InstanceIds=[instance_id])["StartingInstances"][0]
    assert (started["PreviousState"]["Name"], started["CurrentState"]["Name"]) == ("stopped", "pending")
    assert env.compute.casts[-1][0] == "start"
    with pytest.raises(errors.IncorrectInstanceState):
        env.call(lifecycle.reboot_instances, InstanceIds=[instance_id])  # pending
    env.set_state(instance_id, state="running", task=None)
    assert env.call(lifecycle.reboot_instances, InstanceIds=[instance_id]) == {}
    assert env.compute.casts[-1][0] == "reboot"
    done = env.call(lifecycle.terminate_instances, InstanceIds=[instance_id])["TerminatingInstances"][0]
    assert done["CurrentState"] == {"Code": 32, "Name": "shutting-down"}
    assert env.compute.casts[-1][0] == "destroy"
    assert env.compute.seen_states == ["stopping", "stopping", "pending", "running", "shutting-down"]


def test_terminate_without_a_host_ends_at_once(env: Env) -> None:
    instance_id = _launch(env)
    env.set_state(instance_id, host=None, state="pending", task="scheduling")
    out = env.call(lifecycle.terminate_instances, InstanceIds=[instance_id])
    assert out["TerminatingInstances"][0]["CurrentState"]["Name"] == "terminated"
    assert env.compute.casts == []
    item = env.call(api.describe_instances)["Reservations"][0]["Instances"][0]
    assert item["State"]["Name"] == "terminated" and "PrivateIpAddress" not in item
    assert item["NetworkInterfaces"] == [] and "SubnetId" not in item


def test_termination_protection_and_batches_change_nothing_on_error(env: Env) -> None:
    protected = env.run(DisableApiTermination=True)["Instances"][0]["InstanceId"]
    free = _launch(env)
    env.set_state(protected, state="running", task=None)
    with pytest.raises(errors.OperationNotPermitted) as info:
        env.call(lifecycle.terminate_instances, InstanceIds=[free, protected])
    assert "Modify its 'disableApiTermination' instance attribute" in str(info.value)
    with pytest.raises(errors.NotFound):
        env.call(lifecycle.stop_instances, InstanceIds=[free, "i-0123456789abcdef0"])
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in env.call(api.describe_instances)["Reservations"]
        for i in r["Instances"]
    }
    assert states == {free: "running", protected: "running"} and env.compute.casts == []
    env.call(
        lifecycle.modify_instance_attribute, InstanceId=protected, DisableApiTermination={"Value": False}
    )
    env.call(lifecycle.terminate_instances, InstanceIds=[protected])


def test_attributes_while_running_and_stopped(env: Env) -> None:
    instance_id = _launch(env)
    modify = lifecycle.modify_instance_attribute
    with pytest.raises(errors.IncorrectInstanceState) as info:
        env.call(modify, InstanceId=instance_id, InstanceType={"Value": "t3.large"})
    assert str(info.value) == f"The instance '{instance_id}' is not in the 'stopped' state."
    env.call(modify, InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    env.set_state(instance_id, state="stopped", task=None)
    env.call(modify, InstanceId=instance_id, InstanceType={"Value": "t3.xlarge"})
    env.call(modify, InstanceId=instance_id, UserData={"Value": b"new data"})
    with pytest.raises(errors.InvalidParameterValue):
        env.call(modify, InstanceId=instance_id, InstanceType={"Value": "t9.huge"})
    with pytest.raises(errors.InvalidParameterCombination):
        env.call(modify, InstanceId=instance_id, InstanceType={"Value": "t3.small"}, UserData={"Value": b"x"})
    with pytest.raises(errors.Unsupported):
        env.call(modify, InstanceId=instance_id, EbsOptimized={"Value": True})
    env.call(modify, InstanceId=instance_id, SourceDestCheck={"Value": False})  # the primary interface's
    assert env.call(
        lifecycle.describe_instance_attribute, InstanceId=instance_id, Attribute="sourceDestCheck"
    )["SourceDestCheck"] == {"Value": False}
    read = lambda attribute: env.call(  # noqa: E731
        lifecycle.describe_instance_attribute, InstanceId=instance_id, Attribute=attribute
    )
    assert read("instanceType")["InstanceType"] == {"Value": "t3.xlarge"}
    assert base64.b64decode(read("userData")["UserData"]["Value"]) == b"new data"
    assert read("instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"] == {
        "Value": "terminate"
    }
    assert read("groupSet")["Groups"][0]["GroupName"] == "default"
    with transaction(env.factory) as s:
        row = s.get(Instance, instance_id)
        assert row is not None and (row.vcpus, row.memory_mib, row.disk_gib) == (4, 16384, 32)


def test_another_account_sees_nothing(env: Env) -> None:
    instance_id = _launch(env)
    bob = _account(env.factory, "bob")
    assert env.call(api.describe_instances, account_id=bob) == {"Reservations": [], "NextToken": None}
    for handler, params in (
        (api.describe_instances, {"InstanceIds": [instance_id]}),
        (lifecycle.stop_instances, {"InstanceIds": [instance_id]}),
        (lifecycle.terminate_instances, {"InstanceIds": [instance_id]}),
        (lifecycle.get_console_output, {"InstanceId": instance_id}),
        (lifecycle.describe_instance_attribute, {"InstanceId": instance_id, "Attribute": "userData"}),
    ):
        with pytest.raises(errors.NotFound) as info:
            env.call(handler, account_id=bob, **params)
        assert info.value.code == "InvalidInstanceID.NotFound"


def test_console_output_and_status(env: Env) -> None:
    instance_id = _launch(env)
    out = env.call(lifecycle.get_console_output, InstanceId=instance_id)
    assert out["Output"] == env.compute.console and out["InstanceId"] == instance_id
    env.set_state(instance_id, host=None)
    assert "Output" not in env.call(lifecycle.get_console_output, InstanceId=instance_id)
    statuses = env.call(api.describe_instance_status)["InstanceStatuses"]
    assert [s["InstanceStatus"]["Status"] for s in statuses] == ["ok"]
    env.set_state(instance_id, state="stopped")
    assert env.call(api.describe_instance_status)["InstanceStatuses"] == []
    [status] = env.call(api.describe_instance_status, IncludeAllInstances=True)["InstanceStatuses"]
    assert status["InstanceStatus"] == {"Status": "not-applicable"}


def test_user_data_normalization() -> None:
    assert api.normalize_user_data(None) is None and api.normalize_user_data("") is None
    assert api.normalize_user_data("aGVs\nbG8") == "aGVsbG8="
    with pytest.raises(errors.InvalidParameterValue) as info:
        api.normalize_user_data("a")
    assert info.value.code == "InvalidUserData.Malformed"
    assert api.private_dns_name("eu-west-1", "10.0.0.5") == "ip-10-0-0-5.eu-west-1.compute.internal"


def test_the_scheduler_deletes_only_while_the_api_surely_waits() -> None:
    """LAUNCH_ANSWER_WINDOW must end before the API's schedule_instances call times out
    (after which it answers the launch pending), with room for a slow commit."""
    from ocs.db.instance_events import LAUNCH_ANSWER_WINDOW
    from ocs.scheduler.rpcapi import SchedulerApi

    timeout = SchedulerApi.operations["schedule_instances"].timeout
    assert timeout is not None and 0 < LAUNCH_ANSWER_WINDOW <= timeout - 5
