"""Database fixtures (tests/dbfixtures.py) for the db unit tests."""

import pytest

pytest.register_assert_rewrite("tests.unit.db.contracts")

from tests.dbfixtures import *  # noqa: E402, F403
