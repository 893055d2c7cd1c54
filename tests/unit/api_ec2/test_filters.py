"""EC2 filter semantics and the per-action filter tables."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocs import errors
from ocs.api_ec2 import filters as F


def flt(name: str, *values: str) -> dict[str, Any]:
    return {"Name": name, "Values": list(values)}


def instance(iid: str, state: str = "running", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "InstanceId": iid,
        "State": {"Name": state, "Code": {"pending": 0, "running": 16, "stopped": 80}[state]},
        "Placement": {"AvailabilityZone": "us-east-1a"},
        "SecurityGroups": [{"GroupId": "sg-1", "GroupName": "default"}],
        "Tags": [],
    }
    item.update(extra)
    return item


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["InstanceId"] for i in items]


# --- wildcards --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "candidate", "expected"),
    [
        ("web", "web", True),
        ("web", "Web", False),  # case-sensitive
        ("web", "web1", False),  # whole-value match
        ("web*", "web", True),  # * matches the empty run
        ("web*", "web-server-01", True),
        ("*server*", "web-server-01", True),
        ("w?b", "wab", True),
        ("w?b", "wb", False),  # ? is exactly one character
        ("w?b", "waab", False),
        ("??", "ab", True),
        ("*", "", True),
        ("", "", True),
        ("", "x", False),
        (r"a\*b", "a*b", True),  # escaped star is literal
        (r"a\*b", "axxb", False),
        (r"a\?b", "a?b", True),
        (r"a\?b", "axb", False),
        ("a\\\\b", "a\\b", True),  # escaped backslash
        ("a\\\\*", "a\\anything", True),  # escaped backslash, then a real wildcard
        ("a\\b", "a\\b", True),  # a lone backslash is literal
        ("a\\", "a\\", True),
        ("a.b", "axb", False),  # regex metacharacters are literal
        ("(x)+", "(x)+", True),
        ("2021-09-29T*", "2021-09-29T11:04:43.305Z", True),
        ("line*", "line1\nline2", True),
    ],
)
def test_match_value(pattern: str, candidate: str, expected: bool) -> None:
    assert F.match_value(pattern, candidate) is expected


@given(st.text(max_size=20))
def test_plain_text_without_wildcards_matches_only_itself(text: str) -> None:
    escaped = text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    assert F.match_value(escaped, text)
    assert not F.match_value(escaped, text + "x")


@given(st.text(max_size=10), st.text(max_size=10))
def test_star_suffix_matches_every_extension(prefix: str, rest: str) -> None:
    escaped = prefix.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    assert F.match_value(escaped + "*", prefix + rest)


# --- wire strings -------------------------------------------------------------------------


def test_wire_strings() -> None:
    assert F.wire_string(True) == "true"
    assert F.wire_string(False) == "false"
    assert F.wire_string(16) == "16"
    assert F.wire_string(2.5) == "2.5"
    assert F.wire_string("x") == "x"
    assert F.wire_string({"a": 1}) is None
    naive = datetime(2021, 9, 29, 11, 4, 43, 305000)
    assert F.wire_string(naive) == "2021-09-29T11:04:43.305Z"
    plus2 = datetime(2021, 9, 29, 13, 4, 43, tzinfo=timezone(timedelta(hours=2)))
    assert F.wire_string(plus2) == "2021-09-29T11:04:43.000Z"


def test_resolve_flattens_lists() -> None:
    item = {"A": [{"B": [{"C": 1}, {"C": 2}]}, {"B": [{"C": 3}]}, {"X": 0}], "N": None}
    assert F.resolve(item, "A.B.C") == [1, 2, 3]
    assert F.resolve(item, "A.X") == [0]
    assert F.resolve(item, "N") == []
    assert F.resolve(item, "missing.path") == []


# --- AND / OR -------------------------------------------------------------------------------


SPEC = F.FILTERS["DescribeInstances"]
ITEMS = [
    instance("i-1", "running", InstanceType="t2.micro"),
    instance("i-2", "stopped", InstanceType="t2.micro"),
    instance("i-3", "pending", InstanceType="m5.large"),
]


def test_no_filters_keeps_everything_in_order() -> None:
    assert ids(F.apply_filters(ITEMS, None, SPEC)) == ["i-1", "i-2", "i-3"]
    assert ids(F.apply_filters(ITEMS, [], SPEC)) == ["i-1", "i-2", "i-3"]


def test_values_of_one_filter_are_ored() -> None:
    result = F.apply_filters(ITEMS, [flt("instance-state-name", "running", "stopped")], SPEC)
    assert ids(result) == ["i-1", "i-2"]


def test_filters_are_anded() -> None:
    filters = [flt("instance-state-name", "running", "pending"), flt("instance-type", "t2.*")]
    assert ids(F.apply_filters(ITEMS, filters, SPEC)) == ["i-1"]


def test_same_filter_twice_is_anded() -> None:
    filters = [flt("instance-state-name", "running"), flt("instance-state-name", "stopped")]
    assert F.apply_filters(ITEMS, filters, SPEC) == []


def test_numbers_compare_as_strings() -> None:
    assert ids(F.apply_filters(ITEMS, [flt("instance-state-code", "16")], SPEC)) == ["i-1"]
    assert ids(F.apply_filters(ITEMS, [flt("instance-state-code", "1?")], SPEC)) == ["i-1"]
    assert F.apply_filters(ITEMS, [flt("instance-state-code", "016")], SPEC) == []


def test_booleans_compare_as_true_false() -> None:
    vpcs = [{"VpcId": "vpc-1", "IsDefault": True}, {"VpcId": "vpc-2", "IsDefault": False}]
    spec = F.FILTERS["DescribeVpcs"]
    assert F.apply_filters(vpcs, [flt("is-default", "true")], spec) == vpcs[:1]
    assert F.apply_filters(vpcs, [flt("is-default", "false")], spec) == vpcs[1:]
    assert F.apply_filters(vpcs, [flt("is-default", "True")], spec) == []


def test_timestamps_match_by_day_wildcard() -> None:
    items = [
        instance("i-1", LaunchTime=datetime(2021, 9, 29, 11, 4, 43, tzinfo=UTC)),
        instance("i-2", LaunchTime=datetime(2021, 9, 30, 0, 0, 0, tzinfo=UTC)),
    ]
    assert ids(F.apply_filters(items, [flt("launch-time", "2021-09-29T*")], SPEC)) == ["i-1"]


def test_list_field_matches_if_any_element_matches() -> None:
    items = [
        instance("i-1", SecurityGroups=[{"GroupId": "sg-a"}, {"GroupId": "sg-b"}]),
        instance("i-2", SecurityGroups=[{"GroupId": "sg-c"}]),
        instance("i-3", SecurityGroups=[]),
    ]
    assert ids(F.apply_filters(items, [flt("instance.group-id", "sg-b")], SPEC)) == ["i-1"]
    assert ids(F.apply_filters(items, [flt("instance.group-id", "sg-?")], SPEC)) == ["i-1", "i-2"]


def test_missing_field_matches_nothing() -> None:
    items = [instance("i-1"), instance("i-2", KeyName="mykey")]
    assert ids(F.apply_filters(items, [flt("key-name", "*")], SPEC)) == ["i-2"]


def test_filter_without_values_matches_nothing() -> None:
    assert F.apply_filters(ITEMS, [{"Name": "instance-state-name"}], SPEC) == []
    assert F.apply_filters(ITEMS, [{"Name": "instance-state-name", "Values": []}], SPEC) == []


def test_reservation_fields_on_instance_items() -> None:
    items = [instance("i-1", ReservationId="r-1", OwnerId="111"), instance("i-2", ReservationId="r-2")]
    assert ids(F.apply_filters(items, [flt("reservation-id", "r-1")], SPEC)) == ["i-1"]
    assert ids(F.apply_filters(items, [flt("owner-id", "111")], SPEC)) == ["i-1"]


def test_network_interface_computed_fields() -> None:
    items = [
        instance("i-1", NetworkInterfaces=[{"NetworkInterfaceId": "eni-1"}]),
        instance("i-2", NetworkInterfaces=[]),
    ]
    found = F.apply_filters(items, [flt("network-interface.attachment.instance-id", "i-*")], SPEC)
    assert ids(found) == ["i-1"]
    found = F.apply_filters(items, [flt("network-interface.availability-zone", "us-east-1a")], SPEC)
    assert ids(found) == ["i-1"]


def test_security_group_permission_filters() -> None:
    groups = [
        {
            "GroupId": "sg-1",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
                {
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                    "UserIdGroupPairs": [{"GroupId": "sg-2"}],
                },
            ],
            "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        },
        {"GroupId": "sg-2", "IpPermissions": [], "IpPermissionsEgress": []},
    ]
    spec = F.FILTERS["DescribeSecurityGroups"]

    def sgs(*filters: dict[str, Any]) -> list[str]:
        return [g["GroupId"] for g in F.apply_filters(groups, list(filters), spec)]

    assert sgs(flt("ip-permission.from-port", "22")) == ["sg-1"]
    assert sgs(flt("ip-permission.cidr", "10.*")) == ["sg-1"]
    assert sgs(flt("ip-permission.group-id", "sg-2")) == ["sg-1"]
    assert sgs(flt("egress.ip-permission.cidr", "0.0.0.0/0")) == ["sg-1"]
    assert sgs(flt("egress.ip-permission.protocol", "-1")) == ["sg-1"]
    assert sgs(flt("ip-permission.cidr", "0.0.0.0/0")) == []
    # EC2: any combination of rules, not necessarily one rule, may match all filters.
    assert sgs(flt("ip-permission.from-port", "80"), flt("ip-permission.cidr", "10.0.0.0/8")) == ["sg-1"]


# --- tags ------------------------------------------------------------------------------------


TAGGED = [
    instance("i-1", Tags=[{"Key": "Name", "Value": "web"}, {"Key": "env", "Value": "prod"}]),
    instance("i-2", Tags=[{"Key": "Name", "Value": "db"}]),
    instance("i-3", Tags=[{"Key": "empty", "Value": ""}]),
    instance("i-4"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([flt("tag:Name", "web")], ["i-1"]),
        ([flt("tag:Name", "web", "db")], ["i-1", "i-2"]),
        ([flt("tag:Name", "*")], ["i-1", "i-2"]),
        ([flt("tag:name", "web")], []),  # tag keys are case-sensitive
        ([flt("tag:empty", "")], ["i-3"]),
        ([flt("tag-key", "env")], ["i-1"]),
        ([flt("tag-key", "*")], ["i-1", "i-2", "i-3"]),
        ([flt("tag-value", "db")], ["i-2"]),
        ([flt("tag-value", "")], ["i-3"]),
        ([flt("tag:Name", "web"), flt("tag:env", "prod")], ["i-1"]),
        ([flt("tag:Name", "db"), flt("tag:env", "prod")], []),
        ([flt("tag:", "web")], []),
    ],
)
def test_tag_filters(filters: list[dict[str, Any]], expected: list[str]) -> None:
    assert ids(F.apply_filters(TAGGED, filters, SPEC)) == expected


def test_tag_key_with_colons_and_wildcards_is_literal() -> None:
    items = [
        instance("i-1", Tags=[{"Key": "a:b*", "Value": "v"}]),
        instance("i-2", Tags=[{"Key": "a:bc", "Value": "v"}]),
    ]
    assert ids(F.apply_filters(items, [flt("tag:a:b*", "v")], SPEC)) == ["i-1"]


def test_network_interfaces_read_tag_set() -> None:
    enis = [
        {"NetworkInterfaceId": "eni-1", "TagSet": [{"Key": "role", "Value": "lb"}]},
        {"NetworkInterfaceId": "eni-2"},
    ]
    found = F.filter_action("DescribeNetworkInterfaces", enis, [flt("tag:role", "lb")])
    assert [e["NetworkInterfaceId"] for e in found] == ["eni-1"]


def test_describe_tags_items() -> None:
    tags = [
        {"Key": "Name", "Value": "web", "ResourceId": "i-1", "ResourceType": "instance"},
        {"Key": "Name", "Value": "data", "ResourceId": "vol-1", "ResourceType": "volume"},
        {"Key": "env", "Value": "prod", "ResourceId": "i-1", "ResourceType": "instance"},
    ]

    def found(*filters: dict[str, Any]) -> list[tuple[str, str]]:
        return [(t["ResourceId"], t["Key"]) for t in F.filter_action("DescribeTags", tags, list(filters))]

    assert found(flt("resource-type", "instance")) == [("i-1", "Name"), ("i-1", "env")]
    assert found(flt("key", "Name"), flt("value", "d*")) == [("vol-1", "Name")]
    assert found(flt("resource-id", "vol-1", "i-1"), flt("key", "env")) == [("i-1", "env")]
    assert found(flt("tag:Name", "web")) == [("i-1", "Name")]
    # tag-key/tag-value are aliases of key/value here (EC2 takes them; ec2api-tempest-plugin)
    assert found(flt("tag-key", "env")) == [("i-1", "env")]
    assert found(flt("tag-value", "d*")) == [("vol-1", "Name")]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["no-such-filter", "Instance-State-Name", "tag", "group-id", "tagx:Name"])
def test_unknown_filter_is_invalid_parameter_value(name: str) -> None:
    with pytest.raises(errors.InvalidFilter) as info:
        F.apply_filters(ITEMS, [flt(name, "x")], SPEC)
    assert info.value.code == "InvalidParameterValue"
    assert info.value.status == 400
    assert str(info.value) == f"The filter '{name}' is invalid"


def test_unknown_filter_is_rejected_even_without_items() -> None:
    with pytest.raises(errors.InvalidFilter):
        F.apply_filters([], [flt("bogus", "x")], SPEC)


def test_unknown_filter_after_a_good_one() -> None:
    with pytest.raises(errors.InvalidFilter, match="'bogus'"):
        F.apply_filters(ITEMS, [flt("instance-id", "i-1"), flt("bogus", "x")], SPEC)


def test_filter_without_name() -> None:
    with pytest.raises(errors.InvalidFilter, match="The filter 'null' is invalid"):
        F.apply_filters(ITEMS, [{"Values": ["x"]}], SPEC)
    with pytest.raises(errors.InvalidFilter, match="The filter '' is invalid"):
        F.apply_filters(ITEMS, [{"Name": "", "Values": ["x"]}], SPEC)


def test_untaggable_actions_reject_tag_filters() -> None:
    statuses = [{"InstanceId": "i-1", "InstanceState": {"Name": "running", "Code": 16}}]
    for name in ("tag:Name", "tag-key", "tag-value"):
        with pytest.raises(errors.InvalidFilter, match=re.escape(f"'{name}'")):
            F.filter_action("DescribeInstanceStatus", statuses, [flt(name, "x")])
    assert F.filter_action("DescribeInstanceStatus", statuses, [flt("instance-state-code", "16")]) == statuses


def test_taggable_false_disables_builtin_tag_filters() -> None:
    with pytest.raises(errors.InvalidFilter):
        F.apply_filters(TAGGED, [flt("tag:Name", "web")], SPEC, taggable=False)


def test_callable_fields() -> None:
    spec: F.FilterSpec = {"name-length": lambda item: len(item["Name"])}
    items = [{"Name": "abc"}, {"Name": "abcd"}]
    assert F.apply_filters(items, [flt("name-length", "4")], spec, taggable=False) == items[1:]


def test_compile_filters_gives_a_reusable_predicate() -> None:
    predicate = F.compile_filters([flt("instance-state-name", "running")], SPEC)
    assert [predicate(i) for i in ITEMS] == [True, False, False]


def test_filter_action_unknown_action() -> None:
    with pytest.raises(KeyError):
        F.filter_action("DescribeAccountAttributes", [], None)


# --- the tables against the botocore model ------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    loader = botocore.session.get_session().get_component("data_loader")
    return dict(loader.load_service_model("ec2", "service-2"))


def _leaf_path(shapes: dict[str, Any], shape: str, parts: list[str]) -> bool:
    """Whether ``parts`` walks from ``shape`` (through lists) to a non-structure member."""
    node = shapes[shape]
    while node["type"] == "list":
        node = shapes[node["member"]["shape"]]
    if not parts:
        return bool(node["type"] != "structure")
    if node["type"] != "structure" or parts[0] not in node["members"]:
        return False
    return _leaf_path(shapes, node["members"][parts[0]]["shape"], parts[1:])


def _output_item_shapes(model: dict[str, Any], action: str) -> set[str]:
    """The shapes of the list members of ``action``'s output (and of their nested lists)."""
    shapes = model["shapes"]
    found: set[str] = set()
    todo = [model["operations"][action]["output"]["shape"]]
    while todo:
        node = shapes[todo.pop()]
        for member in node.get("members", {}).values():
            target = shapes[member["shape"]]
            if target["type"] == "list" and shapes[target["member"]["shape"]]["type"] == "structure":
                found.add(target["member"]["shape"])
                todo.append(target["member"]["shape"])
    return found


def test_every_dotted_path_exists_in_the_item_shape(model: dict[str, Any]) -> None:
    bad = [
        (action, name, field)
        for action, spec in F.FILTERS.items()
        for name, field in spec.items()
        if isinstance(field, str)
        and not any(_leaf_path(model["shapes"], shape, field.split(".")) for shape in F.ITEM_SHAPES[action])
    ]
    assert bad == []


def test_item_shapes_are_the_actions_output_items(model: dict[str, Any]) -> None:
    assert set(F.ITEM_SHAPES) == set(F.FILTERS)
    for action, shapes in F.ITEM_SHAPES.items():
        assert set(shapes) <= _output_item_shapes(model, action), action


def test_tables_cover_actions_with_filters(model: dict[str, Any]) -> None:
    for action in F.FILTERS:
        members = model["shapes"][model["operations"][action]["input"]["shape"]]["members"]
        assert "Filters" in members or "Filter" in members, action  # DescribeNatGateways says Filter
    attrs = model["shapes"][model["operations"]["DescribeAccountAttributes"]["input"]["shape"]]
    assert "Filters" not in attrs["members"]


def _documented_filters(model: dict[str, Any], action: str) -> set[str]:
    members = model["shapes"][model["operations"][action]["input"]["shape"]]["members"]
    doc = (members.get("Filters") or members["Filter"])["documentation"]
    names = {html.unescape(n).strip() for n in re.findall(r"<li>\s*<p>\s*<code>([^<]+)</code>", doc)}
    severity_labels = {"informational", "low", "medium", "high", "critical"}  # a nested list
    return {n for n in names if n not in severity_labels}


def test_every_documented_filter_is_known(model: dict[str, Any]) -> None:
    missing: dict[str, list[str]] = {}
    for action, spec in F.FILTERS.items():
        known = set(spec) | set(F.NOT_SUPPORTED.get(action, ()))
        if action not in F.UNTAGGABLE or action == "DescribeTags":
            known |= {"tag:<key>", "tag", "tag-key", "tag-value"}
        gaps = sorted(_documented_filters(model, action) - known)
        if gaps:
            missing[action] = gaps
    assert missing == {}


def test_not_supported_filters_are_rejected() -> None:
    for action, names in F.NOT_SUPPORTED.items():
        for name in names:
            concrete = name.replace("<key>", "Name")
            with pytest.raises(errors.InvalidFilter):
                F.filter_action(action, [], [flt(concrete, "x")])


@pytest.mark.parametrize("action", sorted(F.FILTERS))
def test_every_table_entry_is_usable(action: str) -> None:
    """No entry crashes on an empty item or on an item with unrelated data."""
    for name in F.FILTERS[action]:
        concrete = name + "Name" if name.endswith(":") else name
        assert F.filter_action(action, [{}, {"Unrelated": [1, {"x": None}]}], [flt(concrete, "*")]) == []
