"""Every EC2 action round-trips through botocore's own serializer and parser.

Inputs: an example of every operation's input shape is serialized by botocore's
EC2Serializer, put on the wire as a form body, and parse_request must give the
example back. Outputs: an example of every output shape is rendered by
serialize_response, and botocore's EC2 response parser must read it back.
The examples come from a small deterministic generator that fills every member.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from ocs.api_ec2.protocol import (
    NON_OPERATION_PARAMS,
    load_service_model,
    operation_model,
    operation_names,
    parse_request,
    serialize_response,
)

OPERATIONS = sorted(operation_names())
# Millisecond precision: what EC2 renders (and what survives a response).
TIMESTAMP = dt.datetime(2026, 11, 25, 12, 34, 56, 789000, tzinfo=dt.UTC)
BLOB = b"\x00\xffblob\r\n\x80"
MAX_DEPTH = 12


class Examples:
    """Deterministic example values for any shape: every member filled.

    Strings carry characters that need escaping or encoding on the wire
    (``& < > " '``, CR/LF, non-ASCII); numbers respect the shape's min/max;
    lists have two items (within the shape's bounds); recursion stops at
    MAX_DEPTH by leaving optional members out.
    """

    def __init__(self, items: int = 2) -> None:
        self.items = items
        self.counter = 0

    def value(self, shape: Shape, name: str, depth: int = 0) -> Any:
        self.counter += 1
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, depth)
        if kind == "list":
            low, high = shape.metadata.get("min", 0), shape.metadata.get("max", self.items)
            count = max(low, min(self.items, high))
            return [self.value(shape.member, name, depth + 1) for _ in range(count)]
        if kind == "string":
            return shape.enum[0] if shape.enum else self.string(shape, name)
        if kind in ("integer", "long"):
            return self.number(shape, 42 if kind == "integer" else 2**40)
        if kind in ("double", "float"):
            return float(self.number(shape, 1.25))
        if kind == "boolean":
            return self.counter % 2 == 0
        if kind == "timestamp":
            return TIMESTAMP
        if kind == "blob":
            return BLOB
        raise AssertionError(f"no example for {kind}")

    def structure(self, shape: Shape, depth: int) -> dict[str, Any]:
        required = set(shape.required_members)
        return {
            member: self.value(member_shape, member, depth + 1)
            for member, member_shape in shape.members.items()
            if depth < MAX_DEPTH or member in required
        }

    def string(self, shape: Shape, name: str) -> str:
        text = f"{name} <&> \"q\" 'a' é€ \r\n{self.counter}"
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
        if high is not None:
            text = text[:high]
        return text.ljust(low, "x")

    @staticmethod
    def number(shape: Shape, default: float) -> float:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        value = default if high is None else min(default, high)
        return value if low is None else max(value, low)


def wire_params(params: dict[str, Any], model: OperationModel) -> dict[str, str]:
    """What a server sees when botocore sends ``params``: the decoded form body."""
    body = create_serializer("ec2").serialize_to_request(params, model)["body"]
    encoded = urllib.parse.urlencode(body)
    return dict(urllib.parse.parse_qsl(encoded, keep_blank_values=True, strict_parsing=True))


def botocore_parse(xml: bytes, model: OperationModel) -> dict[str, Any]:
    response = {"body": xml, "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = create_parser("ec2").parse(response, model.output_shape)
    return parsed


def test_the_model_has_every_ec2_action() -> None:
    assert len(OPERATIONS) > 750
    assert {"RunInstances", "DescribeInstances", "DeleteKeyPair"} <= operation_names()
    assert operation_model("DescribeInstances").name == "DescribeInstances"
    assert operation_model("NoSuchAction") is None
    assert operation_model("describeinstances") is None


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_input_round_trips_from_botocore(name: str) -> None:
    model = load_service_model().operation_model(name)
    params = Examples().value(model.input_shape, name)
    wire = wire_params(params, model)
    assert wire.pop("Action") == name
    assert wire.pop("Version") == "2016-11-15"
    assert not NON_OPERATION_PARAMS & wire.keys()
    assert parse_request(model, wire) == params


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_input_round_trips_with_one_item_lists(name: str) -> None:
    model = load_service_model().operation_model(name)
    params = Examples(items=1).value(model.input_shape, name)
    wire = {
        key: value for key, value in wire_params(params, model).items() if key not in NON_OPERATION_PARAMS
    }
    assert parse_request(model, wire) == params


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_output_round_trips_through_botocore(name: str) -> None:
    model = load_service_model().operation_model(name)
    result = {} if model.output_shape is None else Examples().value(model.output_shape, name)
    xml = serialize_response(model, result, "req-0123")
    parsed = botocore_parse(xml, model)
    metadata = parsed.pop("ResponseMetadata")
    assert metadata["RequestId"] == "req-0123"
    assert parsed == result


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_output_with_empty_lists_round_trips(name: str) -> None:
    model = load_service_model().operation_model(name)
    if model.output_shape is None:
        pytest.skip("no output")
    result = Examples(items=0).value(model.output_shape, name)
    parsed = botocore_parse(serialize_response(model, result, "r"), model)
    parsed.pop("ResponseMetadata")
    assert parsed == result


# --- performance ------------------------------------------------------------------


def describe_instances_result(count: int) -> dict[str, Any]:
    """``count`` instances, one reservation each, every Instance member filled."""
    model = load_service_model().operation_model("DescribeInstances")
    reservation_shape = model.output_shape.members["Reservations"].member
    examples = Examples(items=1)
    reservations = []
    for index in range(count):
        reservation = examples.value(reservation_shape, "Reservation")
        reservation["Instances"][0]["InstanceId"] = f"i-{index:017x}"
        reservations.append(reservation)
    return {"Reservations": reservations}


def test_a_page_of_a_hundred_full_instances_round_trips() -> None:
    """The largest common answer, every member filled, reads back through botocore.
    (How fast parse and serialize are is measured by ``python -m benchmarks.protocol``.)"""
    model = load_service_model().operation_model("DescribeInstances")
    result = describe_instances_result(100)
    parsed = botocore_parse(serialize_response(model, result, "r"), model)
    ids = [r["Instances"][0]["InstanceId"] for r in parsed["Reservations"]]
    assert ids == [f"i-{index:017x}" for index in range(100)]
