"""Property-based fuzzing (hypothesis) of the EC2 front end: bad input never hurts.

Whatever a client sends, OCS answers as EC2 does: a success document, or EC2's
error document (``<Response><Errors><Error><Code>``) with a 4xx status. Never a
5xx, never a Python traceback or an internal detail (exception names, SQL,
file paths) in the body.

Three layers are fuzzed:

* the query parser alone (``read_params`` and ``parse_request`` for every
  operation of the EC2 model), in process, many examples;
* the request envelope over HTTP: arbitrary bodies, content types, actions,
  GET query strings, all correctly signed;
* every action in the dispatch table (``HANDLERS``) over real HTTP, with
  parameters generated from the operation's botocore input shape: valid-ish
  values, wrong types, huge and unicode strings, empty lists, IDs of every
  prefix (random, malformed, and the fuzzing account's real ones), negative
  and huge numbers, unknown parameters.

Every answer must be EC2's: a 200 with the action's response document, or an error
document whose code is one EC2 documents (:data:`EC2_ERROR_CODES`) with a 4xx status;
after each action's examples the account must still be served (DescribeInstances and
DescribeVpcs answer, its VPCs are all there).

The run is reproducible (``derandomize=True``) and bounded for CI: the ``ci`` profile
(the default) tries a few examples per action and stops sending requests once the
module's cloud has served for ``OCS_FUZZ_BUDGET`` seconds (60, so that the module ends
within about 90 s; the actions not reached by then
are each tried once). ``OCS_FUZZ_PROFILE=long`` tries 80 per action with no budget;
``OCS_FUZZ_EXAMPLES=N`` tries N per action (and 10 N for the parser). The figures of
each run are printed at the end of the module.
"""

from __future__ import annotations

import base64
import collections
import os
import socket
import string
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocs import errors, ids
from ocs.api_ec2 import filters, protocol
from ocs.api_ec2.actions import HANDLERS
from ocs.api_ec2.app import read_params
from ocs.api_ec2.protocol.request import wire_name
from tests.dbfixtures import throwaway_database
from tests.framework.cloud import Cloud
from tests.framework.raw import Reply, signed_post

PROFILE = os.environ.get("OCS_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"OCS_FUZZ_PROFILE must be ci or long, not {PROFILE!r}")
EXAMPLES = int(os.environ.get("OCS_FUZZ_EXAMPLES") or 0)
PER_ACTION = EXAMPLES or (80 if PROFILE == "long" else 6)
PER_ENVELOPE = EXAMPLES or (60 if PROFILE == "long" else 20)
PER_PARSER = EXAMPLES * 10 or (500 if PROFILE == "long" else 100)
#: Seconds the module may take (ci): past them, each remaining action gets one request.
BUDGET = float(os.environ.get("OCS_FUZZ_BUDGET") or (0 if PROFILE == "long" or EXAMPLES else 60))
STARTED = [time.monotonic()]  # when the module's cloud was up

#: The error codes of the EC2 API reference ("Error codes for the Amazon EC2 API":
#: the common client errors, the client errors of specific actions and the server
#: errors) that OCS may answer, and the NotFound/Malformed codes of each resource ID
#: kind (ocs.ids.KINDS, EC2's per-kind codes). A code outside it is one no EC2
#: client knows.
EC2_ERROR_CODES = frozenset(
    {code for kind in ids.KINDS.values() for code in (kind.not_found, kind.malformed)}
) | frozenset(
    [
        "AddressLimitExceeded",
        "AttachmentLimitExceeded",
        "AuthFailure",
        "CannotDelete",
        "DefaultVpcAlreadyExists",
        "DependencyViolation",
        "DryRunOperation",
        "Gateway.NotAttached",
        "IdempotentParameterMismatch",
        "IncompleteSignature",
        "IncorrectInstanceState",
        "IncorrectState",
        "InstanceLimitExceeded",
        "InsufficientAddressCapacity",
        "InsufficientFreeAddressesInSubnet",
        "InsufficientInstanceCapacity",
        "InternalError",
        "InvalidAMIAttributeItemValue",
        "InvalidAMIID.Malformed",
        "InvalidAMIID.NotFound",
        "InvalidAMIID.Unavailable",
        "InvalidAMIName.Duplicate",
        "InvalidAMIName.Malformed",
        "InvalidAction",
        "InvalidAddress.NotFound",
        "InvalidAddressID.NotFound",
        "InvalidAllocationID.NotFound",
        "InvalidAssociationID.NotFound",
        "InvalidAttachment.NotFound",
        "InvalidAttachmentID.NotFound",
        "InvalidBlockDeviceMapping",
        "InvalidCharacter",
        "InvalidClientTokenId",
        "InvalidFilter",
        "InvalidGatewayID.NotFound",
        "InvalidGroup.Duplicate",
        "InvalidGroup.NotFound",
        "InvalidGroup.Reserved",
        "InvalidGroupId.Malformed",
        "InvalidID",
        "InvalidIPAddress.InUse",
        "InvalidInstanceAttributeValue",
        "InvalidInstanceID",
        "InvalidInstanceID.Malformed",
        "InvalidInstanceID.NotFound",
        "InvalidInstanceType",
        "InvalidInternetGatewayID.NotFound",
        "InvalidKey.Format",
        "InvalidKeyPair.Duplicate",
        "InvalidKeyPair.Format",
        "InvalidKeyPair.NotFound",
        "InvalidManifest",
        "InvalidNatGatewayID.NotFound",
        "InvalidNetworkInterface.InUse",
        "InvalidNetworkInterfaceAttachmentId.Malformed",
        "InvalidNetworkInterfaceID.Malformed",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidPaginationToken",
        "InvalidParameter",
        "InvalidParameterCombination",
        "InvalidParameterDependency",
        "InvalidParameterValue",
        "InvalidPermission.Duplicate",
        "InvalidPermission.Malformed",
        "InvalidPermission.NotFound",
        "InvalidPlacementGroup.Unknown",
        "InvalidPrefixListID.NotFound",
        "InvalidQueryParameter",
        "InvalidRequest",
        "InvalidRoute.InvalidState",
        "InvalidRoute.NotFound",
        "InvalidRouteTableID.Malformed",
        "InvalidRouteTableID.NotFound",
        "InvalidSecurityGroupID.NotFound",
        "InvalidSecurityGroupRuleId.Malformed",
        "InvalidSecurityGroupRuleId.NotFound",
        "InvalidSnapshot.InUse",
        "InvalidSnapshot.NotFound",
        "InvalidSnapshotID.Malformed",
        "InvalidSubnet.Conflict",
        "InvalidSubnet.Range",
        "InvalidSubnetID.Malformed",
        "InvalidSubnetID.NotFound",
        "InvalidTagKey.Malformed",
        "InvalidUserData.Malformed",
        "InvalidUserID.Malformed",
        "InvalidVolume.NotFound",
        "InvalidVolume.ZoneMismatch",
        "InvalidVolumeID.Malformed",
        "InvalidVpc.Range",
        "InvalidVpcID.Malformed",
        "InvalidVpcID.NotFound",
        "InvalidZone.NotFound",
        "MalformedQueryString",
        "MissingAction",
        "MissingAuthenticationToken",
        "MissingInput",
        "MissingParameter",
        "NatGatewayNotFound",
        "OperationNotPermitted",
        "OptInRequired",
        "PrivateIpAddressLimitExceeded",
        "RequestExpired",
        "RequestLimitExceeded",
        "Resource.AlreadyAssociated",
        "ResourceLimitExceeded",
        "RouteAlreadyExists",
        "RulesPerSecurityGroupLimitExceeded",
        "SecurityGroupsPerInterfaceLimitExceeded",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SnapshotLimitExceeded",
        "TagLimitExceeded",
        "UnauthorizedOperation",
        "Unavailable",
        "UnknownParameter",
        "Unsupported",
        "UnsupportedHibernationConfiguration",
        "UnsupportedOperation",
        "UnsupportedProtocol",
        "VPCIdNotSpecified",
        "VcpuLimitExceeded",
        "VolumeInUse",
        "VolumeLimitExceeded",
    ]
)
NS = "{" + protocol.XML_NAMESPACE + "}"
VERSION = "2016-11-15"

#: EC2's documented server-side error codes that are not bugs (genuine capacity).
ALLOWED_5XX = frozenset({"InsufficientInstanceCapacity"})
#: What must never reach a client: signs of a leaked exception or of internals.
LEAK_MARKERS = (
    "Traceback",
    'File "',
    ".py",
    "sqlalchemy",
    "sqlite",
    "psycopg",
    "pymysql",
    "IntegrityError",
    "OperationalError",
    "KeyError",
    "TypeError",
    "ValueError",
    "AttributeError",
    "IndexError",
    "AssertionError",
    "NoneType",
    "object at 0x",
    "<class '",
    "SELECT ",
    "INSERT INTO",
)

COUNTS: collections.Counter[str] = collections.Counter()
REACHED: collections.Counter[str] = collections.Counter()  # requests past the parser, per action
SUCCEEDED: collections.Counter[str] = collections.Counter()  # 200 answers, per action
STATUSES: collections.Counter[int] = collections.Counter()
CODES: collections.Counter[str] = collections.Counter()

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


# --- the cloud and what the fuzzing account owns -------------------------------------------


def counted(action: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler``, counting the requests that got past the parser to it."""

    def run(ctx: Any, params: dict[str, Any]) -> Any:
        REACHED[action] += 1
        return handler(ctx, params)

    return run


@pytest.fixture(scope="module")
def database():
    """SQLite; ``OCS_FUZZ_DATABASE=postgres`` (or ``mariadb``) fuzzes over that server instead."""
    backend = os.environ.get("OCS_FUZZ_DATABASE", "sqlite")
    if backend == "sqlite":
        yield {}
        return
    with throwaway_database(backend) as url:
        yield {"database": {"connection": url}}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, request, database):
    c = Cloud(tmp_path_factory.mktemp("fuzz"), overrides={"api": {"throttling": False}, **database})
    original = dict(HANDLERS)
    HANDLERS.update({name: counted(name, handler) for name, handler in original.items()})
    try:
        c.start()  # its app copies the (counting) dispatch table
    finally:
        HANDLERS.update(original)
    STARTED[0] = time.monotonic()
    yield c
    c.stop()
    summary = (
        f"fuzz: {sum(COUNTS.values())} inputs tried ({COUNTS['parser']} parser, "
        f"{COUNTS['envelope']} envelope, {COUNTS['action']} action requests over HTTP, "
        f"{sum(REACHED.values())} of them reaching a handler); statuses {dict(sorted(STATUSES.items()))}"
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + summary)
        if os.environ.get("OCS_FUZZ_CODES"):
            print(sorted(CODES.items(), key=lambda kv: -kv[1]))
            print({a: (REACHED[a], SUCCEEDED[a]) for a in sorted(HANDLERS)})


@pytest.fixture(scope="module")
def fuzzer(cloud):
    return cloud.create_account("fuzzer")


@pytest.fixture(scope="module")
def known(cloud, fuzzer) -> dict[str, list[str]]:
    """Real IDs and names of the fuzzing account (and the public image), to aim at."""
    ec2 = cloud.client(fuzzer)
    key = ec2.create_key_pair(KeyName="fuzz-key")
    group = ec2.create_security_group(GroupName="fuzz-sg", Description="fuzz")["GroupId"]
    rules = ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )["SecurityGroupRules"]
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    own_image = ec2.register_image(Name="fuzz-image", ImageLocation=image["ImageLocation"])["ImageId"]
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    run = ec2.run_instances(ImageId=image["ImageId"], MinCount=1, MaxCount=1, InstanceType="t2.micro")
    return {
        "id": [
            image["ImageId"],
            own_image,
            key["KeyPairId"],
            *vpcs,
            *subnets,
            *groups,
            *(r["SecurityGroupRuleId"] for r in rules),
            run["Instances"][0]["InstanceId"],
        ],
        "name": ["fuzz-key", "fuzz-sg", "default", "ocs-demo", "fuzz-image"],
    }


# --- strategies: values ------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "null",
    "None",
    "true",
    "-1",
    "0",
    "1e999",
    "NaN",
    "%00",
    "\x00",
    "\u202e",
    "\ufeff",
    "😀" * 3,
    "<xml>&amp;</xml>",
    "]]>",
    "' OR 1=1 --",
    '"; DROP TABLE instances; --',
    "../../etc/passwd",
    "*",
    "?",
    "\\",
    "\\*",
    "a" * 256,
    "tag:",
    "i-",
    "ami-",
    "sg-",
    "-",
    ".",
    "..",
    "1.2.3.4",
    "::1",
]
PREFIXES = sorted({k.prefix for k in ids.KINDS.values()} | {"sgr", "key", "eni", "x", "I", "AMI"})


def huge_text() -> st.SearchStrategy[str]:
    return st.sampled_from([1_000, 10_000, 100_000]).map(lambda n: "x" * n) | st.text(
        min_size=300, max_size=2000
    )


def random_ids() -> st.SearchStrategy[str]:
    hexes = st.text("0123456789abcdef", min_size=8, max_size=17) | st.sampled_from(["", "g" * 17, "0" * 40])
    return st.builds(
        lambda p, h, sep: f"{p}{sep}{h}", st.sampled_from(PREFIXES), hexes, st.sampled_from(["-", "_", ""])
    )


#: Which ID prefix a member named like the key takes (first match wins).
ID_HINTS = (
    ("SecurityGroupRule", "sgr"),
    ("NetworkInterface", "eni"),
    ("Reservation", "r"),
    ("Instance", "i"),
    ("Subnet", "subnet"),
    ("Vpc", "vpc"),
    ("Group", "sg"),
    ("Kernel", "aki"),
    ("Ramdisk", "ari"),
    ("Image", "ami"),
    ("KeyPair", "key"),
    ("Snapshot", "snap"),
    ("Volume", "vol"),
)


def id_values(hint: str, known: dict[str, list[str]]) -> st.SearchStrategy[str]:
    """Mostly well-formed IDs of the kind ``hint`` names: the account's own, or random ones."""
    prefix = next((p for word, p in ID_HINTS if word in hint), None)
    if prefix is None:  # Resources, Owners, UserId ...
        return st.sampled_from(known["id"]) | st.sampled_from(["self", "all", "123456789012"]) | random_ids()
    mine = [i for i in known["id"] if i.startswith(prefix + "-")] or [f"{prefix}-0123456789abcdef0"]
    fresh = st.text("0123456789abcdef", min_size=17, max_size=17).map(lambda h: f"{prefix}-{h}")
    return st.sampled_from(mine) | fresh | random_ids()


def garbage() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(max_size=40),
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        random_ids(),
        huge_text(),
    )


GOOD_CIDRS = [
    "10.0.0.0/16",
    "10.20.0.0/24",
    "172.31.96.0/20",
    "172.31.200.0/24",
    "0.0.0.0/0",
    "192.168.0.0/28",
]


def cidrs() -> st.SearchStrategy[str]:
    octet = st.integers(-1, 300).map(str)
    v4 = st.builds(
        lambda a, b, c, d, m: f"{a}.{b}.{c}.{d}/{m}", octet, octet, octet, octet, st.integers(-1, 40)
    )
    return v4 | st.sampled_from([*GOOD_CIDRS, "::/0", "2001:db8::/56", "10.0.0.0", "10.0.0.0/16/1"])


def sane_strings(shape: Shape, hint: str, known: dict[str, list[str]]) -> st.SearchStrategy[str]:
    """What a careful client would send."""
    if shape.enum:
        return st.sampled_from(shape.enum)
    if hint.endswith(("Id", "Ids")) or hint in ("Resources",):
        prefix = next((p for word, p in ID_HINTS if word in hint), None)
        mine = [i for i in known["id"] if prefix is None or i.startswith(prefix + "-")]
        return st.sampled_from(mine or known["id"])
    if "Cidr" in hint:
        return st.sampled_from(GOOD_CIDRS)
    if "Name" in hint:
        return st.sampled_from(known["name"]) | st.text(string.ascii_letters + "-_", min_size=3, max_size=12)
    return st.text(string.ascii_letters + string.digits + " ", min_size=1, max_size=20)


def string_values(shape: Shape, hint: str, known: dict[str, list[str]], mode: str) -> st.SearchStrategy[str]:
    if mode == "sane":
        return sane_strings(shape, hint, known)
    if shape.enum:
        valid: st.SearchStrategy[str] = st.sampled_from(shape.enum)
    elif hint.endswith(("Id", "Ids")) or hint in ("Resources", "Owners", "ExecutableUsers"):
        valid = id_values(hint, known)
    elif "Cidr" in hint:
        valid = cidrs()
    elif "Name" in hint:
        valid = st.sampled_from(known["name"]) | st.text(
            string.ascii_letters + "-_ ", min_size=1, max_size=20
        )
    else:
        return st.one_of(st.text(max_size=30), garbage())  # free text: anything is well-formed
    return st.one_of(valid, valid, garbage()) if mode == "chaos" or not shape.enum else valid


def number_values(shape: Shape, mode: str) -> st.SearchStrategy[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if mode == "sane":
        low = 0 if low is None else low
        return st.integers(low, max(low, min(high if high is not None else 5, low + 5))).map(str)
    in_range = st.integers(
        min_value=low if low is not None else -5, max_value=high if high is not None else 70000
    )
    edges = st.sampled_from([-1, 0, 1, 2, 65535, 65536, 2**31, 2**63, 10**40])
    if mode != "chaos":
        return in_range.map(str)
    return st.one_of(in_range.map(str), edges.map(str), garbage())


def typed_values(kind: str, hint: str) -> st.SearchStrategy[str]:
    """Well-formed values of a non-string scalar type (the parser accepts them)."""
    if kind == "boolean":
        return st.just("false") if hint == "DryRun" else st.sampled_from(["true", "false", "True", "FALSE"])
    if kind == "timestamp":
        return st.datetimes().map(lambda d: d.isoformat()) | st.just("2020-01-01T00:00:00+00:00")
    if kind == "blob":
        return st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
    return st.floats(allow_nan=False, allow_infinity=False).map(repr)  # double, float


def scalar_values(shape: Shape, hint: str, known: dict[str, list[str]], mode: str) -> st.SearchStrategy[str]:
    kind = shape.type_name
    if kind == "string":
        return string_values(shape, hint, known, mode)
    if kind in ("integer", "long"):
        return number_values(shape, mode)
    valid = typed_values(kind, hint)
    return valid | garbage() if mode == "chaos" else valid


# --- strategies: parameters from the input shape ---------------------------------------------


def filter_names(action: str) -> list[str]:
    names = [n.replace("<key>", "Name") for n in filters.FILTERS.get(action, {})]
    return [n if not n.endswith(":") else n + "Name" for n in names] + ["tag:Name", "tag-key"]


@st.composite
def shape_params(
    draw, shape: Shape, prefix: str, hint: str, depth: int, ctx: dict[str, Any]
) -> dict[str, str]:
    """Flat wire parameters for one value of ``shape`` at ``prefix`` (``Filter.1`` ...)."""
    kind = shape.type_name
    if kind == "structure":
        return draw(struct_params(shape, prefix, depth, ctx))
    if kind == "list":
        if depth > 4:
            return {}
        count = draw(st.integers(1, 2) if ctx["mode"] == "sane" else st.integers(0, 3))
        if count == 0:
            return draw(st.sampled_from([{}, {prefix: ""}]))
        regular = [str(i) for i in range(1, count + 1)]
        # EC2 numbers members from 1; out of order, 0, negative, zero-padded and huge
        # indices (Filter.0.Name, Filter.99999999999.Name) are the client's mistake.
        odd = (
            [["0", "7", "3"][:count], [str(2**40)][:count], ["99999999999"], ["-1"], ["01", "1"][:count]]
            if ctx["mode"] == "chaos"
            else []
        )
        indexes = draw(st.sampled_from([regular, *odd]))
        out: dict[str, str] = {}
        for index in indexes:
            out.update(draw(shape_params(shape.member, f"{prefix}.{index}", hint, depth + 1, ctx)))
        return out
    if hint == "Name" and ctx.get("filters") and prefix.startswith("Filter."):
        names = st.sampled_from(ctx["filters"])
        return {prefix: draw(names if ctx["mode"] == "sane" else names | garbage())}
    return {prefix: draw(scalar_values(shape, hint, ctx["known"], ctx["mode"]))}


@st.composite
def struct_params(draw, shape: Shape, prefix: str, depth: int, ctx: dict[str, Any]) -> dict[str, str]:
    if depth > 4:
        return {}
    members = shape.members
    required = set(shape.required_members)
    chosen = [m for m in members if m in required and (ctx["mode"] != "chaos" or draw(st.integers(0, 9)) > 0)]
    optional = [m for m in members if m not in required]
    if optional:
        chosen += draw(st.lists(st.sampled_from(optional), max_size=min(5, len(optional)), unique=True))
    out: dict[str, str] = {}
    for member in chosen:
        wire = wire_name(members[member], member)
        name = f"{prefix}.{wire}" if prefix else wire
        out.update(draw(shape_params(members[member], name, member, depth + 1, ctx)))
    return out


@st.composite
def action_request(draw, action: str, known: dict[str, list[str]]) -> dict[str, str]:
    operation = protocol.operation_model(action)
    # A third of the requests are chaos (wrong types, odd indexes, missing and
    # unknown parameters); a third are well-formed on the wire with strange but
    # typed values, so that they reach the handler; a third are what a careful
    # client sends, so that handlers get past their checks too.
    mode = draw(st.sampled_from(["chaos", "typed", "sane"]))
    ctx = {"known": known, "filters": filter_names(action), "mode": mode}
    params: dict[str, str] = {}
    if operation.input_shape is not None:
        params = draw(struct_params(operation.input_shape, "", 0, ctx))
    if mode == "chaos" and draw(st.booleans()):  # an unknown parameter, or a known one misused
        bogus = draw(
            st.sampled_from(["Bogus", "Filter.1.Name.2", "InstanceId.x", "DryRun.1", "X-Amz-Foo", "é"])
        )
        params[bogus] = draw(garbage())
    return {"Action": action, "Version": VERSION, **params}


# --- checking an answer ----------------------------------------------------------------------


def leaked(text: str, sent: dict[str, str]) -> list[str]:
    """Leak markers in ``text`` that the request itself did not contain."""
    echoed = " ".join([*sent.keys(), *sent.values()])
    return [m for m in LEAK_MARKERS if m in text and m not in echoed]


def check(reply: Reply, sent: dict[str, str], action: str | None) -> None:
    STATUSES[reply.status] += 1
    shown = {k: (v if len(v) < 200 else v[:200] + "...") for k, v in sent.items()}
    context = f"request {shown!r} answered {reply.status}: {reply.text[:600]}"
    if reply.status == 200 and action is not None:
        root = ElementTree.fromstring(reply.body)
        assert root.tag == f"{NS}{action}Response", context
        SUCCEEDED[action] += 1
        return
    assert reply.body.lstrip().startswith(b"<"), context  # XML, whatever happened
    code, message, request_id = reply.error()
    CODES[code] += 1
    assert code and request_id, context
    assert code in EC2_ERROR_CODES, f"{code} is no EC2 error code; {context}"
    assert 400 <= reply.status < 500 or code in ALLOWED_5XX, context
    assert code != "InternalError", context
    assert not leaked(reply.text, sent), context


# --- the query parser, in process -----------------------------------------------------------

ALL_OPERATIONS = sorted(protocol.operation_names())


def parse_outcome(fn: Callable[[], Any]) -> None:
    COUNTS["parser"] += 1
    try:
        fn()
    except errors.OcsError as exc:
        assert 400 <= exc.status < 500, (exc.code, str(exc))


@settings(FUZZ, max_examples=PER_PARSER)
@given(data=st.data())
def test_parse_request_answers_every_input_with_a_client_error(data):
    action = data.draw(st.sampled_from(sorted(HANDLERS)) | st.sampled_from(ALL_OPERATIONS), label="action")
    params = data.draw(action_request(action, {"id": ["i-0123456789abcdef0"], "name": ["x"]}), label="params")
    operation = protocol.operation_model(action)
    parse_outcome(lambda: protocol.parse_request(operation, params))


@settings(FUZZ, max_examples=PER_PARSER)
@given(
    keys=st.lists(
        st.sampled_from(["Filter", "InstanceId", "Name", "Value", "1", "0", "01", "", "x"]), max_size=6
    ),
    values=st.lists(garbage(), min_size=1, max_size=3),
    action=st.sampled_from(sorted(HANDLERS)),
)
def test_parse_request_survives_arbitrary_dotted_names(keys, values, action):
    params = {".".join(keys[: i + 1]): v for i, v in enumerate(values)}
    parse_outcome(lambda: protocol.parse_request(protocol.operation_model(action), params))


@settings(FUZZ, max_examples=PER_PARSER)
@given(
    query=st.text(max_size=200),
    body=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    ctype=st.sampled_from(
        [
            None,
            "",
            "application/x-www-form-urlencoded",
            "application/json",
            "text/plain; x",
            "APPLICATION/X-WWW-FORM-URLENCODED; charset=latin-1",
            "\x00",
        ]
    ),
)
def test_read_params_answers_every_input_with_a_client_error(query, body, ctype):
    parse_outcome(lambda: read_params(query, body, ctype))


# --- the request envelope, over HTTP ---------------------------------------------------------


@settings(FUZZ, max_examples=PER_ENVELOPE)
@given(
    body=st.binary(max_size=500)
    | st.lists(st.tuples(garbage(), garbage()), max_size=5).map(lambda kv: urlencode(kv).encode())
    | st.builds(lambda a: f"Action={a}&Version={VERSION}".encode(), garbage()),
    ctype=st.sampled_from(
        ["application/x-www-form-urlencoded; charset=utf-8", "application/json", "text/xml", ""]
    ),
)
def test_any_signed_body_gets_an_ec2_answer(cloud, fuzzer, body, ctype):
    COUNTS["envelope"] += 1
    reply = signed_post(cloud, fuzzer, body, content_type=ctype)
    check(reply, {"body": body.decode("utf-8", "replace")}, None)


def signed_get(cloud, account, params: dict[str, str]) -> Reply:
    import http.client

    request = AWSRequest(method="GET", url=cloud.endpoint + "/?" + urlencode(params))
    creds = Credentials(account.access_key_id, account.secret_access_key)
    SigV4QueryAuth(creds, "ec2", cloud.region, expires=60).add_auth(request)
    url = urlsplit(request.prepare().url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", f"{url.path}?{url.query}")
        resp = conn.getresponse()
        return Reply(resp.status, resp.read())
    finally:
        conn.close()


@settings(FUZZ, max_examples=PER_ENVELOPE)
@given(data=st.data())
def test_any_signed_query_string_gets_an_ec2_answer(cloud, fuzzer, known, data):
    action = data.draw(st.sampled_from(sorted(HANDLERS)) | garbage(), label="action")
    params = (
        data.draw(action_request(action, known), label="params")
        if action in HANDLERS
        else {"Action": action, "Version": VERSION}
    )
    params = {k: v for k, v in params.items() if len(v) < 2000}  # URLs stay short
    COUNTS["envelope"] += 1
    check(signed_get(cloud, fuzzer, params), params, action if action in HANDLERS else None)


def test_a_body_over_the_limit_is_a_client_error(cloud):
    """Refused from its Content-Length, before a byte of it is read (so no upload is needed)."""
    COUNTS["envelope"] += 1
    url = urlsplit(cloud.endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1048577\r\nConnection: close\r\n\r\nAction=DescribeVpcs"
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    check(Reply(status, body), {}, None)
    assert status == 400


@pytest.mark.parametrize(
    "params",
    [
        {"Action": "DeleteKeyPair", "KeyName": "\x00"},
        {"Action": "DescribeSecurityGroups", "GroupName.1": "a\x00b"},
        {
            "Action": "CreateTags",
            "ResourceId.1": "vpc-0123456789abcdef0",
            "Tag.1.Key": "k",
            "Tag.1.Value": "\x00",
        },
    ],
)
def test_a_nul_character_is_a_client_error(cloud, fuzzer, params):
    """Found by the fuzzer over PostgreSQL, which cannot store U+0000: it was an InternalError."""
    COUNTS["envelope"] += 1
    sent = {"Version": VERSION, **params}
    reply = signed_post(cloud, fuzzer, sent)
    check(reply, sent, None)
    assert reply.error()[0] == "InvalidParameterValue"


# --- every action, over HTTP ------------------------------------------------------------------


def over_budget() -> bool:
    return bool(BUDGET) and time.monotonic() - STARTED[0] > BUDGET


def still_served(cloud, fuzzer, vpcs: set[str]) -> None:
    """The account's state survived: its instances and VPCs can be listed, all VPCs there."""
    ec2 = cloud.client(fuzzer)
    ec2.describe_instances()
    assert vpcs <= {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}


@pytest.mark.parametrize("action", sorted(HANDLERS))
def test_every_action_answers_garbage_like_ec2(cloud, fuzzer, known, action):
    vpcs = {i for i in known["id"] if i.startswith("vpc-")}
    sent = [0]

    @settings(FUZZ, max_examples=PER_ACTION)
    @given(params=action_request(action, known))
    def fuzz(params):
        if sent[0] and over_budget():
            return  # the module's time is up: this action had its one request
        sent[0] += 1
        COUNTS["action"] += 1
        check(signed_post(cloud, fuzzer, params), params, action)

    fuzz()
    still_served(cloud, fuzzer, vpcs)


def test_the_fuzzed_account_is_still_served(cloud, fuzzer):
    """After all of that, the account (and the cloud) still answer normally."""
    ec2 = cloud.client(fuzzer)
    assert ec2.describe_regions()["Regions"]
    assert ec2.describe_availability_zones()["AvailabilityZones"]
    ec2.describe_instances()
