"""Access to botocore's EC2 service model (the protocol's source of truth)."""

from __future__ import annotations

import threading
from functools import cache

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

# Guards the lazily compiled per-shape tables of the request and response
# modules (re-entrant: compiling a structure compiles its members).
COMPILE_LOCK = threading.RLock()


@cache
def load_service_model() -> ServiceModel:
    """The EC2 service model shipped with the installed botocore (loaded once)."""
    description = Loader().load_service_model("ec2", "service-2")
    return ServiceModel(description, service_name="ec2")


@cache
def operation_names() -> frozenset[str]:
    """Names of every EC2 action in the model (``RunInstances``, ...)."""
    return frozenset(load_service_model().operation_names)


def operation_model(action: str) -> OperationModel | None:
    """The model of the action named exactly ``action``; None if EC2 has no such action."""
    if action not in operation_names():
        return None
    return load_service_model().operation_model(action)
