"""The network repository on every database backend: default network, lookups for RunInstances."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors
from ocs.db import accounts, routing, secgroups, vpcs
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.network import SecurityGroup, SecurityGroupRule, Subnet, Vpc
from tests.dbfixtures import throwaway_database
from tests.unit.db.contracts import run_threads

ZONES = ("zone-a", "zone-b", "zone-c")


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    with throwaway_database(request.param) as url:
        engine = make_engine(url)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


def _account(factory: sessionmaker[Session], name: str = "alice") -> str:
    with transaction(factory) as s:
        return accounts.create_account(s, name).id


def _ensure(s: Session, account_id: str) -> Vpc | None:
    return vpcs.ensure_default_network(s, account_id, vpc_cidr="172.31.0.0/16", zones=ZONES)


def _count(s: Session, model: type, account_id: str) -> int:
    return int(s.scalar(select(func.count()).select_from(model).where(model.account_id == account_id)) or 0)


def test_default_network_is_made_once(factory: sessionmaker[Session]) -> None:
    account_id = _account(factory)
    with transaction(factory) as s:
        vpc = _ensure(s, account_id)
        assert vpc is not None and vpc.is_default and vpc.cidr_block == "172.31.0.0/16"
    with transaction(factory) as s:
        again = _ensure(s, account_id)
        assert again is not None and again.id == vpc.id
        subnets = vpcs.list_subnets(s, account_id)
        assert sorted(x.cidr_block for x in subnets) == ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"]
        assert {x.availability_zone for x in subnets} == set(ZONES)
        [group] = secgroups.list_groups(s, account_id)
        assert (group.name, group.is_default, group.vpc_id) == ("default", True, vpc.id)
        specs = [secgroups.spec_of(r) for r in secgroups.rules_for(s, [group.id])[group.id]]
        assert [(x.is_egress, x.protocol, x.peer) for x in specs] == [
            (False, "-1", group.id),
            (True, "-1", "0.0.0.0/0"),
        ]


def test_concurrent_provisioning_makes_one_network(factory: sessionmaker[Session]) -> None:
    account_id = _account(factory)
    seen: list[str] = []

    def provision(_: int) -> None:
        with transaction(factory) as s:
            vpc = _ensure(s, account_id)
            assert vpc is not None
            seen.append(vpc.id)

    assert run_threads(8, provision) == []
    assert len(set(seen)) == 1
    with transaction(factory) as s:
        assert _count(s, Vpc, account_id) == 1
        assert _count(s, Subnet, account_id) == len(ZONES)
        assert _count(s, SecurityGroup, account_id) == 1
        assert _count(s, SecurityGroupRule, account_id) == 2


def test_deleted_default_vpc_is_not_made_again(factory: sessionmaker[Session]) -> None:
    account_id = _account(factory)
    with transaction(factory) as s:
        vpc = _ensure(s, account_id)
        for subnet in vpcs.list_subnets(s, account_id):
            vpcs.delete_subnet(s, account_id, subnet.id)
        [igw] = routing.list_internet_gateways(s, account_id)  # EC2's default VPC has one attached
        routing.detach_internet_gateway(s, account_id, igw.id, vpc.id)
        routing.delete_internet_gateway(s, account_id, igw.id)
        vpcs.delete_vpc(s, account_id, vpc.id)
    with transaction(factory) as s:
        assert _ensure(s, account_id) is None
        assert vpcs.list_vpcs(s, account_id) == []
        assert routing.list_route_tables(s, account_id) == []
        assert secgroups.list_groups(s, account_id) == []


def test_lookups_for_run_instances(factory: sessionmaker[Session]) -> None:
    alice, bob = _account(factory, "alice"), _account(factory, "bob")
    with transaction(factory) as s:
        vpc = _ensure(s, alice)
        _ensure(s, bob)
        subnet = vpcs.default_subnet_for_az(s, alice, "zone-b")
        assert subnet is not None and subnet.cidr_block == "172.31.16.0/20" and subnet.vpc_id == vpc.id
        assert vpcs.default_subnet_for_az(s, alice, "zone-z") is None
        assert vpcs.get_subnet(s, alice, subnet.id) is subnet
        with pytest.raises(errors.NotFound) as info:
            vpcs.get_subnet(s, bob, subnet.id)
        assert info.value.code == "InvalidSubnetID.NotFound"

        default = secgroups.find_group(s, alice, vpc.id, "default")
        web = secgroups.create_group(s, alice, vpc.id, "web", "web")
        assert secgroups.resolve_security_groups(s, alice, vpc.id) == [default]
        assert secgroups.resolve_security_groups(s, alice, vpc.id, [web.id], ["default"]) == [web, default]
        with pytest.raises(errors.NotFound) as info:
            secgroups.resolve_security_groups(s, bob, vpcs.default_vpc_id(s, bob), [web.id])
        assert info.value.code == "InvalidGroup.NotFound"
        with pytest.raises(errors.NotFound) as info:
            secgroups.resolve_security_groups(s, alice, vpc.id, [], ["nope"])
        assert info.value.code == "InvalidGroup.NotFound"
        other = vpcs.create_vpc(s, alice, "10.0.0.0/16")
        with pytest.raises(errors.InvalidParameter):
            secgroups.resolve_security_groups(s, alice, other.id, [web.id], subnet_id="subnet-1")
        with pytest.raises(errors.Malformed):
            secgroups.resolve_security_groups(s, alice, vpc.id, ["web"])
