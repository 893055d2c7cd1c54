"""The database layer on real PostgreSQL and MariaDB servers.

Same tests as the unit tier runs on SQLite (tests/unit/db/contracts.py), each on a
throwaway database ``ocs_test_<random>`` dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("tests.unit.db.contracts")

from tests.dbfixtures import throwaway_database  # noqa: E402
from tests.unit.db.contracts import AccountsContract, MigrationContract  # noqa: E402

SERVERS = ["postgres", "mariadb"]


class TestAccountsOnServers(AccountsContract):
    @pytest.fixture(params=SERVERS)
    def url(self, request: pytest.FixtureRequest) -> Iterator[str]:
        with throwaway_database(request.param) as url:
            yield url


class TestMigrationOnServers(MigrationContract):
    @pytest.fixture(params=SERVERS)
    def empty_url(self, request: pytest.FixtureRequest) -> Iterator[str]:
        with throwaway_database(request.param, migrate=False) as url:
            yield url
