"""Accounts (the tenants of the cloud) and their access keys."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ocs.db.models.base import Base, utcnow

ACCESS_KEY_ACTIVE: Final = "Active"
ACCESS_KEY_INACTIVE: Final = "Inactive"
ACCESS_KEY_STATUSES: Final = (ACCESS_KEY_ACTIVE, ACCESS_KEY_INACTIVE)


class Account(Base):
    """A tenant: owns every resource made with one of its access keys.

    ``id`` is a 12-digit string, as an AWS account id is; ``name`` is what
    operators type.
    """

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    access_keys: Mapped[list[AccessKey]] = relationship(
        back_populates="account",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AccessKey.created_at",
    )

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, name={self.name!r}, enabled={self.enabled!r})"


class AccessKey(Base):
    """An access key pair of an account, as AWS issues them.

    ``secret_encrypted`` is the secret access key encrypted with the cloud's
    :class:`ocs.crypto.SecretBox` (a Fernet token); the plaintext is shown to the
    operator once, when the key is made, and never stored.
    """

    __tablename__ = "access_keys"
    __table_args__ = (
        CheckConstraint(
            "status IN ('" + "', '".join(ACCESS_KEY_STATUSES) + "')",
            name="status",
        ),
    )

    access_key_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default=ACCESS_KEY_ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()

    account: Mapped[Account] = relationship(back_populates="access_keys")

    @property
    def active(self) -> bool:
        return self.status == ACCESS_KEY_ACTIVE

    def __repr__(self) -> str:  # never shows the (encrypted) secret
        return (
            f"AccessKey(access_key_id={self.access_key_id!r}, "
            f"account_id={self.account_id!r}, status={self.status!r})"
        )
