"""Compute Engine v1 resource shapes, driven by the discovery document.

Pure: no bus, database or configuration.  The schemas come from the
``compute.v1.json`` discovery document that google-api-python-client ships
(``googleapiclient/discovery_cache/documents``); only its ``schemas`` section is
kept.  Loading is lazy and happens once per process (:meth:`Schema.load`): about
0.15-0.2 s and 7 MB resident for the 1,075 schemas (the 5 MB document is parsed
once and the rest of it dropped).

Two directions:

* :func:`shape` renders server data as Compute Engine's JSON does: only the fields
  the schema defines, recursively through objects, arrays and maps
  (``additionalProperties``, like ``labels``); ``int64``/``uint64`` as decimal
  strings, ``int32``/``uint32`` as numbers, booleans as booleans; enum values
  checked (a Python ``Enum`` gives its value); a ``datetime`` for a string field
  as RFC 3339 with milliseconds and offset, as ``creationTimestamp`` is written; ``kind`` filled from the schema's default; ``None`` left out.  Data the
  schema cannot carry (an unknown enum value, a string for a boolean) is a server
  bug and raises ``ValueError``; fields the schema does not define are dropped.
* :func:`parse_body` checks a request body the way Google's JSON front end does and
  answers with :class:`BodyError` in its words: ``Invalid JSON payload received.
  Unknown name "x" at 'resource': Cannot find field.`` for an unknown field,
  ``Invalid value at 'resource.can_ip_forward' (TYPE_BOOL), "yes"`` for a wrong
  type (paths use the proto field names, snake_case, as Google's messages do:
  ``'tools[0].function_declarations[3].parameters'`` in googleapis error reports),
  ``... Proto field is not repeating, cannot start list.`` for a list where one
  value goes.  Every problem found is reported, one a line, as Google does.
  Integers are taken as JSON numbers or decimal strings (proto3 JSON), enums by
  name, ``null`` as absent; fields the schema marks ``readOnly`` (output only)
  are checked and then dropped, as Compute Engine ignores them on input.

Google answers these with HTTP 400, ``status: INVALID_ARGUMENT`` and
``errors[0].reason: "invalid"`` (the reason seen on "Invalid JSON payload
received" errors, e.g. danny-avila/LibreChat#11761), with a
``google.rpc.BadRequest`` detail listing ``fieldViolations`` (field, description):
:attr:`BodyError.violations` carries them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import functools
import json
import math
import re
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["BodyError", "Schema", "parse_body", "proto_name", "rfc3339", "shape"]

DISCOVERY_PACKAGE = "googleapiclient"
DISCOVERY_RESOURCE = "discovery_cache/documents/compute.v1.json"

_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_PROTO_TYPES = {
    "int32": "TYPE_INT32",
    "uint32": "TYPE_UINT32",
    "int64": "TYPE_INT64",
    "uint64": "TYPE_UINT64",
    "float": "TYPE_FLOAT",
    "double": "TYPE_DOUBLE",
}
_DECIMAL_INT = re.compile(r"-?\d+")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")

Node = Mapping[str, Any]


class BodyError(ValueError):
    """A request body Google's JSON front end refuses: 400, reason ``invalid``, INVALID_ARGUMENT."""

    reason = "invalid"
    status = "INVALID_ARGUMENT"

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations  # (field path, description): google.rpc.BadRequest fieldViolations
        self.message = "\n".join(description for _, description in violations)
        super().__init__(self.message)

    @property
    def field(self) -> str:
        return self.violations[0][0] if self.violations else ""

    def __str__(self) -> str:
        return self.message


@functools.lru_cache(maxsize=4096)
def proto_name(json_name: str) -> str:
    """The proto field name Google's messages use for a JSON name (``canIpForward`` -> ``can_ip_forward``)."""
    return json_name[:1] + re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), json_name[1:])


def rfc3339(moment: _dt.datetime) -> str:
    """A timestamp as Compute Engine writes one: milliseconds and a numeric offset (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.isoformat(timespec="milliseconds")


def _render(value: Any) -> str:
    """A rejected value as Google quotes it: strings in double quotes, the rest as JSON."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


class Schema:
    """The ``schemas`` of the Compute Engine v1 discovery document."""

    _instance: ClassVar[Schema | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas: Mapping[str, Any] = schemas

    # -- loading

    @classmethod
    def load(cls) -> Schema:
        """The schemas of the installed ``compute.v1.json``, read once per process."""
        instance = cls._instance
        if instance is None:
            with cls._lock:
                instance = cls._instance
                if instance is None:
                    instance = cls.from_bytes(
                        resources.files(DISCOVERY_PACKAGE).joinpath(DISCOVERY_RESOURCE).read_bytes()
                    )
                    cls._instance = instance
        return instance

    @classmethod
    def from_path(cls, path: str | Path) -> Schema:
        return cls.from_bytes(Path(path).read_bytes())

    @classmethod
    def from_bytes(cls, document: bytes) -> Schema:
        schemas = json.loads(document)["schemas"]  # the rest of the document is garbage at once
        if not isinstance(schemas, dict):
            raise ValueError("the discovery document has no schemas")
        return cls(schemas)

    # -- lookup

    def __contains__(self, name: object) -> bool:
        return name in self.schemas

    def get(self, name: str) -> Node:
        try:
            node: Node = self.schemas[name]
        except KeyError:
            raise KeyError(f"no schema {name!r} in compute.v1") from None
        return node

    def _deref(self, node: Node) -> Node:
        ref = node.get("$ref")
        return self.get(ref) if isinstance(ref, str) else node

    def fields(self, name: str) -> list[str]:
        """The JSON field names of a schema."""
        return list(self.get(name).get("properties", {}))

    def output_only(self, name: str) -> list[str]:
        """The fields of a schema that are output only (``readOnly``)."""
        return [k for k, v in self.get(name).get("properties", {}).items() if v.get("readOnly")]

    # -- output

    def shape(self, schema_name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` rendered as the schema's JSON (see the module doc); ValueError on a server bug."""
        result = self._shape_object(self.get(schema_name), data, schema_name)
        return result

    def _shape_object(self, node: Node, data: Any, path: str) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected an object, got {type(data).__name__}")
        properties: Mapping[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties")
        out: dict[str, Any] = {}
        if properties:
            kind = properties.get("kind")
            if kind is not None and "default" in kind and data.get("kind") is None:
                out["kind"] = kind["default"]  # first, where Compute Engine puts it
            for key, value in data.items():
                sub = properties.get(key)
                if sub is None or value is None:
                    continue
                out[key] = self._shape_value(sub, value, f"{path}.{key}")
        elif isinstance(extra, Mapping):
            for key, value in data.items():
                if value is None:
                    continue
                if not isinstance(key, str):
                    raise ValueError(f"{path}: map key {key!r} is not a string")
                out[key] = self._shape_value(extra, value, f"{path}[{key}]")
        else:  # a free-form object ("type": "object" with nothing declared)
            out = dict(data)
        return out

    def _shape_value(self, node: Node, value: Any, path: str) -> Any:
        node = self._deref(node)
        kind = node.get("type")
        fmt = node.get("format")
        if kind == "object":
            if fmt == "google.protobuf.Any" and not node.get("properties"):
                return _plain_json(value, path)
            return self._shape_object(node, value, path)
        if kind == "array":
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
                raise ValueError(f"{path}: expected a list, got {type(value).__name__}")
            return [
                self._shape_value(node["items"], v, f"{path}[{i}]")
                for i, v in enumerate(value)
                if v is not None
            ]
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{path}: expected a boolean, got {value!r}")
            return value
        if kind == "integer" or (kind == "string" and fmt in ("int64", "uint64")):
            number = _integer(value)
            low, high = _INT_RANGES.get(fmt or "int32", _INT_RANGES["int64"])
            if number is None or not low <= number <= high:
                raise ValueError(f"{path}: {value!r} is no {fmt}")
            return str(number) if kind == "string" else number
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{path}: {value!r} is no {fmt or 'number'}")
            return float(value)
        if kind == "string":
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, _dt.datetime):
                value = rfc3339(value)
            if not isinstance(value, str):
                raise ValueError(f"{path}: expected a string, got {value!r}")
            allowed = node.get("enum")
            if allowed is not None and value not in allowed:
                raise ValueError(f"{path}: {value!r} is not one of the schema's values")
            return str(value)
        return _plain_json(value, path)  # "any"

    # -- input

    def parse_body(self, schema_name: str, body: object, *, root: str = "resource") -> dict[str, Any]:
        """A request body checked against the schema and converted; BodyError in Google's words."""
        errors: list[tuple[str, str]] = []
        if not isinstance(body, Mapping):
            errors.append(
                (
                    root,
                    f"Invalid value at '{root}' (type.googleapis.com/google.cloud.compute.v1.{schema_name}), {_render(body)}",
                )
            )
            raise BodyError(errors)
        result = self._parse_object(self.get(schema_name), body, root, errors)
        if errors:
            raise BodyError(errors)
        return result

    def _parse_object(
        self, node: Node, data: Mapping[str, Any], path: str, errors: list[tuple[str, str]]
    ) -> dict[str, Any]:
        properties: Mapping[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties")
        out: dict[str, Any] = {}
        if not properties and isinstance(extra, Mapping):
            for index, (key, value) in enumerate(data.items()):
                if value is None:
                    continue
                parsed = self._parse_value(extra, value, f"{path}[{index}].value", key, path, errors)
                if parsed is not _ABSENT:
                    out[str(key)] = parsed
            return out
        if not properties:  # a free-form object
            return dict(data)
        for key, value in data.items():
            sub = properties.get(key)
            if sub is None:
                errors.append(
                    (
                        path,
                        f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field.",
                    )
                )
                continue
            if value is None:
                continue
            parsed = self._parse_value(sub, value, f"{path}.{proto_name(key)}", key, path, errors)
            if parsed is not _ABSENT and not sub.get("readOnly"):
                out[key] = parsed
        return out

    def _parse_value(
        self, node: Node, value: Any, path: str, name: str, parent: str, errors: list[tuple[str, str]]
    ) -> Any:
        declared = node  # a $ref names the message type in errors
        node = self._deref(node)
        kind = node.get("type")
        fmt = node.get("format")
        repeated = kind == "array"
        if isinstance(value, list) and not repeated and kind != "any":
            errors.append(
                (
                    path,
                    f"Invalid JSON payload received. Unknown name \"{name}\" at '{parent}': Proto field is not repeating, cannot start list.",
                )
            )
            return _ABSENT
        if repeated:
            if not isinstance(value, list):
                errors.append(
                    (path, f"Invalid value at '{path}' ({_type_name(node['items'], self)}), {_render(value)}")
                )
                return _ABSENT
            items = []
            for i, element in enumerate(value):
                if element is None:
                    continue
                if isinstance(element, list):
                    errors.append(
                        (
                            f"{path}[{i}]",
                            f"Invalid value at '{path}[{i}]' ({_type_name(node['items'], self)}), {_render(element)}",
                        )
                    )
                    continue
                parsed = self._parse_value(node["items"], element, f"{path}[{i}]", name, parent, errors)
                if parsed is not _ABSENT:
                    items.append(parsed)
            return items
        if kind == "object":
            if fmt == "google.protobuf.Any" and not node.get("properties"):
                return value
            if not isinstance(value, Mapping):
                errors.append(
                    (path, f"Invalid value at '{path}' ({_type_name(declared, self)}), {_render(value)}")
                )
                return _ABSENT
            return self._parse_object(node, value, path, errors)
        if isinstance(value, Mapping) and kind != "any":
            return self._invalid(declared, path, value, errors)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            return self._invalid(declared, path, value, errors)
        if kind == "integer" or (kind == "string" and fmt in ("int64", "uint64")):
            number = _integer(value, strings=True)
            low, high = _INT_RANGES.get(fmt or "int32", _INT_RANGES["int64"])
            if number is None or not low <= number <= high:
                return self._invalid(declared, path, value, errors)
            return number
        if kind == "number":
            parsed_float = _float(value)
            if parsed_float is None:
                return self._invalid(declared, path, value, errors)
            return parsed_float
        if kind == "string":
            if not isinstance(value, str):
                return self._invalid(declared, path, value, errors)
            enum = node.get("enum")
            if enum is not None and value not in enum:
                return self._invalid(declared, path, value, errors)
            if fmt == "byte" and not _is_base64(value):
                return self._invalid(declared, path, value, errors)
            return value
        return value  # "any"

    def _invalid(self, declared: Node, path: str, value: Any, errors: list[tuple[str, str]]) -> Any:
        errors.append((path, f"Invalid value at '{path}' ({_type_name(declared, self)}), {_render(value)}"))
        return _ABSENT


class _Absent:
    pass


_ABSENT: Any = _Absent()


def _type_name(node: Node, schema: Schema) -> str:
    """How Google's messages name the type a value failed to parse as."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        return f"type.googleapis.com/google.cloud.compute.v1.{ref}"
    node = schema._deref(node)
    kind = node.get("type")
    fmt = node.get("format")
    if kind == "boolean":
        return "TYPE_BOOL"
    if fmt in _PROTO_TYPES:
        return _PROTO_TYPES[fmt]
    if kind == "integer":
        return "TYPE_INT32"
    if kind == "number":
        return "TYPE_DOUBLE"
    if kind == "string" and node.get("enum") is not None:
        return "TYPE_ENUM"
    if kind == "string":
        return "TYPE_BYTES" if fmt == "byte" else "TYPE_STRING"
    return "TYPE_MESSAGE"


def _integer(value: Any, *, strings: bool = True) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if strings and isinstance(value, str):
        if _DECIMAL_INT.fullmatch(value):
            return int(value)
        if _JSON_NUMBER.fullmatch(value):  # "1e3", "10.0": proto3 JSON takes integral values
            as_float = float(value)
            if math.isfinite(as_float) and as_float.is_integer() and abs(as_float) < 2**53:
                return int(as_float)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        result = float(value)
        return result if math.isfinite(result) else None
    if isinstance(value, str):
        if value in ("NaN", "Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
        if _JSON_NUMBER.fullmatch(value):
            result = float(value)
            return result if math.isfinite(result) else None
    return None


def _is_base64(value: str) -> bool:
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _plain_json(value: Any, path: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not JSON data ({exc})") from exc


def shape(schema_name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """:meth:`Schema.shape` on the installed discovery document."""
    return Schema.load().shape(schema_name, data)


def parse_body(schema_name: str, body: object, *, root: str = "resource") -> dict[str, Any]:
    """:meth:`Schema.parse_body` on the installed discovery document."""
    return Schema.load().parse_body(schema_name, body, root=root)
