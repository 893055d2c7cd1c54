"""List responses of the Compute Engine front end: ``filter``, ``orderBy``, ``maxResults``
and ``pageToken`` over the items of one list, and the list resource around them.

The filtering and paging itself is :mod:`ocs.api_gce.listing`'s (when present);
this module only wraps its page into Compute Engine's list resource.
"""

from __future__ import annotations

from typing import Any

from ocs.api_gce import errors

try:  # the pure filter/order/page core, written beside this front end
    from ocs.api_gce import listing as _listing
except ImportError:  # pragma: no cover - until it lands
    _listing = None  # type: ignore[assignment]

MAX_RESULTS = 500


def page(items: list[dict[str, Any]], query: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """The page of ``items`` the query asks for, and the next page's token."""
    max_results: int | None = None
    if query.get("maxResults"):
        try:
            max_results = int(query["maxResults"])
        except ValueError:
            raise errors.invalid_field("maxResults", query["maxResults"], "Must be an integer.") from None
        if not 0 <= max_results <= MAX_RESULTS:
            raise errors.invalid_field("maxResults", max_results, f"Must be between 0 and {MAX_RESULTS}.")
    if _listing is None:
        return items, None
    try:
        return _listing.list_page(
            items,
            filter=query.get("filter") or None,
            order_by=query.get("orderBy") or None,
            max_results=max_results,
            page_token=query.get("pageToken") or None,
        )
    except _listing.ListError as exc:
        raise errors.invalid(str(exc)) from None


def page_of(kind: str, items: list[dict[str, Any]], query: dict[str, str], self_link: str) -> dict[str, Any]:
    """A Compute Engine list resource (``kind``, ``id``, ``items``, ``selfLink``, ``nextPageToken``)."""
    chosen, token = page(items, query)
    marker = "/compute/v1/"
    out: dict[str, Any] = {
        "kind": kind,
        "id": self_link.split(marker, 1)[-1],
        "items": chosen,
        "selfLink": self_link,
    }
    if token:
        out["nextPageToken"] = token
    return out
