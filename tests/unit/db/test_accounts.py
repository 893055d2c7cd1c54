"""Account and access-key repository on SQLite (the other backends: tests/integration)."""

from __future__ import annotations

import pytest

from tests.unit.db.contracts import AccountsContract


class TestAccountsSqlite(AccountsContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url
