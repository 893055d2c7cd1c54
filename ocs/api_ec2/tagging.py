"""Tags as EC2 validates and applies them: CreateTags, DeleteTags, TagSpecifications.

Tags travel as botocore ``Tag`` dicts (``{'Key': ..., 'Value': ...}``), in order.
Rules and the errors EC2 answers with (evidence in brackets):

* at most 50 user tags per resource -> ``TagLimitExceeded`` "The maximum number
  of Tags for a resource has been reached." [EC2 error-code list; moto]
* a key is 1..128 characters -> ``InvalidParameterValue`` "Value (  ) for
  parameter Tag key is invalid. Tag key cannot be null or empty."
  [aws/aws-cli#3283] / "Tag key exceeds the maximum length of 128 characters"
  (the botocore model's Tag doc says 127; the EC2 user guide and the brief say 128)
* a value is 0..256 characters (absent is not empty) -> "Tag value exceeds the
  maximum length of 256 characters" [iriusrisk/GoCD-EC2-Elastic-Agent-Plugin#24] /
  "Tag value cannot be null. Use empty string instead." [moto]
* keys starting with ``aws:`` (any case) are reserved -> CreateTags: "Value (
  aws:x ) for parameter key is invalid. Tag keys starting with 'aws:' are
  reserved for internal use"; TagSpecifications: "Tag keys starting with 'aws:'
  are reserved for internal use" [cloud-custodian#5975, ec2-spot-converter#13]
* one key twice in one request -> "Duplicate tag key 'k' specified."
  [scylla-cluster-tests#1532, cloud-custodian#3792]
* CreateTags without tags -> "You must specify one or more tags to create"
  [dask/dask-ec2#90]
* a TagSpecification without ResourceType -> "Tag specification resource type
  must have a value" [yegor256/rultor#1991]; with a type the action does not
  create -> "'network-interface' is not a valid taggable resource type for this
  operation." [aws/aws-cli#2865]; without tags -> ``InvalidTagKey.Malformed``
  "Tag specification must have at least one tag" [hashicorp/packer#11311]

DeleteTags: a key with no ``Value`` deletes the tag whatever its value; with a
``Value`` (also ``""``) only if the value matches; no ``Tags`` at all deletes every
user tag.  ``aws:`` tags are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ocs import errors

Tag = dict[str, str]

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_TAGS_PER_RESOURCE",
    "MAX_VALUE_LENGTH",
    "RESOURCE_TYPE_BY_PREFIX",
    "TAGGABLE_ON_CREATE",
    "apply_create_tags",
    "apply_delete_tags",
    "resource_type_of",
    "tag_descriptions",
    "tag_specifications",
    "tag_specifications_for",
    "tags_to_dict",
    "validate_delete_tags",
    "validate_tags",
]

MAX_TAGS_PER_RESOURCE = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
RESERVED_PREFIX = "aws:"

TAGGABLE_ON_CREATE: dict[str, frozenset[str]] = {
    "RunInstances": frozenset({"instance", "volume", "network-interface"}),
    "CreateVolume": frozenset({"volume"}),
    "CreateSnapshot": frozenset({"snapshot"}),
    "CreateSnapshots": frozenset({"snapshot"}),
    "CopySnapshot": frozenset({"snapshot"}),
    "CreateImage": frozenset({"image", "snapshot"}),
    "CopyImage": frozenset({"image", "snapshot"}),
    "RegisterImage": frozenset({"image"}),
    "CreateKeyPair": frozenset({"key-pair"}),
    "ImportKeyPair": frozenset({"key-pair"}),
    "CreateSecurityGroup": frozenset({"security-group"}),
    "AuthorizeSecurityGroupIngress": frozenset({"security-group-rule"}),
    "AuthorizeSecurityGroupEgress": frozenset({"security-group-rule"}),
    "CreateVpc": frozenset({"vpc"}),
    "CreateSubnet": frozenset({"subnet"}),
    "AllocateAddress": frozenset({"elastic-ip"}),
    "CreateNetworkInterface": frozenset({"network-interface"}),
    "CreateInternetGateway": frozenset({"internet-gateway"}),
    "CreateRouteTable": frozenset({"route-table"}),
    "CreateNatGateway": frozenset({"natgateway"}),
    "CreateNetworkAcl": frozenset({"network-acl"}),
    "CreateDhcpOptions": frozenset({"dhcp-options"}),
    "CreateCustomerGateway": frozenset({"customer-gateway"}),
    "CreateLaunchTemplate": frozenset({"launch-template"}),
}
"""Resource types each action accepts in TagSpecifications.

RunInstances also accepts ``spot-instances-request`` on EC2; OCS has no Spot, so
it is rejected like any other type the action does not create.
"""

RESOURCE_TYPE_BY_PREFIX: dict[str, str] = {
    "i": "instance",
    "ami": "image",
    "aki": "image",
    "ari": "image",
    "vol": "volume",
    "snap": "snapshot",
    "sg": "security-group",
    "sgr": "security-group-rule",
    "vpc": "vpc",
    "subnet": "subnet",
    "eni": "network-interface",
    "eipalloc": "elastic-ip",
    "key": "key-pair",
    "igw": "internet-gateway",
    "rtb": "route-table",
    "nat": "natgateway",
    "acl": "network-acl",
    "dopt": "dhcp-options",
    "cgw": "customer-gateway",
    "lt": "launch-template",
}
"""DescribeTags ``ResourceType`` of a resource, from its ID prefix."""


def resource_type_of(resource_id: str) -> str | None:
    """``instance`` for ``i-...`` and so on; None for an ID that cannot carry tags."""
    prefix, sep, _ = resource_id.partition("-")
    return RESOURCE_TYPE_BY_PREFIX.get(prefix) if sep else None


def _invalid(message: str, code: str | None = None) -> errors.InvalidParameterValue:
    return errors.InvalidParameterValue(message, code=code)


def _is_reserved(key: str) -> bool:
    return key.lower().startswith(RESERVED_PREFIX)


def _check_key(key: Any, *, in_spec: bool) -> str:
    if not isinstance(key, str) or not key:
        shown = "" if key is None else key
        raise _invalid(
            f"Value ( {shown} ) for parameter Tag key is invalid. Tag key cannot be null or empty."
        )
    if len(key) > MAX_KEY_LENGTH:
        raise _invalid(f"Tag key exceeds the maximum length of {MAX_KEY_LENGTH} characters")
    if _is_reserved(key):
        reason = "Tag keys starting with 'aws:' are reserved for internal use"
        raise _invalid(reason if in_spec else f"Value ( {key} ) for parameter key is invalid. {reason}")
    return key


def _check_value(value: Any) -> str:
    if value is None:
        raise _invalid("Tag value cannot be null. Use empty string instead.")
    text = str(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise _invalid(f"Tag value exceeds the maximum length of {MAX_VALUE_LENGTH} characters")
    return text


def _tag_limit_exceeded() -> errors.OcsError:
    return errors.LimitExceeded(
        code="TagLimitExceeded", reason="The maximum number of Tags for a resource has been reached."
    )


def validate_tags(tags: Sequence[Mapping[str, Any]] | None, *, in_spec: bool = False) -> list[Tag]:
    """The request's tags, checked as CreateTags (or a TagSpecification if ``in_spec``) does."""
    if not tags:
        if in_spec:
            raise _invalid("Tag specification must have at least one tag", code="InvalidTagKey.Malformed")
        raise _invalid("You must specify one or more tags to create")
    checked: dict[str, str] = {}
    for tag in tags:
        key = _check_key(tag.get("Key"), in_spec=in_spec)
        value = _check_value(tag.get("Value"))
        if key in checked:
            raise _invalid(f"Duplicate tag key '{key}' specified.")
        checked[key] = value
    if len(checked) > MAX_TAGS_PER_RESOURCE:
        raise _tag_limit_exceeded()
    return [{"Key": k, "Value": v} for k, v in checked.items()]


def tags_to_dict(tags: Iterable[Mapping[str, Any]] | Mapping[str, str] | None) -> dict[str, str]:
    """``{key: value}`` from a Tag list (or a mapping, returned as a copy)."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t.get("Value") or "") for t in tags}


# --- TagSpecifications -------------------------------------------------------------------


def tag_specifications(params: Mapping[str, Any], action: str) -> dict[str, list[Tag]]:
    """All TagSpecifications of ``action``'s request, checked, as ``{resource type: tags}``.

    Specs naming the same type are merged (a key repeated across them is a duplicate).
    """
    allowed = TAGGABLE_ON_CREATE.get(action, frozenset())
    merged: dict[str, list[Mapping[str, Any]]] = {}
    for spec in params.get("TagSpecifications") or []:
        resource_type = spec.get("ResourceType")
        if not resource_type:
            raise _invalid("Tag specification resource type must have a value")
        if resource_type not in allowed:
            raise _invalid(f"'{resource_type}' is not a valid taggable resource type for this operation.")
        if not spec.get("Tags"):
            validate_tags(None, in_spec=True)
        merged.setdefault(resource_type, []).extend(spec["Tags"])
    return {rtype: validate_tags(tags, in_spec=True) for rtype, tags in merged.items()}


def tag_specifications_for(params: Mapping[str, Any], resource_type: str, *, action: str) -> list[Tag]:
    """The checked tags that ``action``'s request asks for on new ``resource_type`` resources.

    Validates every spec of the request, so a bad spec for another type still fails.
    """
    return tag_specifications(params, action).get(resource_type, [])


# --- CreateTags / DeleteTags -----------------------------------------------------------------


def apply_create_tags(
    existing: Iterable[Mapping[str, Any]] | Mapping[str, str] | None, new_tags: Sequence[Mapping[str, Any]]
) -> list[Tag]:
    """The resource's tags after CreateTags: new keys added, existing keys overwritten.

    ``new_tags`` must already have passed :func:`validate_tags`.  Raises
    TagLimitExceeded if the resource would hold more than 50 user tags.
    """
    current = tags_to_dict(existing)
    current.update(tags_to_dict(new_tags))
    if sum(1 for key in current if not _is_reserved(key)) > MAX_TAGS_PER_RESOURCE:
        raise _tag_limit_exceeded()
    return [{"Key": k, "Value": v} for k, v in current.items()]


def validate_delete_tags(tags: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str | None]] | None:
    """DeleteTags' ``Tags`` checked; None means "every user tag".  Value None = any value."""
    if tags is None:
        return None
    checked: list[dict[str, str | None]] = []
    for tag in tags:
        key = _check_key(tag.get("Key"), in_spec=False)
        value = tag.get("Value")
        checked.append({"Key": key, "Value": None if value is None else str(value)})
    return checked


def apply_delete_tags(
    existing: Iterable[Mapping[str, Any]] | Mapping[str, str] | None,
    to_delete: Sequence[Mapping[str, Any]] | None,
) -> list[Tag]:
    """The resource's tags after DeleteTags with ``to_delete`` (see the module docstring)."""
    current = tags_to_dict(existing)
    if to_delete is None:
        return [{"Key": k, "Value": v} for k, v in current.items() if _is_reserved(k)]
    for tag in to_delete:
        key, value = tag["Key"], tag.get("Value")
        if _is_reserved(key) or key not in current:
            continue
        if value is None or current[key] == value:
            del current[key]
    return [{"Key": k, "Value": v} for k, v in current.items()]


def tag_descriptions(
    resource_id: str, tags: Iterable[Mapping[str, Any]] | Mapping[str, str], resource_type: str | None = None
) -> list[dict[str, str]]:
    """DescribeTags items (``TagDescription``) for one resource's tags."""
    rtype = resource_type or resource_type_of(resource_id) or ""
    return [
        {"Key": k, "Value": v, "ResourceId": resource_id, "ResourceType": rtype}
        for k, v in tags_to_dict(tags).items()
    ]
