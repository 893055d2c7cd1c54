"""The dispatcher's cross-cutting machinery: ClientToken, DryRun, internal errors.

These tests serve the real app over HTTP with handlers of their own for an
action that takes a ClientToken, so the machinery is tested apart from any
resource family.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ocs import ids
from ocs.api_ec2 import protocol
from ocs.api_ec2.actions import HANDLERS
from ocs.api_ec2.app import ApiDeps, create_app
from ocs.api_ec2.context import Settings
from ocs.crypto import SecretBox
from ocs.db import accounts as db_accounts
from ocs.db import engine as db_engine
from ocs.db import migration
from ocs.wsgi_server import ThreadedWSGIServer


class VolumeRecorder:
    """A CreateVolume handler that records each call it really runs."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, ctx, params):
        with self.lock:
            self.calls.append(params)
        return {"VolumeId": ids.new_id("volume"), "Size": params.get("Size"), "State": "creating"}


def explode(ctx, params):
    raise RuntimeError("secret internals: /etc/ocs/ocs.conf password=hunter2")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    state = tmp_path_factory.mktemp("dispatch")
    url = db_engine.default_url(str(state))
    migration.sync(url)
    sessions = db_engine.session_factory(db_engine.make_engine(url))
    box = SecretBox.from_key(SecretBox.generate_key())
    with db_engine.transaction(sessions) as s:
        account = db_accounts.create_account(s, "tester")
        key, secret = db_accounts.create_access_key(s, account.id, box)
        access_key_id = key.access_key_id
    recorder = VolumeRecorder()
    handlers = dict(HANDLERS, CreateVolume=recorder, DeleteVolume=explode)
    server = ThreadedWSGIServer(None, "127.0.0.1", 0)
    settings = Settings(region="us-east-1", availability_zones=("us-east-1a",), endpoint=server.url)
    server.set_app(
        create_app(ApiDeps(settings=settings, sessions=sessions, secret_box=box, handlers=handlers))
    )
    server.start()
    client = boto3.client(
        "ec2",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )
    yield client, recorder
    server.stop()


def test_client_token_replays_the_first_answer(api):
    client, recorder = api
    before = len(recorder.calls)
    first = client.create_volume(AvailabilityZone="us-east-1a", Size=1, ClientToken="token-1")
    again = client.create_volume(AvailabilityZone="us-east-1a", Size=1, ClientToken="token-1")
    assert again["VolumeId"] == first["VolumeId"]
    assert again["ResponseMetadata"]["RequestId"] != first["ResponseMetadata"]["RequestId"]
    assert len(recorder.calls) == before + 1


def test_client_token_with_other_parameters_is_a_mismatch(api):
    client, _ = api
    client.create_volume(AvailabilityZone="us-east-1a", Size=1, ClientToken="token-2")
    with pytest.raises(ClientError) as exc:
        client.create_volume(AvailabilityZone="us-east-1a", Size=2, ClientToken="token-2")
    assert exc.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_without_client_token_every_request_runs(api):
    client, recorder = api
    before = len(recorder.calls)
    a = client.create_volume(AvailabilityZone="us-east-1a", Size=1)
    b = client.create_volume(AvailabilityZone="us-east-1a", Size=1)
    assert a["VolumeId"] != b["VolumeId"]
    assert len(recorder.calls) == before + 2


def test_concurrent_retries_with_one_token_run_once(api):
    client, recorder = api
    before = len(recorder.calls)

    def create(_):
        return client.create_volume(AvailabilityZone="us-east-1a", Size=3, ClientToken="token-race")[
            "VolumeId"
        ]

    with ThreadPoolExecutor(8) as pool:
        answers = set(pool.map(create, range(8)))
    assert len(answers) == 1
    assert len(recorder.calls) == before + 1


def test_dry_run_changes_nothing(api):
    client, recorder = api
    before = len(recorder.calls)
    with pytest.raises(ClientError) as exc:
        client.create_volume(AvailabilityZone="us-east-1a", Size=1, DryRun=True)
    assert exc.value.response["Error"]["Code"] == "DryRunOperation"
    assert len(recorder.calls) == before


def test_a_bug_is_an_internal_error_without_internals(api, caplog):
    client, _ = api
    with pytest.raises(ClientError) as exc:
        client.delete_volume(VolumeId="vol-0123456789abcdef0")
    assert exc.value.response["Error"]["Code"] == "InternalError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "hunter2" not in exc.value.response["Error"]["Message"]
    assert "Traceback" in caplog.text or "RuntimeError" in caplog.text


def test_every_handled_action_is_an_ec2_operation():
    for action in HANDLERS:
        operation = protocol.operation_model(action)
        assert operation is not None, f"{action} is not an EC2 action"


def test_unimplemented_ec2_action_is_invalid_action(api):
    client, _ = api
    with pytest.raises(ClientError) as exc:
        client.describe_fleets()
    assert exc.value.response["Error"]["Code"] == "InvalidAction"
