"""Alembic migrations of the OCS database (run them with ``ocs-manage db sync``)."""
