"""MaxResults/NextToken pagination: exactly-once paging, token checks, limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocs import errors
from ocs.api_ec2 import pagination as P

SCOPE = "DescribeInstances:123456789012:abc"


def items(*ids: str) -> list[dict[str, str]]:
    return [{"InstanceId": i} for i in ids]


def page(
    objs: list[dict[str, str]], max_results: int | None, token: str | None, **kw: Any
) -> tuple[list[str], str | None]:
    got, nxt = P.paginate(
        objs, max_results=max_results, next_token=token, key="InstanceId", token_scope=SCOPE, **kw
    )
    return [o["InstanceId"] for o in got], nxt


def walk(objs: list[dict[str, str]], size: int) -> list[str]:
    seen: list[str] = []
    token: str | None = None
    while True:
        got, token = page(objs, size, token)
        seen += got
        if token is None:
            return seen


# --- basic paging -----------------------------------------------------------------------------


def test_no_max_results_returns_everything_sorted() -> None:
    assert page(items("i-c", "i-a", "i-b"), None, None) == (["i-a", "i-b", "i-c"], None)


def test_pages_in_key_order_and_last_page_has_no_token() -> None:
    objs = items(*(f"i-{n:02d}" for n in range(12)))
    first, token = page(objs, 5, None)
    assert first == [f"i-{n:02d}" for n in range(5)]
    assert token
    second, token = page(objs, 5, token)
    assert second == [f"i-{n:02d}" for n in range(5, 10)]
    third, token = page(objs, 5, token)
    assert third == ["i-10", "i-11"]
    assert token is None


def test_exact_fit_has_no_token() -> None:
    objs = items(*(f"i-{n}" for n in range(5)))
    assert page(objs, 5, None)[1] is None
    assert page(objs, 6, None)[1] is None


def test_empty_items() -> None:
    assert page([], 5, None) == ([], None)


def test_token_without_max_results_returns_the_rest() -> None:
    objs = items(*(f"i-{n}" for n in range(8)))
    _, token = page(objs, 5, None)
    assert page(objs, None, token) == (["i-5", "i-6", "i-7"], None)


def test_empty_token_means_first_page() -> None:
    assert page(items("i-a", "i-b"), None, "")[0] == ["i-a", "i-b"]


def test_key_function() -> None:
    objs = [{"id": "b"}, {"id": "a"}]
    got, _ = P.paginate(objs, max_results=None, next_token=None, key=lambda o: o["id"], token_scope=SCOPE)
    assert got == [{"id": "a"}, {"id": "b"}]


def test_duplicate_keys_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unique"):
        page(items("i-a", "i-a"), 5, None)


def test_resuming_after_the_cursor_item_was_deleted() -> None:
    objs = items("i-1", "i-2", "i-3", "i-4", "i-5", "i-6", "i-7")
    _, token = page(objs, 5, None)
    remaining = [o for o in objs if o["InstanceId"] not in ("i-5", "i-6")]
    assert page(remaining, 5, token) == (["i-7"], None)


def test_everything_after_the_cursor_deleted() -> None:
    objs = items(*(f"i-{n}" for n in range(7)))
    _, token = page(objs, 5, None)
    assert page(objs[:5], 5, token) == ([], None)


# --- exactly once under concurrent changes ---------------------------------------------------------


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[str], int, list[tuple[list[str], list[str]]]]:
    alphabet = [f"i-{n:03d}" for n in range(60)]
    initial = draw(st.lists(st.sampled_from(alphabet), unique=True, max_size=40))
    size = draw(st.integers(min_value=5, max_value=12))
    changes = draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(alphabet), unique=True, max_size=5),  # added
                st.lists(st.sampled_from(alphabet), unique=True, max_size=5),  # removed
            ),
            max_size=10,
        )
    )
    return initial, size, changes


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_exactly_once_under_insertion_and_deletion(
    case: tuple[list[str], int, list[tuple[list[str], list[str]]]],
) -> None:
    initial, size, changes = case
    current = set(initial)
    ever: set[str] = set(current)
    always = set(current)
    seen: list[str] = []
    token: str | None = None
    step = 0
    while True:
        got, token = page(items(*current), size, token)
        assert len(got) <= size
        assert got == sorted(got)
        assert set(got) <= current
        seen += got
        if token is None:
            break
        assert len(got) == size  # only a full page can have a successor
        added, removed = changes[step] if step < len(changes) else ([], [])
        step += 1
        current = (current | set(added)) - set(removed)
        ever |= current
        always &= current
    assert len(seen) == len(set(seen)), "an item was returned twice"
    assert always <= set(seen), "an item present throughout was skipped"
    assert set(seen) <= ever
    assert seen == sorted(seen)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=50), st.integers(5, 20))
def test_static_walk_returns_every_item_once(keys: list[str], size: int) -> None:
    objs = [{"InstanceId": k} for k in keys]
    assert walk(objs, size) == sorted(keys)


# --- tokens ---------------------------------------------------------------------------------------


def test_token_round_trip() -> None:
    token = P.encode_token(SCOPE, "i-123")
    assert P.decode_token(token, SCOPE) == "i-123"
    assert "i-123" not in token  # opaque, at least to the eye
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("token", ["garbage", "!!!!", "e30", "a", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "é"])
def test_garbage_token(token: str) -> None:
    with pytest.raises(errors.InvalidPaginationToken) as info:
        page(items("i-a"), 5, token)
    assert info.value.code == "InvalidPaginationToken"
    assert info.value.status == 400
    assert str(info.value) == f"The token '{token}' is invalid."


def test_foreign_scope_token() -> None:
    token = P.encode_token("DescribeVolumes:123456789012:abc", "vol-1")
    with pytest.raises(errors.InvalidPaginationToken):
        page(items("i-a"), 5, token)


def test_tampered_token() -> None:
    token = P.encode_token(SCOPE, "i-100")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    payload, check = raw[:-8], raw[-8:]
    forged = payload.replace(b"i-100", b"i-000") + check
    forged_token = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    with pytest.raises(errors.InvalidPaginationToken):
        page(items("i-a"), 5, forged_token)


@given(st.integers(min_value=0, max_value=10**6))
def test_any_flipped_character_is_rejected_or_harmless(position: int) -> None:
    token = P.encode_token(SCOPE, "i-0123456789abcdef0")
    i = position % len(token)
    replacement = "A" if token[i] != "A" else "B"
    tampered = token[:i] + replacement + token[i + 1 :]
    try:
        assert P.decode_token(tampered, SCOPE) == "i-0123456789abcdef0"
    except errors.InvalidPaginationToken:
        pass


def test_token_with_wrong_version_or_shape() -> None:
    for doc in ({"v": 2, "s": SCOPE, "k": "x"}, {"v": 1, "s": SCOPE, "k": 5}, [1, 2]):
        payload = json.dumps(doc).encode()
        token = base64.urlsafe_b64encode(payload + P._checksum(payload)).decode()
        with pytest.raises(errors.InvalidPaginationToken):
            P.decode_token(token, SCOPE)


def test_token_scope_binds_action_and_account_not_filters() -> None:
    base = P.token_scope("DescribeInstances", "111")
    assert base != P.token_scope("DescribeInstances", "222")
    assert base != P.token_scope("DescribeVolumes", "111")


def test_token_resumes_by_position_under_other_filters() -> None:
    # A token encodes a position: reused with other filters it resumes after the same key
    # (ec2api-tempest-plugin test_tags_paging_with_different_filters).
    objs = [{"InstanceId": f"i-{n:02d}", "odd": n % 2} for n in range(10)]
    odd = [o for o in objs if o["odd"]]
    page, token = P.paginate(
        odd, max_results=2, next_token=None, key="InstanceId", token_scope=SCOPE, min_results=1
    )
    assert [o["InstanceId"] for o in page] == ["i-01", "i-03"]
    rest, _ = P.paginate(
        objs, max_results=3, next_token=token, key="InstanceId", token_scope=SCOPE, min_results=1
    )
    assert [o["InstanceId"] for o in rest] == ["i-04", "i-05", "i-06"]


# --- MaxResults limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "Value ( 1 ) for parameter maxResults is invalid. Expecting a value greater than 5."),
        (4, "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."),
        (0, "Value ( 0 ) for parameter maxResults is invalid. Expecting a value greater than 5."),
        (-3, "Value ( -3 ) for parameter maxResults is invalid. Expecting a value greater than 5."),
        (1001, "Value ( 1001 ) for parameter maxResults is invalid. Expecting a value less than 1000."),
    ],
)
def test_max_results_out_of_range(value: int, message: str) -> None:
    with pytest.raises(errors.InvalidParameterValue) as info:
        page(items("i-a"), value, None)
    assert info.value.code == "InvalidParameterValue"
    assert str(info.value) == message


def test_max_results_bounds_are_inclusive() -> None:
    assert page(items("i-a"), 5, None)[0] == ["i-a"]
    assert page(items("i-a"), 1000, None)[0] == ["i-a"]
    assert page(items("i-a"), 1, None, min_results=1)[0] == ["i-a"]


@pytest.mark.parametrize("value", ["abc", True, 2.5])
def test_max_results_not_an_integer(value: Any) -> None:
    with pytest.raises(errors.InvalidParameterValue):
        page(items("i-a"), value, None)


def test_max_results_is_checked_before_the_token() -> None:
    with pytest.raises(errors.InvalidParameterValue):
        page(items("i-a"), 2, "garbage")


# --- per-action rules -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    loader = botocore.session.get_session().get_component("data_loader")
    return dict(loader.load_service_model("ec2", "service-2"))


def _input_members(model: dict[str, Any], action: str) -> dict[str, Any]:
    return dict(model["shapes"][model["operations"][action]["input"]["shape"]]["members"])


def test_paginated_iff_the_input_has_max_results(model: dict[str, Any]) -> None:
    for action in P.LIMITS:
        members = _input_members(model, action)
        assert "MaxResults" in members and "NextToken" in members, action
    for action in P.NOT_PAGINATED:
        members = _input_members(model, action)
        assert "MaxResults" not in members and "NextToken" not in members, action
    assert not set(P.LIMITS) & P.NOT_PAGINATED


def test_limits_agree_with_the_model(model: dict[str, Any]) -> None:
    for action, (low, high) in P.LIMITS.items():
        shape = model["shapes"][_input_members(model, action)["MaxResults"]["shape"]]
        assert shape.get("min", low) == low, action
        assert shape.get("max", high) == high, action
        assert 1 <= low <= high


def test_id_exclusion_rules_match_the_model(model: dict[str, Any]) -> None:
    for action, (member, _) in P.IDS_EXCLUDE_MAX_RESULTS.items():
        members = _input_members(model, action)
        assert member in members
        assert "same request" in members["MaxResults"]["documentation"]


@pytest.mark.parametrize(
    ("action", "params", "wire"),
    [
        ("DescribeInstances", {"InstanceIds": ["i-1"], "MaxResults": 5}, "instancesSet"),
        ("DescribeInstanceStatus", {"InstanceIds": ["i-1"], "MaxResults": 5}, "instancesSet"),
        (
            "DescribeNetworkInterfaces",
            {"NetworkInterfaceIds": ["eni-1"], "MaxResults": 5},
            "networkInterfaceIdSet",
        ),
    ],
)
def test_max_results_with_ids_is_a_bad_combination(action: str, params: dict[str, Any], wire: str) -> None:
    with pytest.raises(errors.InvalidParameterCombination) as info:
        P.paginate_action(action, [], params, key="Id", scope=SCOPE)
    assert info.value.code == "InvalidParameterCombination"
    assert str(info.value) == f"The parameter {wire} cannot be used with the parameter maxResults"


def test_ids_without_max_results_are_fine() -> None:
    P.check_max_results_combination("DescribeInstances", {"InstanceIds": ["i-1"]})
    P.check_max_results_combination("DescribeInstances", {"InstanceIds": [], "MaxResults": 5})
    P.check_max_results_combination("DescribeVolumes", {"VolumeIds": ["vol-1"], "MaxResults": 5})


def test_paginate_action_uses_the_action_limits() -> None:
    objs = [{"Id": f"x-{n:03d}"} for n in range(150)]
    with pytest.raises(errors.InvalidParameterValue, match="less than 100"):
        P.paginate_action("DescribeInstanceTypes", objs, {"MaxResults": 101}, key="Id", scope=SCOPE)
    got, token = P.paginate_action("DescribeImages", objs, {"MaxResults": 1}, key="Id", scope=SCOPE)
    assert len(got) == 1 and token


def test_max_results_above_the_maximum_is_clamped_where_ec2_clamps() -> None:
    objs = [{"Id": f"x-{n:04d}"} for n in range(1005)]
    for action in sorted(P.CLAMPED):
        got, token = P.paginate_action(action, objs, {"MaxResults": 1100}, key="Id", scope=SCOPE)
        assert len(got) == 1000 and token
        with pytest.raises(errors.InvalidParameterValue, match="greater than 5"):
            P.paginate_action(action, objs, {"MaxResults": 4}, key="Id", scope=SCOPE)
    with pytest.raises(errors.InvalidParameterValue, match="less than 1000"):
        P.paginate_action("DescribeInstances", objs, {"MaxResults": 1100}, key="Id", scope=SCOPE)


def test_paginate_action_default_page_size() -> None:
    objs = [{"Id": f"x-{n:03d}"} for n in range(150)]
    got, token = P.paginate_action("DescribeInstanceTypes", objs, {}, key="Id", scope=SCOPE)
    assert len(got) == 100 and token
    rest, token = P.paginate_action(
        "DescribeInstanceTypes", objs, {"NextToken": token}, key="Id", scope=SCOPE
    )
    assert len(rest) == 50 and token is None
    got, token = P.paginate_action("DescribeInstances", objs, {}, key="Id", scope=SCOPE)
    assert len(got) == 150 and token is None


def test_paginate_action_not_paginated_returns_everything() -> None:
    objs = [{"KeyName": "b"}, {"KeyName": "a"}]
    assert P.paginate_action("DescribeKeyPairs", objs, {}, key="KeyName", scope=SCOPE) == (objs, None)


def test_paginate_action_walk() -> None:
    objs = [{"Id": f"vol-{n:03d}"} for n in range(23)]
    seen: list[str] = []
    params: dict[str, Any] = {"MaxResults": 5}
    while True:
        got, token = P.paginate_action("DescribeVolumes", objs, params, key="Id", scope=SCOPE)
        seen += [o["Id"] for o in got]
        if token is None:
            break
        params = {"MaxResults": 5, "NextToken": token}
    assert seen == sorted(o["Id"] for o in objs)
