"""Migration 0020: DHCP options sets and customer gateways; existing VPCs are associated
with their account's new default set; downgrading drops both tables and keeps the VPCs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from ocs.db import migration
from ocs.db.engine import make_engine
from tests.dbfixtures import throwaway_database

WHEN = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
ACCOUNT = "000000000001"


@pytest.fixture
def url() -> Iterator[str]:
    with throwaway_database("sqlite", migrate=False) as url:
        yield url


def test_upgrade_and_downgrade(url: str) -> None:
    migration.sync(url, "0014")
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as conn:
            meta = sa.MetaData()
            meta.reflect(conn, only=["accounts", "vpcs"])
            conn.execute(meta.tables["accounts"].insert().values(id=ACCOUNT, name="old", created_at=WHEN))
            vpc = {c.name: None for c in meta.tables["vpcs"].c}
            vpc.update(
                id="vpc-00000000000000001",
                account_id=ACCOUNT,
                cidr_block="10.0.0.0/16",
                cidr_association_id="vpc-cidr-assoc-00000000000000001",
                is_default=False,
                state="available",
                dhcp_options_id="default",
                instance_tenancy="default",
                enable_dns_support=True,
                enable_dns_hostnames=False,
                created_at=WHEN,
            )
            conn.execute(
                meta.tables["vpcs"].insert().values(**{k: v for k, v in vpc.items() if v is not None})
            )
    finally:
        engine.dispose()
    migration.sync(url)
    assert migration.diff(url) == []
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as conn:
            vpcs = sa.Table("vpcs", sa.MetaData(), autoload_with=conn)
            dopt = sa.Table("dhcp_options", sa.MetaData(), autoload_with=conn)
            [made] = conn.execute(sa.select(dopt.c.id, dopt.c.account_id, dopt.c.default_for)).all()
            assert made[1:] == (ACCOUNT, "account")
            assert conn.execute(sa.select(vpcs.c.dhcp_options_id)).scalars().all() == [made[0]]
            row = {"account_id": ACCOUNT, "configurations": [], "default_for": "account", "created_at": WHEN}
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # one default set per account
                conn.execute(dopt.insert().values(id="dopt-00000000000000002", **row))
            cfg = migration.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0014")
        with engine.begin() as conn:
            names = sa.inspect(conn).get_table_names()
            assert "dhcp_options" not in names and "customer_gateways" not in names
            vpcs = sa.Table("vpcs", sa.MetaData(), autoload_with=conn)
            assert conn.execute(sa.select(vpcs.c.id, vpcs.c.dhcp_options_id)).all() == [
                ("vpc-00000000000000001", "default")
            ]
    finally:
        engine.dispose()
