"""The EC2 Query protocol, driven by botocore's EC2 service model.

Written once for every EC2 action: nothing here knows a particular operation.

- :func:`parse_request` turns the flat query/form parameters of a request
  (``Filter.1.Name=...``) into the nested dict boto3 would have been given,
  keyed by botocore member names and holding Python values. It is the exact
  inverse of ``botocore.serialize.EC2Serializer``.
- :func:`serialize_response` renders a handler's result (a dict keyed by the
  output shape's member names) as the XML document EC2 answers with; the test
  suite proves that botocore's own parser reads back every operation's output.
- :func:`serialize_error` renders the one EC2 error document.
- :func:`operation_model` / :func:`operation_names` serve the dispatch table.

Per-shape lookup tables are compiled lazily, once, and cached, so a request
never walks the model's JSON. The module is pure: no database, bus or config.
"""

from ocs.api_ec2.protocol.model import load_service_model, operation_model, operation_names
from ocs.api_ec2.protocol.request import AUTH_PARAMS, NON_OPERATION_PARAMS, parse_request
from ocs.api_ec2.protocol.response import XML_NAMESPACE, serialize_error, serialize_response

__all__ = [
    "AUTH_PARAMS",
    "NON_OPERATION_PARAMS",
    "XML_NAMESPACE",
    "load_service_model",
    "operation_model",
    "operation_names",
    "parse_request",
    "serialize_error",
    "serialize_response",
]
