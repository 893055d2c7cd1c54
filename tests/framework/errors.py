"""What an EC2 error told a boto3 client: the helpers every functional test asserts with."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """The error's ``Code`` and ``Message``."""
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    """The error's ``Code``."""
    return error_of(exc)[0]
