"""Instances through Compute Engine, with Google's own clients, are the cloud's instances:
the same ones boto3's DescribeInstances shows."""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc
from googleapiclient.errors import HttpError

from tests.framework import gce


def insert_body(zone: str, name: str, image: str, **extra):
    return {
        "name": name,
        "machineType": f"zones/{zone}/machineTypes/t3.micro",
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": image}}],
        "networkInterfaces": [
            {"network": "global/networks/default", "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}
        ],
        **extra,
    }


def wait(api, project: str, zone: str, op: dict) -> dict:
    for _ in range(5):
        op = api.zoneOperations().wait(project=project, zone=zone, operation=op["name"]).execute()
        if op["status"] == "DONE":
            return op
    raise AssertionError(f"operation {op['name']} not DONE: {op}")


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


def test_catalog(api, project, zone, cloud):
    zones = api.zones().list(project=project.name).execute()
    assert zones["kind"] == "compute#zoneList"
    assert [z["name"] for z in zones["items"]] == list(cloud.conf.ec2.availability_zones)
    assert all(z["status"] == "UP" and z["selfLink"].startswith(cloud.endpoint) for z in zones["items"])
    region = api.regions().get(project=project.name, region=cloud.region).execute()
    assert {q["metric"] for q in region["quotas"]} >= {"INSTANCES", "CPUS"}
    types = {
        t["name"]: t for t in api.machineTypes().list(project=project.name, zone=zone).execute()["items"]
    }
    assert types["t3.micro"]["guestCpus"] == 2 and types["t3.micro"]["memoryMb"] == 1024
    assert types["t3.micro"]["zone"] == zone
    # The demo image is the admin project's, public: readable from any project.
    image = api.images().get(project="admin", image="ocs-demo").execute()
    assert image["status"] == "READY" and image["selfLink"].endswith("/projects/admin/global/images/ocs-demo")
    assert api.images().getFromFamily(project="admin", family="ocs-demo").execute()["id"] == image["id"]
    assert api.images().list(project=project.name).execute().get("items", []) == []


def test_lifecycle_with_discovery_client(api, project, zone, demo_image, cloud):
    p = project.name
    op = (
        api.instances()
        .insert(
            project=p,
            zone=zone,
            body=insert_body(
                zone,
                "web-1",
                demo_image,
                labels={"env": "prod"},
                tags={"items": ["http-server"]},
                metadata={"items": [{"key": "user-data", "value": "#!/bin/sh\necho hello-from-gce"}]},
            ),
        )
        .execute()
    )
    assert op["kind"] == "compute#operation" and op["operationType"] == "insert"
    assert op["status"] in ("PENDING", "RUNNING", "DONE") and op["targetLink"].endswith(
        f"/zones/{zone}/instances/web-1"
    )
    done = wait(api, p, zone, op)
    assert "error" not in done and done["progress"] == 100 and done["endTime"]

    inst = api.instances().get(project=p, zone=zone, instance="web-1").execute()
    assert inst["status"] == "RUNNING" and inst["id"] == op["targetId"]
    assert inst["labels"] == {"env": "prod"} and inst["tags"]["items"] == ["http-server"]
    assert inst["machineType"].endswith(f"/zones/{zone}/machineTypes/t3.micro")
    nic = inst["networkInterfaces"][0]
    assert nic["network"].endswith("/global/networks/default") and nic["accessConfigs"][0]["natIP"]
    # The numeric id resolves as the name does.
    assert api.instances().get(project=p, zone=zone, instance=inst["id"]).execute()["name"] == "web-1"

    # The same instance through EC2.
    ec2 = cloud.client(project.account)
    [ec2_inst] = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert ec2_inst["State"]["Name"] == "running"
    assert {"Key": "Name", "Value": "web-1"} in ec2_inst["Tags"]
    assert ec2_inst["PrivateIpAddress"] == nic["networkIP"]
    assert ec2_inst["PublicIpAddress"] == nic["accessConfigs"][0]["natIP"]
    assert ec2_inst["Placement"]["AvailabilityZone"] == zone

    serial = api.instances().getSerialPortOutput(project=p, zone=zone, instance="web-1").execute()
    assert "hello-from-gce" in serial["contents"] and int(serial["next"]) == len(serial["contents"].encode())
    tail = (
        api.instances()
        .getSerialPortOutput(project=p, zone=zone, instance="web-1", start=serial["next"])
        .execute()
    )
    assert tail["contents"] == "" and tail["start"] == serial["next"]

    stop = wait(api, p, zone, api.instances().stop(project=p, zone=zone, instance="web-1").execute())
    assert stop["operationType"] == "stop" and "error" not in stop
    assert api.instances().get(project=p, zone=zone, instance="web-1").execute()["status"] == "TERMINATED"
    assert (
        ec2.describe_instances(InstanceIds=[ec2_inst["InstanceId"]])["Reservations"][0]["Instances"][0][
            "State"
        ]["Name"]
        == "stopped"
    )
    wait(api, p, zone, api.instances().start(project=p, zone=zone, instance="web-1").execute())
    inst = api.instances().get(project=p, zone=zone, instance="web-1").execute()
    assert inst["status"] == "RUNNING"

    op = (
        api.instances()
        .setLabels(
            project=p,
            zone=zone,
            instance="web-1",
            body={"labels": {"env": "dev", "team": "a"}, "labelFingerprint": inst["labelFingerprint"]},
        )
        .execute()
    )
    assert wait(api, p, zone, op)["operationType"] == "setLabels"
    after = api.instances().get(project=p, zone=zone, instance="web-1").execute()
    assert (
        after["labels"] == {"env": "dev", "team": "a"}
        and after["labelFingerprint"] != inst["labelFingerprint"]
    )
    with pytest.raises(HttpError) as stale:  # the old fingerprint no longer matches
        api.instances().setLabels(
            project=p,
            zone=zone,
            instance="web-1",
            body={"labels": {}, "labelFingerprint": inst["labelFingerprint"]},
        ).execute()
    assert (
        stale.value.status_code == 412 and error_of(stale.value)["errors"][0]["reason"] == "conditionNotMet"
    )

    meta = after["metadata"]
    op = (
        api.instances()
        .setMetadata(
            project=p,
            zone=zone,
            instance="web-1",
            body={
                "fingerprint": meta["fingerprint"],
                "items": [{"key": "startup-script", "value": "echo hi"}],
            },
        )
        .execute()
    )
    wait(api, p, zone, op)
    items = api.instances().get(project=p, zone=zone, instance="web-1").execute()["metadata"]["items"]
    assert items == [{"key": "startup-script", "value": "echo hi"}]

    listed = api.instances().list(project=p, zone=zone).execute()
    assert [i["name"] for i in listed["items"]] == ["web-1"]
    agg = api.instances().aggregatedList(project=p).execute()
    assert [i["name"] for i in agg["items"][f"zones/{zone}"]["instances"]] == ["web-1"]

    op = api.instances().delete(project=p, zone=zone, instance="web-1").execute()
    assert wait(api, p, zone, op)["operationType"] == "delete"
    with pytest.raises(HttpError) as gone:
        api.instances().get(project=p, zone=zone, instance="web-1").execute()
    assert gone.value.status_code == 404
    state = ec2.describe_instances(InstanceIds=[ec2_inst["InstanceId"]])["Reservations"][0]["Instances"][0][
        "State"
    ]
    assert state["Name"] == "terminated"
    ops = api.zoneOperations().list(project=p, zone=zone).execute()["items"]
    assert [o["operationType"] for o in ops] == [
        "insert",
        "stop",
        "start",
        "setLabels",
        "setMetadata",
        "delete",
    ]
    assert all(o["status"] == "DONE" for o in ops)
    api.zoneOperations().delete(project=p, zone=zone, operation=ops[0]["name"]).execute()
    with pytest.raises(HttpError) as deleted:
        api.zoneOperations().get(project=p, zone=zone, operation=ops[0]["name"]).execute()
    assert deleted.value.status_code == 404
    # The name is free again.
    op = api.instances().insert(project=p, zone=zone, body=insert_body(zone, "web-1", demo_image)).execute()
    assert "error" not in wait(api, p, zone, op)
    wait(api, p, zone, api.instances().delete(project=p, zone=zone, instance="web-1").execute())


def test_lifecycle_with_cloud_compute(cloud, project, zone, demo_image):
    from google.cloud import compute_v1

    instances = gce.compute_client(cloud, project.info)
    body = compute_v1.Instance(
        name="cc-1",
        machine_type=f"zones/{zone}/machineTypes/t3.micro",
        disks=[
            compute_v1.AttachedDisk(
                boot=True,
                auto_delete=True,
                initialize_params=compute_v1.AttachedDiskInitializeParams(source_image=demo_image),
            )
        ],
        network_interfaces=[compute_v1.NetworkInterface(network="global/networks/default")],
        labels={"made-by": "cloud-compute"},
    )
    operation = instances.insert(project=project.name, zone=zone, instance_resource=body)
    operation.result(timeout=60)
    got = instances.get(project=project.name, zone=zone, instance="cc-1")
    assert got.status == "RUNNING" and got.labels == {"made-by": "cloud-compute"}
    assert not got.network_interfaces[0].access_configs  # no accessConfigs: no public address
    names = [
        z.name for z in gce.compute_client(cloud, project.info, "ZonesClient").list(project=project.name)
    ]
    assert zone in names
    instances.stop(project=project.name, zone=zone, instance="cc-1").result(timeout=60)
    assert instances.get(project=project.name, zone=zone, instance="cc-1").status == "TERMINATED"
    instances.delete(project=project.name, zone=zone, instance="cc-1").result(timeout=60)
    with pytest.raises(gexc.NotFound):
        instances.get(project=project.name, zone=zone, instance="cc-1")


def test_ec2_instance_shows_under_its_id(cloud, project, zone, image_id, api):
    ec2 = cloud.client(project.account)
    [made] = ec2.run_instances(
        ImageId=image_id,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        Placement={"AvailabilityZone": zone},
    )["Instances"]
    iid = made["InstanceId"]
    ec2.get_waiter("instance_running").wait(
        InstanceIds=[iid], WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    inst = api.instances().get(project=project.name, zone=zone, instance=iid).execute()
    assert inst["name"] == iid and inst["status"] == "RUNNING" and inst["labels"] == {}
    op = (
        api.instances()
        .setLabels(
            project=project.name,
            zone=zone,
            instance=iid,
            body={"labels": {"from": "gce"}, "labelFingerprint": inst["labelFingerprint"]},
        )
        .execute()
    )
    wait(api, project.name, zone, op)
    assert api.instances().get(project=project.name, zone=zone, instance=iid).execute()["labels"] == {
        "from": "gce"
    }
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(
        InstanceIds=[iid], WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    with pytest.raises(HttpError) as gone:  # terminated instances are gone from Compute Engine
        api.instances().get(project=project.name, zone=zone, instance=iid).execute()
    assert gone.value.status_code == 404


def test_not_found_as_compute_engine_answers(cloud, api, project, zone):
    with pytest.raises(HttpError) as caught:
        api.instances().get(project=project.name, zone=zone, instance="no-such-vm").execute()
    assert caught.value.status_code == 404
    error = error_of(caught.value)
    assert error["code"] == 404
    assert (
        error["message"]
        == f"The resource 'projects/{project.name}/zones/{zone}/instances/no-such-vm' was not found"
    )
    assert error["errors"] == [{"message": error["message"], "domain": "global", "reason": "notFound"}]
    assert caught.value.error_details[0]["reason"] == "notFound"

    instances = gce.compute_client(cloud, project.info)
    with pytest.raises(gexc.NotFound) as nf:
        instances.get(project=project.name, zone=zone, instance="no-such-vm")
    assert nf.value.code == 404 and "was not found" in nf.value.message


def test_client_mistakes_are_4xx(api, project, zone, demo_image):
    p = project.name

    def status(request) -> tuple[int, str]:
        with pytest.raises(HttpError) as caught:
            request.execute()
        return caught.value.status_code, error_of(caught.value)["errors"][0]["reason"]

    assert status(
        api.instances().insert(project=p, zone=zone, body=insert_body(zone, "Bad_Name", demo_image))
    ) == (400, "invalid")
    body = insert_body(zone, "ok-name", demo_image)
    body["machineType"] = f"zones/{zone}/machineTypes/huge.nothing"
    assert status(api.instances().insert(project=p, zone=zone, body=body)) == (404, "notFound")
    body = insert_body(zone, "ok-name", "projects/admin/global/images/nope")
    assert status(api.instances().insert(project=p, zone=zone, body=body)) == (404, "notFound")
    body = insert_body(zone, "ok-name", demo_image)
    del body["disks"]
    assert status(api.instances().insert(project=p, zone=zone, body=body)) == (400, "invalid")
    assert (
        status(
            api.instances().insert(
                project=p, zone="no-zone-9", body=insert_body("no-zone-9", "x", demo_image)
            )
        )[0]
        == 400
    )
    body = insert_body(zone, "ok-name", demo_image, labels={"Bad Key": "v"})
    assert status(api.instances().insert(project=p, zone=zone, body=body)) == (400, "invalid")

    op = api.instances().insert(project=p, zone=zone, body=insert_body(zone, "dup-1", demo_image)).execute()
    wait(api, p, zone, op)
    assert status(
        api.instances().insert(project=p, zone=zone, body=insert_body(zone, "dup-1", demo_image))
    ) == (
        409,
        "alreadyExists",
    )
    wait(api, p, zone, api.instances().delete(project=p, zone=zone, instance="dup-1").execute())


def test_request_id_makes_insert_idempotent(api, project, zone, demo_image):
    p = project.name
    body = insert_body(zone, "idem-1", demo_image)
    first = (
        api.instances()
        .insert(project=p, zone=zone, body=body, requestId="5a0f5e1e-0000-4000-8000-000000000001")
        .execute()
    )
    again = (
        api.instances()
        .insert(project=p, zone=zone, body=body, requestId="5a0f5e1e-0000-4000-8000-000000000001")
        .execute()
    )
    assert again["name"] == first["name"]
    wait(api, p, zone, first)
    wait(api, p, zone, api.instances().delete(project=p, zone=zone, instance="idem-1").execute())


def test_list_filters_orders_and_pages(api, project, zone, demo_image):
    p = project.name
    ops = [
        api.instances()
        .insert(project=p, zone=zone, body=insert_body(zone, name, demo_image, labels={"env": env}))
        .execute()
        for name, env in (("web-a", "prod"), ("web-b", "dev"), ("db-a", "prod"))
    ]
    for op in ops:
        wait(api, p, zone, op)

    def names(**kw) -> list[str]:
        return [
            i["name"] for i in api.instances().list(project=p, zone=zone, **kw).execute().get("items", [])
        ]

    assert names() == ["db-a", "web-a", "web-b"]
    assert names(filter='name = "web-*"') == ["web-a", "web-b"]
    assert names(filter="labels.env = prod") == ["db-a", "web-a"]
    assert names(filter='(labels.env = prod) AND (name != "db-*")') == ["web-a"]
    assert names(filter="status != RUNNING") == []
    first = api.instances().list(project=p, zone=zone, maxResults=2).execute()
    assert [i["name"] for i in first["items"]] == ["db-a", "web-a"] and first["nextPageToken"]
    second = (
        api.instances().list(project=p, zone=zone, maxResults=2, pageToken=first["nextPageToken"]).execute()
    )
    assert [i["name"] for i in second["items"]] == ["web-b"] and "nextPageToken" not in second
    agg = api.instances().aggregatedList(project=p, filter="labels.env = dev").execute()
    assert [i["name"] for i in agg["items"][f"zones/{zone}"]["instances"]] == ["web-b"]
    other = next(k for k in agg["items"] if k != f"zones/{zone}")
    assert agg["items"][other]["warning"]["code"] == "NO_RESULTS_ON_PAGE"
    with pytest.raises(HttpError) as bad:
        api.instances().list(project=p, zone=zone, filter="name = (").execute()
    assert bad.value.status_code == 400 and error_of(bad.value)["errors"][0]["reason"] == "invalid"
    for name in ("web-a", "web-b", "db-a"):
        wait(api, p, zone, api.instances().delete(project=p, zone=zone, instance=name).execute())


def test_two_inserts_of_one_name_make_one_instance(cloud, project, zone, demo_image):
    """The name is taken by a unique constraint: of concurrent inserts, one wins, the others 409."""
    from concurrent.futures import ThreadPoolExecutor

    clients = [gce.discovery_client(cloud, project.info) for _ in range(4)]

    def insert(api):
        try:
            return (
                api.instances()
                .insert(project=project.name, zone=zone, body=insert_body(zone, "race-1", demo_image))
                .execute()
            )
        except HttpError as exc:
            return exc.status_code

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(insert, clients))
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 1 and sorted(r for r in results if not isinstance(r, dict)) == [409, 409, 409], (
        results
    )
    api = clients[0]
    wait(api, project.name, zone, made[0])
    ec2 = cloud.client(project.account)
    named = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["race-1"]}])["Reservations"]
    live = [i for r in named for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    assert len(live) == 1
    wait(
        api,
        project.name,
        zone,
        api.instances().delete(project=project.name, zone=zone, instance="race-1").execute(),
    )
