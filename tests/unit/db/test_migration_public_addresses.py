"""Migration 0012: existing addresses stay elastic, existing interfaces ask for no public
address; downgrading drops the auto-assigned addresses and keeps the elastic IPs."""

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


def _address(row_id: str, ip: str, **over: object) -> dict[str, object]:
    return {"id": row_id, "account_id": ACCOUNT, "public_ip": ip, "domain": "vpc", "created_at": WHEN, **over}


def test_upgrade_and_downgrade(url: str) -> None:
    migration.sync(url, "0011")
    engine = make_engine(url, sqlite_foreign_keys=False)
    meta = sa.MetaData()
    try:
        with engine.begin() as conn:
            meta.reflect(conn, only=["accounts", "elastic_addresses"])
            conn.execute(meta.tables["accounts"].insert().values(id=ACCOUNT, name="old", created_at=WHEN))
            conn.execute(
                meta.tables["elastic_addresses"].insert(),
                [_address("eipalloc-00000000000000001", "198.51.100.1")],
            )
    finally:
        engine.dispose()
    migration.sync(url)
    assert migration.diff(url) == []
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as conn:
            table = sa.Table("elastic_addresses", sa.MetaData(), autoload_with=conn)
            assert conn.execute(sa.select(table.c.id, table.c.kind)).all() == [
                ("eipalloc-00000000000000001", "elastic")
            ]
            conn.execute(
                table.insert().values(
                    **_address(
                        "eipauto-00000000000000002",
                        "198.51.100.2",
                        kind="auto",
                        network_interface_id="eni-00000000000000001",
                        private_ip_address="172.31.0.4",
                    )
                )
            )
            enis = sa.Table("network_interfaces", sa.MetaData(), autoload_with=conn)
            assert "associate_public_ip" in enis.c
    finally:
        engine.dispose()
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as conn:
            cfg = migration.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011")
        with engine.begin() as conn:
            table = sa.Table("elastic_addresses", sa.MetaData(), autoload_with=conn)
            assert "kind" not in table.c
            assert conn.execute(sa.select(table.c.id)).scalars().all() == ["eipalloc-00000000000000001"]
    finally:
        engine.dispose()
