"""Instances through boto3 and aws-cli: the whole path (API, scheduler, fake compute hosts).

Every test uses an account of its own (quotas, Describe results and capacity stay
apart) and terminates what it launched. The default cloud has one fake host in
the first zone with no boot delay, so waiters return at once.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ocs.db import compute as db_compute

ID = re.compile(r"^i-[0-9a-f]{17}$")
FAST = {"Delay": 0.2, "MaxAttempts": 150}
MANAGE = str(Path(sys.executable).with_name("ocs-manage"))


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def error_message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Message"]


class Tenant:
    """An account of its own, its client, and what it launched (terminated at teardown)."""

    def __init__(self, cloud, name: str):
        self.account = cloud.create_account(name)
        self.ec2 = cloud.client(self.account)
        self.launched: list[str] = []

    def run(self, image_id: str, **params):
        params = {"ImageId": image_id, "MinCount": 1, "MaxCount": 1, "InstanceType": "t2.micro", **params}
        out = self.ec2.run_instances(**params)
        self.launched += [i["InstanceId"] for i in out["Instances"]]
        return out

    def running(self, image_id: str, count: int = 1, **params) -> list[str]:
        out = self.run(image_id, MinCount=count, MaxCount=count, **params)
        ids = [i["InstanceId"] for i in out["Instances"]]
        self.ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
        return ids

    def instances(self, **params) -> list[dict]:
        out = self.ec2.describe_instances(**params)
        return [i for r in out["Reservations"] for i in r["Instances"]]

    def one(self, instance_id: str) -> dict:
        [item] = self.instances(InstanceIds=[instance_id])
        return item

    def cleanup(self) -> None:
        if not self.launched:
            return
        for instance_id in self.launched:
            try:
                self.ec2.modify_instance_attribute(
                    InstanceId=instance_id, DisableApiTermination={"Value": False}
                )
            except ClientError:
                pass
        live = [i["InstanceId"] for i in self.instances() if i["State"]["Name"] != "terminated"]
        if live:
            self.ec2.terminate_instances(InstanceIds=live)
            self.ec2.get_waiter("instance_terminated").wait(InstanceIds=live, WaiterConfig=FAST)


@pytest.fixture(scope="module")
def image_id(ec2) -> str:
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]


@pytest.fixture
def tenant(cloud, request):
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:36].strip("-")
    t = Tenant(cloud, f"inst-{slug}-{secrets.token_hex(3)}")
    yield t
    t.cleanup()


@pytest.fixture
def stranger(cloud):
    return Tenant(cloud, f"inst-stranger-{secrets.token_hex(3)}")


# --- the life of an instance -------------------------------------------------------------------------


def test_run_answers_pending_with_the_reservation(tenant, image_id):
    out = tenant.run(image_id, InstanceType="t3.micro")
    assert re.match(r"^r-[0-9a-f]{17}$", out["ReservationId"])
    assert out["OwnerId"] == tenant.account.account_id
    assert out["Groups"] == []
    [inst] = out["Instances"]
    assert ID.match(inst["InstanceId"])
    assert inst["State"] == {"Code": 0, "Name": "pending"}
    assert inst["ImageId"] == image_id and inst["InstanceType"] == "t3.micro"
    assert inst["AmiLaunchIndex"] == 0
    assert re.match(r"^172\.31\.\d+\.\d+$", inst["PrivateIpAddress"])
    assert inst["PrivateDnsName"] == "ip-" + inst["PrivateIpAddress"].replace(".", "-") + ".ec2.internal"
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert [g["GroupName"] for g in inst["SecurityGroups"]] == ["default"]
    assert inst["ClientToken"]  # boto3 always sends one


def test_whole_lifecycle_with_waiters(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    item = tenant.one(instance_id)
    assert item["State"] == {"Code": 16, "Name": "running"}
    assert item["StateTransitionReason"] == "" and "StateReason" not in item
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=[instance_id], WaiterConfig=FAST)

    out = ec2.stop_instances(InstanceIds=[instance_id])
    [change] = out["StoppingInstances"]
    assert change["InstanceId"] == instance_id
    assert change["PreviousState"] == {"Code": 16, "Name": "running"}
    assert change["CurrentState"]["Name"] in ("stopping", "stopped")
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    stopped = tenant.one(instance_id)
    assert re.match(
        r"^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$", stopped["StateTransitionReason"]
    )
    assert stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert stopped["PrivateIpAddress"] == item["PrivateIpAddress"]  # kept while stopped

    again = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"][0]
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "stopped"
    started = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"][0]
    assert (started["PreviousState"]["Name"], started["CurrentState"]["Name"]) == ("stopped", "pending")
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    assert "StateReason" not in tenant.one(instance_id)

    ec2.reboot_instances(InstanceIds=[instance_id])
    assert tenant.one(instance_id)["State"]["Name"] == "running"

    done = ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"][0]
    assert done["PreviousState"]["Name"] == "running"
    assert done["CurrentState"]["Name"] in ("shutting-down", "terminated")
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    gone = tenant.one(instance_id)  # still visible until purged
    assert gone["State"] == {"Code": 48, "Name": "terminated"}
    assert "PrivateIpAddress" not in gone and gone["NetworkInterfaces"] == []
    again = ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"][0]
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "terminated"


def test_describe_shows_the_instance_faithfully(tenant, image_id):
    [instance_id] = tenant.running(image_id, InstanceType="t3.micro")
    item = tenant.one(instance_id)
    assert item["ProductCodes"] == []
    # a default subnet maps a public address on launch, as EC2's do
    public = item["PublicIpAddress"]
    assert item["PublicDnsName"] == "ec2-" + public.replace(".", "-") + ".compute-1.amazonaws.com"
    assert item["Placement"] == {
        "AvailabilityZone": "us-east-1a",
        "AvailabilityZoneId": "use1-az1",
        "GroupName": "",
        "Tenancy": "default",
    }
    assert item["Monitoring"] == {"State": "disabled"}
    assert item["Architecture"] == "x86_64" and item["VirtualizationType"] == "hvm"
    assert item["RootDeviceType"] == "ebs" and item["RootDeviceName"] == "/dev/xvda"
    assert item["Hypervisor"] == "xen" and item["SourceDestCheck"] is True
    assert item["EbsOptimized"] is False and item["EnaSupport"] is True
    assert item["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 2}
    assert item["MetadataOptions"]["HttpTokens"] == "optional"
    assert item["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert item["PlatformDetails"] == "Linux/UNIX" and item["UsageOperation"] == "RunInstances"
    assert item["LaunchTime"].tzinfo is not None
    subnets = tenant.ec2.describe_subnets(SubnetIds=[item["SubnetId"]])["Subnets"]
    assert subnets[0]["VpcId"] == item["VpcId"] and subnets[0]["DefaultForAz"] is True
    [nic] = item["NetworkInterfaces"]
    assert re.match(r"^eni-[0-9a-f]{17}$", nic["NetworkInterfaceId"])
    assert re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", nic["MacAddress"])
    assert nic["PrivateIpAddress"] == item["PrivateIpAddress"]
    assert nic["Attachment"]["Status"] == "attached" and nic["Attachment"]["DeviceIndex"] == 0
    assert nic["Groups"] == item["SecurityGroups"] and nic["OwnerId"] == tenant.account.account_id
    assert subnets[0]["AvailableIpAddressCount"] == 4091 - 1


def test_describe_unknown_and_malformed_ids(tenant):
    with pytest.raises(ClientError) as exc:
        tenant.ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert error_code(exc) == "InvalidInstanceID.NotFound"
    assert error_message(exc) == "The instance ID 'i-0123456789abcdef0' does not exist"
    with pytest.raises(ClientError) as exc:
        tenant.ec2.describe_instances(InstanceIds=["i-0123456789abcdef0", "i-0123456789abcdef1"])
    assert error_message(exc) == "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"
    for bad in ("i-xyz", "vol-0123456789abcdef0", "nonsense"):
        with pytest.raises(ClientError) as exc:
            tenant.ec2.describe_instances(InstanceIds=[bad])
        assert error_code(exc) == "InvalidInstanceID.Malformed"
    for call in (tenant.ec2.stop_instances, tenant.ec2.start_instances, tenant.ec2.terminate_instances):
        with pytest.raises(ClientError) as exc:
            call(InstanceIds=["i-0123456789abcdef0"])
        assert error_code(exc) == "InvalidInstanceID.NotFound"


# --- RunInstances' checks ------------------------------------------------------------------------------


BAD_LAUNCHES = [
    ({"ImageId": "ami-0123456789abcdef0"}, "InvalidAMIID.NotFound"),
    ({"ImageId": "ami-zzz"}, "InvalidAMIID.Malformed"),
    ({"InstanceType": "t3.nonexistent"}, "InvalidParameterValue"),
    ({"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound"),
    ({"SubnetId": "subnet-0123456789abcdef0"}, "InvalidSubnetID.NotFound"),
    ({"SubnetId": "subnet-xyz"}, "InvalidSubnetID.Malformed"),
    ({"SecurityGroupIds": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound"),
    ({"SecurityGroups": ["no-such-group"]}, "InvalidGroup.NotFound"),
    ({"Placement": {"AvailabilityZone": "us-east-1z"}}, "InvalidParameterValue"),
    ({"UserData": base64.b64encode(bytes(16 * 1024 + 1)).decode()}, "InvalidParameterValue"),
    ({"MinCount": 0}, "InvalidParameterValue"),
    ({"MinCount": 3, "MaxCount": 2}, "InvalidParameterValue"),
    ({"InstanceInitiatedShutdownBehavior": "hibernate"}, "InvalidParameterValue"),
    (
        {"TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "a", "Value": "b"}]}]},
        "InvalidParameterValue",
    ),
    (
        {"TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "aws:x", "Value": "b"}]}]},
        "InvalidParameterValue",
    ),
    ({"PrivateIpAddress": "10.1.2.3"}, "InvalidParameterValue"),
    ({"Placement": {"GroupName": "no-such-pg"}}, "InvalidPlacementGroup.Unknown"),
    ({"IamInstanceProfile": {"Name": "role"}}, "Unsupported"),
]


@pytest.mark.parametrize(("params", "code"), BAD_LAUNCHES, ids=[c for _, c in BAD_LAUNCHES])
def test_a_bad_launch_creates_nothing(tenant, image_id, params, code):
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, **params)
    assert error_code(exc) == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert tenant.instances() == []


def test_user_data_that_is_not_base64(cloud, tenant, image_id):
    ec2 = cloud.client(tenant.account)  # boto3 base64-encodes UserData: send the raw text instead

    def raw(params, **kwargs):
        params["body"]["UserData"] = "%%%not-base64"

    ec2.meta.events.register("before-call.ec2.RunInstances", raw)
    with pytest.raises(ClientError) as exc:
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, UserData="ignored")
    assert error_code(exc) == "InvalidUserData.Malformed"
    assert error_message(exc) == "Invalid BASE64 encoding of user data."
    assert tenant.instances() == []


def test_security_group_names_only_in_the_default_vpc(tenant, image_id):
    ec2 = tenant.ec2
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="web", Description="web")["GroupId"]
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, SubnetId=subnet["SubnetId"], SecurityGroups=["web"])
    assert error_code(exc) == "InvalidParameterCombination"
    default_group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [vpc]}]
    )["SecurityGroups"][0]["GroupId"]
    with pytest.raises(ClientError) as exc:  # a group of the default VPC with a subnet of another
        other = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])
        foreign = next(g["GroupId"] for g in other["SecurityGroups"] if g["VpcId"] != vpc)
        tenant.run(image_id, SubnetId=subnet["SubnetId"], SecurityGroupIds=[foreign])
    assert error_code(exc) == "InvalidParameter"
    [instance_id] = tenant.running(image_id, SubnetId=subnet["SubnetId"], SecurityGroupIds=[group])
    item = tenant.one(instance_id)
    assert (item["VpcId"], item["SubnetId"]) == (vpc, subnet["SubnetId"])
    assert item["PrivateIpAddress"] == "10.20.1.4"
    assert item["SecurityGroups"] == [{"GroupId": group, "GroupName": "web"}]
    assert default_group != group
    for call, kwargs in (
        (ec2.delete_security_group, {"GroupId": group}),
        (ec2.delete_subnet, {"SubnetId": subnet["SubnetId"]}),
    ):
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert error_code(exc) == "DependencyViolation"


def test_private_ip_address_and_zone(tenant, image_id):
    [instance_id] = tenant.running(image_id, PrivateIpAddress="172.31.0.77")
    assert tenant.one(instance_id)["PrivateIpAddress"] == "172.31.0.77"
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, PrivateIpAddress="172.31.0.77")
    assert error_code(exc) == "InvalidIPAddress.InUse"
    [other] = tenant.running(image_id, Placement={"AvailabilityZone": "us-east-1a"})
    assert tenant.one(other)["Placement"]["AvailabilityZone"] == "us-east-1a"


def test_no_host_in_the_zone_is_insufficient_capacity(tenant, image_id):
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, Placement={"AvailabilityZone": "us-east-1c"}, MaxCount=3)
    assert error_code(exc) == "InsufficientInstanceCapacity"
    assert tenant.instances() == []


def test_dry_run_creates_nothing(tenant, image_id):
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, DryRun=True)
    assert error_code(exc) == "DryRunOperation"
    assert tenant.instances() == []


# --- quotas ----------------------------------------------------------------------------------------------


def test_quotas_are_enforced_with_ec2_errors(cloud, tenant, image_id):
    with cloud.session() as s:
        db_compute.set_quota(s, tenant.account.account_id, "instances", 2)
    assert len(tenant.run(image_id, MinCount=1, MaxCount=5)["Instances"]) == 2
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id)
    assert error_code(exc) == "InstanceLimitExceeded"
    assert error_message(exc) == "Your quota allows for 0 more running instance(s). You requested at least 1"
    with cloud.session() as s:
        db_compute.set_quota(s, tenant.account.account_id, "instances", 10)
        db_compute.set_quota(s, tenant.account.account_id, "vcpus", 3)
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, InstanceType="t3.micro")  # 2 running vCPUs + 2 > 3
    assert error_code(exc) == "VcpuLimitExceeded"
    assert "current vCPU limit of 3 allows" in error_message(exc)
    assert len(tenant.instances()) == 2


def test_manage_quota_set_and_show(cloud, tenant, image_id):
    conf = str(cloud.aio.conf_file)
    name = tenant.account.name
    result = subprocess.run(
        [MANAGE, "--config-file", conf, "quota", "set", name, "--instances", "1", "--vcpus", "8", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quotas"]["instances"] == {"limit": 1, "used": 0, "default": 20}
    tenant.run(image_id)
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id)
    assert error_code(exc) == "InstanceLimitExceeded"
    shown = subprocess.run(
        [MANAGE, "--config-file", conf, "quota", "show", name], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and re.search(r"instances\s+1\s+1\s+20", shown.stdout), shown.stdout
    bad = subprocess.run(
        [MANAGE, "--config-file", conf, "quota", "set", name, "--instances", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode == 1 and bad.stderr.startswith("ocs-manage: error:") and "Traceback" not in bad.stderr
    )


def test_manage_instance_list(cloud, tenant, image_id):
    [instance_id] = tenant.running(image_id)
    result = subprocess.run(
        [MANAGE, "--config-file", str(cloud.aio.conf_file), "instance", "list", "--all-accounts", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout) if r["instance_id"] == instance_id)
    assert row["account_id"] == tenant.account.account_id and row["state"] == "running"
    assert row["host"] and row["availability_zone"] == "us-east-1a" and row["private_ip_address"]
    table = subprocess.run(
        [
            MANAGE,
            "--config-file",
            str(cloud.aio.conf_file),
            "instance",
            "list",
            "--account",
            tenant.account.name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0 and instance_id in table.stdout and "PRIVATE IP" in table.stdout


# --- protection, attributes, tokens, isolation ----------------------------------------------------------


def test_termination_protection(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id, DisableApiTermination=True)
    with pytest.raises(ClientError) as exc:
        ec2.terminate_instances(InstanceIds=[instance_id])
    assert error_code(exc) == "OperationNotPermitted"
    assert error_message(exc) == (
        f"The instance '{instance_id}' may not be terminated. Modify its 'disableApiTermination' "
        "instance attribute and try again."
    )
    attr = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    assert attr["DisableApiTermination"] == {"Value": True}
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": False})
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)


def test_attributes_while_running_and_stopped(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id, UserData="#cloud-config\nhostname: one\n")
    user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]
    assert base64.b64decode(user_data["Value"]) == b"#cloud-config\nhostname: one\n"
    for attribute in ("instanceType", "userData"):
        kwargs = (
            {"InstanceType": {"Value": "t3.small"}}
            if attribute == "instanceType"
            else {"UserData": {"Value": b"x"}}
        )
        with pytest.raises(ClientError) as exc:
            ec2.modify_instance_attribute(InstanceId=instance_id, **kwargs)
        assert error_code(exc) == "IncorrectInstanceState"
        assert error_message(exc) == f"The instance '{instance_id}' is not in the 'stopped' state."
    ec2.modify_instance_attribute(
        InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": "terminate"}
    )
    shutdown = ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert shutdown["InstanceInitiatedShutdownBehavior"] == {"Value": "terminate"}

    ec2.stop_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "t3.small"})
    ec2.modify_instance_attribute(InstanceId=instance_id, UserData={"Value": b"#!/bin/sh\necho two\n"})
    with pytest.raises(ClientError) as exc:
        ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "t3.nonexistent"})
    assert error_code(exc) == "InvalidParameterValue"
    got = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceType")
    assert got == {**got, "InstanceId": instance_id, "InstanceType": {"Value": "t3.small"}}
    user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]
    assert base64.b64decode(user_data["Value"]) == b"#!/bin/sh\necho two\n"
    ec2.start_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    assert tenant.one(instance_id)["InstanceType"] == "t3.small"
    groups = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="groupSet")["Groups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    root = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="rootDeviceName")
    assert root["RootDeviceName"] == {"Value": "/dev/xvda"}
    for attribute, member, value in (
        ("kernel", "KernelId", None),
        ("sourceDestCheck", "SourceDestCheck", {"Value": True}),
        ("ebsOptimized", "EbsOptimized", {"Value": False}),
        ("enaSupport", "EnaSupport", {"Value": True}),
        ("blockDeviceMapping", "BlockDeviceMappings", []),
    ):
        got = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=attribute)
        assert got["InstanceId"] == instance_id
        assert got.get(member) in ((value,) if value is not None else (None, {})), (attribute, got)
    # sourceDestCheck is the primary network interface's (test_network_interfaces covers it).
    ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})
    got = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="sourceDestCheck")
    assert got["SourceDestCheck"] == {"Value": False}
    with pytest.raises(ClientError) as exc:
        ec2.modify_instance_attribute(InstanceId=instance_id, EbsOptimized={"Value": True})
    assert error_code(exc) == "Unsupported"


def test_incorrect_states(tenant, image_id):
    ec2 = tenant.ec2
    [instance_id] = tenant.running(image_id)
    with pytest.raises(ClientError) as exc:
        ec2.stop_instances(InstanceIds=[instance_id], Hibernate=True)
    assert error_code(exc) == "UnsupportedHibernationConfiguration"
    running = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"][0]
    assert running["PreviousState"]["Name"] == running["CurrentState"]["Name"] == "running"
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    for call, verb in (
        (ec2.stop_instances, "stopped"),
        (ec2.start_instances, "started"),
        (ec2.reboot_instances, "rebooted"),
    ):
        with pytest.raises(ClientError) as exc:
            call(InstanceIds=[instance_id])
        assert error_code(exc) == "IncorrectInstanceState"
        assert (
            error_message(exc)
            == f"The instance '{instance_id}' is not in a state from which it can be {verb}."
        )


def test_client_token_replays_the_same_reservation(tenant, image_id):
    first = tenant.run(image_id, ClientToken="launch-once-1", MaxCount=2, MinCount=2)
    second = tenant.run(image_id, ClientToken="launch-once-1", MaxCount=2, MinCount=2)
    assert second["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in second["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    assert len(tenant.instances()) == 2
    assert {i["ClientToken"] for i in tenant.instances()} == {"launch-once-1"}
    with pytest.raises(ClientError) as exc:
        tenant.run(image_id, ClientToken="launch-once-1", MaxCount=3)
    assert error_code(exc) == "IdempotentParameterMismatch"
    assert len(tenant.instances()) == 2


def test_another_account_cannot_see_or_touch(tenant, stranger, image_id):
    [instance_id] = tenant.running(image_id)
    assert stranger.instances() == []
    assert stranger.ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"] == []
    for call, kwargs in (
        (stranger.ec2.describe_instances, {"InstanceIds": [instance_id]}),
        (stranger.ec2.stop_instances, {"InstanceIds": [instance_id]}),
        (stranger.ec2.terminate_instances, {"InstanceIds": [instance_id]}),
        (stranger.ec2.reboot_instances, {"InstanceIds": [instance_id]}),
        (stranger.ec2.get_console_output, {"InstanceId": instance_id}),
        (stranger.ec2.describe_instance_attribute, {"InstanceId": instance_id, "Attribute": "userData"}),
        (
            stranger.ec2.modify_instance_attribute,
            {"InstanceId": instance_id, "DisableApiTermination": {"Value": True}},
        ),
        (stranger.ec2.create_tags, {"Resources": [instance_id], "Tags": [{"Key": "a", "Value": "b"}]}),
    ):
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert error_code(exc) == "InvalidInstanceID.NotFound", call
    assert tenant.one(instance_id)["State"]["Name"] == "running"


# --- Describe: filters, pagination, status, console, tags -------------------------------------------------


def test_filters_and_paginator_over_twelve_instances(tenant, image_id):
    ec2 = tenant.ec2
    reservations = []
    for n, itype in enumerate(("t2.micro", "t3.nano", "t2.micro")):
        tags = [
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": f"group-{n}"}, {"Key": "batch", "Value": "x"}],
            }
        ]
        reservations.append(
            tenant.run(image_id, MinCount=4, MaxCount=4, InstanceType=itype, TagSpecifications=tags)
        )
    ids = [i["InstanceId"] for r in reservations for i in r["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    ec2.stop_instances(InstanceIds=ids[:2])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=ids[:2], WaiterConfig=FAST)

    seen = []
    pages = ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5})
    for page in pages:
        assert sum(len(r["Instances"]) for r in page["Reservations"]) <= 5
        seen += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
    assert sorted(seen) == sorted(ids)

    def found(*flt) -> set[str]:
        return {i["InstanceId"] for i in tenant.instances(Filters=[{"Name": n, "Values": v} for n, v in flt])}

    first = reservations[0]["Instances"][0]
    assert found(("instance-state-name", ["stopped"])) == set(ids[:2])
    assert found(("instance-state-code", ["16"])) == set(ids[2:])
    assert found(("instance-type", ["t3.nano"])) == set(ids[4:8])
    assert found(("tag:Name", ["group-2"])) == set(ids[8:])
    assert found(("tag:Name", ["group-*"]), ("instance-state-name", ["running"])) == set(ids[2:])
    assert found(("tag-key", ["batch"])) == set(ids)
    assert found(("reservation-id", [reservations[1]["ReservationId"]])) == set(ids[4:8])
    assert found(("instance-id", [ids[3], ids[5]])) == {ids[3], ids[5]}
    assert found(("private-ip-address", [first["PrivateIpAddress"]])) == {ids[0]}
    assert found(("network-interface.addresses.private-ip-address", [first["PrivateIpAddress"]])) == {ids[0]}
    assert found(("availability-zone", ["us-east-1a"])) == set(ids)
    assert found(("instance.group-name", ["default"])) == set(ids)
    assert found(("subnet-id", [first["SubnetId"]]), ("vpc-id", [first["VpcId"]])) == set(ids)
    assert found(("image-id", [image_id]), ("launch-index", ["0"])) == {ids[0], ids[4], ids[8]}
    assert found(("owner-id", [tenant.account.account_id])) == set(ids)
    assert found(("private-dns-name", ["ip-172-31-*.ec2.internal"])) == set(ids)
    assert found(("reason", ["User initiated*"])) == set(ids[:2])
    assert found(("state-reason-code", ["Client.UserInitiatedShutdown"])) == set(ids[:2])
    assert found(("architecture", ["arm64"])) == set()
    with pytest.raises(ClientError) as exc:
        tenant.instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        ec2.describe_instances(InstanceIds=ids[:1], MaxResults=5)
    assert error_code(exc) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as exc:
        ec2.describe_instances(MaxResults=4)
    assert error_code(exc) == "InvalidParameterValue"
    out = ec2.describe_instances(
        Filters=[{"Name": "reservation-id", "Values": [reservations[2]["ReservationId"]]}]
    )
    [reservation] = out["Reservations"]
    assert [i["AmiLaunchIndex"] for i in reservation["Instances"]] == [0, 1, 2, 3]
    assert reservation["OwnerId"] == tenant.account.account_id and reservation["Groups"] == []

    statuses = ec2.describe_instance_status()["InstanceStatuses"]
    assert {s["InstanceId"] for s in statuses} == set(ids[2:])
    everything = []
    for page in ec2.get_paginator("describe_instance_status").paginate(
        IncludeAllInstances=True, PaginationConfig={"PageSize": 5}
    ):
        everything += page["InstanceStatuses"]
    assert sorted(s["InstanceId"] for s in everything) == sorted(ids)
    stopped = [s for s in everything if s["InstanceState"]["Name"] == "stopped"]
    assert {s["InstanceStatus"]["Status"] for s in stopped} == {"not-applicable"}
    ok = ec2.describe_instance_status(Filters=[{"Name": "instance-status.status", "Values": ["ok"]}])
    assert len(ok["InstanceStatuses"]) == 10


def test_tags_on_instances_and_their_interfaces(tenant, image_id):
    ec2 = tenant.ec2
    out = tenant.run(
        image_id,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "tagged"}]},
            {"ResourceType": "network-interface", "Tags": [{"Key": "nic", "Value": "yes"}]},
        ],
    )
    inst = out["Instances"][0]
    assert inst["Tags"] == [{"Key": "Name", "Value": "tagged"}]
    ec2.create_tags(Resources=[inst["InstanceId"]], Tags=[{"Key": "env", "Value": "test"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [inst["InstanceId"]]}])["Tags"]
    assert {(t["Key"], t["Value"], t["ResourceType"]) for t in tags} == {
        ("Name", "tagged", "instance"),
        ("env", "test", "instance"),
    }
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    nic_tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [eni]}])["Tags"]
    assert [(t["Key"], t["ResourceType"]) for t in nic_tags] == [("nic", "network-interface")]


def test_console_output(tenant, image_id):
    [instance_id] = tenant.running(image_id)
    out = tenant.ec2.get_console_output(InstanceId=instance_id, Latest=True)
    assert out["InstanceId"] == instance_id and out["Timestamp"].tzinfo is not None
    assert "Linux version" in out["Output"]  # botocore decodes the base64 text


def test_aws_cli_run_describe_terminate(cloud, tenant, image_id):
    run = cloud.aws(
        "ec2",
        "run-instances",
        "--image-id",
        image_id,
        "--count",
        "2",
        "--instance-type",
        "t2.micro",
        "--user-data",
        "hello from the cli",
        account=tenant.account,
    )
    assert run.returncode == 0, run.stderr
    ids = [i["InstanceId"] for i in json.loads(run.stdout)["Instances"]]
    tenant.launched += ids
    waited = cloud.aws("ec2", "wait", "instance-running", "--instance-ids", *ids, account=tenant.account)
    assert waited.returncode == 0, waited.stderr
    described = cloud.aws(
        "ec2",
        "describe-instances",
        "--filters",
        "Name=instance-state-name,Values=running",
        "--query",
        "Reservations[].Instances[].InstanceId",
        account=tenant.account,
    )
    assert described.returncode == 0, described.stderr
    assert sorted(json.loads(described.stdout)) == sorted(ids)
    attr = cloud.aws(
        "ec2",
        "describe-instance-attribute",
        "--instance-id",
        ids[0],
        "--attribute",
        "userData",
        account=tenant.account,
    )
    assert base64.b64decode(json.loads(attr.stdout)["UserData"]["Value"]) == b"hello from the cli"
    terminated = cloud.aws("ec2", "terminate-instances", "--instance-ids", *ids, account=tenant.account)
    assert terminated.returncode == 0, terminated.stderr
    states = {c["CurrentState"]["Name"] for c in json.loads(terminated.stdout)["TerminatingInstances"]}
    assert states <= {"shutting-down", "terminated"}
