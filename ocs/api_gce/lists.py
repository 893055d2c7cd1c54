"""List responses of the Compute Engine front end: ``filter``, ``orderBy``, ``maxResults``
and ``pageToken`` over the items of one list (by :mod:`ocs.api_gce.listing`, the pure
core), wrapped into Compute Engine's list resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ocs.api_gce import errors, listing

MARKER = "/compute/v1/"


def _scope(self_link: str) -> str:
    return self_link.split(MARKER, 1)[-1]


def page(
    items: Sequence[Mapping[str, Any]], query: dict[str, str], self_link: str
) -> tuple[list[Mapping[str, Any]], str | None]:
    """The page of ``items`` the query asks for, and the next page's token."""
    try:
        return listing.list_page(
            items,
            filter=query.get("filter"),
            order_by=query.get("orderBy"),
            max_results=query.get("maxResults"),
            page_token=query.get("pageToken") or None,
            scope=_scope(self_link),
        )
    except listing.ListError as exc:
        raise errors.invalid(str(exc)) from None


def page_of(
    kind: str, items: Sequence[Mapping[str, Any]], query: dict[str, str], self_link: str
) -> dict[str, Any]:
    """A Compute Engine list resource (``kind``, ``id``, ``items``, ``selfLink``, ``nextPageToken``)."""
    chosen, token = page(items, query, self_link)
    out: dict[str, Any] = {
        "kind": kind,
        "id": _scope(self_link),
        "items": list(chosen),
        "selfLink": self_link,
    }
    if token:
        out["nextPageToken"] = token
    return out


def by_zone(zones: Sequence[str], entries: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Zonal resources grouped as ``aggregatedList`` scopes (``zones/<name>``), every
    configured zone present (a zone with none gets its warning), by each entry's ``zone`` link."""
    scopes: dict[str, list[dict[str, Any]]] = {f"zones/{z}": [] for z in zones}
    for entry in entries:
        scopes.setdefault("zones/" + entry["zone"].rsplit("/", 1)[-1], []).append(entry)
    return scopes


def aggregated(
    kind: str,
    key: str,
    by_scope: Mapping[str, Sequence[Mapping[str, Any]]],
    query: dict[str, str],
    self_link: str,
) -> dict[str, Any]:
    """An ``aggregatedList`` resource: every scope on every page, with its items or a warning."""
    try:
        body = listing.aggregate(
            by_scope,
            key,
            filter=query.get("filter"),
            order_by=query.get("orderBy"),
            max_results=query.get("maxResults"),
            page_token=query.get("pageToken") or None,
            return_partial_success=query.get("returnPartialSuccess"),
            scope=_scope(self_link),
        )
    except listing.ListError as exc:
        raise errors.invalid(str(exc)) from None
    return {"kind": kind, "id": _scope(self_link), **body, "selfLink": self_link}
