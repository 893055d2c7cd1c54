"""Compute Engine ``list``/``aggregatedList`` semantics, written once.

Pure: no bus, database or configuration.  The front end hands in the resources
(already in their Compute Engine JSON shape) and the query parameters; this module
filters, orders and pages them the way Compute Engine v1 documents it (the
``filter``, ``orderBy``, ``maxResults`` and ``pageToken`` parameters of every
``list`` method in the discovery document ``compute.v1.json``).

Filter expressions
==================

Two languages, which one request may not mix (the discovery doc: "These two types
of filter expressions cannot be mixed in one request"):

*AIP-160 form*: ``field OP value`` with ``OP`` one of ``= != > < >= <= :``.

* ``value`` is a quoted string (``"..."`` or ``'...'``, backslash escapes), or a
  bare word running to the next blank or parenthesis.  Literals ``true``/``false``
  compare with booleans, numbers compare numerically with numbers and with
  numeric strings (Compute Engine renders int64 fields such as ``id`` as
  strings), anything else compares as text.
* ``*`` in a ``=``/``!=``/``:`` value is a wildcard for any run of characters
  (``name = "web-*"``); ``field:*`` asks whether the field is set
  (``labels.owner:*``); ``map:key`` whether a map has that key.
* Nested fields by dots (``labels.env``, ``scheduling.automaticRestart``); a path
  through a repeated field (``networkInterfaces.networkIP``,
  ``tags.items``) matches when any element matches.  ``!=`` is the negation of
  ``=`` (so an unset field is ``!=`` anything and no element of a repeated field
  may equal the value); ordering comparisons on an unset field are false.
* ``NOT term`` and ``-term`` negate; ``AND``, ``OR`` and parentheses combine.
  Terms side by side are ANDed (``(a = 1) (b = 2)``).  Precedence is AIP-160's:
  ``OR`` binds tighter than ``AND`` and than juxtaposition, so the discovery
  doc's ``(x = 1) OR (x = 2) AND (y = true)`` is ``(x = 1 OR x = 2) AND y = true``.
* A bare word with no operator (AIP-160's global search) is not supported by
  Compute Engine and is refused.

*Regular-expression form*: ``field eq literal`` / ``field ne literal`` alone and
unparenthesised, or several parenthesised ``(field eq literal)`` side by side,
ANDed.  The literal is a quoted string or one unquoted word.
The literal is an RE2 pattern that must match the whole value (``name ne
.*instance``).  ``AND``/``OR``/``NOT`` are not part of this form
(``status eq RUNNING AND name eq x`` is "Invalid list filter expression." in
googleapis/nodejs-compute#48), and neither are the AIP-160 operators.

Every malformed expression raises :class:`ListError` with Compute Engine's message
``Invalid value for field 'filter': '<expr>'. Invalid list filter expression.``
(googleapis/google-api-go-client#815, prometheus/prometheus#5499: 400, reason
``invalid``).

Ordering and paging
===================

``orderBy`` is ``name`` (the default; ``name asc`` is taken too) or
``creationTimestamp desc`` (newest first) -- "Currently, only sorting by ``name``
or ``creationTimestamp desc`` is supported."  Anything else is refused.  Compute
Engine also refuses a filter together with an ``orderBy`` ("Invalid value for field
'orderBy': 'creationTimestamp'. Specifying both a list filter and sort order is not
currently supported.", doitintl/kubeip#132); :func:`list_page` mirrors that unless
told ``allow_filter_with_order=True``.

Items are ordered by (sort key, name[, scope]); the page token records the last
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
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import re2

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
_MAX_FILTER_LENGTH = 4096
_MAX_DEPTH = 64

Predicate = Callable[[Mapping[str, Any]], bool]


class ListError(ValueError):
    """A list request Compute Engine would refuse; ``str()`` is its message (400 ``invalid``)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


def _filter_error(expr: str) -> ListError:
    return ListError(
        f"Invalid value for field 'filter': '{expr}'. Invalid list filter expression.", field="filter"
    )


# --------------------------------------------------------------------------- values


_MISSING = object()
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_STRICT_NUMERIC_STRING = re.compile(r"-?\d+(?:\.\d+)?")


def _resolve(obj: Any, path: Sequence[str]) -> Iterator[Any]:
    """Every value at ``path`` under ``obj``, fanning out over repeated fields."""
    if isinstance(obj, (list, tuple)):
        for element in obj:
            yield from _resolve(element, path)
        return
    if not path:
        if obj is not None:
            yield obj
        return
    if isinstance(obj, Mapping):
        child = obj.get(path[0], _MISSING)
        if child is not _MISSING:
            yield from _resolve(child, path[1:])


def _leaves(values: Iterator[Any]) -> Iterator[Any]:
    """Values with a final repeated field spread into its elements."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from (v for v in value if v is not None)
        else:
            yield value


def _as_number(value: Any) -> Decimal | None:
    """Exact numbers (int64 ids do not fit a float) of numbers and numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _STRICT_NUMERIC_STRING.fullmatch(value):
        return Decimal(value)
    return None


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


@dataclass(frozen=True)
class _Literal:
    text: str
    quoted: bool

    @property
    def boolean(self) -> bool | None:
        if self.quoted:
            return None
        lowered = self.text.lower()
        return True if lowered == "true" else False if lowered == "false" else None

    @property
    def number(self) -> Decimal | None:
        if self.quoted or not _NUMBER.fullmatch(self.text):
            return None
        try:
            number = Decimal(self.text)
        except ArithmeticError:  # pragma: no cover - the pattern admits only decimals
            return None
        return number if number.is_finite() and abs(number.adjusted()) < 400 else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def _equals(value: Any, literal: _Literal) -> bool:
    if isinstance(value, bool):
        want = literal.boolean
        if want is not None:
            return value is want
        return literal.text == _text(value)
    number = literal.number
    if number is not None:
        actual = _as_number(value)
        if actual is not None:
            return actual == number
    text = _text(value)
    if text is None:
        return False
    if "*" in literal.text:
        return _glob(literal.text).fullmatch(text) is not None
    return text == literal.text


def _ordered(value: Any, literal: _Literal, op: str) -> bool:
    if isinstance(value, bool):
        return False
    left: Any
    right: Any
    number = literal.number
    actual = _as_number(value)
    if number is not None and actual is not None:
        left, right = actual, number
    else:
        text = _text(value)
        if text is None:
            return False
        left, right = text, literal.text
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _has(values: list[Any], literal: _Literal) -> bool:
    if literal.text == "*" and not literal.quoted:
        return bool(values)
    for value in values:
        if isinstance(value, Mapping):
            if "*" in literal.text:
                pattern = _glob(literal.text)
                if any(isinstance(k, str) and pattern.fullmatch(k) for k in value):
                    return True
            elif literal.text in value:
                return True
        elif _equals(value, literal):
            return True
    return False


def _restriction(path: tuple[str, ...], op: str, literal: _Literal) -> Predicate:
    def predicate(item: Mapping[str, Any]) -> bool:
        values = list(_resolve(item, path))
        if op == ":":
            return _has(list(_leaves(iter(values))), literal)
        leaves = [v for v in _leaves(iter(values)) if not isinstance(v, Mapping)]
        if op == "=":
            return any(_equals(v, literal) for v in leaves)
        if op == "!=":
            return not any(_equals(v, literal) for v in leaves)
        return any(_ordered(v, literal, op) for v in leaves)

    return predicate


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _regex_restriction(path: tuple[str, ...], negate: bool, pattern: str, expr: str) -> Predicate:
    try:
        compiled = re2.compile(pattern, options=_RE2_OPTIONS)
    except Exception as exc:  # re2.error: an invalid RE2 pattern
        raise _filter_error(expr) from exc

    def predicate(item: Mapping[str, Any]) -> bool:
        texts = [_text(v) for v in _leaves(_resolve(item, path))]
        matched = any(t is not None and compiled.fullmatch(t) is not None for t in texts)
        return matched is not negate

    return predicate


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda item: all(p(item) for p in preds)


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda item: any(p(item) for p in preds)


def _not(pred: Predicate) -> Predicate:
    return lambda item: not pred(item)


# --------------------------------------------------------------------------- parsing

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_OPERATORS = ("!=", ">=", "<=", "=", ">", "<", ":")
_REGEX_HEAD = re.compile(r"\s*\(?\s*[A-Za-z_][A-Za-z0-9_.-]*\s+(?:eq|ne)(?:\s|$)")


class _Syntax(Exception):
    pass


class _Parser:
    """Recursive descent over AIP-160 as Compute Engine takes it (see the module doc)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    # -- lexing helpers
    def ws(self) -> bool:
        start = self.i
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1
        return self.i > start

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def peek_keyword(self, word: str) -> bool:
        end = self.i + len(word)
        if self.s[self.i : end] != word:
            return False
        return end == len(self.s) or self.s[end].isspace() or self.s[end] == "("

    def quoted(self) -> str:
        quote = self.s[self.i]
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\\":
                if self.i + 1 >= len(self.s):
                    raise _Syntax
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            if ch == quote:
                self.i += 1
                return "".join(out)
            out.append(ch)
            self.i += 1
        raise _Syntax

    # -- grammar
    def parse(self) -> Predicate:
        self.ws()
        pred = self.expression()
        self.ws()
        if not self.at_end():
            raise _Syntax
        return pred

    def expression(self) -> Predicate:
        """expression: sequence {AND sequence}"""
        preds = [self.sequence()]
        while True:
            save = self.i
            if self.ws() and self.peek_keyword("AND"):
                self.i += 3
                if not self.ws() and not (self.i < len(self.s) and self.s[self.i] == "("):
                    raise _Syntax
                preds.append(self.sequence())
                continue
            self.i = save
            return _all(preds)

    def sequence(self) -> Predicate:
        """sequence: factor {WS factor} -- juxtaposition is AND."""
        preds = [self.factor()]
        while True:
            save = self.i
            self.ws()
            if self.at_end() or self.s[self.i] == ")" or self.peek_keyword("AND") or self.peek_keyword("OR"):
                self.i = save
                return _all(preds)
            if self.i == save and self.s[save - 1 : save] != ")":
                raise _Syntax  # two terms glued together with no blank
            preds.append(self.factor())

    def factor(self) -> Predicate:
        """factor: term {OR term}"""
        preds = [self.term()]
        while True:
            save = self.i
            if self.ws() and self.peek_keyword("OR"):
                self.i += 2
                if not self.ws() and not (self.i < len(self.s) and self.s[self.i] == "("):
                    raise _Syntax
                preds.append(self.term())
                continue
            self.i = save
            return _any(preds)

    def term(self) -> Predicate:
        """term: [NOT WS | -] simple"""
        if self.peek_keyword("NOT"):
            self.i += 3
            self.ws()
            return _not(self.simple())
        if self.s[self.i : self.i + 1] == "-":
            self.i += 1
            return _not(self.simple())
        return self.simple()

    def simple(self) -> Predicate:
        if self.at_end():
            raise _Syntax
        if self.s[self.i] == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _Syntax
            self.i += 1
            self.ws()
            pred = self.expression()
            self.ws()
            if self.at_end() or self.s[self.i] != ")":
                raise _Syntax
            self.i += 1
            self.depth -= 1
            return pred
        return self.restriction()

    def restriction(self) -> Predicate:
        m = _FIELD.match(self.s, self.i)
        if not m or m.group(0) in ("AND", "OR", "NOT"):
            raise _Syntax
        path = tuple(m.group(0).split("."))
        self.i = m.end()
        self.ws()
        for op in _OPERATORS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                break
        else:
            raise _Syntax  # global search, or eq/ne mixed into an AIP-160 expression
        self.ws()
        return _restriction(path, op, self.value())

    def value(self) -> _Literal:
        if self.at_end():
            raise _Syntax
        if self.s[self.i] in "\"'":
            return _Literal(self.quoted(), True)
        start = self.i
        while self.i < len(self.s) and not self.s[self.i].isspace() and self.s[self.i] not in "()":
            self.i += 1
        text = self.s[start : self.i]
        if not text or text[0] in "\"'":
            raise _Syntax
        return _Literal(text, False)


_REGEX_TERM = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s+(eq|ne)(?:\s+|$)")


def _regex_literal(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        body = raw[1:-1]
        if raw[0] in body.replace("\\" + raw[0], ""):
            raise _Syntax
        return body.replace("\\" + raw[0], raw[0])
    if not raw or raw[0] in "\"'" or any(ch.isspace() for ch in raw):
        raise _Syntax  # an unquoted literal is one word: "a eq x AND b eq y" is refused
    return raw


def _parse_regex_form(expr: str) -> Predicate:
    text = expr.strip()
    if not text.startswith("("):
        m = _REGEX_TERM.match(text)
        if not m:
            raise _Syntax
        return _regex_restriction(
            tuple(m.group(1).split(".")), m.group(2) == "ne", _regex_literal(text[m.end() :]), expr
        )
    preds: list[Predicate] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        if text[i] != "(":
            raise _Syntax
        depth, j, quote = 0, i, ""
        while j < len(text):  # find the matching ")", minding quotes and nested groups
            ch = text[j]
            if quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"'" and depth == 1 and text[i + 1 : j].rstrip().endswith((" eq", " ne")):
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if depth != 0 or j >= len(text):
            raise _Syntax
        inner = text[i + 1 : j].strip()
        m = _REGEX_TERM.match(inner)
        if not m:
            raise _Syntax
        preds.append(
            _regex_restriction(
                tuple(m.group(1).split(".")), m.group(2) == "ne", _regex_literal(inner[m.end() :]), expr
            )
        )
        i = j + 1
    if not preds:
        raise _Syntax
    return _all(preds)


def compile_filter(expr: str | None) -> Predicate:
    """A predicate over one resource for a Compute Engine ``filter``; ListError if malformed.

    ``None`` or an all-blank expression matches everything.
    """
    if expr is None or not expr.strip():
        return lambda item: True
    if not isinstance(expr, str) or len(expr) > _MAX_FILTER_LENGTH or "\x00" in expr:
        raise _filter_error(str(expr))
    try:
        if _REGEX_HEAD.match(expr):
            return _parse_regex_form(expr)
        return _Parser(expr).parse()
    except ListError:
        raise
    except (_Syntax, RecursionError) as exc:
        raise _filter_error(expr) from exc


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
