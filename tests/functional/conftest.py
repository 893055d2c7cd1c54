"""Fixtures of the functional tier: a whole cloud in this process."""

from __future__ import annotations

import logging

import pytest

from tests.framework.cloud import Cloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = Cloud(tmp_path_factory.mktemp("cloud")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def ec2(cloud):
    return cloud.client()


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(caplog, request):
    """On failure, pytest shows the captured OCS log lines (the cloud's side of the story)."""
    caplog.set_level(logging.INFO, logger="ocs")
    yield


@pytest.fixture(scope="module")
def image_id(ec2) -> str:
    """The all-in-one's public demo image."""
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]
