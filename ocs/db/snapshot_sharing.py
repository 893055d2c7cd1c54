"""Repository of snapshot sharing (createVolumePermission) and copies (CopySnapshot).

Who may see a snapshot and create volumes from it: its owner, the accounts it is
shared with (their 12-digit IDs) and, once it is public (group ``all``), everyone
(:func:`ocs.db.volumes.visible_to`). A snapshot another account may not see answers
exactly as one that does not exist (``InvalidSnapshot.NotFound``); one it may see
but does not own answers ``AuthFailure`` to the owner's actions on its attributes,
as an image shared with it does.

EC2's answers where its words were not found are in its usual forms:
``InvalidParameterValue`` for a user ID that is not 12 digits or a group other than
``all``; ``OperationNotPermitted`` for making an encrypted snapshot public (EC2
refuses to share encrypted snapshots publicly).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import volumes as db_volumes
from ocs.db.models.base import utcnow
from ocs.db.models.volumes import Snapshot, SnapshotPermission


class SnapshotAuthFailure(errors.OcsError):
    """A snapshot the caller can see (shared with it) but does not own (400, as for images)."""

    code = "AuthFailure"
    status = 400
    message = "Not authorized for snapshot:{id}"


_ACCOUNT_ID = re.compile(r"^\d{12}$")
#: The volume ID EC2 reports for a snapshot made by CopySnapshot.
COPY_VOLUME_ID = "vol-ffffffff"


def get_own_snapshot(s: Session, account_id: str, snapshot_id: str) -> Snapshot:
    """The account's own snapshot: NotFound if it may not see it, AuthFailure if it may
    see it (shared with it) but does not own it."""
    row = db_volumes.get_visible_snapshot(s, account_id, snapshot_id)
    if row.account_id != account_id:
        raise SnapshotAuthFailure(id=row.id)
    return row


def check_user_id(value: object) -> str:
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        raise errors.InvalidParameterValue(
            value=value, name="userId", reason="A user ID is a 12-digit account ID."
        )
    return value


def check_group(value: object) -> str:
    if value != "all":
        raise errors.InvalidParameterValue(value=value, name="group", reason="Valid value: all.")
    return "all"


def change_permissions(s: Session, snapshot: Snapshot, add: Sequence[str], remove: Sequence[str]) -> None:
    """Grant ``add`` and revoke ``remove`` (account IDs and ``all``)."""
    if "all" in add and snapshot.encrypted:
        raise errors.OperationNotPermitted(reason="Encrypted snapshots cannot be shared publicly.")
    current = db_volumes.permissions_of(s, [snapshot.id])[snapshot.id]
    gone = [g for g in dict.fromkeys(remove) if g in current]
    if gone:
        s.execute(
            delete(SnapshotPermission).where(
                SnapshotPermission.snapshot_id == snapshot.id, SnapshotPermission.grantee.in_(gone)
            )
        )
    for grantee in dict.fromkeys(add):
        if grantee not in current and grantee not in remove and grantee != snapshot.account_id:
            s.add(SnapshotPermission(snapshot_id=snapshot.id, grantee=grantee))
    s.flush()


def reset_permissions(s: Session, snapshot: Snapshot) -> None:
    """The snapshot is private again: only its owner sees it."""
    s.execute(delete(SnapshotPermission).where(SnapshotPermission.snapshot_id == snapshot.id))


def copy_snapshot(
    s: Session,
    account_id: str,
    source: Snapshot,
    *,
    description: str,
    encrypted: bool,
    kms_key_id: str | None,
    now: dt.datetime | None = None,
) -> Snapshot:
    """A new ``pending`` snapshot of the account whose bytes the service copies from
    ``source`` (which it may see and which is ``completed``)."""
    if source.state != "completed":
        raise db_volumes.incorrect_state("Snapshot", source.id, source.state)
    row = Snapshot(
        id=ids.new_id("snapshot"),
        account_id=account_id,
        volume_id=COPY_VOLUME_ID,
        volume_size=source.volume_size,
        description=description,
        encrypted=encrypted or source.encrypted,
        kms_key_id=kms_key_id,
        state="pending",
        progress=0,
        status_message="",
        started_at=now or utcnow(),
        source_snapshot_id=source.id,
    )
    s.add(row)
    s.flush()
    return row
