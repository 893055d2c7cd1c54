"""The contract's value types and errors: wire-ready, documented, small."""

from __future__ import annotations

import base64
import inspect
import json

import pytest

from ocs.bus.messages import from_wire, to_wire
from ocs.compute_agent.driver import (
    Driver,
    DriverError,
    GuestExists,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    ImageRef,
    InvalidGuestState,
    NicSpec,
    PowerState,
    SpawnFailed,
    VolumeAttachment,
)


def full_spec() -> GuestSpec:
    return GuestSpec(
        instance_id="i-0123456789abcdef0",
        vcpus=2,
        memory_mib=2048,
        disk_gib=8,
        image=ImageRef("ami-0123456789abcdef0", "/var/lib/ocs/images/ami", "qcow2", "sha256:ab", 1 << 30),
        hostname="ip-10-0-0-5",
        kernel=ImageRef("aki-0123456789abcdef0", "/k", "aki"),
        user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
        key_name="k",
        public_key="ssh-ed25519 AAAA k",
        nics=(NicSpec("02:00:00:00:00:01", "br-vpc", "10.0.0.5", "eni-0123456789abcdef0"),),
        volumes=(VolumeAttachment("vol-0123456789abcdef0", "/dev/sdf", "rbd", "ocs/vol", {"user": "ocs"}),),
        metadata={"team": "a"},
        config_drive=True,
    )


@pytest.mark.parametrize(
    "value",
    [
        full_spec(),
        GuestInfo(
            "i-0123456789abcdef0", PowerState.CRASHED, 1, 512, 8, ("vol-1",), ("02:00:00:00:00:01",), 10
        ),
        HostResources("h", "fake", "1", ("x86_64", "i386"), 8, 4096, 100, 1, 512, 8, 1),
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_travel_on_the_bus_unchanged(value: object) -> None:
    wire = json.loads(json.dumps(to_wire(value)))
    assert from_wire(type(value), wire) == value


def test_user_data_is_base64_on_the_wire() -> None:
    assert full_spec().user_data_bytes() == b"#!/bin/sh\necho hi\n"
    with pytest.raises(ValueError, match="base64"):
        GuestSpec("i-1", 1, 1, 1, ImageRef("ami-1", "/x"), user_data="%%%").user_data_bytes()


def test_errors_form_one_hierarchy_with_useful_attributes() -> None:
    failed = SpawnFailed("i-1", "insufficient capacity on host", retryable=True)
    assert (failed.instance_id, failed.reason, failed.retryable) == (
        "i-1",
        "insufficient capacity on host",
        True,
    )
    assert str(failed) == "spawning i-1 failed: insufficient capacity on host"
    invalid = InvalidGuestState("i-1", PowerState.SHUTDOWN, "reboot")
    assert invalid.state is PowerState.SHUTDOWN and "shutdown" in str(invalid)
    for error in (failed, invalid, GuestNotFound("i-1"), GuestExists("i-1")):
        assert isinstance(error, DriverError)
        assert error.instance_id == "i-1"  # type: ignore[attr-defined]


def test_the_contract_is_small_and_documented() -> None:
    methods = sorted(Driver.__abstractmethods__)
    assert 12 <= len(methods) <= 15, methods
    for name in methods:
        doc = inspect.getdoc(getattr(Driver, name)) or ""
        assert doc, f"Driver.{name} has no docstring"
    for name in ("spawn", "destroy", "guest_info", "power_off", "reboot", "console_output"):
        doc = inspect.getdoc(getattr(Driver, name)) or ""
        assert "Raises" in doc or "raised" in doc, f"Driver.{name} does not say how it fails"
