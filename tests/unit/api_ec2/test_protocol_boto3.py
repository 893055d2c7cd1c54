"""A real boto3 client talks to the protocol module: requests, pages, waiters, errors.

No server and no mocks of botocore: a ``before-send`` hook hands the signed
HTTP request to parse_request, calls a tiny handler and answers with
serialize_response or serialize_error, exactly as the API layer will.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from ocs import errors
from ocs.api_ec2.protocol import operation_model, parse_request, serialize_error, serialize_response

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self) -> Iterator[bytes]:
        yield self.body


class FakeEc2:
    """Answers botocore's requests through the protocol module and ``handlers``."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body if isinstance(request.body, str) else request.body.decode()
        params = urllib.parse.parse_qs(body, keep_blank_values=True)
        action = params.pop("Action")[0]
        try:
            model = operation_model(action)
            assert model is not None
            parsed = parse_request(model, params)
            self.calls.append((action, parsed))
            status, body = 200, serialize_response(model, self.handlers[action](parsed), "req-42")
        except errors.OcsError as error:
            status, body = error.status, serialize_error(error.code, str(error), "req-42")
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(body))


def client(fake: FakeEc2, **config: Any) -> Any:
    ec2 = boto3.session.Session().client(
        "ec2",
        region_name="us-east-1",
        endpoint_url="https://ec2.ocs.test",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, **config),
    )
    ec2.meta.events.register("before-send.ec2.*", fake)
    return ec2


LAUNCH = dt.datetime(2026, 11, 25, 12, 0, 0, 500000, tzinfo=dt.UTC)


def instance(instance_id: str, state: str = "running") -> dict[str, Any]:
    return {
        "InstanceId": instance_id,
        "InstanceType": "t3.micro",
        "LaunchTime": LAUNCH,
        "State": {"Code": 16 if state == "running" else 0, "Name": state},
        "Tags": [{"Key": "Name", "Value": "web & db"}],
        "EbsOptimized": False,
    }


def test_boto3_call_round_trips_params_and_result() -> None:
    reservations = [
        {"ReservationId": "r-1", "OwnerId": "123456789012", "Groups": [], "Instances": [instance("i-1")]}
    ]
    fake = FakeEc2({"DescribeInstances": lambda params: {"Reservations": reservations}})
    answer = client(fake).describe_instances(
        InstanceIds=["i-1", "i-2"],
        Filters=[{"Name": "tag:Name", "Values": ["web*", "db"]}],
        MaxResults=5,
    )
    assert fake.calls == [
        (
            "DescribeInstances",
            {
                "InstanceIds": ["i-1", "i-2"],
                "Filters": [{"Name": "tag:Name", "Values": ["web*", "db"]}],
                "MaxResults": 5,
            },
        )
    ]
    assert answer["Reservations"] == reservations
    assert answer["ResponseMetadata"]["RequestId"] == "req-42"


def test_boto3_paginator_follows_next_token() -> None:
    pages = {None: {"Reservations": [{"Instances": [instance("i-1")]}], "NextToken": "page2"}}
    pages["page2"] = {"Reservations": [{"Instances": [instance("i-2")]}]}
    fake = FakeEc2({"DescribeInstances": lambda params: pages[params.get("NextToken")]})
    paginator = client(fake).get_paginator("describe_instances")
    found = [
        item["InstanceId"]
        for page in paginator.paginate()
        for reservation in page["Reservations"]
        for item in reservation["Instances"]
    ]
    assert found == ["i-1", "i-2"]


def test_boto3_waiter_reads_instance_state() -> None:
    states = iter(["pending", "running"])
    fake = FakeEc2(
        {
            "DescribeInstances": lambda params: {
                "Reservations": [{"Instances": [instance("i-1", next(states))]}]
            }
        }
    )
    client(fake).get_waiter("instance_running").wait(
        InstanceIds=["i-1"], WaiterConfig={"Delay": 0, "MaxAttempts": 3}
    )
    assert len(fake.calls) == 2


def test_boto3_sees_ec2_error_codes() -> None:
    fake = FakeEc2({})
    ec2 = client(fake, parameter_validation=False)
    with pytest.raises(ClientError) as caught:
        ec2.deregister_image()
    assert caught.value.response["Error"] == {
        "Code": "MissingParameter",
        "Message": "The request must contain the parameter ImageId",
    }
    assert caught.value.response["ResponseMetadata"]["RequestId"] == "req-42"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_boto3_sees_handler_errors_such_as_dry_run() -> None:
    def run(params: dict[str, Any]) -> dict[str, Any]:
        assert params["DryRun"] is True
        raise errors.DryRunOperation()

    with pytest.raises(ClientError) as caught:
        client(FakeEc2({"RunInstances": run})).run_instances(
            ImageId="ami-1", MinCount=1, MaxCount=1, DryRun=True
        )
    assert caught.value.response["Error"]["Code"] == "DryRunOperation"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_boto3_delete_key_pair_return() -> None:
    fake = FakeEc2({"DeleteKeyPair": lambda params: {"Return": True, "KeyPairId": "key-0123"}})
    answer = client(fake).delete_key_pair(KeyName="k")
    assert fake.calls == [("DeleteKeyPair", {"KeyName": "k"})]
    assert answer["Return"] is True
    assert answer["KeyPairId"] == "key-0123"
