"""DescribeInstanceTypes through boto3 and aws-cli, as the EC2 API reference describes it."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from ocs.db import instance_types as repo

# EC2's own figures for the default set (vCPUs, threads per core, MiB).
DEFAULTS = {
    "t2.micro": (1, 1, 1024),
    "t3.nano": (2, 2, 512),
    "t3.micro": (2, 2, 1024),
    "t3.small": (2, 2, 2048),
    "t3.medium": (2, 2, 4096),
    "t3.large": (2, 2, 8192),
    "t3.xlarge": (4, 2, 16384),
    "t3.2xlarge": (8, 2, 32768),
    "m5.large": (2, 2, 8192),
    "m5.xlarge": (4, 2, 16384),
    "m5.2xlarge": (8, 2, 32768),
    "c5.large": (2, 2, 4096),
    "c5.xlarge": (4, 2, 8192),
    "c5.2xlarge": (8, 2, 16384),
    "r5.large": (2, 2, 16384),
    "r5.xlarge": (4, 2, 32768),
    # added by migration 0011
    "t2.nano": (1, 1, 512),
    "t2.small": (1, 1, 2048),
    "t2.medium": (2, 1, 4096),
    "t2.large": (2, 1, 8192),
    "t2.xlarge": (4, 1, 16384),
    "t2.2xlarge": (8, 1, 32768),
    "t3a.nano": (2, 2, 512),
    "t3a.micro": (2, 2, 1024),
    "t3a.small": (2, 2, 2048),
    "t3a.medium": (2, 2, 4096),
    "t3a.large": (2, 2, 8192),
    "t3a.xlarge": (4, 2, 16384),
    "t3a.2xlarge": (8, 2, 32768),
    "m5.4xlarge": (16, 2, 65536),
    "c5.4xlarge": (16, 2, 32768),
    "r5.2xlarge": (8, 2, 65536),
    "r5.4xlarge": (16, 2, 131072),
}


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def all_types(ec2, **kwargs):
    return [
        t
        for page in ec2.get_paginator("describe_instance_types").paginate(**kwargs)
        for t in page["InstanceTypes"]
    ]


def names(types):
    return sorted(t["InstanceType"] for t in types)


def test_default_set_with_ec2_figures(ec2):
    types = {t["InstanceType"]: t for t in all_types(ec2)}
    assert set(DEFAULTS) <= set(types)
    for name, (vcpus, threads, memory) in DEFAULTS.items():
        info = types[name]
        assert info["VCpuInfo"]["DefaultVCpus"] == vcpus
        assert info["VCpuInfo"]["DefaultThreadsPerCore"] == threads
        assert info["VCpuInfo"]["DefaultCores"] * threads == vcpus
        assert info["MemoryInfo"]["SizeInMiB"] == memory
        assert info["BurstablePerformanceSupported"] is name.startswith("t")


def test_fields_tools_read(ec2):
    info = ec2.describe_instance_types(InstanceTypes=["t3.micro"])["InstanceTypes"][0]
    assert info["InstanceType"] == "t3.micro"
    assert info["CurrentGeneration"] is True
    assert info["FreeTierEligible"] is True
    assert info["SupportedUsageClasses"] == ["on-demand"]
    assert info["SupportedRootDeviceTypes"] == ["ebs"]
    assert info["SupportedVirtualizationTypes"] == ["hvm"]
    assert info["BareMetal"] is False
    assert info["Hypervisor"] == "nitro"
    assert info["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    assert info["ProcessorInfo"]["SustainedClockSpeedInGhz"] == 2.5
    assert info["VCpuInfo"] == {
        "DefaultVCpus": 2,
        "DefaultCores": 1,
        "DefaultThreadsPerCore": 2,
        "ValidCores": [1],
        "ValidThreadsPerCore": [1, 2],
    }
    assert info["InstanceStorageSupported"] is False
    assert info["EbsInfo"]["EbsOptimizedSupport"] in ("unsupported", "supported", "default")
    assert info["NetworkInfo"]["MaximumNetworkInterfaces"] == 2
    assert info["NetworkInfo"]["Ipv4AddressesPerInterface"] == 2
    assert info["NetworkInfo"]["NetworkPerformance"]
    assert info["PlacementGroupInfo"]["SupportedStrategies"]
    assert info["AutoRecoverySupported"] is False
    assert info["HibernationSupported"] is False
    assert info["SupportedBootModes"]


def test_instance_types_parameter(ec2):
    found = ec2.describe_instance_types(InstanceTypes=["m5.large", "t2.micro", "m5.large"])["InstanceTypes"]
    assert names(found) == ["m5.large", "t2.micro"]


def test_unknown_instance_type(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.describe_instance_types(InstanceTypes=["t3.micro", "x1e.32xlarge", "p4d.24xlarge"])
    assert error_code(exc) == "InvalidInstanceType"
    assert exc.value.response["Error"]["Message"] == (
        "The following supplied instance types do not exist: [x1e.32xlarge, p4d.24xlarge]"
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            [{"Name": "instance-type", "Values": ["c5.*"]}],
            ["c5.2xlarge", "c5.4xlarge", "c5.large", "c5.xlarge"],
        ),
        ([{"Name": "free-tier-eligible", "Values": ["true"]}], ["t2.micro", "t3.micro"]),
        (
            [
                {"Name": "vcpu-info.default-vcpus", "Values": ["8"]},
                {"Name": "burstable-performance-supported", "Values": ["false"]},
            ],
            ["c5.2xlarge", "m5.2xlarge", "r5.2xlarge"],
        ),
        (
            [{"Name": "memory-info.size-in-mib", "Values": ["512", "32768"]}],
            [
                "c5.4xlarge",
                "m5.2xlarge",
                "r5.xlarge",
                "t2.2xlarge",
                "t2.nano",
                "t3.2xlarge",
                "t3.nano",
                "t3a.2xlarge",
                "t3a.nano",
            ],
        ),
        (
            [{"Name": "vcpu-info.default-threads-per-core", "Values": ["1"]}],
            ["t2.2xlarge", "t2.large", "t2.medium", "t2.micro", "t2.nano", "t2.small", "t2.xlarge"],
        ),
        ([{"Name": "processor-info.supported-architecture", "Values": ["arm64"]}], []),
        (
            [
                {"Name": "current-generation", "Values": ["true"]},
                {"Name": "instance-type", "Values": ["r5.*"]},
            ],
            ["r5.2xlarge", "r5.4xlarge", "r5.large", "r5.xlarge"],
        ),
        (
            [{"Name": "hypervisor", "Values": ["nitro"]}, {"Name": "instance-type", "Values": ["t2.m*"]}],
            ["t2.medium", "t2.micro"],
        ),
        (
            [
                {"Name": "network-info.maximum-network-interfaces", "Values": ["3"]},
                {"Name": "instance-type", "Values": ["t3.*"]},
            ],
            ["t3.large", "t3.medium", "t3.small"],
        ),
    ],
)
def test_filters(ec2, filters, expected):
    found = [t for t in all_types(ec2, Filters=filters) if t["InstanceType"] in DEFAULTS]
    assert names(found) == expected


@pytest.mark.parametrize("name", ["no-such-filter", "tag:Name", "tag-key"])
def test_unknown_filters(ec2, name):
    with pytest.raises(ClientError) as exc:
        ec2.describe_instance_types(Filters=[{"Name": name, "Values": ["x"]}])
    assert error_code(exc) == "InvalidParameterValue"


def test_paginator_yields_each_type_once(ec2):
    pages = list(ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 5}))
    assert len(pages) >= 4
    assert all(len(p["InstanceTypes"]) <= 5 for p in pages)
    seen = [t["InstanceType"] for p in pages for t in p["InstanceTypes"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == {t["InstanceType"] for t in ec2.describe_instance_types()["InstanceTypes"]}
    assert "NextToken" not in pages[-1]


def test_page_size_limits_and_token(cloud, ec2):
    first = ec2.describe_instance_types(MaxResults=5)
    assert len(first["InstanceTypes"]) == 5 and first["NextToken"]
    second = ec2.describe_instance_types(MaxResults=5, NextToken=first["NextToken"])
    assert not {t["InstanceType"] for t in first["InstanceTypes"]} & {
        t["InstanceType"] for t in second["InstanceTypes"]
    }
    raw = cloud.client(parameter_validation=False)  # boto3 itself refuses these
    for bad in (4, 101):
        with pytest.raises(ClientError) as exc:
            raw.describe_instance_types(MaxResults=bad)
        assert error_code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        ec2.describe_instance_types(NextToken="garbage")
    assert error_code(exc) == "InvalidPaginationToken"


def test_same_for_every_account(cloud, ec2):
    other = cloud.client(cloud.create_account("instance-types-other"))
    assert names(all_types(other)) == names(all_types(ec2))


def test_operator_types_appear(cloud, ec2):
    with cloud.session() as s:
        repo.create_instance_type(s, repo.Spec("ocs1.huge", vcpus=16, memory_mib=65536, root_disk_gib=100))
    try:
        found = all_types(ec2, Filters=[{"Name": "instance-type", "Values": ["ocs1.*"]}])
        assert names(found) == ["ocs1.huge"]
        info = found[0]
        assert info["VCpuInfo"]["DefaultVCpus"] == 16 and info["VCpuInfo"]["DefaultThreadsPerCore"] == 1
        assert info["MemoryInfo"]["SizeInMiB"] == 65536
        assert info["BurstablePerformanceSupported"] is False
        assert "SustainedClockSpeedInGhz" not in info["ProcessorInfo"]
    finally:
        with cloud.session() as s:
            repo.delete_instance_type(s, "ocs1.huge")
    assert not all_types(ec2, Filters=[{"Name": "instance-type", "Values": ["ocs1.*"]}])


def test_dry_run(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.describe_instance_types(DryRun=True)
    assert error_code(exc) == "DryRunOperation"


def test_aws_cli(cloud):
    result = cloud.aws("ec2", "describe-instance-types", "--page-size", "5")
    assert result.returncode == 0, result.stderr
    found = [t["InstanceType"] for t in json.loads(result.stdout)["InstanceTypes"]]
    assert set(DEFAULTS) <= set(found) and len(found) == len(set(found))
    result = cloud.aws(
        "ec2",
        "describe-instance-types",
        "--instance-types",
        "t3.micro",
        "--query",
        "InstanceTypes[0].MemoryInfo.SizeInMiB",
        "--output",
        "text",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1024"
