"""Payloads to and from the wire, and error envelopes (no transport needed)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import TypedDict

import pytest

from ocs import errors
from ocs.bus.messages import error_from_wire, error_to_wire, from_wire, to_wire


class State(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"


@dataclass
class Disk:
    size_gib: int
    name: str = "root"


@dataclass
class Spec:
    instance_id: str
    state: State
    disks: list[Disk]
    tags: dict[str, str] = field(default_factory=dict)
    host: str | None = None
    cpu: float = 1.0
    pair: tuple[int, str] = (0, "")
    ids: tuple[str, ...] = ()


class Tagged(TypedDict):
    key: str
    value: str


def test_dataclasses_round_trip_through_json() -> None:
    spec = Spec(
        "i-1", State.RUNNING, [Disk(8), Disk(20, "data")], {"a": "b"}, "h1", 2.0, (3, "x"), ("i", "j")
    )
    wire = json.loads(json.dumps(to_wire(spec)))
    assert wire["state"] == "running"
    assert wire["disks"] == [{"size_gib": 8, "name": "root"}, {"size_gib": 20, "name": "data"}]
    assert from_wire(Spec, wire) == spec


def test_unknown_keys_are_ignored_and_missing_ones_defaulted() -> None:
    wire = {"instance_id": "i-2", "state": "pending", "disks": [{"size_gib": 1, "extra": 1}], "new_field": 3}
    assert from_wire(Spec, wire) == Spec("i-2", State.PENDING, [Disk(1)])


def test_json_integers_become_floats_where_declared() -> None:
    spec = from_wire(Spec, {"instance_id": "i", "state": "pending", "disks": [], "cpu": 2})
    assert isinstance(spec.cpu, float)


def test_typed_dicts_and_plain_values_pass_through() -> None:
    tagged: Tagged = {"key": "k", "value": "v"}
    assert from_wire(Tagged, to_wire(tagged)) == tagged
    assert from_wire(list[Disk], [{"size_gib": 2}]) == [Disk(2)]
    assert from_wire(None, {"a": 1}) == {"a": 1}
    assert from_wire(str, "x") == "x"
    assert from_wire(Disk, None) is None


def test_what_json_cannot_carry_is_refused_early() -> None:
    with pytest.raises(TypeError, match="not a bus payload type"):
        to_wire({"when": object()})
    with pytest.raises(TypeError, match="expects an object"):
        from_wire(Disk, [1, 2])


def test_ocs_errors_keep_class_code_and_message() -> None:
    exc = errors.NotFound(code="InvalidInstanceID.NotFound", id="i-9")
    back = error_from_wire(json.loads(json.dumps(error_to_wire(exc))))
    assert type(back) is errors.NotFound
    assert back.code == "InvalidInstanceID.NotFound"
    assert str(back) == "The ID 'i-9' does not exist"
    assert back.kwargs == {"id": "i-9"}


def test_foreign_subclasses_travel_as_their_nearest_ocs_error() -> None:
    class NoValidHost(errors.InsufficientInstanceCapacity):
        message = "No valid host: {reason}"

    wire = error_to_wire(NoValidHost(reason="full", hosts=object()))
    assert wire["class"] == "InsufficientInstanceCapacity"
    assert wire["raised"] == "NoValidHost"
    assert wire["kwargs"] == {"reason": "full"}  # what JSON cannot carry is left behind
    back = error_from_wire(wire)
    assert type(back) is errors.InsufficientInstanceCapacity
    assert str(back) == "No valid host: full"


def test_other_exceptions_reveal_nothing() -> None:
    wire = error_to_wire(KeyError("/etc/ocs/secret"))
    assert "secret" not in json.dumps(wire)
    back = error_from_wire(wire)
    assert type(back) is errors.InternalError
    assert str(back) == "An internal error has occurred."


def test_unknown_error_classes_become_internal_errors() -> None:
    back = error_from_wire({"class": "os", "code": "Weird", "message": "odd"})
    assert type(back) is errors.InternalError
    assert (back.code, str(back)) == ("Weird", "odd")
