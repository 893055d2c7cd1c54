"""addresses: static external addresses are Elastic IPs; an instance takes one through
accessConfigs[].natIP; one in use cannot be deleted."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from tests.functional.gce.test_instances import error_of, insert_body, wait


def test_reserve_use_and_release_a_static_address(api, project, zone, demo_image, cloud):
    ec2 = cloud.client(project.account)
    p, region = project.name, cloud.region
    op = api.addresses().insert(project=p, region=region, body={"name": "web-ip"}).execute()
    assert op["status"] == "DONE" and "error" not in op
    addr = api.addresses().get(project=p, region=region, address="web-ip").execute()
    assert addr["status"] == "RESERVED" and addr["addressType"] == "EXTERNAL" and "users" not in addr
    [eip] = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["web-ip"]}])["Addresses"]
    assert eip["PublicIp"] == addr["address"] and "AssociationId" not in eip
    with pytest.raises(HttpError) as dup:
        api.addresses().insert(project=p, region=region, body={"name": "web-ip"}).execute()
    assert dup.value.status_code == 409
    listed = api.addresses().list(project=p, region=region).execute()["items"]
    assert [a["address"] for a in listed if a["name"] == "web-ip"] == [addr["address"]]
    agg = api.addresses().aggregatedList(project=p).execute()["items"][f"regions/{region}"]["addresses"]
    assert addr["selfLink"] in {a["selfLink"] for a in agg}

    body = insert_body(zone, "web", demo_image)
    body["networkInterfaces"] = [
        {
            "network": "global/networks/default",
            "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": addr["address"]}],
        }
    ]
    wait(api, p, zone, api.instances().insert(project=p, zone=zone, body=body).execute())
    inst = api.instances().get(project=p, zone=zone, instance="web").execute()
    assert inst["networkInterfaces"][0]["accessConfigs"][0]["natIP"] == addr["address"]
    used = api.addresses().get(project=p, region=region, address="web-ip").execute()
    assert used["status"] == "IN_USE" and used["users"] == [inst["selfLink"]]
    [eip] = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    [reservation] = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web"]}])["Reservations"]
    assert eip["InstanceId"] == reservation["Instances"][0]["InstanceId"]

    body["name"] = "web2"  # the same address again: not free
    with pytest.raises(HttpError) as taken:
        api.instances().insert(project=p, zone=zone, body=body).execute()
    assert taken.value.status_code == 400
    with pytest.raises(HttpError) as busy:
        api.addresses().delete(project=p, region=region, address="web-ip").execute()
    assert busy.value.status_code == 400
    assert error_of(busy.value)["errors"][0]["reason"] == "resourceInUseByAnotherResource"

    wait(api, p, zone, api.instances().delete(project=p, zone=zone, instance="web").execute())
    assert api.addresses().get(project=p, region=region, address="web-ip").execute()["status"] == "RESERVED"
    op = api.addresses().delete(project=p, region=region, address="web-ip").execute()
    assert op["status"] == "DONE"
    with pytest.raises(HttpError) as gone:
        api.addresses().get(project=p, region=region, address="web-ip").execute()
    assert gone.value.status_code == 404
    assert ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["web-ip"]}])["Addresses"] == []


def test_ephemeral_access_config_is_a_public_address_and_ec2_eips_show(api, project, zone, demo_image, cloud):
    ec2 = cloud.client(project.account)
    eip = ec2.allocate_address(Domain="vpc")
    got = (
        api.addresses().get(project=project.name, region=cloud.region, address=eip["AllocationId"]).execute()
    )
    assert got["address"] == eip["PublicIp"] and got["status"] == "RESERVED"
    ec2.release_address(AllocationId=eip["AllocationId"])
    body = insert_body(zone, "ephemeral", demo_image)
    wait(
        api, project.name, zone, api.instances().insert(project=project.name, zone=zone, body=body).execute()
    )
    inst = api.instances().get(project=project.name, zone=zone, instance="ephemeral").execute()
    nat = inst["networkInterfaces"][0]["accessConfigs"][0]["natIP"]
    assert nat and nat not in {a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]}
    wait(
        api,
        project.name,
        zone,
        api.instances().delete(project=project.name, zone=zone, instance="ephemeral").execute(),
    )
