"""Parse EC2 Query requests: flat ``Name.N.Sub`` parameters in, nested Python values out.

This is the inverse of ``botocore.serialize.EC2Serializer``:

- a member's wire name is its ``queryName``, else its ``locationName`` with the
  first letter upper-cased, else the member name;
- lists are always flattened as ``Name.1``, ``Name.2`` ... (``Name.1.Sub`` for
  lists of structures); EC2 is lenient about indexes, so they need not start at
  1 or be contiguous: items are ordered numerically. ``Name=`` (empty value)
  means an empty list, as botocore's generic Query serializer writes one (its
  EC2 serializer leaves empty lists out altogether);
- structures nest with dots.

EC2 is lenient in two more ways that older clients rely on, and so is this
parser: a bare ``Name=x`` for a list of scalars is ``Name.1=x`` (boto 2 and
libcloud send ``KeyName=x``, ``InstanceId=x``, ``GroupName=x``), and
``Name.1=x`` for a scalar member is ``Name=x`` (boto 2's GetConsoleOutput
sends ``InstanceId.1``).

Values are converted per the member's shape: integers and longs (checked
against the shape's ``min``/``max``), booleans (``true``/``false``, any case),
doubles, ISO 8601 timestamps (aware, UTC), base64 blobs, and strings (checked
against the shape's ``enum``). String lengths and list sizes are not checked:
where EC2 enforces them, its codes differ per action, so handlers do it.

A parameter repeated in a query string arrives as a list: the first value wins.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import OperationModel, Shape

from ocs import errors
from ocs.api_ec2.protocol.model import COMPILE_LOCK

# Parameters of the authentication layer (SigV4 in the query string, and the
# legacy SigV2 names), never of an operation's input shape.
AUTH_PARAMS = frozenset(
    {
        "AWSAccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SecurityToken",
        "Timestamp",
        "Expires",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    }
)
# Everything in a request that is not the operation's input. Callers may strip
# these; parse_request skips them anyway (and any other ``X-Amz-*`` name).
# No EC2 input member has one of these names (checked by the test suite).
NON_OPERATION_PARAMS = AUTH_PARAMS | {"Action", "Version"}

Converter = Callable[[str, str], Any]  # (text, parameter name) -> Python value

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}
_MAX_SHOWN_ENUM = 12
_MAX_SHOWN_VALUE = 100


class _Scalar:
    __slots__ = ("convert",)

    def __init__(self, convert: Converter) -> None:
        self.convert = convert


class _List:
    __slots__ = ("item",)

    def __init__(self) -> None:
        self.item: _Node = _Scalar(_string)  # replaced when compiled


class _Struct:
    __slots__ = ("by_member", "by_wire", "required")

    def __init__(self) -> None:
        self.by_wire: dict[str, tuple[str, _Node]] = {}  # wire name -> (member, node)
        self.by_member: dict[str, tuple[str, _Node]] = {}  # member -> (wire name, node)
        self.required: tuple[str, ...] = ()


_Node = _Scalar | _List | _Struct

_NODES: dict[str, _Node] = {}  # shape name -> compiled node
_INPUTS: dict[str, _Struct] = {}  # operation name -> compiled input structure


def parse_request(operation_model: OperationModel, params: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """Convert an EC2 request's flat parameters into the operation's input dict.

    ``params`` maps each parameter name to its value (or to the list of its
    values when repeated: the first one wins). The result is keyed by botocore
    member names, like the keyword arguments of the boto3 call.

    Raises :class:`errors.UnknownParameter` for a name the input shape does not
    know, :class:`errors.MissingParameter` (named as the client would send it,
    e.g. ``ImageId`` or ``BlockDeviceMapping.1.DeviceName``) for a missing
    required member, and :class:`errors.InvalidParameterValue` for a value
    that does not fit its shape.
    """
    root = _input_struct(operation_model)
    raw: dict[str, Any] = {}
    for key, value in params.items():
        if key in NON_OPERATION_PARAMS or key[:6].lower() == "x-amz-":
            continue
        if not isinstance(value, str):
            value = value[0] if value else ""
        _insert(root, raw, key, value)
    return _finish_struct(root, raw, "")


def _insert(root: _Struct, raw: dict[Any, Any], key: str, value: str) -> None:
    """Place one flat parameter into the nested raw tree, converting scalars."""
    node: _Node = root
    target = raw
    tokens = key.split(".")
    last = len(tokens) - 1
    for position, token in enumerate(tokens):
        slot: str | int
        if isinstance(node, _Struct):
            entry = node.by_wire.get(token)
            if entry is None:
                raise errors.UnknownParameter(name=key)
            slot, child = entry
        elif isinstance(node, _List):
            slot, child = _list_index(token, key), node.item
        else:  # a scalar cannot have sub-parameters
            raise errors.UnknownParameter(name=key)
        if position < last:
            if isinstance(child, _Scalar):
                if position + 1 == last and tokens[last] == "1":  # ``Name.1`` for a scalar
                    target[slot] = child.convert(value, key)
                    return
                raise errors.UnknownParameter(name=key)
            target = target.setdefault(slot, {})
            node = child
        elif isinstance(child, _Scalar):
            target[slot] = child.convert(value, key)
        elif value == "":  # ``Name=``: an empty list (or structure)
            target.setdefault(slot, {})
        elif isinstance(child, _List) and isinstance(child.item, _Scalar):
            # A bare ``Name=x`` for a list of scalars is ``Name.1=x``.
            target.setdefault(slot, {})[1] = child.item.convert(value, key)
        else:
            raise errors.UnknownParameter(name=key)


def _list_index(token: str, key: str) -> int:
    if not (token.isascii() and token.isdigit()) or (token[0] == "0" and token != "0"):
        raise errors.UnknownParameter(name=key)
    return int(token)


def _finish_struct(node: _Struct, raw: dict[str, Any], path: str) -> dict[str, Any]:
    """Check required members and turn raw list containers into ordered lists."""
    for member in node.required:
        if member not in raw:
            raise errors.MissingParameter(name=path + node.by_member[member][0])
    out: dict[str, Any] = {}
    for member, value in raw.items():
        wire, child = node.by_member[member]
        out[member] = _finish(child, value, f"{path}{wire}.")
    return out


def _finish(node: _Node, value: Any, path: str) -> Any:
    if isinstance(node, _Scalar):
        return value
    if isinstance(node, _Struct):
        return _finish_struct(node, value, path)
    return [_finish(node.item, value[index], f"{path}{index}.") for index in sorted(value)]


# --- compiling the lookup tables ------------------------------------------------


def _input_struct(operation_model: OperationModel) -> _Struct:
    compiled = _INPUTS.get(operation_model.name)
    if compiled is None:
        shape = operation_model.input_shape
        with COMPILE_LOCK:
            node = _Struct() if shape is None else _compile(shape)
            if not isinstance(node, _Struct):
                raise TypeError(f"input of {operation_model.name} is not a structure")
            _INPUTS[operation_model.name] = compiled = node
    return compiled


def _compile(shape: Shape) -> _Node:
    """The node for ``shape``; registered before its members, so cycles resolve."""
    node = _NODES.get(shape.name)
    if node is not None:
        return node
    kind = shape.type_name
    if kind == "structure":
        struct = _Struct()
        _NODES[shape.name] = struct
        _fill_struct(struct, shape)
        return struct
    if kind == "list":
        if shape.serialization.get("flattened"):
            raise NotImplementedError(f"flattened list {shape.name}: not used by EC2")
        lst = _List()
        _NODES[shape.name] = lst
        lst.item = _compile(shape.member)
        return lst
    node = _Scalar(_converter(shape))
    _NODES[shape.name] = node
    return node


def _fill_struct(struct: _Struct, shape: Shape) -> None:
    for member, member_shape in shape.members.items():
        wire = wire_name(member_shape, member)
        child = _compile(member_shape)
        struct.by_wire[wire] = (member, child)
        struct.by_member[member] = (wire, child)
    struct.required = tuple(shape.required_members)


def wire_name(member_shape: Shape, member: str) -> str:
    """The parameter name EC2Serializer gives a structure member."""
    serialization = member_shape.serialization
    if "queryName" in serialization:
        return str(serialization["queryName"])
    name = serialization.get("name")
    if name:
        return str(name[0].upper() + name[1:])
    return member


# --- scalar converters ----------------------------------------------------------


#: Enum shapes whose values the cloud defines, not the model, or for which EC2
#: answers an error of its own that the handler raises: operators create
#: instance types of their own; an unknown DescribeImageAttribute or
#: ResetImageAttribute attribute is ``InvalidRequest``.
OPEN_ENUMS = frozenset({"InstanceType", "ImageAttributeName", "ResetImageAttributeName"})


def _converter(shape: Shape) -> Converter:
    kind = shape.type_name
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if kind == "string":
        closed = shape.enum and shape.name not in OPEN_ENUMS
        return _enum_converter(shape.enum) if closed else _string
    if kind in ("integer", "long"):
        return _integer_converter(low, high)
    if kind in ("double", "float"):
        return _float_converter(low, high)
    if kind == "boolean":
        return _boolean
    if kind == "timestamp":
        return _timestamp
    if kind == "blob":
        return _blob
    raise NotImplementedError(f"shape {shape.name} of type {kind}: not used by EC2 input")


def _invalid(text: str, key: str, reason: str) -> errors.InvalidParameterValue:
    shown = text if len(text) <= _MAX_SHOWN_VALUE else text[:_MAX_SHOWN_VALUE] + "..."
    return errors.InvalidParameterValue(value=shown, name=key, reason=reason)


def _string(text: str, key: str) -> str:
    return text


def _enum_converter(enum: list[str]) -> Converter:
    allowed = frozenset(enum)
    if len(enum) <= _MAX_SHOWN_ENUM:
        reason = "Valid values: " + ", ".join(enum) + "."
    else:
        reason = "It is not a supported value."

    def convert(text: str, key: str) -> str:
        if text not in allowed:
            raise _invalid(text, key, reason)
        return text

    return convert


def _range_reason(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"It must be between {low} and {high}."
    if low is not None:
        return f"It must be at least {low}."
    return f"It must be at most {high}."


def _integer_converter(low: int | None, high: int | None) -> Converter:
    def convert(text: str, key: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise _invalid(text, key, "It must be an integer.")
        try:
            value = int(text)
        except ValueError:  # more digits than Python converts
            raise _invalid(text, key, "It must be an integer.") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise _invalid(text, key, _range_reason(low, high))
        return value

    return convert


def _float_converter(low: float | None, high: float | None) -> Converter:
    def convert(text: str, key: str) -> float:
        if not _DECIMAL.fullmatch(text):
            raise _invalid(text, key, "It must be a number.")
        value = float(text)
        if not math.isfinite(value):
            raise _invalid(text, key, "It must be a finite number.")
        if (low is not None and value < low) or (high is not None and value > high):
            raise _invalid(text, key, _range_reason(low, high))
        return value

    return convert


def _boolean(text: str, key: str) -> bool:
    value = _BOOLEANS.get(text.lower())
    if value is None:
        raise _invalid(text, key, "It must be 'true' or 'false'.")
    return value


def _timestamp(text: str, key: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(text, key, "It must be an ISO 8601 timestamp.") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _blob(text: str, key: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(text, key, "It must be base64-encoded.") from None
