"""firewalls: Compute Engine firewall rules of a network, with Compute Engine's meaning.

A rule is INGRESS or EGRESS, ``allowed`` or ``denied`` (exactly one of them), with a
``priority`` 0..65535 (lower wins; deny wins a tie), ``sourceRanges``,
``destinationRanges``, ``sourceTags`` and ``targetTags`` (instance network tags) and
``disabled``; the implied rules (deny all ingress, allow all egress at 65535) close
the list. An INGRESS rule without sources gets ``sourceRanges`` 0.0.0.0/0, an
EGRESS rule without destinations ``destinationRanges`` 0.0.0.0/0, as Compute
Engine stores them. Checked by the compiler (:mod:`ocs.network.gce_firewall`),
which the network service runs for the ports of instances in networks made through
Compute Engine (those take these rules instead of their security groups); rules of
other networks (``default``, EC2's VPCs) are kept but those networks stay filtered
by their security groups. Names are unique per project (``gce_firewalls``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from ocs.api_ec2.network import security_groups_changed
from ocs.api_gce import errors
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import page_of
from ocs.api_gce.resources import networks
from ocs.api_gce.routes import Route
from ocs.db import gce as db_gce
from ocs.db import gce_network as db_names
from ocs.db import secgroups as db_secgroups
from ocs.db.models.gce_network import GceFirewall
from ocs.network import gce_firewall as gf

_FIELDS = (
    "description",
    "direction",
    "priority",
    "allowed",
    "denied",
    "sourceRanges",
    "destinationRanges",
    "sourceTags",
    "targetTags",
    "disabled",
)


def _entries(value: Any, field: str) -> list[dict[str, Any]]:
    if value in (None, []):
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise errors.invalid_field(f"resource.{field}", value, "Must be a list of objects.")
    out = []
    for entry in value:
        item: dict[str, Any] = {"IPProtocol": str(entry.get("IPProtocol") or "")}
        if entry.get("ports"):
            item["ports"] = _strings(entry["ports"], f"{field}.ports")
        out.append(item)
    return out


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_field(f"resource.{field}", value, "Must be a list of strings.")
    return list(value)


def to_rule(row: GceFirewall) -> gf.FirewallRule:
    """The compiler's rule of a stored firewall (ValueError when it is not valid)."""
    return gf.from_resource(
        row.name,
        direction=row.direction,
        priority=row.priority,
        allowed=row.allowed,
        denied=row.denied,
        source_ranges=row.source_ranges,
        destination_ranges=row.destination_ranges,
        source_tags=row.source_tags,
        target_tags=row.target_tags,
        disabled=row.disabled,
    )


def _apply(row: GceFirewall, body: dict[str, Any]) -> None:
    """Set the fields ``body`` gives, then check the whole rule (400 when it is not valid)."""
    if "description" in body:
        row.description = str(body.get("description") or "")
    if "direction" in body:
        row.direction = str(body.get("direction") or "INGRESS")
    if "priority" in body:
        try:
            row.priority = int(body["priority"] if body["priority"] is not None else 1000)
        except (TypeError, ValueError):
            raise errors.invalid_field("resource.priority", body["priority"], "Must be an integer.") from None
    if "allowed" in body or "denied" in body:
        row.allowed = _entries(body.get("allowed"), "allowed")
        row.denied = _entries(body.get("denied"), "denied")
    for field, column in (
        ("sourceRanges", "source_ranges"),
        ("destinationRanges", "destination_ranges"),
        ("sourceTags", "source_tags"),
        ("targetTags", "target_tags"),
    ):
        if field in body:
            setattr(row, column, _strings(body.get(field), field))
    if "disabled" in body:
        row.disabled = bool(body.get("disabled"))
    if bool(row.allowed) == bool(row.denied):
        raise errors.invalid("Exactly one of 'allowed' or 'denied' must be specified.")
    if row.direction == gf.INGRESS and not row.source_ranges and not row.source_tags:
        row.source_ranges = ["0.0.0.0/0"]
    if row.direction == gf.EGRESS and not row.destination_ranges:
        row.destination_ranges = ["0.0.0.0/0"]
    try:
        to_rule(row)
    except ValueError as exc:
        raise errors.invalid(f"Invalid value for field 'resource': {exc}.") from None


def item(ctx: GceContext, row: GceFirewall) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "compute#firewall",
        "id": row.id,
        "creationTimestamp": timestamp(row.created_at),
        "name": row.name,
        "description": row.description,
        "network": ctx.links.network(networks.network_name_of(ctx, row.vpc_id)),
        "priority": row.priority,
        "direction": row.direction,
        "sourceRanges": list(row.source_ranges),
        "destinationRanges": list(row.destination_ranges),
        "sourceTags": list(row.source_tags),
        "targetTags": list(row.target_tags),
        "disabled": row.disabled,
        "selfLink": ctx.links.project_url() + f"/global/firewalls/{row.name}",
        "logConfig": {"enable": False},
    }
    out["allowed" if row.allowed else "denied"] = list(row.allowed or row.denied)
    return {k: v for k, v in out.items() if v != []}


def _or_404(ctx: GceContext, name: str) -> GceFirewall:
    row = db_names.firewall_by_name(ctx.session, ctx.account_id, name)
    if row is None:
        raise errors.not_found(f"projects/{ctx.project}/global/firewalls/{name}")
    return row


def _changed(ctx: GceContext, vpc_id: str) -> None:
    """The ports of the network reload their rules once this request has committed."""
    group = db_secgroups.find_group(ctx.session, ctx.account_id, vpc_id, db_secgroups.DEFAULT_GROUP_NAME)
    if group is not None:
        security_groups_changed(ctx.ec2("GceFirewalls"), [group.id])


def list_(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    items = [item(ctx, r) for r in db_names.firewalls(ctx.session, ctx.account_id)]
    return page_of("compute#firewallList", items, query, ctx.links.project_url() + "/global/firewalls")


def get(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return item(ctx, _or_404(ctx, path["firewall"]))


def insert(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    replay = networks.replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    name = networks.check_name(body)
    network = str(body.get("network") or "global/networks/default").rstrip("/").rsplit("/", 1)[-1]
    vpc = networks.find_network(ctx, network)
    if vpc is None:
        raise errors.not_found(f"projects/{ctx.project}/global/networks/{network}")
    link = ctx.links.project_url() + f"/global/firewalls/{name}"
    if db_names.firewall_by_name(ctx.session, ctx.account_id, name) is not None:
        raise errors.already_exists(ctx.links.path(link))
    row = GceFirewall(
        id=db_gce.new_numeric_id(),
        account_id=ctx.account_id,
        vpc_id=vpc.id,
        name=name,
        description="",
        direction="INGRESS",
        priority=1000,
        allowed=[],
        denied=[],
        source_ranges=[],
        destination_ranges=[],
        source_tags=[],
        target_tags=[],
        disabled=False,
    )
    _apply(row, {k: body[k] for k in _FIELDS if k in body})
    ctx.session.add(row)
    try:
        ctx.session.flush()
    except IntegrityError:
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    _changed(ctx, vpc.id)
    return networks.done_operation(ctx, "insert", link, row.id, query)


def patch(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    replay = networks.replayed(ctx, query)
    if replay is not None:
        return replay
    row = _or_404(ctx, path["firewall"])
    body = body or {}
    if body.get("name") not in (None, row.name):
        raise errors.invalid("A firewall's name cannot be changed.")
    if body.get("network"):
        raise errors.invalid("A firewall's network cannot be changed.")
    _apply(row, {k: body[k] for k in _FIELDS if k in body})
    ctx.session.flush()
    _changed(ctx, row.vpc_id)
    link = ctx.links.project_url() + f"/global/firewalls/{row.name}"
    return networks.done_operation(ctx, "patch", link, row.id, query)


def delete(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    replay = networks.replayed(ctx, query)
    if replay is not None:
        return replay
    row = _or_404(ctx, path["firewall"])
    vpc_id, firewall_id, link = row.vpc_id, row.id, ctx.links.project_url() + f"/global/firewalls/{row.name}"
    ctx.session.delete(row)
    ctx.session.flush()
    _changed(ctx, vpc_id)
    return networks.done_operation(ctx, "delete", link, firewall_id, query)


_F = "projects/{project}/global/firewalls"
ROUTES = [
    Route("GET", _F, list_, "compute.firewalls.list", response="FirewallList"),
    Route("POST", _F, insert, "compute.firewalls.create", response="Operation", request="Firewall"),
    Route("GET", _F + "/{firewall}", get, "compute.firewalls.get", response="Firewall"),
    Route(
        "PATCH",
        _F + "/{firewall}",
        patch,
        "compute.firewalls.update",
        response="Operation",
        request="Firewall",
    ),
    Route("DELETE", _F + "/{firewall}", delete, "compute.firewalls.delete", response="Operation"),
]
