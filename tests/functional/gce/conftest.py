"""Fixtures of the Compute Engine tests: a project (an OCS account) with a service-account
key, and Google's two clients for it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from tests.framework import gce


@dataclass(frozen=True)
class Project:
    name: str
    account: Any  # tests.framework.cloud.Account
    info: dict[str, Any]  # its service-account key file


def make_project(cloud: Any, prefix: str) -> Project:
    account = cloud.create_account(f"{prefix}-{secrets.token_hex(3)}")
    return Project(account.name, account, gce.service_account_info(cloud, account.name))


@pytest.fixture(scope="module")
def project(cloud) -> Project:
    return make_project(cloud, "gce")


@pytest.fixture(scope="module")
def api(cloud, project):
    """google-api-python-client's compute v1 for ``project``."""
    return gce.discovery_client(cloud, project.info)


@pytest.fixture(scope="module")
def zone(cloud) -> str:
    return str(cloud.conf.ec2.availability_zones[0])


@pytest.fixture(scope="module")
def demo_image() -> str:
    """The all-in-one's public demo image, as Compute Engine names it."""
    return "projects/admin/global/images/ocs-demo"
