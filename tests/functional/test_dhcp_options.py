"""DHCP options sets and customer gateways through boto3, with EC2's validation and errors."""

from __future__ import annotations

import itertools
import re

import pytest
from botocore.exceptions import ClientError

from tests.framework.errors import code_of, error_of

DOPT = re.compile(r"^dopt-[0-9a-f]{17}$")
CGW = re.compile(r"^cgw-[0-9a-f]{17}$")
_names = itertools.count()


@pytest.fixture
def fresh(cloud):
    return cloud.client(cloud.create_account(f"dopt-{next(_names)}"))


def as_dict(options: dict) -> dict[str, list[str]]:
    return {c["Key"]: [v["Value"] for v in c["Values"]] for c in options["DhcpConfigurations"]}


def failing(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return error_of(exc)


FULL = [
    {"Key": "domain-name", "Values": ["my.com", "it.com"]},
    {"Key": "domain-name-servers", "Values": ["8.8.8.8", "8.8.4.4"]},
    {"Key": "ntp-servers", "Values": ["1.2.3.4"]},
    {"Key": "netbios-name-servers", "Values": ["4.3.2.1"]},
    {"Key": "netbios-node-type", "Values": ["2"]},
]


def test_create_describe_delete(fresh):
    created = fresh.create_dhcp_options(
        DhcpConfigurations=FULL,
        TagSpecifications=[{"ResourceType": "dhcp-options", "Tags": [{"Key": "Name", "Value": "corp"}]}],
    )["DhcpOptions"]
    dopt = created["DhcpOptionsId"]
    assert DOPT.match(dopt)
    assert as_dict(created) == {c["Key"]: c["Values"] for c in FULL}
    assert created["Tags"] == [{"Key": "Name", "Value": "corp"}]
    [described] = fresh.describe_dhcp_options(DhcpOptionsIds=[dopt])["DhcpOptions"]
    assert as_dict(described) == as_dict(created)
    assert described["OwnerId"] == created["OwnerId"]
    # Filters: key, value, tag, id.
    for flt in (
        {"Name": "key", "Values": ["ntp-servers"]},
        {"Name": "value", "Values": ["8.8.4.4"]},
        {"Name": "tag:Name", "Values": ["corp"]},
        {"Name": "dhcp-options-id", "Values": [dopt]},
    ):
        found = fresh.describe_dhcp_options(Filters=[flt])["DhcpOptions"]
        assert [o["DhcpOptionsId"] for o in found] == [dopt], flt
    assert (
        fresh.describe_dhcp_options(Filters=[{"Name": "value", "Values": ["9.9.9.9"]}])["DhcpOptions"] == []
    )
    tagged = fresh.describe_tags(Filters=[{"Name": "resource-id", "Values": [dopt]}])["Tags"]
    assert [t["ResourceType"] for t in tagged] == ["dhcp-options"]
    fresh.delete_dhcp_options(DhcpOptionsId=dopt)
    assert code_of_call(fresh.describe_dhcp_options, DhcpOptionsIds=[dopt]) == "InvalidDhcpOptionID.NotFound"
    assert code_of_call(fresh.delete_dhcp_options, DhcpOptionsId=dopt) == "InvalidDhcpOptionID.NotFound"
    assert fresh.describe_tags(Filters=[{"Name": "resource-id", "Values": [dopt]}])["Tags"] == []


def code_of_call(call, **kwargs) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return code_of(exc)


@pytest.mark.parametrize(
    ("configurations", "code"),
    [
        ([], "MissingParameter"),
        ([{"Key": "aaa", "Values": ["x"]}], "InvalidParameterValue"),
        ([{"Key": "domain-name", "Values": []}], "InvalidParameterValue"),
        (
            [{"Key": "domain-name-servers", "Values": ["8.8.8.8", "AmazonProvidedDNS"]}],
            "InvalidParameterValue",
        ),
        (
            [
                {
                    "Key": "domain-name-servers",
                    "Values": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5"],
                }
            ],
            "InvalidParameterValue",
        ),
        ([{"Key": "ntp-servers", "Values": ["ntp.example.com"]}], "InvalidParameterValue"),
        ([{"Key": "netbios-node-type", "Values": ["3"]}], "InvalidParameterValue"),
        ([{"Key": "domain-name", "Values": ["bad_name!"]}], "InvalidParameterValue"),
        (
            [{"Key": "domain-name", "Values": ["a.com"]}, {"Key": "domain-name", "Values": ["b.com"]}],
            "InvalidParameterValue",
        ),
    ],
)
def test_invalid_sets_create_nothing(fresh, configurations, code):
    before = fresh.describe_dhcp_options()["DhcpOptions"]
    assert code_of_call(fresh.create_dhcp_options, DhcpConfigurations=configurations) == code
    assert fresh.describe_dhcp_options()["DhcpOptions"] == before


def test_every_vpc_starts_with_the_accounts_default_set(fresh):
    [default_vpc] = fresh.describe_vpcs()["Vpcs"]
    dopt = default_vpc["DhcpOptionsId"]
    assert DOPT.match(dopt)
    vpc = fresh.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]
    assert vpc["DhcpOptionsId"] == dopt
    [default_set] = fresh.describe_dhcp_options(DhcpOptionsIds=[dopt])["DhcpOptions"]
    assert as_dict(default_set) == {
        "domain-name": ["ec2.internal"],
        "domain-name-servers": ["AmazonProvidedDNS"],
    }
    fresh.delete_vpc(VpcId=vpc["VpcId"])


def test_associate_and_dependency(fresh):
    dopt = fresh.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": ["my.com"]}])[
        "DhcpOptions"
    ]["DhcpOptionsId"]
    vpc = fresh.create_vpc(CidrBlock="10.0.0.0/24")["Vpc"]["VpcId"]
    fresh.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc)
    assert fresh.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["DhcpOptionsId"] == dopt
    found = fresh.describe_vpcs(Filters=[{"Name": "dhcp-options-id", "Values": [dopt]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [vpc]
    assert failing(fresh.delete_dhcp_options, DhcpOptionsId=dopt)[0] == "DependencyViolation"
    # "default": no options at all.
    fresh.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc)
    assert fresh.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["DhcpOptionsId"] == "default"
    fresh.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc)
    # Deleting the VPC frees the set.
    fresh.delete_vpc(VpcId=vpc)
    fresh.delete_dhcp_options(DhcpOptionsId=dopt)
    assert code_of_call(fresh.associate_dhcp_options, DhcpOptionsId="dopt-0123456789abcdef0", VpcId=vpc) in (
        "InvalidVpcID.NotFound",
    )
    [default_vpc] = fresh.describe_vpcs()["Vpcs"]
    assert code_of_call(
        fresh.associate_dhcp_options, DhcpOptionsId="dopt-0123456789abcdef0", VpcId=default_vpc["VpcId"]
    ) == ("InvalidDhcpOptionID.NotFound")
    assert code_of_call(fresh.associate_dhcp_options, DhcpOptionsId="dopt-x", VpcId=default_vpc["VpcId"]) == (
        "InvalidDhcpOptionsID.Malformed"
    )


def test_paginator(fresh):
    made = [
        fresh.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": [f"d{i}.com"]}])[
            "DhcpOptions"
        ]["DhcpOptionsId"]
        for i in range(7)
    ]
    pages = fresh.get_paginator("describe_dhcp_options").paginate(PaginationConfig={"PageSize": 5})
    seen = [o["DhcpOptionsId"] for page in pages for o in page["DhcpOptions"]]
    assert len(seen) == len(set(seen)) and set(made) <= set(seen)
    assert len(seen) == 8  # and the account's default set


# --- customer gateways ----------------------------------------------------------------------


def test_customer_gateway_lifecycle(fresh):
    out = fresh.create_customer_gateway(
        Type="ipsec.1",
        PublicIp="198.51.100.77",
        BgpAsn=65000,
        DeviceName="edge-1",
        TagSpecifications=[{"ResourceType": "customer-gateway", "Tags": [{"Key": "site", "Value": "hq"}]}],
    )["CustomerGateway"]
    cgw = out["CustomerGatewayId"]
    assert CGW.match(cgw)
    assert (out["IpAddress"], out["BgpAsn"], out["Type"], out["State"], out["DeviceName"]) == (
        "198.51.100.77",
        "65000",
        "ipsec.1",
        "available",
        "edge-1",
    )
    # The same type, address and ASN: the same gateway.
    again = fresh.create_customer_gateway(Type="ipsec.1", IpAddress="198.51.100.77", BgpAsn=65000)
    assert again["CustomerGateway"]["CustomerGatewayId"] == cgw
    other = fresh.create_customer_gateway(Type="ipsec.1", IpAddress="198.51.100.78")["CustomerGateway"]
    assert other["BgpAsn"] == "65000" and other["CustomerGatewayId"] != cgw
    for flt, want in (
        ({"Name": "ip-address", "Values": ["198.51.100.78"]}, [other["CustomerGatewayId"]]),
        ({"Name": "tag:site", "Values": ["hq"]}, [cgw]),
        ({"Name": "bgp-asn", "Values": ["65000"]}, sorted([cgw, other["CustomerGatewayId"]])),
    ):
        found = fresh.describe_customer_gateways(Filters=[flt])["CustomerGateways"]
        assert sorted(g["CustomerGatewayId"] for g in found) == want, flt
    fresh.delete_customer_gateway(CustomerGatewayId=cgw)
    [gone] = fresh.describe_customer_gateways(CustomerGatewayIds=[cgw])["CustomerGateways"]
    assert gone["State"] == "deleted"
    assert code_of_call(fresh.delete_customer_gateway, CustomerGatewayId=cgw) == (
        "InvalidCustomerGatewayID.NotFound"
    )
    assert code_of_call(fresh.create_tags, Resources=[cgw], Tags=[{"Key": "a", "Value": "b"}]) == (
        "InvalidCustomerGatewayID.NotFound"
    )
    fresh.delete_customer_gateway(CustomerGatewayId=other["CustomerGatewayId"])


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Type": "ipsec.2", "IpAddress": "198.51.100.1"}, "InvalidParameterValue"),
        ({"Type": "ipsec.1", "IpAddress": "not-an-ip"}, "InvalidParameterValue"),
        ({"Type": "ipsec.1"}, "MissingParameter"),
        ({"Type": "ipsec.1", "IpAddress": "198.51.100.1", "BgpAsn": 0}, "InvalidParameterValue"),
        (
            {"Type": "ipsec.1", "IpAddress": "198.51.100.1", "BgpAsn": 65000, "BgpAsnExtended": 4200000000},
            "InvalidParameterCombination",
        ),
    ],
)
def test_customer_gateway_validation(fresh, params, code):
    assert code_of_call(fresh.create_customer_gateway, **params) == code
    assert fresh.describe_customer_gateways()["CustomerGateways"] == []
    assert code_of_call(fresh.describe_customer_gateways, CustomerGatewayIds=["cgw-0123456789abcdef0"]) == (
        "InvalidCustomerGatewayID.NotFound"
    )
