"""Operation resources: every mutation answers one; zoneOperations, regionOperations and
globalOperations read, list, wait on and delete them.

An operation that waits on an instance is settled when read: its status follows the
instance's state in the database (what the scheduler records from the agents'
reports), so every API process answers the same without a background task:

* ``insert`` and ``start`` are DONE once the instance runs; the instance ending
  terminated (or, for a start, stopped again) is DONE with the instance's
  StateReason as ``error``;
* ``stop`` is DONE once the instance is stopped (Compute Engine's TERMINATED),
  ``delete`` once it is terminated (gone from Compute Engine's view);
* ``reset``, ``setLabels`` and ``setMetadata`` are DONE when made.

An operation on a disk or snapshot (its target a ``vol-``/``snap-`` ID) follows the
volume: a disk's ``insert`` is DONE once the volume is available (failed if it ends
``error``), ``delete`` once it is gone, ``resize`` once its modification is
optimizing or completed, ``createSnapshot`` once the snapshot is completed (failed
on ``error``), ``attachDisk`` once the attachment is attached (failed if it is
dropped), ``detachDisk`` once it is gone (:func:`_storage_outcome`).

``wait`` blocks until the operation is DONE or ``[gce] operation_wait_timeout``
(2 minutes, as Compute Engine) has passed, then answers it as it is.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from ocs.api_gce import errors
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import page_of
from ocs.api_gce.routes import Route
from ocs.db import gce as db_gce
from ocs.db.models.compute import Instance
from ocs.db.models.gce import GceOperation
from ocs.db.models.volumes import Snapshot, Volume, VolumeAttachment, VolumeModification

# operation type → (states that make it DONE, states that make it fail)
_SETTLE = {
    "insert": (("running", "stopped"), ("terminated", "shutting-down")),
    "start": (("running",), ("terminated", "shutting-down", "stopped")),
    "stop": (("stopped", "terminated"), ()),
    "delete": (("terminated",), ()),
}


def create(
    ctx: GceContext,
    operation_type: str,
    *,
    scope: str,
    location: str,
    target_link: str,
    target_id: str,
    target: str | None,
    request_id: str | None = None,
) -> GceOperation:
    op = db_gce.add_operation(
        ctx.session,
        ctx.account_id,
        now=ctx.now(),
        scope=scope,
        location=location,
        operation_type=operation_type,
        target_link=target_link,
        target_id=target_id,
        target=target if operation_type in _SETTLE or storage_target(target) else None,
        status="RUNNING",
        progress=0,
        user=ctx.user,
        request_id=request_id,
    )
    settle(ctx, op)
    return op


def settle(ctx: GceContext, op: GceOperation) -> None:
    """Move ``op`` on to DONE when its target has got where it was sent."""
    if op.status == "DONE":
        return
    now = ctx.now()
    if op.target is None or (op.operation_type not in _SETTLE and not storage_target(op.target)):
        op.status, op.progress, op.end_time = "DONE", 100, now
        return
    if storage_target(op.target):
        _settle_storage(ctx, op)
        return
    done, failed = _SETTLE[op.operation_type]
    instance = ctx.session.get(Instance, op.target)
    state = instance.state if instance is not None else "terminated"
    if state in done:
        op.status, op.progress, op.end_time = "DONE", 100, now
    elif state in failed:
        code = (instance.state_reason_code if instance is not None else None) or "RESOURCE_OPERATION_FAILED"
        message = (
            instance.state_reason_message if instance is not None else None
        ) or f"The instance ended {state}."
        server = code.startswith("Server.")
        op.status, op.progress, op.end_time = "DONE", 100, now
        op.error = [{"code": code.replace("Server.", "").replace("Client.", ""), "message": message}]
        op.http_error_status_code = 503 if server else 400
        op.http_error_message = "SERVICE UNAVAILABLE" if server else "BAD REQUEST"
    elif instance is not None and instance.state == "pending" and instance.host:
        op.progress = 50


def storage_target(target: str | None) -> bool:
    """True for an operation that waits on a volume or snapshot (a disk's), not an instance."""
    return bool(target) and str(target).startswith(("vol-", "snap-"))


def _storage_outcome(ctx: GceContext, op: GceOperation) -> tuple[bool, str | None]:
    """(settled, error message) of a disk's or snapshot's operation, from the volume's,
    snapshot's, modification's or attachment's state."""
    s, kind = ctx.session, op.operation_type
    if kind == "createSnapshot":
        snap = s.get(Snapshot, op.target)
        if snap is None:
            return True, "The snapshot was deleted before it was made."
        if snap.state == "error":
            return True, snap.status_message or "The snapshot could not be made."
        return snap.state == "completed", None
    volume = s.get(Volume, op.target)
    if kind == "delete":
        return volume is None, None
    if volume is None:
        return True, "The disk is gone."
    if kind == "insert":
        if volume.state == "error":
            return True, volume.status_reason or "The disk could not be made."
        return volume.state in ("available", "in-use"), None
    if kind == "resize":
        change = s.get(VolumeModification, volume.id)
        if change is not None and change.state == "failed":
            return True, change.status_message or "The disk could not be resized."
        return change is None or change.state in ("optimizing", "completed"), None
    attached = s.scalars(select(VolumeAttachment).where(VolumeAttachment.volume_id == volume.id)).first()
    if kind == "attachDisk":
        if attached is None:
            return True, "The disk could not be attached."
        return attached.state == "attached", None
    if kind == "detachDisk":
        return attached is None, None
    return True, None


def _settle_storage(ctx: GceContext, op: GceOperation) -> None:
    settled, message = _storage_outcome(ctx, op)
    if not settled:
        return
    op.status, op.progress, op.end_time = "DONE", 100, ctx.now()
    if message is not None:
        op.error = [{"code": "RESOURCE_OPERATION_FAILED", "message": message}]
        op.http_error_status_code, op.http_error_message = 400, "BAD REQUEST"


def item(ctx: GceContext, op: GceOperation) -> dict[str, Any]:
    links = ctx.links
    out: dict[str, Any] = {
        "kind": "compute#operation",
        "id": op.id,
        "name": op.name,
        "operationType": op.operation_type,
        "targetLink": op.target_link,
        "targetId": op.target_id,
        "status": op.status,
        "user": op.user,
        "progress": op.progress,
        "insertTime": timestamp(op.insert_time),
        "startTime": timestamp(op.start_time),
        "selfLink": links.operation(op.scope, op.location, op.name),
    }
    if op.scope == "zone":
        out["zone"] = links.zone(op.location)
    elif op.scope == "region":
        out["region"] = links.region(op.location)
    if op.status == "DONE":
        out["endTime"] = timestamp(op.end_time)
    if op.error:
        out["error"] = {"errors": list(op.error)}
        out["httpErrorStatusCode"] = op.http_error_status_code
        out["httpErrorMessage"] = op.http_error_message
    return {k: v for k, v in out.items() if v is not None}


def _scope(ctx: GceContext, path: dict[str, str]) -> tuple[str, str]:
    if "zone" in path:
        if path["zone"] not in ctx.settings.zones:
            raise errors.invalid_field("zone", path["zone"], "Unknown zone.")
        return "zone", path["zone"]
    if "region" in path:
        if path["region"] != ctx.settings.region:
            raise errors.invalid_field("region", path["region"], "Unknown region.")
        return "region", path["region"]
    return "global", ""


def _get(ctx: GceContext, path: dict[str, str]) -> GceOperation:
    scope, location = _scope(ctx, path)
    op = db_gce.get_operation(ctx.session, ctx.account_id, path["operation"])
    if op is None or op.scope != scope or op.location != location:
        raise errors.not_found(ctx.links.path(ctx.links.operation(scope, location, path["operation"])))
    return op


def get(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    op = _get(ctx, path)
    settle(ctx, op)
    return item(ctx, op)


def wait(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    op = _get(ctx, path)
    deadline = time.monotonic() + ctx.settings.wait_timeout
    while True:
        settle(ctx, op)
        if op.status == "DONE" or time.monotonic() >= deadline:
            return item(ctx, op)
        ctx.session.commit()  # hold no transaction while sleeping; read afresh
        time.sleep(min(ctx.settings.wait_poll, max(0.0, deadline - time.monotonic())))
        ctx.session.expire_all()


def delete(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    db_gce.delete_operation(ctx.session, _get(ctx, path))
    return {}


def list_(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    scope, location = _scope(ctx, path)
    ops = db_gce.list_operations(ctx.session, ctx.account_id, scope, location if scope != "global" else None)
    for op in ops:
        settle(ctx, op)
    items = [item(ctx, op) for op in ops]
    self_link = ctx.links.operation(scope, location, "")[:-1]
    return page_of("compute#operationList", items, query, self_link)


def _routes(prefix: str, kind: str) -> list[Route]:
    base = f"projects/{{project}}/{prefix}/operations"
    return [
        Route("GET", base, list_, f"compute.{kind}.list", response="OperationList"),
        Route("GET", base + "/{operation}", get, f"compute.{kind}.get", response="Operation"),
        Route("POST", base + "/{operation}/wait", wait, f"compute.{kind}.get", response="Operation"),
        Route("DELETE", base + "/{operation}", delete, f"compute.{kind}.delete"),
    ]


ROUTES = [
    *_routes("zones/{zone}", "zoneOperations"),
    *_routes("regions/{region}", "regionOperations"),
    *_routes("global", "globalOperations"),
]
