"""Repository of key pairs. Every function is scoped to one account.

Another account's key pair is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import tags as db_tags
from ocs.db.models import utcnow
from ocs.db.models.keypairs import KeyPair

LOG = logging.getLogger(__name__)

ID_ATTEMPTS = 8
RESOURCE_TYPE = "key-pair"


def duplicate(name: str) -> errors.OcsError:
    """EC2's error for a name the account already uses."""
    return errors.Duplicate(f"The keypair '{name}' already exists.", code="InvalidKeyPair.Duplicate", id=name)


def name_not_found(name: str) -> errors.OcsError:
    """EC2's error for a key pair name the account does not have."""
    return errors.NotFound(f"The key pair '{name}' does not exist", code="InvalidKeyPair.NotFound", id=name)


def find_key_pair(s: Session, account_id: str, name: str) -> KeyPair | None:
    return s.scalar(select(KeyPair).where(KeyPair.account_id == account_id, KeyPair.name == name))


def get_key_pair(s: Session, account_id: str, name: str) -> KeyPair:
    """The account's key pair called ``name``; ``InvalidKeyPair.NotFound`` otherwise.

    This is what RunInstances' ``KeyName`` needs.
    """
    row = find_key_pair(s, account_id, name)
    if row is None:
        raise name_not_found(name)
    return row


def find_key_pair_by_id(s: Session, account_id: str, key_pair_id: str) -> KeyPair | None:
    row = s.get(KeyPair, key_pair_id)
    return row if row is not None and row.account_id == account_id else None


def get_key_pair_by_id(s: Session, account_id: str, key_pair_id: str) -> KeyPair:
    """The account's key pair with this ID; ``*.Malformed`` or ``*.NotFound`` otherwise."""
    ids.validate("key_pair", key_pair_id)
    row = find_key_pair_by_id(s, account_id, key_pair_id)
    if row is None:
        raise ids.not_found("key_pair", key_pair_id)
    return row


def key_pair_exists(s: Session, account_id: str, key_pair_id: str) -> bool:
    """Whether the account has a key pair with this ID (for CreateTags & co.)."""
    return find_key_pair_by_id(s, account_id, key_pair_id) is not None


def list_key_pairs(s: Session, account_id: str) -> list[KeyPair]:
    """Every key pair of the account, by name."""
    return list(
        s.scalars(select(KeyPair).where(KeyPair.account_id == account_id).order_by(KeyPair.name, KeyPair.id))
    )


def create_key_pair(
    s: Session,
    account_id: str,
    name: str,
    *,
    key_type: str,
    fingerprint: str,
    public_key: str,
    imported: bool,
    created_at: dt.datetime | None = None,
    new_id: Callable[[], str] = lambda: ids.new_id("key_pair"),
) -> KeyPair:
    """Store a key pair; ``InvalidKeyPair.Duplicate`` if the account uses ``name``."""
    if find_key_pair(s, account_id, name) is not None:
        raise duplicate(name)
    for _ in range(ID_ATTEMPTS):
        row = KeyPair(
            id=new_id(),
            account_id=account_id,
            name=name,
            key_type=key_type,
            fingerprint=fingerprint,
            public_key=public_key,
            imported=imported,
            created_at=created_at or utcnow(),
        )
        if s.get(KeyPair, row.id) is not None:
            continue
        try:
            with s.begin_nested():
                s.add(row)
        except IntegrityError:
            # A concurrent request took the name (or, far less likely, the id).
            if find_key_pair(s, account_id, name) is not None:
                raise duplicate(name) from None
            continue
        LOG.info("Created key pair %s (%s) for account %s", row.id, name, account_id)
        return row
    raise errors.InternalError(f"No free key pair id found after {ID_ATTEMPTS} attempts.")


def delete_key_pairs(s: Session, rows: Sequence[KeyPair]) -> None:
    """Remove key pairs and their tags."""
    for row in rows:
        db_tags.delete_all_for(s, row.id)
        s.delete(row)
        LOG.info("Deleted key pair %s (%s) of account %s", row.id, row.name, row.account_id)
    s.flush()
