"""What a Compute Engine handler gets: the caller, the session, the clock, the links."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ocs.api_ec2.context import RequestContext
from ocs.api_ec2.context import Settings as Ec2Settings
from ocs.api_gce import ids


@dataclass(frozen=True)
class Settings:
    """Plain values of the Compute Engine front end, read from configuration at the edge."""

    ec2: Ec2Settings  # the shared services' settings (region, zones, address pools ...)
    endpoint: str  # the URL clients reach this API by
    token_lifetime: int = 3600
    jwt_clock_skew: int = 300
    wait_timeout: float = 120.0
    wait_poll: float = 0.2

    @property
    def region(self) -> str:
        return self.ec2.region

    @property
    def zones(self) -> tuple[str, ...]:
        return self.ec2.availability_zones


def timestamp(when: datetime | None) -> str | None:
    """RFC 3339, as Compute Engine writes its timestamps."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


class Links:
    """Compute Engine URLs (selfLink, zone, machineType ...) of this endpoint."""

    def __init__(self, endpoint: str, project: str):
        self.base = endpoint.rstrip("/") + "/compute/v1/"
        self.project = project

    def project_url(self, project: str | None = None) -> str:
        return f"{self.base}projects/{project or self.project}"

    def zone(self, zone: str) -> str:
        return f"{self.project_url()}/zones/{zone}"

    def region(self, region: str) -> str:
        return f"{self.project_url()}/regions/{region}"

    def machine_type(self, zone: str, name: str) -> str:
        return f"{self.zone(zone)}/machineTypes/{name}"

    def instance(self, zone: str, name: str) -> str:
        return f"{self.zone(zone)}/instances/{name}"

    def image(self, project: str, name: str) -> str:
        return f"{self.project_url(project)}/global/images/{name}"

    def network(self, name: str) -> str:
        return f"{self.project_url()}/global/networks/{name}"

    def subnetwork(self, region: str, name: str) -> str:
        return f"{self.region(region)}/subnetworks/{name}"

    def disk(self, zone: str, name: str) -> str:
        return f"{self.zone(zone)}/disks/{name}"

    def operation(self, scope: str, location: str, name: str) -> str:
        if scope == "zone":
            return f"{self.zone(location)}/operations/{name}"
        if scope == "region":
            return f"{self.region(location)}/operations/{name}"
        return f"{self.project_url()}/global/operations/{name}"

    def path(self, url: str) -> str:
        """``projects/...`` of one of our URLs (what error messages name)."""
        return url[len(self.base) :] if url.startswith(self.base) else url


@dataclass
class GceContext:
    """One request: the authenticated caller, the database session and the clock."""

    account_id: str
    project: str
    user: str
    key_id: str
    request_id: str
    settings: Settings
    session: Session
    now: Callable[[], datetime]
    services: dict[str, Any] = field(default_factory=dict)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    links: Links = field(init=False)

    def __post_init__(self) -> None:
        self.links = Links(self.settings.endpoint, self.project)

    def ec2(self, action: str) -> RequestContext:
        """A context for calling the shared services' handler of EC2 ``action`` in this request
        (same session, same after-commit messages)."""
        return RequestContext(
            account_id=self.account_id,
            access_key_id=f"gce:{self.key_id}",
            request_id=self.request_id,
            action=action,
            settings=self.settings.ec2,
            session=self.session,
            now=self.now,
            services=self.services,
            after_commit=self.after_commit,
        )

    def numeric_id(self, kind: str, key: str) -> str:
        return ids.numeric_id(kind, key)
