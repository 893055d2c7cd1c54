"""EBS device names as EC2 validates them for Linux instances (ocs.volume.devices)."""

from __future__ import annotations

import pytest

from ocs import errors
from ocs.compute_agent.driver import VolumeAttachment
from ocs.volume import devices


@pytest.mark.parametrize(
    ("device", "slot"),
    [("/dev/sdf", "f"), ("/dev/xvdf", "f"), ("/dev/sdp", "p"), ("/dev/xvdba", "ba"), ("/dev/xvdcz", "cz")],
)
def test_valid_names_and_their_slots(device: str, slot: str) -> None:
    assert devices.check_device(device) == slot


@pytest.mark.parametrize(
    "device", ["xvdf", "sdf", "/dev/sdf1", "/dev/sdi1", "/dev/sdba", "/dev/xvdeo", "/dev/vdb", "/dev/hdb", ""]
)
def test_invalid_names(device: str) -> None:
    with pytest.raises(errors.InvalidParameterValue) as raised:
        devices.check_device(device)
    assert str(raised.value) == (
        f"Value ({device}) for parameter device is invalid. {device} is not a valid EBS device name."
    )


def test_a_slot_is_taken_by_either_name_and_by_the_root_and_config_drive() -> None:
    devices.check_free("/dev/sdg", ["/dev/sda1", "/dev/sdf"])
    for device, taken in [
        ("/dev/xvdf", ["/dev/sda1", "/dev/sdf"]),
        ("/dev/sda1", ["/dev/sda1"]),
        ("/dev/xvda", ["/dev/sda1"]),
        ("/dev/sdz", []),
    ]:
        with pytest.raises(errors.InvalidParameterValue) as raised:
            devices.check_free(device, taken)
        assert str(raised.value) == (
            f"Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
        )


def test_an_attachment_from_the_recorded_export() -> None:
    export = {"backend": "file", "target": "/srv/v/vol-1.qcow2", "options": {"format": "qcow2"}}
    att = VolumeAttachment.of_export("vol-1", "/dev/sdf", export)
    assert (att.backend, att.target, att.options, att.device) == (
        "file",
        "/srv/v/vol-1.qcow2",
        {"format": "qcow2"},
        "/dev/sdf",
    )
    assert VolumeAttachment.of_export("vol-1", "/dev/sdf", None).target == ""
