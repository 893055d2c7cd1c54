"""Compute Engine's errors, and how the cloud's own errors read through this front end (pure).

Compute Engine renders every error as ``{"error": {"code", "message", "errors":
[{"reason", "domain": "global", "message"}]}}``; google-api-python-client raises
``HttpError`` and google-api-core the exception of the HTTP status from it. An
:class:`ocs.errors.OcsError` raised by the shared services (the EC2 handlers this
front end drives) is translated by :func:`from_ocs` by its EC2 code and status.
"""

from __future__ import annotations

from typing import Any

from ocs import errors as ocs_errors


class GceError(Exception):
    """An error a client sees: HTTP ``status``, Compute Engine ``reason`` and message."""

    status = 400
    reason = "invalid"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int | None = None,
        detail: str = "",
        **extra: Any,
    ):
        super().__init__(message)
        self.message = message
        self.detail = detail  # for the server's log only
        if reason is not None:
            self.reason = reason
        if status is not None:
            self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        item = {"message": self.message, "domain": "global", "reason": self.reason, **self.extra}
        error: dict[str, Any] = {"code": self.status, "message": self.message, "errors": [item]}
        if self.status in STATUS_NAMES:
            error["status"] = STATUS_NAMES[self.status]
        return {"error": error}


STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def invalid(message: str) -> GceError:
    return GceError(message, reason="invalid", status=400)


def bad_request(message: str) -> GceError:
    return GceError(message, reason="badRequest", status=400)


def invalid_field(field: str, value: Any, why: str) -> GceError:
    return invalid(f"Invalid value for field '{field}': '{value}'. {why}")


def not_found(path: str) -> GceError:
    return GceError(f"The resource '{path}' was not found", reason="notFound", status=404)


def already_exists(path: str) -> GceError:
    return GceError(f"The resource '{path}' already exists", reason="alreadyExists", status=409)


def forbidden(permission: str, path: str) -> GceError:
    return GceError(f"Required '{permission}' permission for '{path}'", reason="forbidden", status=403)


def unauthorized(detail: str = "Invalid Credentials") -> GceError:
    return GceError(
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential.",
        reason="authError",
        status=401,
        location="Authorization",
        locationType="header",
        detail=detail,
    )


def fingerprint_mismatch(path: str) -> GceError:
    return GceError(
        f"Supplied fingerprint does not match current fingerprint of '{path}'.",
        reason="conditionNotMet",
        status=412,
    )


def not_ready(path: str) -> GceError:
    return GceError(f"The resource '{path}' is not ready", reason="resourceNotReady", status=400)


def internal() -> GceError:
    return GceError("Internal error. Please try again.", reason="backendError", status=500)


_QUOTA_CODES = ("InstanceLimitExceeded", "VcpuLimitExceeded", "ResourceLimitExceeded", "AddressLimitExceeded")


def from_ocs(exc: ocs_errors.OcsError) -> GceError:
    """The Compute Engine error for an error of the shared services."""
    code, text = exc.code, str(exc)
    if code.endswith(".NotFound"):
        return GceError(text, reason="notFound", status=404)
    if code in _QUOTA_CODES or code.endswith("LimitExceeded") and code != "RequestLimitExceeded":
        return GceError(f"Quota exceeded: {text}", reason="quotaExceeded", status=403)
    if code == "DependencyViolation":
        return GceError(text, reason="resourceInUseByAnotherResource", status=400)
    if code == "IncorrectInstanceState":
        return GceError(text, reason="resourceNotReady", status=400)
    if code in ("AuthFailure", "UnauthorizedOperation"):
        return GceError(text, reason="forbidden", status=403)
    if code in ("InsufficientInstanceCapacity", "InsufficientAddressCapacity"):
        return GceError(
            f"The zone does not have enough resources available to fulfill the request: {text}",
            reason="ZONE_RESOURCE_POOL_EXHAUSTED",
            status=503,
        )
    if code == "RequestLimitExceeded":
        return GceError(text, reason="rateLimitExceeded", status=403)
    if exc.status >= 500:
        return GceError(
            "The service is currently unavailable." if exc.status == 503 else internal().message,
            reason="backendError",
            status=503 if exc.status == 503 else 500,
        )
    return invalid(text)


def operation_error(code: str, message: str) -> dict[str, Any]:
    """An Operation's ``error`` for a failed asynchronous change."""
    return {"errors": [{"code": code, "message": message}]}
