"""Typed payloads on the bus: dataclasses in Python, JSON objects on the wire.

Operations declare their request and response types. A type is one of

- a dataclass (fields may themselves be dataclasses, enums, lists, tuples,
  ``dict[str, X]``, ``X | None`` or JSON scalars);
- a ``TypedDict`` or ``dict``: the payload is passed through as a plain dict;
- ``None`` (no payload, or a call that returns nothing).

:func:`to_wire` turns a value into JSON-serializable data and :func:`from_wire`
builds the declared type back from it. Unknown keys are ignored and missing
keys take the field's default, so a newer sender and an older receiver (or the
reverse) keep talking during a rolling upgrade.

Errors travel as :func:`error_to_wire` / :func:`error_from_wire` envelopes: an
:class:`ocs.errors.OcsError` comes back as the same class (or its nearest base
in :mod:`ocs.errors`) with the same code and message; anything else comes back
as a bare :class:`ocs.errors.InternalError`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from typing import Any, Union

from ocs import errors

JsonValue = Any  # what json.dumps accepts: dict, list, str, int, float, bool, None


def to_wire(value: Any) -> JsonValue:
    """``value`` as JSON-serializable data (dataclasses become dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_wire(value.value)
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_wire(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not a bus payload type: {value!r}")


def from_wire(tp: Any, data: JsonValue) -> Any:
    """Build a value of the declared type ``tp`` from wire data."""
    if tp is None or tp is Any or data is None:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_from_wire(tp, data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _union_from_wire(args, data)
    if origin in (list, set, frozenset) and args:
        return origin(from_wire(args[0], v) for v in data)
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_wire(args[0], v) for v in data)
        return tuple(from_wire(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict and len(args) == 2:
        return {k: from_wire(args[1], v) for k, v in data.items()}
    if tp is float and isinstance(data, int):
        return float(data)
    return data


def _union_from_wire(args: tuple[Any, ...], data: JsonValue) -> Any:
    candidates = [a for a in args if a is not type(None)]
    if len(candidates) == 1:
        return from_wire(candidates[0], data)
    for candidate in candidates:  # a union of scalars: keep the wire value
        if isinstance(candidate, type) and isinstance(data, candidate):
            return data
    return data


def _dataclass_from_wire(tp: type, data: JsonValue) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{tp.__name__} expects an object on the wire, got {data!r}")
    hints = _field_types(tp)
    kwargs = {
        f.name: from_wire(hints.get(f.name), data[f.name])
        for f in dataclasses.fields(tp)
        if f.init and f.name in data
    }
    return tp(**kwargs)


@functools.cache
def _field_types(tp: type) -> dict[str, Any]:
    return typing.get_type_hints(tp)


def dumps(value: Any) -> str:
    """Strict JSON text of ``value`` (for logs and tests)."""
    return json.dumps(to_wire(value), sort_keys=True)


# --- errors -----------------------------------------------------------------


def _wire_class(exc: errors.OcsError) -> str:
    """Name of the nearest class of ``exc`` defined in :mod:`ocs.errors`."""
    for cls in type(exc).__mro__:
        if cls.__module__ == errors.__name__ and issubclass(cls, errors.OcsError):
            return cls.__name__
    return errors.InternalError.__name__


def _json_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in kwargs.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """The wire form of an error raised by a handler.

    Only :class:`~ocs.errors.OcsError` keeps its code and message; any other
    exception is a bug and becomes a bare ``InternalError`` (the server logs it).
    """
    if not isinstance(exc, errors.OcsError):
        exc = errors.InternalError()
    return {
        "class": _wire_class(exc),
        "raised": type(exc).__name__,
        "code": exc.code,
        "message": str(exc),
        "kwargs": _json_kwargs(exc.kwargs),
    }


def error_from_wire(data: dict[str, Any]) -> errors.OcsError:
    """The exception to raise in the caller for an error envelope."""
    cls = getattr(errors, str(data.get("class", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.OcsError)):
        cls = errors.InternalError
    message = data.get("message")
    code = data.get("code")
    kwargs = data.get("kwargs") or {}
    try:
        exc = cls(message, code=code, **kwargs)
    except TypeError:  # a subclass with a narrower constructor
        exc = cls(message, code=code)
    return exc
