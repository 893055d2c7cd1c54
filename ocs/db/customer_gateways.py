"""Repository of customer gateways: records of VPN peers, as EC2 keeps them.

A deleted gateway stays visible (state ``deleted``) for an hour, as EC2 shows it,
and is no longer found by the other actions. Creating a gateway with the type, IP
address and BGP ASN of a live one returns that one (EC2 documents this).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ocs import ids
from ocs.db import tags as db_tags
from ocs.db.models.base import utcnow
from ocs.db.models.network import CustomerGateway

DELETED_VISIBLE = dt.timedelta(hours=1)


def _visible(account_id: str, now: dt.datetime) -> object:
    return (CustomerGateway.account_id == account_id) & or_(
        CustomerGateway.deleted_at.is_(None), CustomerGateway.deleted_at > now - DELETED_VISIBLE
    )


def get_live(s: Session, account_id: str, gateway_id: str) -> CustomerGateway:
    ids.validate("customer_gateway", gateway_id)
    row = s.get(CustomerGateway, gateway_id)
    if row is None or row.account_id != account_id or row.state == "deleted":
        raise ids.not_found("customer_gateway", gateway_id)
    return row


def gateway_exists(s: Session, account_id: str, gateway_id: str) -> bool:
    row = s.get(CustomerGateway, gateway_id)
    return row is not None and row.account_id == account_id and row.state != "deleted"


def list_gateways(
    s: Session, account_id: str, gateway_ids: Sequence[str] = (), now: dt.datetime | None = None
) -> list[CustomerGateway]:
    """The account's gateways (recently deleted ones too); each of ``gateway_ids`` must exist."""
    q = select(CustomerGateway).where(_visible(account_id, now or utcnow()))  # type: ignore[arg-type]
    rows = {r.id: r for r in s.scalars(q)}
    for gateway_id in gateway_ids:
        ids.validate("customer_gateway", gateway_id)
        if gateway_id not in rows:
            raise ids.not_found("customer_gateway", gateway_id)
    wanted = set(gateway_ids)
    return [rows[k] for k in sorted(rows) if not wanted or k in wanted]


def create_gateway(
    s: Session,
    account_id: str,
    *,
    bgp_asn: str,
    ip_address: str | None,
    gateway_type: str,
    device_name: str | None,
    certificate_arn: str | None,
    now: dt.datetime | None = None,
) -> tuple[CustomerGateway, bool]:
    """The new gateway and True, or the live one of the same type, address and ASN and False."""
    same = s.scalar(
        select(CustomerGateway).where(
            CustomerGateway.account_id == account_id,
            CustomerGateway.state != "deleted",
            CustomerGateway.gateway_type == gateway_type,
            CustomerGateway.ip_address == ip_address,
            CustomerGateway.bgp_asn == bgp_asn,
        )
    )
    if same is not None:
        return same, False
    row = CustomerGateway(
        id=ids.new_id("customer_gateway"),
        account_id=account_id,
        bgp_asn=bgp_asn,
        ip_address=ip_address,
        gateway_type=gateway_type,
        device_name=device_name,
        certificate_arn=certificate_arn,
        state="available",
        created_at=now or utcnow(),
    )
    s.add(row)
    s.flush()
    return row, True


def delete_gateway(s: Session, account_id: str, gateway_id: str, now: dt.datetime | None = None) -> None:
    row = get_live(s, account_id, gateway_id)
    row.state = "deleted"
    row.deleted_at = now or utcnow()
    db_tags.delete_all_for(s, row.id)
    s.flush()
