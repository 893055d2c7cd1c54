"""The all-in-one answers SigV4-signed requests from boto3 and aws-cli as EC2 does."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.framework.cloud import Account, Cloud


def error_code(exc_info: pytest.ExceptionInfo[ClientError]) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_describe_regions_with_boto3(cloud, ec2):
    resp = ec2.describe_regions()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(resp["ResponseMetadata"]["RequestId"]) == 36
    assert resp["Regions"] == [
        {"RegionName": cloud.region, "Endpoint": cloud.endpoint, "OptInStatus": "opt-in-not-required"}
    ]


def test_describe_regions_with_aws_cli(cloud):
    result = cloud.aws("ec2", "describe-regions")
    assert result.returncode == 0, result.stderr
    regions = json.loads(result.stdout)["Regions"]
    assert [r["RegionName"] for r in regions] == [cloud.region]


def test_wrong_secret_is_signature_does_not_match(cloud):
    bad = Account(cloud.admin.account_id, "admin", cloud.admin.access_key_id, "x" * 40)
    with pytest.raises(ClientError) as exc:
        cloud.client(bad).describe_regions()
    assert error_code(exc) == "SignatureDoesNotMatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key_is_auth_failure(cloud):
    bad = Account("000000000000", "nobody", "AKIAAAAAAAAAAAAAAAAA", "x" * 40)
    with pytest.raises(ClientError) as exc:
        cloud.client(bad).describe_regions()
    assert error_code(exc) == "AuthFailure"


def test_revoked_key_is_refused_at_once(cloud):
    from ocs.db import accounts as db_accounts

    account = cloud.create_account("revokee")
    client = cloud.client(account)
    assert client.describe_regions()["Regions"]
    with cloud.session() as s:
        db_accounts.revoke_access_key(s, account.access_key_id)
    with pytest.raises(ClientError) as exc:
        client.describe_regions()
    assert error_code(exc) == "AuthFailure"


def test_unsigned_request_is_refused(cloud):
    client = boto3.client(
        "ec2",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}),
    )
    with pytest.raises(ClientError) as exc:
        client.describe_regions()
    # What EC2 answers an unsigned request (a live capture; see ocs/api_ec2/auth.py).
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error_code(exc) == "MissingParameter"
    assert "AWSAccessKeyId" in exc.value.response["Error"]["Message"]


def client_for_region(cloud, region: str):
    return boto3.client(
        "ec2",
        endpoint_url=cloud.endpoint,
        region_name=region,
        aws_access_key_id=cloud.admin.access_key_id,
        aws_secret_access_key=cloud.admin.secret_access_key,
        config=Config(retries={"max_attempts": 0}),
    )


def test_credentials_scoped_to_another_region_run_in_this_one(cloud):
    # [ec2] strict_credential_scope is off by default: the signature covers the scope.
    zones = client_for_region(cloud, "eu-west-9").describe_availability_zones()["AvailabilityZones"]
    assert {z["RegionName"] for z in zones} == {cloud.region}


def test_strict_credential_scope_refuses_another_region(tmp_path_factory):
    strict = Cloud(tmp_path_factory.mktemp("strict"), {"ec2": {"strict_credential_scope": True}}).start()
    try:
        with pytest.raises(ClientError) as exc:
            client_for_region(strict, "eu-west-9").describe_regions()
        assert error_code(exc) == "AuthFailure"
        assert strict.client().describe_regions()["Regions"]
    finally:
        strict.stop()


def test_unknown_region_name_is_invalid_parameter(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.describe_regions(RegionNames=["mars-north-1"])
    assert error_code(exc) == "InvalidParameterValue"


def test_region_filters(cloud, ec2):
    hit = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": [cloud.region[:3] + "*"]}])
    assert [r["RegionName"] for r in hit["Regions"]] == [cloud.region]
    miss = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["nowhere"]}])
    assert miss["Regions"] == []
    with pytest.raises(ClientError) as exc:
        ec2.describe_regions(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_code(exc) == "InvalidParameterValue"


def test_dry_run(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.describe_regions(DryRun=True)
    assert error_code(exc) == "DryRunOperation"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_describe_availability_zones(cloud, ec2):
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == list(cloud.conf.ec2.availability_zones)
    assert {z["State"] for z in zones} == {"available"}
    assert {z["RegionName"] for z in zones} == {cloud.region}
    with pytest.raises(ClientError) as exc:
        ec2.describe_availability_zones(ZoneNames=["nowhere-1z"])
    assert error_code(exc) == "InvalidParameterValue"


def test_zone_ids_follow_ec2s_scheme(ec2):
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneId"] for z in zones] == [f"use1-az{n}" for n in range(1, len(zones) + 1)]
    by_id = ec2.describe_availability_zones(ZoneIds=["use1-az2"])["AvailabilityZones"]
    assert [z["ZoneName"] for z in by_id] == [zones[1]["ZoneName"]]


def test_account_attributes_name_the_default_vpc(ec2):
    attrs = {
        a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
        for a in ec2.describe_account_attributes()["AccountAttributes"]
    }
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert attrs["default-vpc"] == [default_vpc]
    assert attrs["supported-platforms"] == ["VPC"]
