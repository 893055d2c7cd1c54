"""networks and subnetworks made and deleted through Compute Engine: each is a VPC / subnet
that EC2 shows too, names unique per project, in-use ones refuse to go."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from tests.functional.gce.test_instances import error_of, insert_body, wait


def _done(op: dict) -> dict:
    assert op["status"] == "DONE" and "error" not in op, op
    return op


def test_custom_network_with_a_subnetwork_is_a_vpc_with_a_subnet(api, project, zone, demo_image, cloud):
    ec2 = cloud.client(project.account)
    p, region = project.name, cloud.region
    _done(api.networks().insert(project=p, body={"name": "blue", "autoCreateSubnetworks": False}).execute())
    net = api.networks().get(project=p, network="blue").execute()
    assert (
        net["name"] == "blue" and net["autoCreateSubnetworks"] is False and net.get("subnetworks", []) == []
    )
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["blue"]}])["Vpcs"]
    assert vpc["CidrBlock"] == "10.0.0.0/8"

    with pytest.raises(HttpError) as dup:
        api.networks().insert(project=p, body={"name": "blue", "autoCreateSubnetworks": False}).execute()
    assert dup.value.status_code == 409 and error_of(dup.value)["errors"][0]["reason"] == "alreadyExists"

    body = {"name": "blue-a", "network": "global/networks/blue", "ipCidrRange": "10.7.0.0/24"}
    op = api.subnetworks().insert(project=p, region=region, body=body).execute()
    assert _done(op)["region"].endswith(f"/regions/{region}")
    sub = api.subnetworks().get(project=p, region=region, subnetwork="blue-a").execute()
    assert sub["network"] == net["selfLink"] and sub["ipCidrRange"] == "10.7.0.0/24"
    assert sub["gatewayAddress"] == "10.7.0.1"
    [ec2_subnet] = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert ec2_subnet["CidrBlock"] == "10.7.0.0/24"
    net = api.networks().get(project=p, network="blue").execute()
    assert net["subnetworks"] == [sub["selfLink"]]
    agg = api.subnetworks().aggregatedList(project=p).execute()
    assert sub["selfLink"] in {s["selfLink"] for s in agg["items"][f"regions/{region}"]["subnetworks"]}

    for bad in ("192.168.0.0/24", "10.7.0.0/30", "nonsense", "10.7.0.128/25"):
        with pytest.raises(HttpError) as wrong:
            api.subnetworks().insert(
                project=p, region=region, body={**body, "name": "blue-b", "ipCidrRange": bad}
            ).execute()
        assert wrong.value.status_code == 400, bad

    # an instance on the subnetwork, by its name
    inst = insert_body(zone, "on-blue", demo_image)
    inst["networkInterfaces"] = [{"subnetwork": f"regions/{region}/subnetworks/blue-a"}]
    assert zone == cloud.conf.ec2.availability_zones[0]  # a subnetwork lives in the region's first zone
    wait(api, p, zone, api.instances().insert(project=p, zone=zone, body=inst).execute())
    nic = api.instances().get(project=p, zone=zone, instance="on-blue").execute()["networkInterfaces"][0]
    assert nic["network"] == net["selfLink"] and nic["subnetwork"] == sub["selfLink"]
    assert nic["networkIP"].startswith("10.7.0.")

    with pytest.raises(HttpError) as busy:
        api.subnetworks().delete(project=p, region=region, subnetwork="blue-a").execute()
    assert busy.value.status_code == 400
    assert error_of(busy.value)["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    with pytest.raises(HttpError) as busy_net:
        api.networks().delete(project=p, network="blue").execute()
    assert busy_net.value.status_code == 400
    assert error_of(busy_net.value)["errors"][0]["reason"] == "resourceInUseByAnotherResource"

    wait(api, p, zone, api.instances().delete(project=p, zone=zone, instance="on-blue").execute())
    _done(api.subnetworks().delete(project=p, region=region, subnetwork="blue-a").execute())
    _done(api.networks().delete(project=p, network="blue").execute())
    with pytest.raises(HttpError) as gone:
        api.networks().get(project=p, network="blue").execute()
    assert gone.value.status_code == 404
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["blue"]}])["Vpcs"] == []


def test_auto_mode_network_has_a_subnetwork_per_zone_and_goes_with_them(api, project, cloud):
    ec2 = cloud.client(project.account)
    p = project.name
    _done(api.networks().insert(project=p, body={"name": "auto"}).execute())
    net = api.networks().get(project=p, network="auto").execute()
    zones = list(cloud.conf.ec2.availability_zones)
    assert net["autoCreateSubnetworks"] is True and len(net["subnetworks"]) == len(zones)
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["auto"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == sorted(zones)
    assert {s["CidrBlock"] for s in subnets} >= {"10.128.0.0/20"}
    _done(api.networks().delete(project=p, network="auto").execute())
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["auto"]}])["Vpcs"] == []
    assert ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"] == []


def test_network_names_are_per_project(api, project, cloud):
    from tests.framework import gce
    from tests.functional.gce.conftest import make_project

    other = make_project(cloud, "gcenet-other")
    other_api = gce.discovery_client(cloud, other.info)
    _done(api.networks().insert(project=project.name, body={"name": "shared-name"}).execute())
    _done(other_api.networks().insert(project=other.name, body={"name": "shared-name"}).execute())
    mine = api.networks().get(project=project.name, network="shared-name").execute()
    theirs = other_api.networks().get(project=other.name, network="shared-name").execute()
    assert mine["id"] != theirs["id"]
    with pytest.raises(HttpError) as bad:
        api.networks().insert(project=project.name, body={"name": "Bad_Name"}).execute()
    assert bad.value.status_code == 400
    for a, name in ((api, project.name), (other_api, other.name)):
        _done(a.networks().delete(project=name, network="shared-name").execute())
