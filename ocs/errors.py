"""One error hierarchy for the whole cloud.

Every error a client can cause is an :class:`OcsError` subclass that carries the
AWS error code, the HTTP status EC2 answers with and a message template. Errors
are raised anywhere (cores, services, handlers) and rendered in exactly one place
by each front end. Anything that is not an ``OcsError`` is a bug: the front end
logs it with a traceback and shows the client a bare ``InternalError``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OcsError(Exception):
    """Base of every error a client may see.

    ``message`` is a ``str.format`` template filled from the keyword arguments.
    """

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    message: ClassVar[str] = "An internal error has occurred."

    def __init__(self, message: str | None = None, *, code: str | None = None, **kwargs: Any):
        self.kwargs = kwargs
        if code is not None:
            self.code = code  # type: ignore[misc]
        if message is None:
            try:
                message = self.message.format(**kwargs)
            except (KeyError, IndexError):
                message = self.message
        self.text = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.text


# --- 5xx: our fault ---------------------------------------------------------


class InternalError(OcsError):
    code = "InternalError"
    status = 500
    message = "An internal error has occurred."


class ServiceUnavailable(OcsError):
    code = "Unavailable"
    status = 503
    message = "The service is unavailable. Try again later."


class InsufficientInstanceCapacity(OcsError):
    code = "InsufficientInstanceCapacity"
    status = 500
    message = "There is not enough capacity to fulfill your request."


# --- authentication ---------------------------------------------------------


class AuthFailure(OcsError):
    code = "AuthFailure"
    status = 401
    message = "AWS was not able to validate the provided access credentials"


class SignatureDoesNotMatch(OcsError):
    code = "SignatureDoesNotMatch"
    status = 403
    message = (
        "The request signature we calculated does not match the signature you "
        "provided. Check your AWS Secret Access Key and signing method. Consult "
        "the service documentation for details."
    )


class IncompleteSignature(OcsError):
    code = "IncompleteSignature"
    status = 400
    message = "The request signature does not conform to AWS standards."


class RequestExpired(OcsError):
    code = "RequestExpired"
    status = 400
    message = "Request has expired."


class UnauthorizedOperation(OcsError):
    code = "UnauthorizedOperation"
    status = 403
    message = "You are not authorized to perform this operation."


class OptInRequired(OcsError):
    code = "OptInRequired"
    status = 401
    message = "You are not subscribed to this service."


# --- request shape ----------------------------------------------------------


class InvalidAction(OcsError):
    code = "InvalidAction"
    status = 400
    message = "The action {action} is not valid for this web service."


class MissingAction(OcsError):
    code = "MissingAction"
    status = 400
    message = "The request must contain the parameter Action."


class MissingParameter(OcsError):
    code = "MissingParameter"
    status = 400
    message = "The request must contain the parameter {name}"


class UnknownParameter(OcsError):
    code = "UnknownParameter"
    status = 400
    message = "The parameter {name} is not recognized"


class InvalidParameterValue(OcsError):
    code = "InvalidParameterValue"
    status = 400
    message = "Value ({value}) for parameter {name} is invalid. {reason}"


class InvalidParameterCombination(OcsError):
    code = "InvalidParameterCombination"
    status = 400
    message = "{reason}"


class InvalidParameter(OcsError):
    code = "InvalidParameter"
    status = 400
    message = "{reason}"


class InvalidRequest(OcsError):
    code = "InvalidRequest"
    status = 400
    message = "The request received was invalid."


class InvalidFilter(OcsError):
    code = "InvalidParameterValue"
    status = 400
    message = "The filter '{name}' is invalid"


class InvalidPaginationToken(OcsError):
    code = "InvalidPaginationToken"
    status = 400
    message = "The token '{token}' is invalid."


class DryRunOperation(OcsError):
    code = "DryRunOperation"
    status = 412
    message = "Request would have succeeded, but DryRun flag is set."


class IdempotentParameterMismatch(OcsError):
    code = "IdempotentParameterMismatch"
    status = 400
    message = "Client token {token} is already used by a request with different parameters."


class RequestLimitExceeded(OcsError):
    code = "RequestLimitExceeded"
    status = 503
    message = "Request limit exceeded."


class ApiOverloaded(RequestLimitExceeded):
    """A request that waited too long for the API to get to it: not served, retry later."""

    message = "Request limit exceeded: the API is overloaded; retry with backoff."


# --- resources --------------------------------------------------------------


class NotFound(OcsError):
    """A resource that does not exist in the caller's account.

    The code is given per kind (``InvalidInstanceID.NotFound`` ...), see
    :func:`ocs.ids.not_found`.
    """

    code = "InvalidID.NotFound"
    status = 400
    message = "The ID '{id}' does not exist"


class Malformed(OcsError):
    code = "InvalidID.Malformed"
    status = 400
    message = 'Invalid id: "{id}"'


class Duplicate(OcsError):
    code = "InvalidParameterValue.Duplicate"
    status = 400
    message = "The resource '{id}' already exists."


class InUse(OcsError):
    code = "DependencyViolation"
    status = 400
    message = "resource {id} has a dependent object"


class IncorrectState(OcsError):
    code = "IncorrectState"
    status = 400
    message = "{reason}"


class IncorrectInstanceState(OcsError):
    code = "IncorrectInstanceState"
    status = 400
    message = "The instance '{id}' is not in a state from which it can be {action}."


class OperationNotPermitted(OcsError):
    code = "OperationNotPermitted"
    status = 400
    message = "{reason}"


class LimitExceeded(OcsError):
    code = "ResourceLimitExceeded"
    status = 400
    message = "{reason}"


class Unsupported(OcsError):
    code = "Unsupported"
    status = 400
    message = "{reason}"


# --- operator / internal ----------------------------------------------------


class BusTimeout(OcsError):
    """A call on the message bus got no reply in time (service down or slow)."""

    code = "InternalError"
    status = 500
    message = "No reply from {target} to {method} within {timeout} seconds."


class ConfigError(OcsError):
    code = "InternalError"
    status = 500
    message = "{reason}"
