"""Shared fixtures for every tier."""

from tests.framework.ceph import ceph_cluster  # noqa: F401  (a session fixture, started on first use)
