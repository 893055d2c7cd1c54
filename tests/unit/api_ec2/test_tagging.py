"""Tag validation, TagSpecifications and CreateTags/DeleteTags semantics."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocs import errors
from ocs.api_ec2 import tagging as T


def tag(key: Any, value: Any = "v") -> dict[str, Any]:
    return {"Key": key, "Value": value}


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def error_of(fn: Any, *args: Any, **kwargs: Any) -> errors.OcsError:
    with pytest.raises(errors.OcsError) as info:
        fn(*args, **kwargs)
    return info.value


# --- validate_tags -------------------------------------------------------------------------------


def test_valid_tags_keep_order() -> None:
    assert T.validate_tags([tag("b", "1"), tag("a", ""), tag("c", "x" * 256)]) == [
        {"Key": "b", "Value": "1"},
        {"Key": "a", "Value": ""},
        {"Key": "c", "Value": "x" * 256},
    ]


def test_key_length_limits() -> None:
    assert T.validate_tags([tag("k" * 128)])
    err = error_of(T.validate_tags, [tag("k" * 129)])
    assert err.code == "InvalidParameterValue"
    assert str(err) == "Tag key exceeds the maximum length of 128 characters"


def test_key_length_counts_characters_not_bytes() -> None:
    assert T.validate_tags([tag("é" * 128, "ü" * 256)])


@pytest.mark.parametrize("key", ["", None])
def test_empty_or_missing_key(key: Any) -> None:
    err = error_of(T.validate_tags, [{"Key": key, "Value": "v"}] if key is not None else [{"Value": "v"}])
    assert err.code == "InvalidParameterValue"
    assert str(err) == "Value (  ) for parameter Tag key is invalid. Tag key cannot be null or empty."


def test_value_too_long() -> None:
    err = error_of(T.validate_tags, [tag("k", "v" * 257)])
    assert err.code == "InvalidParameterValue"
    assert str(err) == "Tag value exceeds the maximum length of 256 characters"


def test_missing_value_is_not_empty() -> None:
    err = error_of(T.validate_tags, [{"Key": "k"}])
    assert err.code == "InvalidParameterValue"
    assert str(err) == "Tag value cannot be null. Use empty string instead."


@pytest.mark.parametrize("key", ["aws:foo", "AWS:foo", "Aws:cloudformation:stack-name", "aws:"])
def test_reserved_prefix(key: str) -> None:
    err = error_of(T.validate_tags, [tag(key)])
    assert err.code == "InvalidParameterValue"
    assert str(err) == (
        f"Value ( {key} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use"
    )
    err = error_of(T.validate_tags, [tag(key)], in_spec=True)
    assert str(err) == "Tag keys starting with 'aws:' are reserved for internal use"


@pytest.mark.parametrize("key", ["awsfoo", "aws-foo", "my:aws:key", "aws"])
def test_not_reserved(key: str) -> None:
    assert T.validate_tags([tag(key)])


def test_duplicate_keys_in_one_request() -> None:
    err = error_of(T.validate_tags, [tag("Name", "a"), tag("x"), tag("Name", "b")])
    assert err.code == "InvalidParameterValue"
    assert str(err) == "Duplicate tag key 'Name' specified."


def test_keys_are_case_sensitive() -> None:
    assert len(T.validate_tags([tag("Name"), tag("name")])) == 2


def test_fifty_tags_at_most() -> None:
    assert len(T.validate_tags([tag(f"k{i}") for i in range(50)])) == 50
    err = error_of(T.validate_tags, [tag(f"k{i}") for i in range(51)])
    assert err.code == "TagLimitExceeded"
    assert err.status == 400
    assert str(err) == "The maximum number of Tags for a resource has been reached."


def test_create_tags_needs_tags() -> None:
    for empty in (None, []):
        err = error_of(T.validate_tags, empty)
        assert err.code == "InvalidParameterValue"
        assert str(err) == "You must specify one or more tags to create"


# --- TagSpecifications ------------------------------------------------------------------------------


def spec(resource_type: str | None, *tag_list: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Tags": list(tag_list)}
    if resource_type is not None:
        out["ResourceType"] = resource_type
    return out


def test_specs_by_resource_type() -> None:
    params = {
        "TagSpecifications": [spec("instance", tag("Name", "web")), spec("volume", tag("Name", "disk"))]
    }
    assert T.tag_specifications_for(params, "instance", action="RunInstances") == [
        {"Key": "Name", "Value": "web"}
    ]
    assert T.tag_specifications_for(params, "volume", action="RunInstances") == [
        {"Key": "Name", "Value": "disk"}
    ]
    assert T.tag_specifications_for(params, "network-interface", action="RunInstances") == []


def test_no_specs() -> None:
    assert T.tag_specifications_for({}, "instance", action="RunInstances") == []
    assert T.tag_specifications({"TagSpecifications": []}, "RunInstances") == {}


def test_specs_of_one_type_are_merged() -> None:
    params = {"TagSpecifications": [spec("instance", tag("a", "1")), spec("instance", tag("b", "2"))]}
    assert T.tag_specifications_for(params, "instance", action="RunInstances") == tags(a="1", b="2")
    params = {"TagSpecifications": [spec("instance", tag("a", "1")), spec("instance", tag("a", "2"))]}
    assert str(error_of(T.tag_specifications, params, "RunInstances")) == "Duplicate tag key 'a' specified."


def test_resource_type_the_action_does_not_create() -> None:
    params = {"TagSpecifications": [spec("instance", tag("a")), spec("vpc", tag("a"))]}
    err = error_of(T.tag_specifications_for, params, "instance", action="RunInstances")
    assert err.code == "InvalidParameterValue"
    assert str(err) == "'vpc' is not a valid taggable resource type for this operation."
    err = error_of(
        T.tag_specifications_for, {"TagSpecifications": [spec("bogus", tag("a"))]}, "vpc", action="CreateVpc"
    )
    assert str(err) == "'bogus' is not a valid taggable resource type for this operation."


def test_resource_type_missing() -> None:
    err = error_of(T.tag_specifications, {"TagSpecifications": [spec(None, tag("a"))]}, "CreateVpc")
    assert err.code == "InvalidParameterValue"
    assert str(err) == "Tag specification resource type must have a value"


def test_spec_without_tags() -> None:
    for bad in ({"ResourceType": "vpc"}, {"ResourceType": "vpc", "Tags": []}):
        err = error_of(T.tag_specifications, {"TagSpecifications": [bad]}, "CreateVpc")
        assert err.code == "InvalidTagKey.Malformed"
        assert str(err) == "Tag specification must have at least one tag"


def test_spec_tags_are_validated() -> None:
    params = {"TagSpecifications": [spec("vpc", tag("aws:x"))]}
    assert str(error_of(T.tag_specifications, params, "CreateVpc")) == (
        "Tag keys starting with 'aws:' are reserved for internal use"
    )
    params = {"TagSpecifications": [spec("vpc", *[tag(f"k{i}") for i in range(51)])]}
    assert error_of(T.tag_specifications, params, "CreateVpc").code == "TagLimitExceeded"


def test_taggable_on_create_agrees_with_the_model() -> None:
    model = botocore.session.get_session().get_component("data_loader").load_service_model("ec2", "service-2")
    valid_types = set(model["shapes"]["ResourceType"]["enum"])
    for action, types in T.TAGGABLE_ON_CREATE.items():
        members = model["shapes"][model["operations"][action]["input"]["shape"]]["members"]
        assert "TagSpecifications" in members, action
        assert types <= valid_types, action
    assert set(T.RESOURCE_TYPE_BY_PREFIX.values()) <= valid_types


# --- CreateTags / DeleteTags ------------------------------------------------------------------------


def test_create_tags_adds_and_overwrites() -> None:
    assert T.apply_create_tags(tags(a="1", b="2"), tags(b="x", c="3")) == tags(a="1", b="x", c="3")
    assert T.apply_create_tags(None, tags(a="1")) == tags(a="1")
    assert T.apply_create_tags({"a": "1"}, tags(a="")) == tags(a="")


def test_create_tags_limit_counts_the_result() -> None:
    full = [tag(f"k{i}") for i in range(50)]
    assert len(T.apply_create_tags(full, [tag("k0", "new")])) == 50  # overwriting at the limit is fine
    err = error_of(T.apply_create_tags, full, [tag("k50")])
    assert err.code == "TagLimitExceeded"
    with_reserved = [*full, {"Key": "aws:cloudformation:stack-id", "Value": "x"}]
    assert len(T.apply_create_tags(with_reserved, [tag("k1", "y")])) == 51  # aws: tags don't count


def test_delete_without_value_deletes_regardless() -> None:
    assert T.apply_delete_tags(tags(a="1", b="2"), [{"Key": "a"}]) == tags(b="2")


def test_delete_with_value_deletes_only_on_match() -> None:
    assert T.apply_delete_tags(tags(a="1", b="2"), [{"Key": "a", "Value": "1"}]) == tags(b="2")
    assert T.apply_delete_tags(tags(a="1", b="2"), [{"Key": "a", "Value": "9"}]) == tags(a="1", b="2")


def test_delete_with_empty_value_deletes_only_empty() -> None:
    assert T.apply_delete_tags(
        tags(a="", b="2"), [{"Key": "a", "Value": ""}, {"Key": "b", "Value": ""}]
    ) == tags(b="2")


def test_delete_missing_key_is_not_an_error() -> None:
    assert T.apply_delete_tags(tags(a="1"), [{"Key": "zzz"}]) == tags(a="1")


def test_delete_all_user_tags_when_no_tags_given() -> None:
    existing = [*tags(a="1", b="2"), {"Key": "aws:autoscaling:groupName", "Value": "g"}]
    assert T.apply_delete_tags(existing, None) == [{"Key": "aws:autoscaling:groupName", "Value": "g"}]


def test_delete_never_removes_aws_tags() -> None:
    existing = [{"Key": "aws:x", "Value": "1"}]
    assert T.apply_delete_tags(existing, [{"Key": "aws:x"}]) == existing


def test_validate_delete_tags() -> None:
    assert T.validate_delete_tags(None) is None
    assert T.validate_delete_tags([{"Key": "a"}, {"Key": "b", "Value": ""}]) == [
        {"Key": "a", "Value": None},
        {"Key": "b", "Value": ""},
    ]
    assert "reserved" in str(error_of(T.validate_delete_tags, [{"Key": "aws:x"}]))
    assert "null or empty" in str(error_of(T.validate_delete_tags, [{"Key": ""}]))


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["", "1", "2"]), max_size=6),
    st.lists(
        st.tuples(st.sampled_from("abcdefg"), st.none() | st.sampled_from(["", "1", "2"])),
        max_size=6,
    ),
)
def test_delete_semantics_property(existing: dict[str, str], requests: list[tuple[str, str | None]]) -> None:
    to_delete = [{"Key": k, "Value": v} for k, v in requests]
    result = T.tags_to_dict(T.apply_delete_tags(existing, to_delete))
    for key, value in existing.items():
        deleted = any(k == key and (v is None or v == value) for k, v in requests)
        assert (key in result) is not deleted
        if key in result:
            assert result[key] == value
    assert set(result) <= set(existing)


# --- helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        ("i-0123456789abcdef0", "instance"),
        ("ami-12345678", "image"),
        ("vol-1", "volume"),
        ("snap-1", "snapshot"),
        ("sg-1", "security-group"),
        ("sgr-1", "security-group-rule"),
        ("subnet-1", "subnet"),
        ("eni-1", "network-interface"),
        ("eipalloc-1", "elastic-ip"),
        ("key-1", "key-pair"),
        ("r-1", None),
        ("nonsense", None),
    ],
)
def test_resource_type_of(resource_id: str, expected: str | None) -> None:
    assert T.resource_type_of(resource_id) == expected


def test_tag_descriptions() -> None:
    assert T.tag_descriptions("i-1", tags(Name="web")) == [
        {"Key": "Name", "Value": "web", "ResourceId": "i-1", "ResourceType": "instance"}
    ]
    assert T.tag_descriptions("x-1", {"a": "b"}, resource_type="custom")[0]["ResourceType"] == "custom"


def test_tags_to_dict() -> None:
    assert T.tags_to_dict(None) == {}
    assert T.tags_to_dict([{"Key": "a", "Value": "1"}, {"Key": "b"}]) == {"a": "1", "b": ""}
    assert T.tags_to_dict({"a": "1"}) == {"a": "1"}
