"""The Compute Engine ``filter`` language of ``list`` and ``aggregatedList`` methods.

Pure: no bus, database or configuration.  :func:`compile_filter` turns an
expression into a predicate over one resource (a mapping in its Compute Engine
JSON shape); :mod:`ocs.api_gce.listing` applies it before ordering and paging.

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
ANDed.  The literal, a quoted string or one unquoted word, is an RE2 pattern that
must match the whole value (``name ne .*instance``); booleans and numbers match
as their JSON text.  ``AND``/``OR``/``NOT`` are not part of this form
(``status eq RUNNING AND name eq x`` is "Invalid list filter expression." in
googleapis/nodejs-compute#48), and neither are the AIP-160 operators.

Every malformed expression raises :class:`ListError` with Compute Engine's message
``Invalid value for field 'filter': '<expr>'. Invalid list filter expression.``
(googleapis/google-api-go-client#815, prometheus/prometheus#5499: 400, reason
``invalid``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import re2

__all__ = ["ListError", "Predicate", "compile_filter"]

_MAX_FILTER_LENGTH = 4096
_MAX_DEPTH = 64

Predicate = Callable[[Mapping[str, Any]], bool]


class ListError(ValueError):
    """A list request Compute Engine would refuse: 400, reason ``invalid``.

    ``str()`` is Compute Engine's message; ``field`` names the query parameter
    (``filter``, ``orderBy``, ``maxResults``, ``pageToken``).
    """

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


@functools.lru_cache(maxsize=256)
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
