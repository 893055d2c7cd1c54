"""Repository of DHCP options sets and their association with VPCs.

Every account has the set EC2 makes for it (``default_for = 'account'``), made the
first time the account needs it (a new VPC is associated with it); its values are
the region's and are written by the caller (:func:`ocs.network.dhcp_options.region_default`).
A VPC's ``dhcp_options_id`` is a set's ID or ``default`` (no options).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import tags as db_tags
from ocs.db.models.base import utcnow
from ocs.db.models.network import DhcpOptions, Vpc
from ocs.db.owned import get_owned, owned_exists

NO_OPTIONS = "default"
ACCOUNT_DEFAULT = "account"


def get_options(s: Session, account_id: str, options_id: str | None) -> DhcpOptions:
    if not options_id:
        raise errors.MissingParameter(name="dhcpOptionsId")
    return get_owned(s, DhcpOptions, "dhcp_options", account_id, options_id)


def options_exist(s: Session, account_id: str, options_id: str) -> bool:
    return owned_exists(s, DhcpOptions, account_id, options_id)


def list_options(s: Session, account_id: str, options_ids: Sequence[str] = ()) -> list[DhcpOptions]:
    """The account's sets (those of ``options_ids`` if given, each must exist), by ID."""
    if options_ids:
        found = {o.id: o for o in (get_options(s, account_id, i) for i in options_ids)}
        return [found[k] for k in sorted(found)]
    q = select(DhcpOptions).where(DhcpOptions.account_id == account_id).order_by(DhcpOptions.id)
    return list(s.scalars(q))


def create_options(
    s: Session,
    account_id: str,
    configurations: Sequence[tuple[str, Sequence[str]]],
    now: dt.datetime | None = None,
) -> DhcpOptions:
    row = DhcpOptions(
        id=ids.new_id("dhcp_options"),
        account_id=account_id,
        configurations=[[k, list(v)] for k, v in configurations],
        created_at=now or utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def account_default(s: Session, account_id: str, now: dt.datetime | None = None) -> DhcpOptions:
    """The set EC2 made for the account: made now if it has none (once, even concurrently)."""
    q = select(DhcpOptions).where(
        DhcpOptions.account_id == account_id, DhcpOptions.default_for == ACCOUNT_DEFAULT
    )
    found = s.scalar(q)
    if found is not None:
        return found
    row = DhcpOptions(
        id=ids.new_id("dhcp_options"),
        account_id=account_id,
        configurations=[],
        default_for=ACCOUNT_DEFAULT,
        created_at=now or utcnow(),
    )
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        found = s.scalar(q.with_for_update(read=True))
        assert found is not None
        return found
    return row


def vpcs_using(s: Session, options_id: str) -> list[str]:
    return list(s.scalars(select(Vpc.id).where(Vpc.dhcp_options_id == options_id).order_by(Vpc.id)))


def delete_options(s: Session, account_id: str, options_id: str | None) -> None:
    """DependencyViolation while a VPC is associated with the set."""
    row = get_options(s, account_id, options_id)
    if vpcs_using(s, row.id):
        raise errors.InUse(f"The dhcpOptions '{row.id}' has dependencies and cannot be deleted.")
    db_tags.delete_all_for(s, row.id)
    s.delete(row)
    s.flush()


def associate(s: Session, account_id: str, options_id: str | None, vpc: Vpc) -> None:
    """``options_id`` a set of the account, or ``default`` (no options)."""
    if options_id == NO_OPTIONS:
        vpc.dhcp_options_id = NO_OPTIONS
    else:
        vpc.dhcp_options_id = get_options(s, account_id, options_id).id
    s.flush()
