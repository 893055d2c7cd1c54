"""How fast the EC2 protocol layer parses a request and serializes a large answer.

    python -m benchmarks.protocol

Parses a DescribeInstances request of 7 parameters and serializes a page of 100
fully populated instances with OCS's model-driven parser and serializer, and prints
microseconds per call (the tables are compiled once, before the measurement).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from ocs.api_ec2.protocol import load_service_model, parse_request, serialize_response
from tests.unit.api_ec2.test_protocol_roundtrip import describe_instances_result


def per_call_microseconds(function: Callable[..., Any], *args: Any, repeat: int) -> float:
    function(*args)  # compile the tables outside the measurement
    start = time.perf_counter()
    for _ in range(repeat):
        function(*args)
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> int:
    model = load_service_model().operation_model("DescribeInstances")
    request = {"InstanceId.1": "i-0123456789abcdef0", "InstanceId.2": "i-0123456789abcdef1"}
    request |= {"Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running"}
    request |= {"Filter.2.Name": "tag:Name", "Filter.2.Value.1": "web*", "MaxResults": "100"}
    result = describe_instances_result(100)
    parse_us = per_call_microseconds(parse_request, model, request, repeat=2000)
    serialize_us = per_call_microseconds(serialize_response, model, result, "r", repeat=20)
    size = len(serialize_response(model, result, "r"))
    print(f"parse DescribeInstances (7 params): {parse_us:.1f} us")
    print(f"serialize DescribeInstances, 100 fully populated instances ({size} bytes): {serialize_us:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
