"""Revision 0009 gives the VPCs made before it what new VPCs get (SQLite; other backends: integration)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ocs.db import migration
from ocs.db import routing as repo
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models import Account
from ocs.db.models.network import Vpc
from ocs.db.models.routing import InternetGateway, Route, RouteTableAssociation
from tests.dbfixtures import throwaway_database

WHEN = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def _vpc(vpc_id: str, block: str, *, is_default: bool) -> Vpc:
    return Vpc(
        id=vpc_id,
        account_id="000000000001",
        cidr_block=block,
        cidr_association_id=f"vpc-cidr-assoc-{vpc_id[4:]}",
        is_default=is_default,
        state="available",
        dhcp_options_id="default",
        instance_tenancy="default",
        enable_dns_support=True,
        enable_dns_hostnames=is_default,
        created_at=WHEN,
    )


def test_existing_vpcs_get_main_tables_and_the_default_one_its_gateway() -> None:
    with throwaway_database("sqlite", migrate=False) as url:
        migration.sync(url, "0008")
        engine = make_engine(url)
        try:
            with transaction(session_factory(engine)) as s:
                s.add(Account(id="000000000001", name="old", created_at=WHEN))
                s.flush()
                s.add_all(
                    [
                        _vpc("vpc-0000000000000000a", "172.31.0.0/16", is_default=True),
                        _vpc("vpc-0000000000000000b", "10.0.0.0/16", is_default=False),
                    ]
                )
            migration.sync(url)
            with transaction(session_factory(engine)) as s:
                default = repo.main_route_table(s, "vpc-0000000000000000a")
                other = repo.main_route_table(s, "vpc-0000000000000000b")
                assert default is not None and other is not None
                igw = s.scalar(select(InternetGateway))
                assert igw is not None and igw.vpc_id == "vpc-0000000000000000a"
                routes = repo.routes_of(s, [default.id, other.id])
                assert [(r.destination_cidr_block, r.gateway_id, r.origin) for r in routes[default.id]] == [
                    ("172.31.0.0/16", "local", "CreateRouteTable"),
                    ("0.0.0.0/0", igw.id, "CreateRoute"),
                ]
                assert [(r.destination_cidr_block, r.gateway_id) for r in routes[other.id]] == [
                    ("10.0.0.0/16", "local")
                ]
                assert len(s.scalars(select(RouteTableAssociation)).all()) == 2
                assert all(r.created_at.tzinfo is dt.UTC for r in s.scalars(select(Route)))
                assert not repo.vpc_has_dependencies(s, "vpc-0000000000000000b")
        finally:
            engine.dispose()
        assert migration.diff(url) == []
