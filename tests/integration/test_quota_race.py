"""Concurrent launches of one account never exceed its quota, on every database."""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from ocs.db import compute as db_compute
from tests.dbfixtures import throwaway_database
from tests.framework.cloud import Cloud


@pytest.mark.parametrize("backend", ["postgres", "mariadb", "sqlite"])
def test_concurrent_launches_respect_the_instance_quota(backend, tmp_path):
    with throwaway_database(backend, migrate=False) as url:
        cloud = Cloud(tmp_path, overrides={"database": {"connection": url}, "compute": {"fake_hosts": 2}})
        cloud.start()
        try:
            tenant = cloud.create_account("racer")
            with cloud.session() as s:
                db_compute.set_quota(s, tenant.account_id, "instances", 5)
            ec2 = cloud.client(tenant, max_pool_connections=16)
            image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0][
                "ImageId"
            ]

            def launch(_):
                try:
                    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.nano")
                    return "ok"
                except ClientError as exc:
                    return exc.response["Error"]["Code"]

            with ThreadPoolExecutor(12) as pool:
                outcomes = collections.Counter(pool.map(launch, range(24)))
            assert outcomes == {"ok": 5, "InstanceLimitExceeded": 19}
            running = ec2.describe_instances()["Reservations"]
            assert sum(len(r["Instances"]) for r in running) == 5
        finally:
            cloud.stop()
