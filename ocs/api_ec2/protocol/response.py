"""Render EC2 XML responses and error documents from botocore's service model.

A response is ``<{Action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">``
holding ``<requestId>`` and then the output shape's members in the model's order:

- each member is an element named by its ``locationName`` (else the member name);
- a list is a wrapper element with one child per item, named by the list
  member's ``locationName`` (``item`` when the model names none, as EC2 does);
  an empty list is an empty wrapper (``<reservationSet/>``);
- booleans are ``true``/``false``; integers plain; doubles in Python's shortest
  round-trip form; timestamps ISO 8601 in UTC with milliseconds
  (``2026-11-25T12:00:00.000Z``, naive datetimes taken as UTC); blobs base64;
- text is XML-escaped; ``\\r`` is written ``&#13;`` so that it survives parsing,
  and the few characters XML 1.0 cannot carry at all become U+FFFD;
- a member whose value is None is left out;
- within a structure, scalar members come first and then the structure and
  list members, each group in the model's order, as EC2 writes them
  (``vpcId``, ``state``, ``cidrBlock`` ... before ``cidrBlockAssociationSet``).
  SAX-style clients depend on it: boto 2 ends the object it is filling at the
  first nested ``</item>``, so a scalar written after a set is lost;
- an action whose output shape is empty (CreateTags, DeleteVpc,
  ModifyInstanceAttribute ...) answers ``<return>true</return>``, as EC2 does:
  clients other than botocore read it as the outcome.

The output is compact (no indentation): XML readers, botocore's included, do
not care, and it is what is cheapest to produce. A key in the result that the
output shape does not have, or a value of the wrong Python type, is a bug in
the handler and raises ``ValueError`` naming the path of the offending value.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import OperationModel, Shape

from ocs.api_ec2.protocol.model import COMPILE_LOCK

XML_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all (not even as character references).
# Every printable character (str.isprintable) is fine, so only text that is not
# printable is searched for these.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Render = Callable[[Any], str]  # Python value -> element text (escaped)

# The body of an action whose output shape is empty, as EC2 answers it.
_RETURN_TRUE = "<return>true</return>"


class ResultError(ValueError):
    """A handler's result does not fit the output shape (a bug, not a client error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def __str__(self) -> str:
        path = "".join(self.path).lstrip(".")
        return f"{path}: {self.reason}" if path else self.reason


class _Scalar:
    __slots__ = ("render",)

    def __init__(self, render: Render) -> None:
        self.render = render

    def write(self, parts: list[str], value: Any, open_: str, close: str) -> None:
        parts.append(open_ + self.render(value) + close)


class _List:
    __slots__ = ("item", "item_close", "item_open")

    def __init__(self) -> None:
        self.item: _Node = _Scalar(_string)  # replaced when compiled
        self.item_open = "<item>"
        self.item_close = "</item>"

    def write(self, parts: list[str], value: Any, open_: str, close: str) -> None:
        if not isinstance(value, list | tuple):
            raise ResultError(f"expected a list, got {type(value).__name__}")
        if not value:
            parts.append(open_[:-1] + "/>")
            return
        parts.append(open_)
        item, item_open, item_close = self.item, self.item_open, self.item_close
        for index, element in enumerate(value):
            try:
                item.write(parts, element, item_open, item_close)
            except ResultError as error:
                error.path.insert(0, f"[{index}]")
                raise
        parts.append(close)


class _Struct:
    __slots__ = ("fields", "known", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # (member, open tag, close tag, renderer for a scalar member, node for the others)
        self.fields: tuple[tuple[str, str, str, Render | None, _Node], ...] = ()
        self.known: frozenset[str] = frozenset()

    def write(self, parts: list[str], value: Any, open_: str, close: str) -> None:
        parts.append(open_)
        self.write_members(parts, value)
        parts.append(close)

    def write_members(self, parts: list[str], value: Any) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise ResultError(f"expected a dict for {self.name}, got {type(value).__name__}")
        if not self.known.issuperset(value):
            unknown = sorted(set(value) - self.known)
            raise ResultError(f"{self.name} has no member(s) {', '.join(map(str, unknown))}")
        for member, member_open, member_close, render, node in self.fields:
            element = value.get(member)
            if element is None:
                continue
            try:
                if render is not None:  # inlined _Scalar.write: most members are scalars
                    parts.append(member_open + render(element) + member_close)
                else:
                    node.write(parts, element, member_open, member_close)
            except ResultError as error:
                error.path.insert(0, f".{member}")
                raise


_Node = _Scalar | _List | _Struct

_NODES: dict[str, _Node] = {}  # shape name -> compiled node
_OUTPUTS: dict[str, tuple[str, str, _Struct | None]] = {}  # operation -> head, tail, body


def serialize_response(
    operation_model: OperationModel, result: Mapping[str, Any] | None, request_id: str
) -> bytes:
    """The XML document EC2 answers ``operation_model``'s action with.

    ``result`` is keyed by the output shape's member names (as boto3 returns
    them, without ``ResponseMetadata``); None members are omitted, and a None
    result is an empty one.
    Raises ``ValueError`` if ``result`` does not fit the output shape.
    """
    head, tail, body = _output(operation_model)
    parts = [head, escape(request_id), "</requestId>"]
    if body is None:
        if result:
            raise ResultError(f"{operation_model.name} has no output, got {sorted(result)}")
        parts.append(_RETURN_TRUE)
    else:
        try:
            body.write_members(parts, {} if result is None else result)
        except ResultError as error:
            error.path.insert(0, operation_model.name)
            raise
    parts.append(tail)
    return "".join(parts).encode("utf-8")


def serialize_error(code: str, message: str, request_id: str) -> bytes:
    """The EC2 error document, which botocore's EC2 parser reads Code/Message/RequestId from."""
    document = (
        f"{XML_DECLARATION}<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{escape(request_id)}</RequestID></Response>"
    )
    return document.encode("utf-8")


def escape(text: str) -> str:
    """``text`` as element content: escaped, and fit for XML 1.0.

    ``\\r`` becomes ``&#13;`` (a parser would turn a raw one into ``\\n``);
    characters XML cannot carry at all (most C0 controls, lone surrogates,
    U+FFFE/U+FFFF) become U+FFFD rather than make the document unreadable.
    """
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if not text.isprintable():  # a fast C check; false for controls, line breaks, odd spaces
        text = _NOT_XML.sub("\ufffd", text).replace("\r", "&#13;")
    return text


# --- compiling the rendering tables ---------------------------------------------


def _output(operation_model: OperationModel) -> tuple[str, str, _Struct | None]:
    compiled = _OUTPUTS.get(operation_model.name)
    if compiled is None:
        name = operation_model.name
        head = f'{XML_DECLARATION}<{name}Response xmlns="{XML_NAMESPACE}"><requestId>'
        shape = operation_model.output_shape
        with COMPILE_LOCK:
            body = None if shape is None else _compile(shape)
            if body is not None and not isinstance(body, _Struct):
                raise TypeError(f"output of {name} is not a structure")
            compiled = (head, f"</{name}Response>", body)
            _OUTPUTS[name] = compiled
    return compiled


def _compile(shape: Shape) -> _Node:
    """The node for ``shape``; registered before its members, so cycles resolve."""
    node = _NODES.get(shape.name)
    if node is not None:
        return node
    kind = shape.type_name
    if kind == "structure":
        struct = _Struct(shape.name)
        _NODES[shape.name] = struct
        fields = [_field(member, member_shape) for member, member_shape in shape.members.items()]
        # Scalars first, then structures and lists (a stable sort keeps model order).
        struct.fields = tuple(sorted(fields, key=lambda field: field[3] is None))
        struct.known = frozenset(shape.members)
        return struct
    if kind == "list":
        if shape.serialization.get("flattened"):
            raise NotImplementedError(f"flattened list {shape.name}: not used by EC2")
        lst = _List()
        _NODES[shape.name] = lst
        tag = shape.member.serialization.get("name") or "item"
        lst.item_open, lst.item_close = f"<{tag}>", f"</{tag}>"
        lst.item = _compile(shape.member)
        return lst
    node = _Scalar(_renderer(shape))
    _NODES[shape.name] = node
    return node


def _field(member: str, member_shape: Shape) -> tuple[str, str, str, Render | None, _Node]:
    tag = member_shape.serialization.get("name") or member
    node = _compile(member_shape)
    render = node.render if isinstance(node, _Scalar) else None
    return member, f"<{tag}>", f"</{tag}>", render, node


# --- scalar renderers -----------------------------------------------------------


def _renderer(shape: Shape) -> Render:
    renderers: dict[str, Render] = {
        "string": _string,
        "integer": _integer,
        "long": _integer,
        "boolean": _boolean,
        "double": _double,
        "float": _double,
        "timestamp": _timestamp,
        "blob": _blob,
    }
    render = renderers.get(shape.type_name)
    if render is None:
        raise NotImplementedError(f"shape {shape.name} of type {shape.type_name}: not used by EC2 output")
    return render


def _wrong_type(expected: str, value: Any) -> ResultError:
    return ResultError(f"expected {expected}, got {type(value).__name__} {value!r:.60}")


def _string(value: Any) -> str:
    if type(value) is not str:
        if not isinstance(value, str):
            raise _wrong_type("str", value)
        value = str(value)  # a str subclass, e.g. an enum.StrEnum member
    return escape(value)


def _integer(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type("int", value)
    return str(int(value))


def _boolean(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _wrong_type("bool", value)


def _double(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type("float", value)
    number = float(value)
    if math.isfinite(number):
        return repr(number)
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def _timestamp(value: Any) -> str:
    if not isinstance(value, dt.datetime):
        raise _wrong_type("datetime", value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _wrong_type("bytes", value)
    return base64.b64encode(value).decode("ascii")
