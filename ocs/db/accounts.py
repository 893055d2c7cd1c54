"""Repository functions for accounts and their access keys.

Plain functions taking a :class:`~sqlalchemy.orm.Session` first; the caller owns
the transaction (see :func:`ocs.db.engine.transaction`). Errors are
:class:`ocs.errors.OcsError` subclasses with messages an operator can act on.

Secret access keys are stored only encrypted (:class:`ocs.crypto.SecretBox`);
:func:`create_access_key` returns the plaintext exactly once.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors
from ocs.crypto import SecretBox
from ocs.db.models import ACCESS_KEY_ACTIVE, ACCESS_KEY_INACTIVE, AccessKey, Account, Base, utcnow

LOG = logging.getLogger(__name__)

T = TypeVar("T", bound=Base)

ID_ATTEMPTS = 8
"""Fresh random ids tried before an insert gives up on collisions."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=,-]{0,63}$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32, as AWS key ids use


class AccountExists(errors.Duplicate):
    code = "EntityAlreadyExists"
    status = 409
    message = "An account named '{name}' already exists."


class AccountNotFound(errors.NotFound):
    code = "NoSuchEntity"
    status = 404
    message = "No account has the name or id '{id}'."


class AccessKeyNotFound(errors.NotFound):
    code = "NoSuchEntity"
    status = 404
    message = "The access key '{id}' does not exist."


# --- ids and secrets ---------------------------------------------------------


def new_account_id() -> str:
    """A random 12-digit account id, as AWS account ids look."""
    return f"{secrets.randbelow(10**12):012d}"


def new_access_key_id() -> str:
    """``AKIA`` and 16 base32 characters, as AWS long-term key ids look."""
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """40 characters of base64 (240 random bits), as AWS secret keys look."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def _violates(exc: IntegrityError, markers: Iterable[str]) -> bool:
    """Whether the driver's message names one of ``markers``.

    Constraint names are stable thanks to the naming convention; SQLite names
    ``table.column`` instead and MySQL calls every primary key ``PRIMARY``.
    """
    text = str(exc.orig)
    return any(m in text for m in markers)


def _insert_with_fresh_id(
    s: Session, make: Callable[[], T], id_markers: Iterable[str], on_other: Callable[[IntegrityError], None]
) -> T:
    """Insert ``make()``; on an id collision try again with a fresh object.

    ``on_other`` is called with any other integrity error (it should raise the
    right error); the error is re-raised if it does not.
    """
    markers = tuple(id_markers)
    for _ in range(ID_ATTEMPTS):
        obj = make()
        try:
            with s.begin_nested():
                s.add(obj)
        except IntegrityError as exc:
            if _violates(exc, markers):
                LOG.info("Generated id collided in %s; trying another", obj.__tablename__)
                continue
            on_other(exc)
            raise
        return obj
    raise errors.InternalError(f"No free id found for {make.__name__} after {ID_ATTEMPTS} attempts.")


# --- accounts ----------------------------------------------------------------


def validate_account_name(name: str) -> str:
    """``name`` if it is a valid account name, else InvalidParameterValue."""
    if not isinstance(name, str) or not _NAME.match(name) or _ACCOUNT_ID.match(name):
        raise errors.InvalidParameterValue(
            name="name",
            value=name,
            reason="An account name is 1 to 64 letters, digits and ._@+=,- starting "
            "with a letter or digit, and is not 12 digits (that is an account id).",
        )
    return name


def create_account(s: Session, name: str, *, new_id: Callable[[], str] = new_account_id) -> Account:
    """A new, enabled account named ``name``; AccountExists if the name is taken."""
    validate_account_name(name)
    if s.scalar(select(Account.id).where(Account.name == name)) is not None:
        raise AccountExists(name=name)

    def on_other(exc: IntegrityError) -> None:
        if _violates(exc, ("uq_accounts_name", "accounts.name")):
            raise AccountExists(name=name) from None

    def account() -> Account:
        return Account(id=new_id(), name=name, enabled=True, created_at=utcnow())

    acct = _insert_with_fresh_id(s, account, ("pk_accounts", "'PRIMARY'", "accounts.id"), on_other)
    LOG.info("Created account %s (%s)", acct.id, name)
    return acct


def get_account(s: Session, name_or_id: str) -> Account:
    """The account with this name or 12-digit id; AccountNotFound otherwise."""
    acct = s.scalar(select(Account).where(or_(Account.id == name_or_id, Account.name == name_or_id)))
    if acct is None:
        raise AccountNotFound(id=name_or_id)
    return acct


def list_accounts(s: Session) -> list[Account]:
    """Every account, by name."""
    return list(s.scalars(select(Account).order_by(Account.name)))


def set_account_enabled(s: Session, name_or_id: str, enabled: bool) -> Account:
    """Enable or disable an account; a disabled account's keys stop working."""
    acct = get_account(s, name_or_id)
    acct.enabled = enabled
    s.flush()
    LOG.info("Account %s %s", acct.id, "enabled" if enabled else "disabled")
    return acct


# --- access keys -------------------------------------------------------------


def create_access_key(
    s: Session, account: str, box: SecretBox, *, new_id: Callable[[], str] = new_access_key_id
) -> tuple[AccessKey, str]:
    """A new active key for ``account`` (name or id) and its plaintext secret.

    The plaintext is returned here and never again: only its encryption is stored.
    """
    acct = get_account(s, account)
    secret = new_secret_access_key()
    token = box.encrypt(secret)

    def access_key() -> AccessKey:
        return AccessKey(
            access_key_id=new_id(),
            account_id=acct.id,
            secret_encrypted=token,
            status=ACCESS_KEY_ACTIVE,
            created_at=utcnow(),
        )

    def on_other(exc: IntegrityError) -> None:
        if _violates(exc, ("fk_access_keys_account_id_accounts", "FOREIGN KEY")):
            raise AccountNotFound(id=account) from None

    key = _insert_with_fresh_id(
        s, access_key, ("pk_access_keys", "'PRIMARY'", "access_keys.access_key_id"), on_other
    )
    LOG.info("Created access key %s for account %s", key.access_key_id, acct.id)
    return key, secret


def get_access_key(s: Session, access_key_id: str) -> AccessKey:
    """The access key with this id; AccessKeyNotFound otherwise."""
    key = s.get(AccessKey, access_key_id)
    if key is None:
        raise AccessKeyNotFound(id=access_key_id)
    return key


def list_access_keys(s: Session, account: str | None = None) -> list[AccessKey]:
    """Every access key, or those of ``account`` (name or id), oldest first."""
    q = select(AccessKey).order_by(AccessKey.created_at, AccessKey.access_key_id)
    if account is not None:
        q = q.where(AccessKey.account_id == get_account(s, account).id)
    return list(s.scalars(q))


def revoke_access_key(s: Session, access_key_id: str) -> AccessKey:
    """Make a key Inactive: requests signed with it fail from now on."""
    key = get_access_key(s, access_key_id)
    key.status = ACCESS_KEY_INACTIVE
    s.flush()
    LOG.info("Revoked access key %s of account %s", key.access_key_id, key.account_id)
    return key


def delete_access_key(s: Session, access_key_id: str) -> None:
    """Remove a key for good."""
    s.delete(get_access_key(s, access_key_id))
    s.flush()
    LOG.info("Deleted access key %s", access_key_id)


def lookup_secret(s: Session, access_key_id: str, box: SecretBox) -> tuple[str, str] | None:
    """``(account_id, secret)`` of an active key of an enabled account, else None.

    Raises :class:`ocs.crypto.DecryptionError` when ``box`` holds the wrong key:
    that is a misconfiguration of the cloud, not a client's bad credentials.
    """
    row = s.execute(
        select(AccessKey.account_id, AccessKey.secret_encrypted)
        .join(Account, Account.id == AccessKey.account_id)
        .where(
            AccessKey.access_key_id == access_key_id,
            AccessKey.status == ACCESS_KEY_ACTIVE,
            Account.enabled.is_(True),
        )
    ).one_or_none()
    if row is None:
        return None
    return row.account_id, box.decrypt(row.secret_encrypted)


def touch_access_key(s: Session, access_key_id: str, when: dt.datetime | None = None) -> None:
    """Record that a key was used (``last_used_at``); unknown keys are ignored."""
    s.execute(
        update(AccessKey)
        .where(AccessKey.access_key_id == access_key_id)
        .values(last_used_at=when or utcnow())
    )
