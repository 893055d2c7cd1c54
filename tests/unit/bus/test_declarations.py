"""Operation tables: what a client class declares and what a server checks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ocs.bus import Bus, Kind, Operation, RpcClient, RpcServer, call, cast, fanout


@dataclass
class Req:
    host: str = ""


class Api(RpcClient):
    service = "svc"
    topic = "svc.{host}"
    do = cast(Req)
    ask = call(Req, str, timeout=3.0)
    tell_all = fanout(Req)
    renamed = call(Req, topic="other")


def test_the_class_body_is_the_table() -> None:
    assert list(Api.operations) == ["do", "ask", "tell_all", "renamed"]
    assert Api.operations["do"].kind is Kind.CAST and Api.operations["do"].persistent
    assert Api.operations["ask"].kind is Kind.CALL and not Api.operations["ask"].persistent
    assert Api.operations["ask"].timeout == 3.0 and Api.operations["ask"].response is str
    assert Api.operations["tell_all"].kind is Kind.FANOUT
    assert isinstance(Api.do, Operation)


def test_subclasses_inherit_and_extend_the_table() -> None:
    class Newer(Api):
        extra = cast(Req, persistent=False)

    assert list(Newer.operations) == ["do", "ask", "tell_all", "renamed", "extra"]
    assert "extra" not in Api.operations


def test_topics_are_filled_from_the_payload() -> None:
    client = Api(Bus())
    assert client.resolve_topic(Api.operations["ask"], {"host": "h1"}) == "svc.h1"
    assert client.resolve_topic(Api.operations["renamed"], {}) == "other"
    with pytest.raises(ValueError, match="needs 'host'"):
        client.resolve_topic(Api.operations["ask"], {})


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(TypeError, match="no service name"):

        class Nameless(RpcClient):
            op = cast(Req)

    with pytest.raises(ValueError, match="only a call"):
        Operation(Kind.CAST, Req, str)
    with pytest.raises(ValueError, match="cannot be persistent"):
        Operation(Kind.FANOUT, Req, persistent=True)
    with pytest.raises(ValueError, match="must be concrete"):
        call(Req, topic="x.{host}")


def test_a_server_needs_a_handler_per_operation_and_a_concrete_topic() -> None:
    class Partial:
        def do(self, request: Req) -> None: ...

    bus = Bus()
    with pytest.raises(TypeError, match=r"no handler for Api operations \['ask', 'renamed', 'tell_all'\]"):
        RpcServer(bus, Api, Partial(), topic="svc.h1")

    class Full(Partial):
        def ask(self, request: Req) -> str:
            return ""

        def tell_all(self, request: Req) -> None: ...

        def renamed(self, request: Req) -> None: ...

    with pytest.raises(ValueError, match="is a template"):
        RpcServer(bus, Api, Full())
    assert RpcServer(bus, Api, Full(), topic="svc.h1").topics == ["other", "svc.h1"]
