"""Tags on any resource, and ClientToken records for idempotent requests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow


class Tag(Base):
    """One key=value tag an account put on one of its resources.

    Tags belong to the account that set them, as on EC2: a tag on a shared image
    is visible to its owner only.
    """

    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_account_key", "account_id", "key"),)

    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    resource_type: Mapped[str] = mapped_column(String(64))


class ClientToken(Base):
    """The answer given to a request carrying a ClientToken, to give it again.

    ``params_hash`` identifies the request's parameters; a retry with the same
    token and other parameters is refused with IdempotentParameterMismatch.
    """

    __tablename__ = "client_tokens"

    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    params_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
