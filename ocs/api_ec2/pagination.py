"""EC2 ``MaxResults``/``NextToken`` pagination, written once.

Pages are cut from the items sorted by a stable, unique key (the resource ID), and
the token remembers only the last key served.  The next page starts after that
key, so across any sequence of calls every item that exists throughout is
returned exactly once, items removed meanwhile simply vanish, items added behind
the cursor are not repeated, and the page that exhausts the items carries no
token.

The token is opaque to clients: URL-safe base64 of a small JSON document
``{"v": 1, "s": scope, "k": last_key}`` followed by a checksum.  ``scope`` names
what the token belongs to (action and account, see :func:`token_scope`), so a
token replayed against another action or account is rejected.  It encodes a
position, not the request: a token reused with other filters (or without
MaxResults) resumes after the same key in the new result set, as EC2 and the
openstack ec2api-tempest-plugin's ``test_tags_paging_with_different_filters``
expect.  The checksum catches corruption and casual editing; it is not a secret
signature (a forged token can only move the cursor within the caller's own
result set).

Errors, as EC2 words them:

* A token that does not decode, fails its checksum or belongs to another scope:
  :class:`ocs.errors.InvalidPaginationToken` ("The token 'X' is invalid.").  The
  EC2 error-code list documents ``InvalidPaginationToken`` ("The specified
  pagination token is not valid or is expired"); some EC2 Describe calls have
  been seen to answer ``InvalidParameterValue`` instead ("The NextToken is
  invalid", aws/karpenter-provider-aws#6061; "Value (  ) for parameter NextToken
  is invalid. The token is invalid.", boto/boto3#2673).  An empty token is taken
  as no token, as most Describe calls do (boto/boto3#2673).
* ``MaxResults`` out of range: ``InvalidParameterValue`` "Value ( 1 ) for parameter
  maxResults is invalid. Expecting a value greater than 5." (aws/aws-sdk-ruby#2575;
  EC2 says "greater than" though the minimum itself is accepted); above the
  maximum, "... Expecting a value less than 1000." by symmetry, except for the
  actions in :data:`CLAMPED`, where EC2 returns a full page of the maximum size
  instead (the EC2 reference for DescribeVolumes and DescribeSnapshots: "if
  MaxResults is given a value larger than 1000, only 1000 results are returned";
  for DescribeTags the ec2api-tempest-plugin's ``test_invalid_max_results``:
  "value more than 1000 is not invalid but amazon returns 1000 elements").
* ``MaxResults`` with an ID list where EC2 forbids it:
  ``InvalidParameterCombination`` "The parameter instancesSet cannot be used with
  the parameter maxResults" (getmoto/moto#6282 quoting EC2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ocs import errors

T = TypeVar("T")
KeyFunc = Callable[[Any], str]

__all__ = [
    "CLAMPED",
    "DEFAULT_PAGE_SIZE",
    "IDS_EXCLUDE_MAX_RESULTS",
    "LIMITS",
    "NOT_PAGINATED",
    "check_max_results_combination",
    "decode_token",
    "encode_token",
    "paginate",
    "paginate_action",
    "token_scope",
    "validate_max_results",
]

LIMITS: dict[str, tuple[int, int]] = {
    # (min, max) of MaxResults.  From the botocore model's min/max where it has
    # them, else from the documented "between 5 and 1000".
    "DescribeInstances": (5, 1000),
    "DescribeInstanceStatus": (5, 1000),
    "DescribeInstanceTypes": (5, 100),  # model: DITMaxResults 5..100
    # No documented range; EC2's other image listings take 1..1000.
    "DescribeImages": (1, 1000),
    "DescribeTags": (5, 1000),
    "DescribeSecurityGroups": (5, 1000),
    "DescribeSecurityGroupRules": (5, 1000),
    "DescribeVpcs": (5, 1000),
    "DescribeSubnets": (5, 1000),
    # Older docs said 5..500 (larger values clamped); aws-cli sends 1000 by default.
    "DescribeVolumes": (5, 1000),
    "DescribeSnapshots": (5, 1000),
    "DescribeNetworkInterfaces": (5, 1000),
    "DescribeInternetGateways": (5, 1000),
    "DescribeRouteTables": (5, 100),
    "DescribeNatGateways": (5, 1000),
    "DescribeVolumeStatus": (5, 1000),
    # Documented: "up to a limit of 500"; no minimum is documented.
    "DescribeVolumesModifications": (5, 500),
    "DescribeDhcpOptions": (5, 1000),
}
"""MaxResults range of each paginated Describe action (its input has MaxResults)."""

NOT_PAGINATED: frozenset[str] = frozenset(
    {
        "DescribeRegions",
        "DescribeAvailabilityZones",
        "DescribeAccountAttributes",
        "DescribeKeyPairs",
        "DescribeAddresses",
        "DescribeCustomerGateways",
    }
)
"""Describe actions whose input has no MaxResults/NextToken: always one page."""

CLAMPED: frozenset[str] = frozenset(
    {"DescribeTags", "DescribeVolumes", "DescribeSnapshots", "DescribeVolumeStatus"}
)
"""Actions that serve a MaxResults above their maximum as the maximum (not an error)."""

DEFAULT_PAGE_SIZE: dict[str, int] = {"DescribeInstanceTypes": 100}
"""Page size when MaxResults is absent; other actions then return everything."""

IDS_EXCLUDE_MAX_RESULTS: dict[str, tuple[str, str]] = {
    # action: (request member, the name EC2 uses for it in the error message)
    "DescribeInstances": ("InstanceIds", "instancesSet"),
    "DescribeInstanceStatus": ("InstanceIds", "instancesSet"),
    "DescribeNetworkInterfaces": ("NetworkInterfaceIds", "networkInterfaceIdSet"),
}
"""Where the model says "You cannot specify this parameter and the ... IDs parameter"."""

_CHECK_SALT = b"ocs-ec2-next-token-v1"


# --- tokens -----------------------------------------------------------------------


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(_CHECK_SALT + payload).digest()[:8]


def encode_token(scope: str, last_key: str) -> str:
    """An opaque NextToken resuming after ``last_key`` within ``scope``."""
    payload = json.dumps({"v": 1, "s": scope, "k": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _checksum(payload)).decode().rstrip("=")


def decode_token(token: str, scope: str) -> str:
    """The last key remembered by ``token``; InvalidPaginationToken if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload, check = raw[:-8], raw[-8:]
        if len(raw) <= 8 or check != _checksum(payload):
            raise ValueError("checksum")
        doc = json.loads(payload)
        if doc.get("v") != 1 or doc.get("s") != scope or not isinstance(doc.get("k"), str):
            raise ValueError("scope")
        return str(doc["k"])
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
        raise errors.InvalidPaginationToken(token=token) from exc


def token_scope(action: str, account: str) -> str:
    """A scope binding tokens to ``action`` and ``account`` (not to the filters)."""
    return f"{action}:{account}"


# --- validation -----------------------------------------------------------------------


def validate_max_results(
    max_results: Any, min_results: int, max_results_limit: int, *, clamp: bool = False
) -> int:
    """``max_results`` as an int within ``[min_results, max_results_limit]``, or raise.

    With ``clamp``, a value above the maximum is the maximum.
    """
    if isinstance(max_results, bool) or not isinstance(max_results, int | str):
        raise errors.InvalidParameterValue(
            value=f" {max_results} ", name="maxResults", reason="Expecting an integer."
        )
    try:
        value = int(max_results)
    except ValueError as exc:
        raise errors.InvalidParameterValue(
            value=f" {max_results} ", name="maxResults", reason="Expecting an integer."
        ) from exc
    if clamp and value > max_results_limit:
        return max_results_limit
    if value < min_results:
        reason = f"Expecting a value greater than {min_results}."
    elif value > max_results_limit:
        reason = f"Expecting a value less than {max_results_limit}."
    else:
        return value
    raise errors.InvalidParameterValue(value=f" {value} ", name="maxResults", reason=reason)


def check_max_results_combination(action: str, params: Mapping[str, Any]) -> None:
    """InvalidParameterCombination if ``params`` has both MaxResults and the action's IDs."""
    rule = IDS_EXCLUDE_MAX_RESULTS.get(action)
    if rule is None or params.get("MaxResults") is None:
        return
    member, wire_name = rule
    if params.get(member):
        raise errors.InvalidParameterCombination(
            reason=f"The parameter {wire_name} cannot be used with the parameter maxResults"
        )


# --- paging ---------------------------------------------------------------------------


def _key_func(key: str | KeyFunc) -> KeyFunc:
    if callable(key):
        return key
    field = key
    return lambda item: str(item[field])


def paginate(
    items: Sequence[T],
    *,
    max_results: int | None,
    next_token: str | None,
    key: str | KeyFunc,
    min_results: int = 5,
    max_results_limit: int = 1000,
    clamp: bool = False,
    token_scope: str,
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token for the next page (None on the last page).

    ``key`` is a field name or a function giving each item's unique, stable sort
    key (its ID).  With neither ``max_results`` nor ``next_token`` every item is
    returned; with only a token, everything after it.
    """
    limit = None
    if max_results is not None:
        limit = validate_max_results(max_results, min_results, max_results_limit, clamp=clamp)
    key_of = _key_func(key)
    ordered = sorted(items, key=key_of)
    keys = [key_of(item) for item in ordered]
    if any(a == b for a, b in zip(keys, keys[1:], strict=False)):
        raise ValueError("pagination keys must be unique")
    start = 0
    if next_token:
        last = decode_token(next_token, token_scope)
        start = next((i for i, k in enumerate(keys) if k > last), len(keys))
    if limit is None or start + limit >= len(ordered):
        return list(ordered[start:]), None
    page = list(ordered[start : start + limit])
    return page, encode_token(token_scope, keys[start + limit - 1])


def paginate_action(
    action: str,
    items: Sequence[T],
    params: Mapping[str, Any],
    *,
    key: str | KeyFunc,
    scope: str,
) -> tuple[list[T], str | None]:
    """:func:`paginate` with ``action``'s rules: its range, default page and ID rule."""
    if action in NOT_PAGINATED:
        return list(items), None
    check_max_results_combination(action, params)
    low, high = LIMITS[action]
    max_results = params.get("MaxResults")
    if max_results is None:
        max_results = DEFAULT_PAGE_SIZE.get(action)
    return paginate(
        items,
        max_results=max_results,
        next_token=params.get("NextToken"),
        key=key,
        min_results=low,
        max_results_limit=high,
        clamp=action in CLAMPED,
        token_scope=scope,
    )
