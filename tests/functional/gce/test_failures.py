"""What goes wrong, as Compute Engine tells it: a build that fails ends its operation DONE
with ``error``; quotas, deletion protection and states answer Compute Engine's reasons."""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc
from googleapiclient.errors import HttpError

from ocs.db import compute as db_compute
from tests.framework import gce
from tests.functional.gce.conftest import make_project
from tests.functional.gce.test_instances import insert_body, wait


def reason_of(exc: HttpError) -> str:
    return json.loads(exc.content)["error"]["errors"][0]["reason"]


def test_a_failed_build_fails_its_operation(cloud, project, zone, demo_image):
    from google.cloud import compute_v1

    drivers = [agent.driver for agent in cloud.aio.agents]
    for driver in drivers:
        driver.faults.spawn_failures = 20
    try:
        api = gce.discovery_client(cloud, project.info)
        op = (
            api.instances()
            .insert(project=project.name, zone=zone, body=insert_body(zone, "doomed-1", demo_image))
            .execute()
        )
        done = wait(api, project.name, zone, op)
        assert done["status"] == "DONE", done
        assert done["error"]["errors"][0]["code"] and done["error"]["errors"][0]["message"]
        assert done["httpErrorStatusCode"] >= 400 and done["httpErrorMessage"]
        with pytest.raises(HttpError) as gone:  # the failed instance is not there
            api.instances().get(project=project.name, zone=zone, instance="doomed-1").execute()
        assert gone.value.status_code == 404

        instances = gce.compute_client(cloud, project.info)
        body = compute_v1.Instance(
            name="doomed-2",
            machine_type=f"zones/{zone}/machineTypes/t3.micro",
            disks=[
                compute_v1.AttachedDisk(
                    boot=True,
                    initialize_params=compute_v1.AttachedDiskInitializeParams(source_image=demo_image),
                )
            ],
        )
        operation = instances.insert(project=project.name, zone=zone, instance_resource=body)
        with pytest.raises(gexc.GoogleAPICallError):
            operation.result(timeout=60)
    finally:
        for driver in drivers:
            driver.faults.spawn_failures = 0


def test_quota_exceeded_is_403(cloud, zone, demo_image):
    p = make_project(cloud, "gce-quota")
    with cloud.session() as s:
        db_compute.set_quota(s, p.account.account_id, "instances", 0)
    api = gce.discovery_client(cloud, p.info)
    with pytest.raises(HttpError) as caught:
        api.instances().insert(
            project=p.name, zone=zone, body=insert_body(zone, "over-1", demo_image)
        ).execute()
    assert caught.value.status_code == 403 and reason_of(caught.value) == "quotaExceeded"
    assert api.instances().list(project=p.name, zone=zone).execute().get("items", []) == []


def test_deletion_protection_and_states(api, project, zone, demo_image):
    p = project.name
    body = insert_body(zone, "guarded-1", demo_image, deletionProtection=True)
    wait(api, p, zone, api.instances().insert(project=p, zone=zone, body=body).execute())
    inst = api.instances().get(project=p, zone=zone, instance="guarded-1").execute()
    assert inst["deletionProtection"] is True
    with pytest.raises(HttpError) as refused:
        api.instances().delete(project=p, zone=zone, instance="guarded-1").execute()
    assert refused.value.status_code == 400 and reason_of(refused.value) == "resourceInUseByAnotherResource"

    reset = wait(api, p, zone, api.instances().reset(project=p, zone=zone, instance="guarded-1").execute())
    assert reset["operationType"] == "reset" and "error" not in reset
    wait(api, p, zone, api.instances().stop(project=p, zone=zone, instance="guarded-1").execute())
    with pytest.raises(HttpError) as not_ready:  # a stopped (TERMINATED) instance cannot be reset
        api.instances().reset(project=p, zone=zone, instance="guarded-1").execute()
    assert not_ready.value.status_code == 400 and reason_of(not_ready.value) == "resourceNotReady"
    # Stopping a stopped instance is no error (Compute Engine answers a DONE operation).
    again = wait(api, p, zone, api.instances().stop(project=p, zone=zone, instance="guarded-1").execute())
    assert "error" not in again


def test_wait_answers_a_running_operation_at_its_timeout(cloud, api, project, zone, demo_image):
    """operations.wait blocks until DONE or the timeout (2 minutes by default; 1 s here),
    then answers the operation as it is."""
    import time

    from falcon import testing

    from ocs.api_ec2.service import database_url
    from ocs.api_gce.app import GceDeps, create_app
    from ocs.api_gce.service import settings_from_conf
    from ocs.crypto import load_secret_box
    from ocs.db import engine as db_engine

    p = project.name
    wait(
        api,
        p,
        zone,
        api.instances()
        .insert(project=p, zone=zone, body=insert_body(zone, "slow-stop", demo_image))
        .execute(),
    )
    inst = api.instances().get(project=p, zone=zone, instance="slow-stop").execute()
    ec2 = cloud.client(project.account)
    [iid] = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["slow-stop"]}])[
            "Reservations"
        ]
        for i in r["Instances"]
    ]
    for agent in cloud.aio.agents:
        agent.driver.faults.ignore_acpi.add(iid)  # the guest ignores the power button: stopping lasts
    op = api.instances().stop(project=p, zone=zone, instance="slow-stop").execute()

    conf = cloud.conf
    settings = settings_from_conf(conf)
    settings = type(settings)(**{**settings.__dict__, "wait_timeout": 1.0})
    engine = db_engine.make_engine(database_url(conf))
    creds = gce.credentials(project.info)
    from google.auth.transport.requests import Request

    creds.refresh(Request())
    try:
        deps = GceDeps(
            settings=settings,
            sessions=db_engine.session_factory(engine),
            secret_box=load_secret_box(
                conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir
            ),
        )
        client = testing.TestClient(create_app(deps))
        started = time.monotonic()
        answer = client.simulate_post(
            f"/compute/v1/projects/{p}/zones/{zone}/operations/{op['name']}/wait",
            headers={"Authorization": f"Bearer {creds.token}"},
        )
        took = time.monotonic() - started
    finally:
        engine.dispose()
    assert answer.status_code == 200 and answer.json["status"] == "RUNNING", answer.text
    assert 1.0 <= took < 5, took
    assert inst["status"] == "RUNNING"
    assert api.instances().get(project=p, zone=zone, instance="slow-stop").execute()["status"] == "STOPPING"
