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


def find_client_token(s: Session, account_id: str, action: str, token: str) -> ClientToken | None:
    return s.get(ClientToken, (account_id, action, token))


def save_client_token(
    s: Session, account_id: str, action: str, token: str, params_hash: str, response: str
) -> None:
    s.add(
        ClientToken(
            account_id=account_id, action=action, token=token, params_hash=params_hash, response=response
        )
    )
    s.flush()
