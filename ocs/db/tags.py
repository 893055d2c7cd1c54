"""Repository of tags and ClientToken records.

Every function takes the caller's account id: an account only ever sees and
changes its own tags.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ocs.db.models.tags import ClientToken, Tag

TagList = list[dict[str, str]]


def set_tags(
    s: Session, account_id: str, resources: Sequence[tuple[str, str]], tags: Iterable[dict[str, str]]
) -> None:
    """Add or overwrite ``tags`` on each (resource_id, resource_type)."""
    tags = list(tags)
    for resource_id, resource_type in resources:
        for tag in tags:
            s.merge(
                Tag(
                    account_id=account_id,
                    resource_id=resource_id,
                    resource_type=resource_type,
                    key=tag["Key"],
                    value=tag.get("Value") or "",
                )
            )
    s.flush()


def delete_tags(
    s: Session, account_id: str, resource_ids: Sequence[str], tags: Sequence[Mapping[str, str | None]] | None
) -> None:
    """EC2's DeleteTags: no tags → all; a tag without Value → by key; with Value → only if equal."""
    base = delete(Tag).where(Tag.account_id == account_id, Tag.resource_id.in_(resource_ids))
    if not tags:
        s.execute(base)
        return
    for tag in tags:
        stmt = base.where(Tag.key == tag["Key"])
        value = tag.get("Value")
        if value is not None:
            stmt = stmt.where(Tag.value == value)
        s.execute(stmt)


def delete_all_for(s: Session, resource_id: str) -> None:
    """Forget every account's tags on a resource that no longer exists."""
    s.execute(delete(Tag).where(Tag.resource_id == resource_id))


def tags_for(s: Session, account_id: str, resource_ids: Iterable[str]) -> dict[str, TagList]:
    """``{resource_id: [{'Key': k, 'Value': v}, ...]}`` sorted by key; ids without tags map to []."""
    ids = list(dict.fromkeys(resource_ids))
    out: dict[str, TagList] = defaultdict(list)
    for start in range(0, len(ids), 500):
        rows = s.scalars(
            select(Tag)
            .where(Tag.account_id == account_id, Tag.resource_id.in_(ids[start : start + 500]))
            .order_by(Tag.resource_id, Tag.key)
        )
        for row in rows:
            out[row.resource_id].append({"Key": row.key, "Value": row.value})
    return {i: out.get(i, []) for i in ids}


def list_tags(s: Session, account_id: str) -> list[Tag]:
    """Every tag of the account, ordered by resource and key."""
    return list(s.scalars(select(Tag).where(Tag.account_id == account_id).order_by(Tag.resource_id, Tag.key)))


def count_tags(s: Session, account_id: str, resource_id: str) -> int:
    return len(
        s.scalars(select(Tag.key).where(Tag.account_id == account_id, Tag.resource_id == resource_id)).all()
    )


#: Prefix of a ClientToken record's ``response`` that names the resource the request
#: made instead of holding its answer (see :func:`hold_client_token`).
REFERENCE_PREFIX = "ref:"


def find_client_token(s: Session, account_id: str, action: str, token: str) -> ClientToken | None:
    return s.get(ClientToken, (account_id, action, token), populate_existing=True)


def save_client_token(
    s: Session, account_id: str, action: str, token: str, params_hash: str, response: str
) -> None:
    """Record the answer to a request with ``token`` (replacing a reference held for it)."""
    record = find_client_token(s, account_id, action, token)
    if record is None:
        s.add(
            ClientToken(
                account_id=account_id, action=action, token=token, params_hash=params_hash, response=response
            )
        )
    else:
        record.params_hash, record.response = params_hash, response
    s.flush()


def hold_client_token(
    s: Session, account_id: str, action: str, token: str, params_hash: str, resource_id: str
) -> None:
    """Record that the request with ``token`` made ``resource_id``, in the transaction that
    makes it, before the request has its answer: a retry with the token then finds the
    resource whatever became of the first request (answered, timed out, worker killed).
    The answer replaces the reference once it is known (:func:`save_client_token`)."""
    save_client_token(s, account_id, action, token, params_hash, REFERENCE_PREFIX + resource_id)


def reference_of(record: ClientToken) -> str | None:
    """The resource a held token names (:func:`hold_client_token`); None once answered."""
    if record.response.startswith(REFERENCE_PREFIX):
        return record.response[len(REFERENCE_PREFIX) :]
    return None


def forget_client_token(s: Session, account_id: str, action: str, token: str) -> None:
    """Drop the record of ``token``: its request failed and made nothing, so a retry runs anew."""
    s.execute(
        delete(ClientToken).where(
            ClientToken.account_id == account_id, ClientToken.action == action, ClientToken.token == token
        )
    )
