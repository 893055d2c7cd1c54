"""What happens to an instance's EBS volumes when it ends (terminated or deleted).

As on EC2: a volume attached with ``DeleteOnTermination`` is deleted with the
instance (it moves to ``deleting``: the volume service removes its bytes, then the
row; one still ``creating`` for the instance's launch too), every other one is
detached and ``available`` again. Called in the same
transaction as the instance's change, so no volume is ever left attached to an
instance that is gone. An instance deleted without ever having existed for the
account (a launch that found no room) takes all its volumes, made for that launch,
with it (:func:`discard_instance_volumes`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ocs.db.models.volumes import Volume, VolumeAttachment


def release_instance_volumes(s: Session, instance_ids: Sequence[str]) -> list[str]:
    """Detach the instances' volumes; the IDs of those now ``deleting``."""
    wanted = list(instance_ids)
    if not wanted:
        return []
    rows = s.execute(
        select(VolumeAttachment.volume_id, VolumeAttachment.delete_on_termination).where(
            VolumeAttachment.instance_id.in_(wanted)
        )
    ).all()
    if not rows:
        return []
    s.execute(
        delete(VolumeAttachment)
        .where(VolumeAttachment.instance_id.in_(wanted))
        .execution_options(synchronize_session=False)
    )
    doomed = sorted(v for v, dot in rows if dot)
    keep = sorted(v for v, dot in rows if not dot)
    still = set(s.scalars(select(VolumeAttachment.volume_id).where(VolumeAttachment.volume_id.in_(keep))))
    free = [v for v in keep if v not in still]
    if free:
        s.execute(
            update(Volume)
            .where(Volume.id.in_(free), Volume.state == "in-use")
            .values(state="available")
            .execution_options(synchronize_session=False)
        )
    if doomed:
        s.execute(
            update(Volume)
            .where(Volume.id.in_(doomed), Volume.state.in_(("creating", "in-use", "available", "error")))
            .values(state="deleting")
            .execution_options(synchronize_session=False)
        )
    return doomed


def discard_instance_volumes(s: Session, instance_ids: Sequence[str]) -> list[str]:
    """Delete the volumes of instances about to be deleted (they never existed for the
    account): detached, then ``deleting``, whatever DeleteOnTermination says. Their IDs."""
    wanted = list(instance_ids)
    if not wanted:
        return []
    doomed = sorted(
        set(s.scalars(select(VolumeAttachment.volume_id).where(VolumeAttachment.instance_id.in_(wanted))))
    )
    if not doomed:
        return []
    s.execute(
        delete(VolumeAttachment)
        .where(VolumeAttachment.instance_id.in_(wanted))
        .execution_options(synchronize_session=False)
    )
    s.execute(
        update(Volume)
        .where(Volume.id.in_(doomed), Volume.state.in_(("creating", "in-use", "available", "error")))
        .values(state="deleting")
        .execution_options(synchronize_session=False)
    )
    return doomed
