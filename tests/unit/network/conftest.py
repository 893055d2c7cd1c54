"""Database fixtures (tests/dbfixtures.py) for the network repository tests."""

from tests.dbfixtures import *  # noqa: F403
