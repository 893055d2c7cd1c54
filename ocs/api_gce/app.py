"""The Compute Engine v1 front end: a falcon WSGI app over the cloud's shared services.

It answers ``/compute/v1/projects/{project}/...`` (the REST paths of Google's
discovery document) and the OAuth 2.0 token endpoint ``/token``. One request goes:
match the route → verify the bearer token → the path's project must be the
caller's (403 otherwise) → parse the JSON body → handler in one database session
→ commit → the messages the handler queued for after the commit. Every error is
rendered here, once, as Compute Engine's error document; anything unexpected is
logged and answered as a bare 500.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import falcon
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors as ocs_errors
from ocs.api_gce import errors, schema
from ocs.api_gce.auth import Authenticator, TokenError
from ocs.api_gce.context import GceContext, Settings
from ocs.api_gce.routes import Route, Table
from ocs.crypto import SecretBox
from ocs.db import engine as db_engine
from ocs.db import vpcs as db_vpcs

LOG = logging.getLogger(__name__)

PREFIX = "/compute/v1/"
TOKEN_PATH = "/token"
MAX_BODY = 1024 * 1024
JSON = "application/json; charset=UTF-8"


@dataclass
class GceDeps:
    """Everything the app needs, built at the process edge."""

    settings: Settings
    sessions: sessionmaker[Session]
    secret_box: SecretBox
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    services: dict[str, Any] = field(default_factory=dict)
    routes: list[Route] | None = None


def all_routes() -> list[Route]:
    from ocs.api_gce.resources import ROUTES

    return list(ROUTES)


def _send(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = JSON
    resp.text = json.dumps(body)


def _render(resp: falcon.Response, exc: errors.GceError, request_id: str) -> None:
    _send(resp, exc.status, exc.body())
    if exc.status >= 500:
        LOG.error("request %s failed: %s %s", request_id, exc.reason, exc.message)


class ComputeSink:
    """Every path below /compute/v1/."""

    def __init__(self, deps: GceDeps, auth: Authenticator):
        self.deps, self.auth = deps, auth
        self.table = Table(deps.routes if deps.routes is not None else all_routes())
        self._networked: set[str] = set()

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            self._handle(req, resp, request_id)
        except errors.GceError as exc:
            if exc.detail:
                LOG.info("request %s: %s (%s)", request_id, exc.message, exc.detail)
            _render(resp, exc, request_id)
        except ocs_errors.OcsError as exc:
            _render(resp, errors.from_ocs(exc), request_id)
        except DBAPIError as exc:
            if db_engine.is_unavailable(exc):
                LOG.warning("request %s: the database is unavailable: %s", request_id, exc.orig)
                _render(
                    resp,
                    errors.GceError(
                        "The service is currently unavailable.", reason="backendError", status=503
                    ),
                    request_id,
                )
            else:
                LOG.exception("unexpected error in %s %s (request %s)", req.method, req.path, request_id)
                _render(resp, errors.internal(), request_id)
        except Exception:
            LOG.exception("unexpected error in %s %s (request %s)", req.method, req.path, request_id)
            _render(resp, errors.internal(), request_id)
        resp.set_header("X-Request-Id", request_id)
        LOG.info(
            "%s GCE %s %s %s %.1fms",
            request_id,
            req.method,
            req.path,
            resp.status,
            (time.perf_counter() - started) * 1000,
        )

    def _handle(self, req: falcon.Request, resp: falcon.Response, request_id: str) -> None:
        path = req.path[len(PREFIX) :] if req.path.startswith(PREFIX) else ""
        found = self.table.match(req.method, path)
        if found is None:
            raise errors.GceError(
                f"The requested URL {req.path} was not found on this server.", reason="notFound", status=404
            )
        route, params = found
        identity = self.auth.authenticate(req.get_header("Authorization"))
        project = params.get("project", "")
        if project != identity.project and not route.other_projects:
            raise errors.forbidden(route.permission, f"projects/{project}")
        query = dict(parse_qsl(req.query_string or "", keep_blank_values=True))
        body = self._body(req) if req.method in ("POST", "PUT", "PATCH") else None
        if body is not None and route.request is not None:
            try:
                body = schema.parse_body(route.request, body)
            except schema.BodyError as exc:
                raise errors.invalid(str(exc)) from None
        self._ensure_network(identity.account_id)
        result = self._run(route, params, query, body, identity, request_id)
        _send(resp, 200, schema.shape(route.response, result) if route.response else result)

    @staticmethod
    def _body(req: falcon.Request) -> dict[str, Any]:
        length = req.content_length or 0
        if length > MAX_BODY:
            raise errors.GceError("The request body is too large.", reason="badRequest", status=413)
        raw = req.bounded_stream.read() if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise errors.GceError("Parse Error", reason="parseError", status=400) from None
        if not isinstance(body, dict):
            raise errors.GceError(
                "Invalid JSON payload received. The request body must be a JSON object.",
                reason="invalid",
                status=400,
            )
        return body

    def _run(
        self,
        route: Route,
        params: dict[str, str],
        query: dict[str, str],
        body: dict[str, Any] | None,
        identity: Any,
        request_id: str,
    ) -> dict[str, Any]:
        committed: list[bool] = []

        def run() -> dict[str, Any]:
            return self._run_once(route, params, query, body, identity, request_id, committed)

        # Again when the database broke a deadlock, as long as nothing was committed yet.
        return db_engine.retry_on_deadlock(
            run, what=f"request {request_id}", may_retry=lambda _: not any(committed)
        )

    def _run_once(
        self,
        route: Route,
        params: dict[str, str],
        query: dict[str, str],
        body: dict[str, Any] | None,
        identity: Any,
        request_id: str,
        committed: list[bool],
    ) -> dict[str, Any]:
        deps = self.deps
        with deps.sessions() as session:
            # after_commit also fires when a savepoint is released: that is no commit.
            event.listen(session, "after_commit", lambda s: committed.append(not s.in_nested_transaction()))
            ctx = GceContext(
                account_id=identity.account_id,
                project=identity.project,
                user=identity.user,
                key_id=identity.key_id,
                request_id=request_id,
                settings=deps.settings,
                session=session,
                now=deps.now,
                services=deps.services,
            )
            try:
                result = route.handler(ctx, params, query, body)
                session.commit()
            except IntegrityError:
                session.rollback()
                raise errors.GceError(
                    "The resource was changed by another request at the same time; try again.",
                    reason="resourceNotReady",
                    status=409,
                ) from None
            except BaseException:
                session.rollback()
                raise
        for action in ctx.after_commit:
            try:
                action()
            except Exception:
                LOG.exception("request %s: a message after the change failed", request_id)
        return result

    def _ensure_network(self, account_id: str) -> None:
        """Give the account its default VPC before its first request (as the EC2 front end does)."""
        if account_id in self._networked:
            return
        ec2 = self.deps.settings.ec2
        with self.deps.sessions() as session:
            db_vpcs.ensure_default_network(
                session,
                account_id,
                vpc_cidr=ec2.default_vpc_cidr,
                zones=ec2.availability_zones,
                now=self.deps.now(),
            )
            session.commit()
        self._networked.add(account_id)


class TokenResource:
    """``POST /token``: the OAuth 2.0 JWT-bearer grant of google-auth's service accounts."""

    def __init__(self, deps: GceDeps, auth: Authenticator):
        self.deps, self.auth = deps, auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            length = req.content_length or 0
            if length > MAX_BODY:
                raise TokenError("invalid_request", "The request body is too large.")
            raw = req.bounded_stream.read() if length else b""
            try:
                form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise TokenError("invalid_request", "The request body is not valid UTF-8.") from None
            token_url = self.deps.settings.endpoint.rstrip("/") + TOKEN_PATH
            _send(resp, 200, self.auth.exchange(form, token_url))
            resp.set_header("Cache-Control", "no-store")
        except TokenError as exc:
            LOG.info("token request refused: %s", exc.description)
            _send(resp, exc.status, exc.body())
        except Exception:
            LOG.exception("unexpected error in the token endpoint")
            _send(resp, 500, {"error": "server_error", "error_description": "Internal error."})

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _send(resp, 405, {"error": "invalid_request", "error_description": "Use POST."})


def create_app(deps: GceDeps) -> falcon.App:
    auth = Authenticator(
        deps.sessions,
        deps.secret_box,
        now=deps.now,
        token_lifetime=deps.settings.token_lifetime,
        clock_skew=deps.settings.jwt_clock_skew,
    )
    app = falcon.App(media_type=JSON)
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = False
    app.add_route(TOKEN_PATH, TokenResource(deps, auth))
    app.add_sink(ComputeSink(deps, auth), prefix=r"/")
    return app


def is_gce_path(path: str) -> bool:
    """Whether a request path belongs to the Compute Engine front end."""
    return path.startswith("/compute/") or path == TOKEN_PATH


def dispatcher(ec2_app: Callable[..., Any], gce_app: Callable[..., Any]) -> Callable[..., Any]:
    """One WSGI app for one listener: Compute Engine's paths to ``gce_app``, the rest to EC2's."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if is_gce_path(environ.get("PATH_INFO") or ""):
            return gce_app(environ, start_response)
        return ec2_app(environ, start_response)

    return app
