"""The DHCP options core: EC2's rules for each key, and what a DHCP server hands out."""

from __future__ import annotations

import pytest

from ocs import errors
from ocs.network import dhcp_options as core


def test_a_full_set_is_kept_in_order():
    got = core.validate(
        [
            {"Key": "domain-name", "Values": ["my.com", "it.com"]},
            {"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS"]},
            {"Key": "ntp-servers", "Values": ["1.2.3.4"]},
            {"Key": "netbios-node-type", "Values": ["2"]},
            {"Key": "ipv6-address-preferred-lease-time", "Values": ["140"]},
        ]
    )
    assert got == [
        ("domain-name", ("my.com", "it.com")),
        ("domain-name-servers", ("AmazonProvidedDNS",)),
        ("ntp-servers", ("1.2.3.4",)),
        ("netbios-node-type", ("2",)),
        ("ipv6-address-preferred-lease-time", ("140",)),
    ]


@pytest.mark.parametrize(
    "item",
    [
        {"Key": "aaa", "Values": ["x"]},
        {"Key": "domain-name", "Values": []},
        {"Key": "domain-name", "Values": [""]},
        {"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS", "8.8.8.8"]},
        {"Key": "domain-name-servers", "Values": ["10.0.0.1"] * 5},
        {"Key": "ntp-servers", "Values": ["10.0.0.1"] * 9},
        {"Key": "netbios-name-servers", "Values": ["300.1.1.1"]},
        {"Key": "netbios-node-type", "Values": ["2", "4"]},
        {"Key": "ipv6-address-preferred-lease-time", "Values": ["139"]},
    ],
)
def test_invalid_values(item):
    with pytest.raises(errors.InvalidParameterValue):
        core.validate([item])


def test_nothing_is_missing_parameter():
    with pytest.raises(errors.MissingParameter):
        core.validate([])


def test_region_default():
    assert core.region_default("us-east-1")[0] == ("domain-name", ("ec2.internal",))
    assert core.region_default("eu-west-1")[0] == ("domain-name", ("eu-west-1.compute.internal",))


def test_dnsmasq_options():
    options = core.dnsmasq_options(
        [
            ("domain-name", ("corp.example", "lab.example")),
            ("domain-name-servers", ("AmazonProvidedDNS",)),
            ("ntp-servers", ("10.0.0.5", "10.0.0.6")),
            ("netbios-name-servers", ("10.0.0.7",)),
            ("netbios-node-type", ("2",)),
        ],
        amazon_dns="10.1.0.1",
    )
    assert options == [
        "option:dns-server,10.1.0.1",
        "option:domain-name,corp.example",
        "option:domain-search,corp.example,lab.example",
        "option:ntp-server,10.0.0.5,10.0.0.6",
        "option:netbios-ns,10.0.0.7",
        "option:netbios-nodetype,2",
    ]
    assert core.dnsmasq_options([("domain-name-servers", ("8.8.8.8", "8.8.4.4"))], None) == [
        "option:dns-server,8.8.8.8,8.8.4.4"
    ]
