"""SSH key pairs of an account (CreateKeyPair, ImportKeyPair)."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow

KEY_TYPES: Final = ("rsa", "ed25519")

# Key names are case-sensitive on EC2; MySQL and MariaDB compare strings without
# case unless the column has a binary collation.
NAME_TYPE: Final = String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")


class KeyPair(Base):
    """The public half of a key pair; the private half is never stored.

    ``name`` is unique within the account (case-sensitive, as on EC2);
    ``public_key`` is one OpenSSH ``authorized_keys`` line; ``fingerprint`` is
    the one EC2 shows, which depends on whether EC2 made the key or it was
    imported (see :mod:`ocs.keys`). Tags live in the ``tags`` table.
    """

    __tablename__ = "key_pairs"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint("key_type IN ('" + "', '".join(KEY_TYPES) + "')", name="key_type"),
    )

    id: Mapped[str] = mapped_column(String(21), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(NAME_TYPE)
    key_type: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(Text)
    imported: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"KeyPair(id={self.id!r}, account_id={self.account_id!r}, name={self.name!r})"
