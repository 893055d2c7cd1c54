"""DescribeInstances reads only the rows a page needs: the answers must not change.

The handler narrows the rows in SQL by the filters whose values are literal
(state, type, zone, IDs, ``tag:KEY`` ...), then filters exactly, and stops once a
page and one more match are found. These tests compare every way of asking
(paged or not, literal or wildcard values, narrowed or not) with the plain
answer computed here from the whole listing.
"""

from __future__ import annotations

import fnmatch
import time

import pytest
from botocore.exceptions import ClientError


def _flat(answer: dict) -> list[dict]:
    return [i for r in answer["Reservations"] for i in r["Instances"]]


def _ids(answer: dict) -> list[str]:
    return [i["InstanceId"] for i in _flat(answer)]


def _pages(ec2, page: int, **params) -> list[list[str]]:
    pages, token = [], None
    while True:
        extra = {"NextToken": token} if token else {}
        answer = ec2.describe_instances(MaxResults=page, **params, **extra)
        pages.append(sorted(_ids(answer)))  # grouped by reservation inside a page
        token = answer.get("NextToken")
        if not token:
            return pages


def _tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


@pytest.fixture(scope="module")
def account(cloud):
    owner = cloud.create_account("paging")
    ec2 = cloud.client(owner)
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    made = []
    for k, (itype, count) in enumerate([("t3.micro", 4), ("t3.small", 3), ("t3.micro", 5), ("t3.small", 4)]):
        tags = [{"Key": "group", "Value": f"g{k % 2}"}, {"Key": "k", "Value": str(k)}]
        out = ec2.run_instances(
            ImageId=image["ImageId"], InstanceType=itype, MinCount=count, MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )  # fmt: skip
        made += [i["InstanceId"] for i in out["Instances"]]
    ec2.terminate_instances(InstanceIds=made[:2])
    deadline = time.monotonic() + 30
    while True:  # until every state has settled (the fake hypervisor has no delays)
        everything = _flat(ec2.describe_instances())
        if all(i["State"]["Name"] in ("running", "terminated") for i in everything):
            break
        assert time.monotonic() < deadline, [i["State"]["Name"] for i in everything]
        time.sleep(0.05)
    assert sorted(i["InstanceId"] for i in everything) == sorted(made)
    return ec2, everything


def test_pages_cover_every_instance_once_in_id_order(account):
    ec2, everything = account
    pages = _pages(ec2, 5)
    assert [len(p) for p in pages] == [5, 5, 5, 1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(i["InstanceId"] for i in everything)


def test_a_page_that_exactly_ends_the_list_has_no_token(account):
    ec2, everything = account
    answer = ec2.describe_instances(
        MaxResults=5,
        Filters=[{"Name": "instance-type", "Values": ["t3.small"]}, {"Name": "tag:k", "Values": ["1"]}],
    )
    assert len(_ids(answer)) == 3 and "NextToken" not in answer


CASES = [
    [{"Name": "instance-type", "Values": ["t3.small"]}],
    [{"Name": "instance-type", "Values": ["t3.sm*"]}],
    [{"Name": "instance-state-name", "Values": ["terminated"]}],
    [
        {"Name": "instance-state-name", "Values": ["running", "pending"]},
        {"Name": "tag:group", "Values": ["g0"]},
    ],
    [{"Name": "tag:group", "Values": ["g?"]}, {"Name": "instance-type", "Values": ["t3.micro"]}],
    [{"Name": "instance-type", "Values": ["t3.micro"]}, {"Name": "instance-type", "Values": ["t3.small"]}],
    [{"Name": "tag:group", "Values": ["g1"]}, {"Name": "tag:group", "Values": ["g1", "g0"]}],
    [{"Name": "tag:k", "Values": ["9"]}],
    [{"Name": "tag-key", "Values": ["group"]}, {"Name": "availability-zone", "Values": ["us-east-1a"]}],
]


def _expected(everything: list[dict], filters: list[dict]) -> list[str]:
    """The IDs EC2's rules select (no value here has an escape or a ``[``, so fnmatch will do)."""

    def field(instance: dict, name: str) -> list[str]:
        if name.startswith("tag:"):
            tags = _tags(instance)
            return [tags[name[4:]]] if name[4:] in tags else []
        return {
            "instance-type": [instance["InstanceType"]],
            "instance-state-name": [instance["State"]["Name"]],
            "tag-key": list(_tags(instance)),
            "availability-zone": [instance["Placement"]["AvailabilityZone"]],
        }[name]

    def ok(instance: dict) -> bool:
        return all(
            any(
                fnmatch.fnmatchcase(v, pattern) for pattern in f["Values"] for v in field(instance, f["Name"])
            )
            for f in filters
        )

    return sorted(i["InstanceId"] for i in everything if ok(i))


@pytest.mark.parametrize("filters", CASES)
def test_filters_paged_and_unpaged_agree_with_the_whole_listing(account, filters):
    ec2, everything = account
    want = _expected(everything, filters)
    assert sorted(_ids(ec2.describe_instances(Filters=filters))) == want
    paged = [i for p in _pages(ec2, 5, Filters=filters) for i in p]
    assert paged == want


def test_another_accounts_tags_do_not_narrow(cloud, account):
    ec2, everything = account
    stranger = cloud.client(cloud.create_account("paging-stranger"))
    target = everything[0]["InstanceId"]
    with pytest.raises(ClientError):  # the stranger cannot even tag it
        stranger.create_tags(Resources=[target], Tags=[{"Key": "group", "Value": "mine"}])
    answer = ec2.describe_instances(Filters=[{"Name": "tag:group", "Values": ["mine"]}])
    assert answer["Reservations"] == []


def test_ids_with_a_token_and_filters(account):
    ec2, everything = account
    ids = sorted(i["InstanceId"] for i in everything)[:6]
    answer = ec2.describe_instances(
        InstanceIds=ids, Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}]
    )
    want = [i["InstanceId"] for i in sorted(everything, key=lambda i: i["InstanceId"])[:6]
            if i["InstanceType"] == "t3.micro"]  # fmt: skip
    assert sorted(_ids(answer)) == want
