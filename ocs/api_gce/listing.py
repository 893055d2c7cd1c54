"""Compute Engine ``list``/``aggregatedList`` semantics, written once.

Pure: no bus, database or configuration.  The front end hands in the resources
(already in their Compute Engine JSON shape) and the query parameters; this module
filters, orders and pages them the way Compute Engine v1 documents it (the
``filter``, ``orderBy``, ``maxResults`` and ``pageToken`` parameters of every
``list`` method in the discovery document ``compute.v1.json``).  The filter
language lives in :mod:`ocs.api_gce.list_filter`; :func:`compile_filter` and
:class:`ListError` are re-exported here.

Ordering and paging
===================

``orderBy`` is ``name`` (the default; ``name asc`` is taken too) or
``creationTimestamp desc`` (newest first) -- "Currently, only sorting by ``name``
or ``creationTimestamp desc`` is supported."  Anything else is refused.  Compute
Engine also refuses a filter together with an ``orderBy`` ("Invalid value for field
'orderBy': 'creationTimestamp'. Specifying both a list filter and sort order is not
currently supported.", doitintl/kubeip#132); :func:`list_page` mirrors that unless
told ``allow_filter_with_order=True``.

Items are ordered by (creationTimestamp when ordering by it, scope, name); the page token records the last
key served, the order it belongs to, a digest of the filter and the caller's
scope, with a checksum.  The next page starts strictly after that key, so every
item that exists throughout a walk is returned exactly once, items added or
removed meanwhile either appear once or not at all, and the walk terminates (each
page strictly advances the key).  Names must be unique within what is listed
(within a scope for :func:`aggregate`).

``maxResults`` is 0..500, 0 and absent meaning 500.  The checksum is not a
secret signature: a forged token can only move the cursor within the caller's own
listing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ocs.api_gce.list_filter import ListError, Predicate, compile_filter

__all__ = [
    "DEFAULT_MAX_RESULTS",
    "MAX_RESULTS",
    "ListError",
    "aggregate",
    "compile_filter",
    "list_page",
    "parse_max_results",
    "parse_order_by",
]

MAX_RESULTS = 500
DEFAULT_MAX_RESULTS = 500


# --------------------------------------------------------------------------- order, size, token


@dataclass(frozen=True)
class _Order:
    by_time: bool  # creationTimestamp desc, else name asc

    @property
    def tag(self) -> str:
        return "t" if self.by_time else "n"


def parse_order_by(order_by: str | None) -> str:
    """``"name"`` or ``"creationTimestamp desc"`` (normalised); ListError otherwise."""
    return "creationTimestamp desc" if _parse_order(order_by).by_time else "name"


def _parse_order(order_by: str | None) -> _Order:
    if order_by is None or not order_by.strip():
        return _Order(False)
    words = order_by.split()
    if words in (["name"], ["name", "asc"]):
        return _Order(False)
    if words == ["creationTimestamp", "desc"]:
        return _Order(True)
    raise ListError(
        f"Invalid value for field 'orderBy': '{order_by}'. "
        "Only sorting by name or creationTimestamp desc is supported.",
        field="orderBy",
    )


def parse_max_results(max_results: int | str | None) -> int:
    """The page size for ``maxResults``: 0 or absent is 500; ListError outside 0..500."""
    if max_results is None or max_results == "":
        return DEFAULT_MAX_RESULTS
    value: int
    if isinstance(max_results, bool):
        raise _bad_uint32(max_results)
    if isinstance(max_results, int):
        value = max_results
    elif isinstance(max_results, str) and re.fullmatch(r"\s*\+?\d{1,10}\s*", max_results):
        value = int(max_results)
    else:
        raise _bad_uint32(max_results)
    if value < 0 or value > 0xFFFFFFFF:
        raise _bad_uint32(max_results)
    if value > MAX_RESULTS:
        raise ListError(
            f"Invalid value for field 'maxResults': '{value}'. Must be less than or equal to {MAX_RESULTS}",
            field="maxResults",
        )
    return value or DEFAULT_MAX_RESULTS


def _bad_uint32(value: object) -> ListError:
    # What Google's front end says of a query parameter that is no uint32.
    return ListError(f"Invalid value at 'max_results' (TYPE_UINT32), \"{value}\"", field="maxResults")


def _bad_token(token: str) -> ListError:
    return ListError(
        f"Invalid value for field 'pageToken': '{token}'. Invalid page token.", field="pageToken"
    )


def _timestamp_key(value: Any) -> float:
    """Epoch seconds of an RFC 3339 ``creationTimestamp``; unset or unparsable sorts oldest."""
    if isinstance(value, str) and value:
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            return float("-inf")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_dt.UTC)
        return parsed.timestamp()
    return float("-inf")


# A sort key is (timestamp or None, scope, name); the token stores it as JSON.
_Key = tuple[float | None, str, str]


def _item_key(item: Mapping[str, Any], scope: str, order: _Order) -> _Key:
    name = item.get("name")
    return (
        _timestamp_key(item.get("creationTimestamp")) if order.by_time else None,
        scope,
        name if isinstance(name, str) else str(name),
    )


def _sort_tuple(key: _Key) -> tuple[float, str, str]:
    # Newest first: sort by the negated timestamp; -inf (no timestamp) goes last.
    ts = key[0]
    return (-ts if ts is not None else 0.0, key[1], key[2])


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


_TOKEN_SALT = "ocs-gce-list-v1"


def _encode_token(key: _Key, order: _Order, filter_digest: str, scope: str) -> str:
    ts = key[0]
    body = {
        "v": 1,
        "o": order.tag,
        "f": filter_digest[:16],
        "k": [None if ts is None else ("-inf" if ts == float("-inf") else ts), key[1], key[2]],
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True)
    check = _digest(_TOKEN_SALT, scope, raw)[:16]
    return base64.urlsafe_b64encode(f"{raw}|{check}".encode()).decode().rstrip("=")


def _decode_token(token: str, order: _Order, filter_digest: str, scope: str) -> _Key:
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        raw, _, check = text.rpartition("|")
        if not raw or check != _digest(_TOKEN_SALT, scope, raw)[:16]:
            raise ValueError("checksum")
        body = json.loads(raw)
        if body.get("v") != 1 or body.get("o") != order.tag or body.get("f") != filter_digest[:16]:
            raise ValueError("not this listing")
        ts, key_scope, name = body["k"]
        if ts == "-inf":
            ts = float("-inf")
        if (ts is None) == order.by_time or not isinstance(key_scope, str) or not isinstance(name, str):
            raise ValueError("shape")
        if ts is not None and not isinstance(ts, (int, float)):
            raise ValueError("shape")
        return (None if ts is None else float(ts), key_scope, name)
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as exc:
        raise _bad_token(token) from exc


@dataclass(frozen=True)
class _Request:
    predicate: Predicate
    order: _Order
    size: int
    after: tuple[float, str, str] | None
    filter_digest: str
    scope: str


def _request(
    filter_expr: str | None,
    order_by: str | None,
    max_results: int | str | None,
    page_token: str | None,
    scope: str,
    allow_filter_with_order: bool,
) -> _Request:
    predicate = compile_filter(filter_expr)
    order = _parse_order(order_by)
    has_filter = filter_expr is not None and bool(filter_expr.strip())
    if has_filter and order_by is not None and order_by.strip() and not allow_filter_with_order:
        raise ListError(
            f"Invalid value for field 'orderBy': '{order_by}'. "
            "Specifying both a list filter and sort order is not currently supported.",
            field="orderBy",
        )
    size = parse_max_results(max_results)
    filter_digest = _digest((filter_expr or "").strip())
    after = None
    if page_token:
        after = _sort_tuple(_decode_token(page_token, _Order(order.by_time), filter_digest, scope))
    return _Request(predicate, order, size, after, filter_digest, scope)


def _select(
    request: _Request, entries: list[tuple[str, Mapping[str, Any]]]
) -> tuple[list[tuple[str, Mapping[str, Any]]], str | None]:
    keyed = []
    for scope, item in entries:
        key = _item_key(item, scope, request.order)
        sort = _sort_tuple(key)
        if request.after is not None and not sort > request.after:
            continue
        if not request.predicate(item):
            continue
        keyed.append((sort, key, scope, item))
    keyed.sort(key=lambda entry: entry[0])
    page = keyed[: request.size]
    token = None
    if len(keyed) > request.size:
        token = _encode_token(page[-1][1], request.order, request.filter_digest, request.scope)
    return [(scope, item) for _, _, scope, item in page], token


def list_page(
    items: Sequence[Mapping[str, Any]],
    *,
    filter: str | None = None,  # noqa: A002 - the API's own parameter name
    order_by: str | None = None,
    max_results: int | str | None = None,
    page_token: str | None = None,
    scope: str = "",
    allow_filter_with_order: bool = False,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """One page of ``items`` and the ``nextPageToken`` (None on the last page).

    ``scope`` names what is being listed (say ``"projects/p/zones/z/instances"``): a
    token is only good for the same scope, order and filter.  ListError for a bad
    filter, orderBy, maxResults or pageToken.
    """
    request = _request(filter, order_by, max_results, page_token, scope, allow_filter_with_order)
    page, token = _select(request, [("", item) for item in items])
    return [item for _, item in page], token


def _parse_bool(value: bool | str | None, field: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0", ""):
        return False
    raise ListError(f"Invalid value at '{field}' (TYPE_BOOL), \"{value}\"", field=field)


def _no_results(scope: str) -> dict[str, Any]:
    return {
        "warning": {
            "code": "NO_RESULTS_ON_PAGE",
            "message": f"There are no results for scope '{scope}' on this page.",
            "data": [{"key": "scope", "value": scope}],
        }
    }


def aggregate(
    items_by_scope: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str,
    *,
    filter: str | None = None,  # noqa: A002 - the API's own parameter name
    order_by: str | None = None,
    max_results: int | str | None = None,
    page_token: str | None = None,
    return_partial_success: bool | str | None = None,
    unreachable: Sequence[str] = (),
    scope: str = "",
    allow_filter_with_order: bool = False,
) -> dict[str, Any]:
    """The body of an ``aggregatedList`` page (less ``kind``/``id``/``selfLink``).

    ``items_by_scope`` maps every visible scope (``"zones/us-a"``) to its
    resources; ``key`` is the collection's name in the scoped list
    (``"instances"``, ``"disks"``).  One filter, order and page size run across all
    scopes; every scope appears on every page, with its items or with a
    ``NO_RESULTS_ON_PAGE`` warning.  ``unreachable`` scopes are reported in
    ``unreachables`` when ``returnPartialSuccess`` is set and otherwise ignored
    here (the caller decides whether to fail the request).
    """
    partial = _parse_bool(return_partial_success, "return_partial_success")
    request = _request(filter, order_by, max_results, page_token, scope, allow_filter_with_order)
    entries = [(s, item) for s in sorted(items_by_scope) for item in items_by_scope[s]]
    page, token = _select(request, entries)
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for s, item in page:
        grouped.setdefault(s, []).append(item)
    body: dict[str, Any] = {
        "items": {s: ({key: grouped[s]} if s in grouped else _no_results(s)) for s in sorted(items_by_scope)}
    }
    if token is not None:
        body["nextPageToken"] = token
    if partial and unreachable:
        body["unreachables"] = list(unreachable)
    return body
