"""The EC2 front end: a falcon WSGI app answering the EC2 Query protocol on ``/``.

One request goes: read the parameters (query string and form body) → verify the
SigV4 (or SigV2) signature → find the action's handler → parse the parameters with the
botocore model → DryRun check → handler → serialize the output with the model.
Every error is rendered here, once, as EC2's error document.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import falcon
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors
from ocs.api_ec2 import auth, protocol
from ocs.api_ec2.actions import HANDLERS, REPLAYS, Handler
from ocs.api_ec2.context import RequestContext, Settings
from ocs.api_ec2.throttle import Throttle
from ocs.crypto import SecretBox
from ocs.db import accounts as db_accounts
from ocs.db import engine as db_engine
from ocs.db import tags as db_tags
from ocs.db import vpcs as db_vpcs

LOG = logging.getLogger(__name__)

XML = "text/xml;charset=UTF-8"
# Database errors of requests that had already committed part of their work
# (never retried); weak, so that the set never grows.
_COMMITTED: weakref.WeakSet[BaseException] = weakref.WeakSet()
MAX_BODY = 1024 * 1024  # EC2 refuses larger query requests


@dataclass
class ApiDeps:
    """Everything the app needs, built at the process edge."""

    settings: Settings
    sessions: sessionmaker[Session]
    secret_box: SecretBox
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    handlers: dict[str, Handler] = field(default_factory=lambda: dict(HANDLERS))
    services: dict[str, Any] = field(default_factory=dict)
    throttle: Throttle | None = None  # EC2's request throttling; None: off


#: The WSGI environ key of the seconds a request waited for a thread of ocs-api's
#: worker (set by ocs.cmd.api.QueueTimedWorker; absent elsewhere).
QUEUED_ENVIRON = "HTTP_X_OCS_QUEUED_SECONDS"


def queued_seconds(environ: dict[str, Any]) -> float:
    try:
        return max(0.0, float(environ.get(QUEUED_ENVIRON) or 0.0))
    except ValueError:
        return 0.0


class Ec2Resource:
    """The single EC2 endpoint; GET and POST are the same protocol."""

    def __init__(self, deps: ApiDeps):
        self.deps = deps
        self._networked: set[str] = set()  # accounts whose default network this process saw made

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp, b"")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length or 0
        if length > MAX_BODY:
            raise_in_response(resp, errors.InvalidParameterValue("Request body is too large."))
            return
        body = req.bounded_stream.read() if length else b""
        self._handle(req, resp, body)

    def _handle(self, req: falcon.Request, resp: falcon.Response, body: bytes) -> None:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        action = "-"
        try:
            params = read_params(req.query_string, body, req.content_type)
            action = params.pop("Action", "") or ""
            limit = self.deps.settings.max_queue_wait
            if limit and queued_seconds(req.env) > limit:  # before anything costs a thing
                raise errors.ApiOverloaded()
            payload = self._dispatch(req, body, action, params, request_id)
            resp.status = falcon.HTTP_200
            resp.data = payload
        except errors.OcsError as exc:
            render_error(resp, exc, request_id)
        except DBAPIError as exc:
            if not db_engine.is_unavailable(exc):
                LOG.exception("unexpected error in %s (request %s)", action, request_id)
                render_error(resp, errors.InternalError(), request_id)
            else:  # the server's fault, which clients retry: no traceback per request
                LOG.warning("%s (request %s): the database is unavailable: %s", action, request_id, exc.orig)
                render_error(resp, errors.ServiceUnavailable(), request_id)
        except Exception:
            LOG.exception("unexpected error in %s (request %s)", action, request_id)
            render_error(resp, errors.InternalError(), request_id)
        resp.content_type = XML
        resp.set_header("x-amzn-RequestId", request_id)
        LOG.info("%s %s %s %.1fms", request_id, action, resp.status, (time.perf_counter() - started) * 1000)

    def _dispatch(
        self, req: falcon.Request, body: bytes, action: str, params: dict[str, str], request_id: str
    ) -> bytes:
        deps = self.deps
        identity = auth.verify(
            auth.signed_request_from_wsgi(req.env, body),
            self._lookup_secret,
            region=deps.settings.region,
            now=deps.now(),
            max_skew=deps.settings.max_clock_skew,
            strict_scope=deps.settings.strict_credential_scope,
        )
        if not action:
            raise errors.MissingAction()
        operation = protocol.operation_model(action)
        handler = deps.handlers.get(action)
        if operation is None or handler is None:
            raise errors.InvalidAction(action=action)
        if deps.throttle is not None and not deps.throttle.admit(identity.account_id, action, params):
            raise errors.RequestLimitExceeded()
        for name in list(params):
            if name in protocol.AUTH_PARAMS or name == "Version":
                del params[name]
        parsed = protocol.parse_request(operation, params)
        self._ensure_network(identity.account_id)
        if parsed.get("DryRun"):
            raise errors.DryRunOperation()
        has_token = operation.input_shape is not None and "ClientToken" in operation.input_shape.members
        token = parsed.get("ClientToken") if has_token else None
        call = _Call(
            identity.account_id, identity.access_key_id, action, request_id, operation, handler, parsed
        )
        if not token:
            return self._run_retrying(call, None)
        try:
            return self._run_retrying(call, token)
        except IntegrityError:
            # Another request with the same token committed first: answer as it did.
            return self._run_retrying(call, token)

    def _run_retrying(self, call: _Call, token: str | None) -> bytes:
        """:meth:`_run`, again when the database chose it as a deadlock victim.

        A request is retried only while it had committed nothing, so that
        retrying can never do anything twice.
        """
        return db_engine.retry_on_deadlock(
            lambda: self._run(call, token),
            what=f"request {call.request_id}",
            may_retry=lambda exc: exc not in _COMMITTED,
        )

    def _run(self, call: _Call, token: str | None) -> bytes:
        deps = self.deps
        with deps.sessions() as session:
            committed: list[bool] = []
            # SQLAlchemy also calls after_commit when a savepoint is released (begin_nested,
            # as IPAM uses): that is no commit, and such a request may still be retried.
            event.listen(session, "after_commit", lambda s: committed.append(not s.in_nested_transaction()))
            digest = params_digest(call.params) if token else ""
            ctx = RequestContext(
                account_id=call.account_id,
                access_key_id=call.access_key_id,
                request_id=call.request_id,
                action=call.action,
                settings=deps.settings,
                session=session,
                now=deps.now,
                services=deps.services,
                client_token=token,
                params_digest=digest,
            )
            try:
                if token:
                    replay = _replay(ctx, call, token, digest)
                    if replay is not None:
                        return replay
                result = call.handler(ctx, call.params)
                payload = protocol.serialize_response(call.operation, result or {}, call.request_id)
                if token:
                    db_tags.save_client_token(
                        session, call.account_id, call.action, token, digest, payload.decode("utf-8")
                    )
                session.commit()
            except BaseException as exc:
                session.rollback()
                if any(committed) and isinstance(exc, DBAPIError):
                    _COMMITTED.add(exc)
                raise
        for action in ctx.after_commit:
            try:
                action()
            except Exception:
                LOG.exception("request %s: a message after %s failed", call.request_id, call.action)
        return payload

    def _ensure_network(self, account_id: str) -> None:
        """Give the account its default VPC before its first request runs (checked once per process)."""
        if account_id in self._networked:
            return
        settings = self.deps.settings
        with self.deps.sessions() as session:
            db_vpcs.ensure_default_network(
                session,
                account_id,
                vpc_cidr=settings.default_vpc_cidr,
                zones=settings.availability_zones,
                now=self.deps.now(),
            )
            session.commit()
        self._networked.add(account_id)

    def _lookup_secret(self, access_key_id: str) -> tuple[str, str] | None:
        with self.deps.sessions() as session:
            return db_accounts.lookup_secret(session, access_key_id, self.deps.secret_box)


@dataclass(frozen=True)
class _Call:
    account_id: str
    access_key_id: str
    action: str
    request_id: str
    operation: Any
    handler: Handler
    params: dict[str, Any]


def params_digest(params: dict[str, Any]) -> str:
    """A stable digest of a request's parameters, ClientToken and DryRun aside."""
    relevant = {k: v for k, v in params.items() if k not in ("ClientToken", "DryRun")}
    text = json.dumps(relevant, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_REQUEST_ID = re.compile(r"<requestId>[^<]*</requestId>")


def _replay(ctx: RequestContext, call: _Call, token: str, digest: str) -> bytes | None:
    """The answer to an earlier request with ``token``, under a new request id: the one
    stored, or one rebuilt from the resource the token was held for when the earlier
    request never stored its answer (:func:`ocs.db.tags.hold_client_token`)."""
    session = ctx.session
    record = db_tags.find_client_token(session, call.account_id, call.action, token)
    if record is None:
        return None
    if record.params_hash != digest:
        raise errors.IdempotentParameterMismatch(token=token)
    reference = db_tags.reference_of(record)
    if reference is not None:
        replay = REPLAYS.get(call.action)
        result = replay(ctx, reference) if replay is not None else None
        if result is None:  # nothing of it is left: the earlier request made nothing
            db_tags.forget_client_token(session, call.account_id, call.action, token)
            session.flush()
            return None
        return protocol.serialize_response(call.operation, result, call.request_id)
    text = _REQUEST_ID.sub(f"<requestId>{call.request_id}</requestId>", record.response, count=1)
    return text.encode("utf-8")


def read_params(query_string: str, body: bytes, content_type: str | None) -> dict[str, str]:
    """The request's parameters: query string first, then the form body on top.

    A parameter given twice keeps its first value, as EC2 does. A NUL
    character anywhere is refused (InvalidParameterValue).
    """
    params: dict[str, str] = {}
    for key, value in parse_qsl(query_string or "", keep_blank_values=True):
        params.setdefault(key, value)
    if body:
        ctype = (content_type or "").split(";", 1)[0].strip().lower()
        if ctype not in ("", "application/x-www-form-urlencoded"):
            raise errors.InvalidParameterValue(
                f"Unsupported content type: {ctype}", code="UnsupportedProtocol"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.InvalidParameterValue("The request body is not valid UTF-8.") from exc
        for key, value in parse_qsl(text, keep_blank_values=True):
            params.setdefault(key, value)
    for key, value in params.items():
        if "\x00" in key or "\x00" in value:  # no database stores it (PostgreSQL refuses it)
            raise errors.InvalidParameterValue(
                value=value.replace("\x00", "\\0")[:100],
                name=key.replace("\x00", "\\0"),
                reason="It must not contain the character U+0000.",
            )
    return params


def render_error(resp: falcon.Response, exc: errors.OcsError, request_id: str) -> None:
    resp.status = falcon.code_to_http_status(exc.status)
    resp.data = protocol.serialize_error(exc.code, str(exc), request_id)
    if isinstance(exc, errors.ServiceUnavailable):  # a dependency is down: logged where it is seen
        LOG.warning("request %s failed: %s %s", request_id, exc.code, exc)
    elif exc.status >= 500 and not isinstance(exc, errors.RequestLimitExceeded):
        LOG.error("request %s failed: %s %s", request_id, exc.code, exc)


def raise_in_response(resp: falcon.Response, exc: errors.OcsError) -> None:
    request_id = str(uuid.uuid4())
    render_error(resp, exc, request_id)
    resp.content_type = XML
    resp.set_header("x-amzn-RequestId", request_id)


class _NotFoundSink:
    """Any other path: EC2 answers an error document, never an HTML page."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **kwargs: Any) -> None:
        raise_in_response(resp, errors.InvalidAction(action=req.path))


def create_app(deps: ApiDeps) -> falcon.App:
    app = falcon.App(media_type=XML)
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = False
    app.add_route("/", Ec2Resource(deps))
    app.add_sink(_NotFoundSink(), prefix=r"/(?!$)")
    return app
