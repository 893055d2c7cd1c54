"""networks and subnetworks (read-only): the account's VPCs and subnets, and instances
inserted onto them."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from tests.functional.gce.test_instances import insert_body, wait


def test_default_network_and_its_subnetworks(api, project, zone, cloud):
    nets = api.networks().list(project=project.name).execute()["items"]
    [default] = [n for n in nets if n["name"] == "default"]
    assert default["autoCreateSubnetworks"] is True
    assert len(default["subnetworks"]) == len(cloud.conf.ec2.availability_zones)
    assert api.networks().get(project=project.name, network="default").execute()["id"] == default["id"]
    subnets = api.subnetworks().list(project=project.name, region=cloud.region).execute()["items"]
    assert {s["selfLink"] for s in subnets} == set(default["subnetworks"])
    first = subnets[0]
    assert first["network"] == default["selfLink"] and first["ipCidrRange"].startswith("172.31.")
    got = api.subnetworks().get(project=project.name, region=cloud.region, subnetwork=first["name"]).execute()
    assert got["gatewayAddress"] == first["gatewayAddress"]
    with pytest.raises(HttpError) as missing:
        api.networks().get(project=project.name, network="vpc-0000000000000000a").execute()
    assert missing.value.status_code == 404


def test_an_ec2_vpc_is_a_network_and_instances_go_onto_it(api, project, zone, demo_image, cloud):
    ec2 = cloud.client(project.account)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=zone)["Subnet"][
        "SubnetId"
    ]
    net = api.networks().get(project=project.name, network=vpc).execute()
    assert net["name"] == vpc and net["autoCreateSubnetworks"] is False
    assert [link.rsplit("/", 1)[-1] for link in net["subnetworks"]] == [subnet]

    body = insert_body(zone, "on-vpc", demo_image)
    body["networkInterfaces"] = [{"network": f"global/networks/{vpc}", "networkIP": "10.42.1.50"}]
    wait(
        api, project.name, zone, api.instances().insert(project=project.name, zone=zone, body=body).execute()
    )
    nic = (
        api.instances()
        .get(project=project.name, zone=zone, instance="on-vpc")
        .execute()["networkInterfaces"][0]
    )
    assert nic["network"] == net["selfLink"] and nic["subnetwork"].endswith(f"/subnetworks/{subnet}")
    assert nic["networkIP"] == "10.42.1.50" and "accessConfigs" not in nic
    [inst] = [
        i
        for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["on-vpc"]}])["Reservations"]
        for i in r["Instances"]
    ]
    assert inst["SubnetId"] == subnet and inst["PrivateIpAddress"] == "10.42.1.50"
    wait(
        api,
        project.name,
        zone,
        api.instances().delete(project=project.name, zone=zone, instance="on-vpc").execute(),
    )

    body = insert_body(zone, "wrong-net", demo_image)
    body["networkInterfaces"] = [
        {"subnetwork": f"regions/{cloud.region}/subnetworks/subnet-00000000000000000"}
    ]
    with pytest.raises(HttpError) as missing:
        api.instances().insert(project=project.name, zone=zone, body=body).execute()
    assert missing.value.status_code == 404
