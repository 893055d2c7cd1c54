"""Migrations on SQLite (the other backends: tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dbfixtures import throwaway_database
from tests.unit.db.contracts import MigrationContract


class TestMigrationSqlite(MigrationContract):
    @pytest.fixture
    def empty_url(self) -> Iterator[str]:
        with throwaway_database("sqlite", migrate=False) as url:
            yield url
