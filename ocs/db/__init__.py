"""The database layer: SQLAlchemy models, repository functions, Alembic migrations.

- :mod:`ocs.db.models`: the mapped tables, one module per resource family.
- :mod:`ocs.db.engine`: ``make_engine``, ``session_factory``, ``transaction``,
  ``default_url``.
- :mod:`ocs.db.migration`: ``sync``, ``current``, ``check``, ``diff``.
- :mod:`ocs.db.accounts` (and later one module per family): repository functions
  taking a Session first.

Only the API, scheduler and network services import this package; it never reads
configuration itself (values are passed in).
"""

from __future__ import annotations

from ocs.db.engine import default_url, make_engine, session_factory, transaction

__all__ = ["default_url", "make_engine", "session_factory", "transaction"]
