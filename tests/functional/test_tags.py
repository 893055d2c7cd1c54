"""CreateTags, DeleteTags and DescribeTags across resource kinds, as EC2 documents them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code(exc) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def resources(ec2):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="tagged", Description="for tag tests")["GroupId"]
    key = ec2.create_key_pair(KeyName="tagged-key")["KeyPairId"]
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    return {"vpc": vpc, "security-group": group, "key-pair": key, "image": image}


def test_create_and_describe_tags_on_every_kind(ec2, resources):
    ids = list(resources.values())
    ec2.create_tags(Resources=ids, Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": ""}])
    described = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}])["Tags"]
    got = {(t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in described}
    expected = {
        (rid, rtype, k, v) for rtype, rid in resources.items() for k, v in (("env", "test"), ("team", ""))
    }
    assert got == expected


def test_tags_show_in_the_resource_describe(ec2, resources):
    ec2.create_tags(Resources=[resources["security-group"]], Tags=[{"Key": "Name", "Value": "web"}])
    group = ec2.describe_security_groups(GroupIds=[resources["security-group"]])["SecurityGroups"][0]
    assert {"Key": "Name", "Value": "web"} in group["Tags"]
    hits = ec2.describe_security_groups(Filters=[{"Name": "tag:Name", "Values": ["w*"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in hits] == [resources["security-group"]]


def test_create_tags_overwrites_a_value(ec2, resources):
    vpc = resources["vpc"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "stage", "Value": "one"}])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "stage", "Value": "two"}])
    tags = ec2.describe_tags(
        Filters=[{"Name": "resource-id", "Values": [vpc]}, {"Name": "key", "Values": ["stage"]}]
    )
    assert [t["Value"] for t in tags["Tags"]] == ["two"]


def test_delete_tags_semantics(ec2, resources):
    key = resources["key-pair"]
    ec2.create_tags(
        Resources=[key],
        Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "c", "Value": "3"}],
    )
    ec2.delete_tags(Resources=[key], Tags=[{"Key": "a", "Value": "not-1"}])  # value differs: kept
    ec2.delete_tags(Resources=[key], Tags=[{"Key": "b"}])  # no value: deleted whatever it is
    left = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [key]}])["Tags"]
    assert {t["Key"] for t in left} >= {"a", "c"} and "b" not in {t["Key"] for t in left}
    ec2.delete_tags(Resources=[key])  # no tags: every tag goes
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [key]}])["Tags"] == []


def test_describe_tags_filters(ec2, resources):
    ec2.create_tags(Resources=[resources["vpc"]], Tags=[{"Key": "colour", "Value": "blue"}])
    by_type = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["vpc"]}])["Tags"]
    assert by_type and {t["ResourceType"] for t in by_type} == {"vpc"}
    by_value = ec2.describe_tags(Filters=[{"Name": "value", "Values": ["bl?e"]}])["Tags"]
    assert [(t["ResourceId"], t["Key"]) for t in by_value] == [(resources["vpc"], "colour")]
    with pytest.raises(ClientError) as exc:
        ec2.describe_tags(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert code(exc) == "InvalidParameterValue"


def test_describe_tags_paginates_each_tag_once(ec2, resources):
    vpc = resources["vpc"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": f"page-{n:02}", "Value": str(n)} for n in range(23)])
    pages = ec2.get_paginator("describe_tags").paginate(
        Filters=[{"Name": "resource-id", "Values": [vpc]}], PaginationConfig={"PageSize": 5}
    )
    keys = [t["Key"] for page in pages for t in page["Tags"]]
    assert len(keys) == len(set(keys))
    assert {f"page-{n:02}" for n in range(23)} <= set(keys)
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": f"page-{n:02}"} for n in range(23)])


def test_tag_errors(ec2, resources):
    vpc = resources["vpc"]
    cases = [
        (
            {"Resources": ["vpc-0123456789abcdef0"], "Tags": [{"Key": "k", "Value": "v"}]},
            "InvalidVpcID.NotFound",
        ),
        ({"Resources": [vpc], "Tags": [{"Key": "aws:reserved", "Value": "v"}]}, "InvalidParameterValue"),
        ({"Resources": [vpc], "Tags": [{"Key": "k" * 129, "Value": "v"}]}, "InvalidParameterValue"),
        ({"Resources": ["bogus-id"], "Tags": [{"Key": "k", "Value": "v"}]}, "InvalidID"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ClientError) as exc:
            ec2.create_tags(**kwargs)
        assert code(exc) == expected, kwargs


def test_fifty_tags_is_the_limit(ec2, resources):
    group = ec2.create_security_group(GroupName="many-tags", Description="limit")["GroupId"]
    ec2.create_tags(Resources=[group], Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(50)])
    with pytest.raises(ClientError) as exc:
        ec2.create_tags(Resources=[group], Tags=[{"Key": "one-more", "Value": "v"}])
    assert code(exc) == "TagLimitExceeded"


def test_other_accounts_cannot_see_or_tag(cloud, ec2, resources):
    other = cloud.client(cloud.create_account("tag-outsider"))
    with pytest.raises(ClientError) as exc:
        other.create_tags(Resources=[resources["security-group"]], Tags=[{"Key": "x", "Value": "y"}])
    assert code(exc) == "InvalidGroup.NotFound"
    assert (
        other.describe_tags(Filters=[{"Name": "resource-id", "Values": list(resources.values())}])["Tags"]
        == []
    )


def test_tags_by_aws_cli(cloud, resources):
    import json

    result = cloud.aws("ec2", "describe-tags", "--filters", f"Name=resource-id,Values={resources['vpc']}")
    assert result.returncode == 0, result.stderr
    assert all(t["ResourceId"] == resources["vpc"] for t in json.loads(result.stdout)["Tags"])


def test_paging_token_survives_other_filters(ec2, resources):
    # ec2api-tempest-plugin TagsPagingTest: 10 tags, 6 'aaa'; the token is a position.
    group = ec2.create_security_group(GroupName="paged-tags", Description="paging")["GroupId"]
    ec2.create_tags(
        Resources=[group], Tags=[{"Key": f"p{n}", "Value": "aaa" if n < 6 else "bbb"} for n in range(10)]
    )
    mine = {"Name": "resource-id", "Values": [group]}
    first = ec2.describe_tags(MaxResults=5, Filters=[mine, {"Name": "tag-value", "Values": ["aaa"]}])
    assert len(first["Tags"]) == 5 and first["NextToken"]
    same = ec2.describe_tags(
        NextToken=first["NextToken"], Filters=[mine, {"Name": "value", "Values": ["aaa"]}]
    )
    assert [t["Key"] for t in same["Tags"]] == ["p5"] and "NextToken" not in same
    other = ec2.describe_tags(MaxResults=5, NextToken=first["NextToken"], Filters=[mine])
    assert [t["Key"] for t in other["Tags"]] == ["p5", "p6", "p7", "p8", "p9"]
    ec2.delete_tags(Resources=[group])
    gone = ec2.describe_tags(MaxResults=5, NextToken=first["NextToken"], Filters=[mine])
    assert gone["Tags"] == [] and "NextToken" not in gone
    for garbage in ("garbage", first["NextToken"][:-3] + "AAA"):
        with pytest.raises(ClientError) as exc:
            ec2.describe_tags(MaxResults=5, NextToken=garbage)
        assert code(exc) == "InvalidPaginationToken"


def test_describe_tags_max_results_is_clamped_not_refused(ec2, resources):
    assert "Tags" in ec2.describe_tags(MaxResults=1100)  # EC2 answers at most 1000
    with pytest.raises(ClientError) as exc:
        ec2.describe_tags(MaxResults=4)
    assert code(exc) == "InvalidParameterValue"


def test_describe_tags_tag_key_and_tag_value_filters(ec2, resources):
    ec2.create_tags(Resources=[resources["vpc"]], Tags=[{"Key": "alias-key", "Value": "alias-value"}])
    by_key = ec2.describe_tags(Filters=[{"Name": "tag-key", "Values": ["alias-key"]}])["Tags"]
    by_value = ec2.describe_tags(Filters=[{"Name": "tag-value", "Values": ["alias-val*"]}])["Tags"]
    assert [(t["ResourceId"], t["Key"]) for t in by_key] == [(resources["vpc"], "alias-key")]
    assert by_value == by_key
