"""Regions, availability zones and account attributes (from configuration)."""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters
from ocs.api_ec2.context import RequestContext
from ocs.db import vpcs as db_vpcs


def _region_items(ctx: RequestContext) -> list[dict[str, Any]]:
    s = ctx.settings
    return [{"RegionName": s.region, "Endpoint": s.endpoint, "OptInStatus": "opt-in-not-required"}]


def describe_regions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    items = _region_items(ctx)
    names = params.get("RegionNames") or []
    known = {i["RegionName"] for i in items}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise errors.InvalidParameterValue(f"Invalid region names: {', '.join(unknown)}")
    if names:
        items = [i for i in items if i["RegionName"] in names]
    items = filters.apply_filters(
        items, params.get("Filters"), filters.FILTERS["DescribeRegions"], taggable=False
    )
    return {"Regions": items}


_DIRECTIONS = {"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}


def zone_id_prefix(region: str) -> str:
    """EC2's short region code used in zone IDs: us-east-1 → use1, ap-southeast-2 → apse2."""
    parts = region.split("-")
    if len(parts) < 3:
        return region.replace("-", "")
    middle = "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1])
    return f"{parts[0]}{middle}{parts[-1]}"


def _zone_items(ctx: RequestContext) -> list[dict[str, Any]]:
    s = ctx.settings
    return [
        {
            "ZoneName": zone,
            "ZoneId": f"{zone_id_prefix(s.region)}-az{n}",
            "State": "available",
            "OptInStatus": "opt-in-not-required",
            "Messages": [],
            "RegionName": s.region,
            "GroupName": s.region,
            "NetworkBorderGroup": s.region,
            "ZoneType": "availability-zone",
        }
        for n, zone in enumerate(s.availability_zones, start=1)
    ]


def describe_availability_zones(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    items = _zone_items(ctx)
    names = params.get("ZoneNames") or []
    ids = params.get("ZoneIds") or []
    for wanted, key in ((names, "ZoneName"), (ids, "ZoneId")):
        unknown = [w for w in wanted if w not in {i[key] for i in items}]
        if unknown:
            raise errors.InvalidParameterValue(
                f"The zone '{unknown[0]}' does not exist.", code="InvalidParameterValue"
            )
        if wanted:
            items = [i for i in items if i[key] in wanted]
    items = filters.apply_filters(
        items, params.get("Filters"), filters.FILTERS["DescribeAvailabilityZones"], taggable=False
    )
    return {"AvailabilityZones": items}


# What EC2 answers for an account on the VPC-only platform.
_ACCOUNT_ATTRIBUTES: dict[str, list[str]] = {
    "supported-platforms": ["VPC"],
    "default-vpc": [],  # filled per account
    "max-instances": ["20"],
    "vpc-max-security-groups-per-interface": ["5"],
    "max-elastic-ips": ["5"],
    "vpc-max-elastic-ips": ["5"],
}


def describe_account_attributes(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    wanted = params.get("AttributeNames") or list(_ACCOUNT_ATTRIBUTES)
    values = dict(_ACCOUNT_ATTRIBUTES)
    values["default-vpc"] = [db_vpcs.default_vpc_id(ctx.session, ctx.account_id) or "none"]
    out = []
    for name in wanted:
        if name not in values:
            raise errors.InvalidParameterValue(
                value=name, name="AttributeName", reason="Unknown attribute name."
            )
        out.append({"AttributeName": name, "AttributeValues": [{"AttributeValue": v} for v in values[name]]})
    return {"AccountAttributes": out}


ACTIONS = {
    "DescribeRegions": describe_regions,
    "DescribeAvailabilityZones": describe_availability_zones,
    "DescribeAccountAttributes": describe_account_attributes,
}
