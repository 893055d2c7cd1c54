"""Which resource an ID names, for actions that take any resource (CreateTags ...).

Each resource family registers, at import, the ID kind it owns (see
:mod:`ocs.ids`), the EC2 resource type it reports (``instance``, ``image``,
``key-pair`` ...) and a function telling whether the caller's account can see an
ID of that kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ocs import errors, ids

Exists = Callable[[Session, str, str], bool]


@dataclass(frozen=True)
class ResourceKind:
    kind: str  # key of ocs.ids.KINDS
    resource_type: str  # EC2's ResourceType / resource-type value
    exists: Exists  # (session, account_id, resource_id) -> visible to the account?


REGISTRY: dict[str, ResourceKind] = {}


def register(kind: str, resource_type: str, exists: Exists) -> None:
    """Declare that ``kind`` IDs are ``resource_type`` resources, visible per ``exists``."""
    REGISTRY[kind] = ResourceKind(kind, resource_type, exists)


def resolve(s: Session, account_id: str, resource_id: str) -> ResourceKind:
    """The kind of ``resource_id`` if the account can see it; else EC2's error for it."""
    kind = ids.kind_of(resource_id)
    if kind is None or kind not in REGISTRY:
        raise errors.InvalidParameterValue(f'Invalid id: "{resource_id}"', code="InvalidID")
    entry = REGISTRY[kind]
    if not entry.exists(s, account_id, resource_id):
        raise ids.not_found(kind, resource_id)
    return entry


def resource_type_of(resource_id: str) -> str | None:
    kind = ids.kind_of(resource_id)
    entry = REGISTRY.get(kind or "")
    return entry.resource_type if entry else None
