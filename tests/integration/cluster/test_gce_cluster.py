"""The Compute Engine API served by ``ocs-api`` under gunicorn (2 workers) beside EC2's, on
a real multi-process cluster (``ocs-manage devcluster``: PostgreSQL, RabbitMQ, a
scheduler, fake compute hosts): a key file from ``ocs-manage account gce-key``, an
access token issued by one worker and honoured by the other, an instance inserted
through google-api-python-client and seen by boto3."""

from __future__ import annotations

import json
from pathlib import Path

from googleapiclient.discovery import build

from ocs.allinone import read_ocsrc
from tests.framework import gce
from tests.framework.devcluster import dev_cluster

ZONE = "us-east-1a"
CONFIG = f"""
[compute]
heartbeat_interval = 1
availability_zone = {ZONE}
fake_boot_delay = 0.2

[scheduler]
periodic_interval = 1
"""


def test_gce_on_a_cluster(tmp_path: Path) -> None:
    with dev_cluster(tmp_path / "dc", "--hosts", "1", "--api-workers", "2", config_text=CONFIG) as cluster:
        out = tmp_path / "key.json"
        cluster.manage("account", "gce-key", "admin", "--output", str(out))
        info = json.loads(out.read_text())
        endpoint = read_ocsrc(cluster.state_dir / "ocsrc")["AWS_ENDPOINT_URL"]
        assert info["token_uri"] == endpoint + "/token"
        api = build(
            "compute",
            "v1",
            static_discovery=True,
            client_options={"api_endpoint": endpoint + "/compute/v1/"},
            credentials=gce.credentials(info),
            cache_discovery=False,
        )
        for _ in range(6):  # one token, whichever worker answers
            assert ZONE in [z["name"] for z in api.zones().list(project="admin").execute()["items"]]
        op = (
            api.instances()
            .insert(
                project="admin",
                zone=ZONE,
                body={
                    "name": "cluster-vm",
                    "machineType": f"zones/{ZONE}/machineTypes/t3.micro",
                    "disks": [
                        {
                            "boot": True,
                            "initializeParams": {"sourceImage": "projects/admin/global/images/ocs-demo"},
                        }
                    ],
                },
            )
            .execute()
        )
        for _ in range(3):
            op = api.zoneOperations().wait(project="admin", zone=ZONE, operation=op["name"]).execute()
            if op["status"] == "DONE":
                break
        assert op["status"] == "DONE" and "error" not in op, op
        inst = api.instances().get(project="admin", zone=ZONE, instance="cluster-vm").execute()
        assert inst["status"] == "RUNNING"
        [ec2_inst] = [
            i
            for r in cluster.ec2().describe_instances(
                Filters=[{"Name": "tag:Name", "Values": ["cluster-vm"]}]
            )["Reservations"]
            for i in r["Instances"]
        ]
        assert ec2_inst["State"]["Name"] == "running"
        assert ec2_inst["PrivateIpAddress"] == inst["networkInterfaces"][0]["networkIP"]
        op = api.instances().delete(project="admin", zone=ZONE, instance="cluster-vm").execute()
        op = api.zoneOperations().wait(project="admin", zone=ZONE, operation=op["name"]).execute()
        assert op["status"] == "DONE"
