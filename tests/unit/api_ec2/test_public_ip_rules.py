"""EC2's rules for NetworkInterface.N.AssociatePublicIpAddress at RunInstances (pure checks)."""

from __future__ import annotations

import pytest

from ocs import errors
from ocs.api_ec2.actions.instances import check_associate_public_ip


@pytest.mark.parametrize(
    "interfaces",
    [
        [],
        [{"DeviceIndex": 0}],
        [{"DeviceIndex": 0, "AssociatePublicIpAddress": True}],
        [{"AssociatePublicIpAddress": False}],  # no device index: the primary one
        [{"DeviceIndex": 0}, {"DeviceIndex": 1}],  # not specified at all: no rule applies
    ],
)
def test_accepted(interfaces: list[dict[str, object]]) -> None:
    check_associate_public_ip(interfaces)


@pytest.mark.parametrize(
    ("interfaces", "fragment"),
    [
        (
            [{"DeviceIndex": 1, "AssociatePublicIpAddress": True}],
            "only be specified for the network interface",
        ),
        (
            [{"DeviceIndex": 1, "AssociatePublicIpAddress": False}],
            "only be specified for the network interface",
        ),
        (
            [{"DeviceIndex": 0, "AssociatePublicIpAddress": False}, {"DeviceIndex": 1}],
            "launching with multiple network interfaces",
        ),
        (
            [
                {
                    "DeviceIndex": 0,
                    "AssociatePublicIpAddress": True,
                    "NetworkInterfaceId": "eni-0123456789abcdef0",
                }
            ],
            "network interface with an ID",
        ),
    ],
)
def test_refused(interfaces: list[dict[str, object]], fragment: str) -> None:
    with pytest.raises(errors.InvalidParameterCombination) as refused:
        check_associate_public_ip(interfaces)
    assert fragment in str(refused.value)
