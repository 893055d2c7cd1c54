"""Looking up one account's resource by ID, the way every EC2 action does.

Another account's resource answers exactly as a missing one, so nothing leaks
that it exists.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ocs import ids

T = TypeVar("T")


def get_owned(s: Session, model: type[T], kind: str, account_id: str, resource_id: str) -> T:
    """The account's ``model`` row ``resource_id``; ``<Kind>.Malformed`` or ``<Kind>.NotFound``."""
    ids.validate(kind, resource_id)
    row: Any = s.get(model, resource_id)
    if row is None or row.account_id != account_id:
        raise ids.not_found(kind, resource_id)
    return row  # type: ignore[no-any-return]


def owned_exists(s: Session, model: type[Any], account_id: str, resource_id: str) -> bool:
    """Whether the account owns ``model`` row ``resource_id`` (for resources.register)."""
    row = s.get(model, resource_id)
    return row is not None and row.account_id == account_id
