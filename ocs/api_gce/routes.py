"""The dispatch table of the Compute Engine front end: (method, path template) → handler.

Each resource module exports ``ROUTES``, a list of :class:`Route`. A handler is
``(ctx, path, query, body) -> dict``: ``path`` holds the template's parameters,
``query`` the query string (one value each), ``body`` the parsed JSON body (None
for GET and DELETE), already checked against the route's ``request`` schema. The
app shapes the handler's answer by the route's ``response`` schema
(:func:`ocs.api_gce.schema.shape`), so every answer carries exactly the fields and
types of Google's discovery document. The templates are Compute Engine's
``flatPath``s from the discovery document, below ``/compute/v1/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[Any, dict[str, str], dict[str, str], dict[str, Any] | None], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    permission: str  # what Compute Engine's 403 names, e.g. compute.instances.get
    response: str | None = None  # the discovery schema the answer is shaped by
    request: str | None = None  # the discovery schema the JSON body is checked against
    other_projects: bool = False  # readable in another project (public images)
    pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


class Table:
    def __init__(self, routes: list[Route]):
        seen = set()
        for route in routes:
            key = (route.method, route.template)
            if key in seen:
                raise RuntimeError(f"route {key} is handled twice")
            seen.add(key)
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found is not None:
                return route, found.groupdict()
        return None
