"""Who may call the Compute Engine API: service-account keys, the token endpoint, bearer
tokens, and projects that are not the caller's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth import credentials as google_credentials
from google.auth import exceptions as auth_exc
from google.oauth2 import credentials as oauth_credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from ocs.api_gce import jwt
from ocs.db import gce as db_gce
from tests.framework import gce
from tests.functional.gce.conftest import make_project


def _client_with(cloud, creds):
    return build(
        "compute",
        "v1",
        static_discovery=True,
        client_options={"api_endpoint": cloud.endpoint + "/compute/v1/"},
        credentials=creds,
        cache_discovery=False,
    )


class FixedToken(google_credentials.Credentials):
    """A bearer token that "refreshes" to itself (googleapiclient refreshes once on a 401)."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token
        self._fixed = token

    def refresh(self, request):
        self.token = self._fixed


def _private_key(info):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(info["private_key"].encode(), password=None)


def test_token_endpoint_issues_short_lived_bearer_tokens(cloud, project):
    creds = gce.credentials(project.info)
    creds.refresh(google_request())
    assert creds.token.startswith("ya29.") and creds.expiry is not None
    lifetime = creds.expiry.timestamp() - time.time()
    assert 3000 < lifetime <= 3600 + 5
    api = _client_with(cloud, oauth_credentials.Credentials(token=creds.token))
    assert api.zones().list(project=project.name).execute()["items"]


def google_request():
    from google.auth.transport.requests import Request

    return Request()


def test_token_endpoint_refuses_bad_assertions(cloud, project):
    key = _private_key(project.info)
    now = int(time.time())
    claims = {
        "iss": project.info["client_email"],
        "aud": "https://oauth2.googleapis.com/token",
        "scope": "https://www.googleapis.com/auth/compute",
        "iat": now,
        "exp": now + 600,
    }
    token_uri = project.info["token_uri"]

    def post(assertion, grant="urn:ietf:params:oauth:grant-type:jwt-bearer"):
        return requests.post(token_uri, data={"grant_type": grant, "assertion": assertion}, timeout=10)

    good = post(jwt.sign(claims, key, project.info["private_key_id"]))
    assert good.status_code == 200 and good.json()["token_type"] == "Bearer"
    assert good.json()["expires_in"] == 3600
    for bad in (
        jwt.sign(
            {**claims, "iat": now - 7200, "exp": now - 3600}, key, project.info["private_key_id"]
        ),  # expired
        jwt.sign(claims, key, "0" * 40),  # unknown kid
        jwt.sign({**claims, "iss": "someone@else.example"}, key, project.info["private_key_id"]),
        jwt.sign(claims, key, project.info["private_key_id"])[:-4] + "AAAA",  # signature
        "not-a-jwt",
    ):
        answer = post(bad)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert post("x", grant="password").json()["error"] == "unsupported_grant_type"
    # google-auth itself surfaces a refused exchange as RefreshError.
    wrong = dict(project.info, private_key_id="f" * 40)
    with pytest.raises(auth_exc.RefreshError):
        gce.credentials(wrong).refresh(google_request())


def _assert_401(call):
    with pytest.raises(HttpError) as caught:
        call.execute()
    assert caught.value.status_code == 401
    error = json.loads(caught.value.content)["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["errors"][0]["reason"] == "authError"


def test_bad_tokens_get_401(cloud, project, zone):
    for token in ("garbage", "ya29.ocs.gAAAAABnot-a-fernet-token", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"):
        api = _client_with(cloud, FixedToken(token))
        _assert_401(api.zones().list(project=project.name))
    anonymous = requests.get(f"{cloud.endpoint}/compute/v1/projects/{project.name}/zones", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == 401
    bad = gce.compute_client(cloud, dict(project.info, private_key_id="e" * 40))
    with pytest.raises(gexc.Unauthorized):
        bad.get(project=project.name, zone=zone, instance="x")


def test_revoked_key_and_expired_tokens_get_401(cloud):
    p = make_project(cloud, "gce-revoke")
    creds = gce.credentials(p.info)
    creds.refresh(google_request())
    api = _client_with(cloud, oauth_credentials.Credentials(token=creds.token))
    assert api.zones().list(project=p.name).execute()["items"]
    key = _private_key(p.info)
    now = int(time.time())
    expired = jwt.sign(
        {
            "iss": p.info["client_email"],
            "sub": p.info["client_email"],
            "aud": "https://compute.googleapis.com/",
            "iat": now - 7200,
            "exp": now - 3600,
        },
        key,
        p.info["private_key_id"],
    )
    _assert_401(_client_with(cloud, FixedToken(expired)).zones().list(project=p.name))
    with cloud.session() as s:
        assert db_gce.delete_service_key(s, p.info["private_key_id"])
    revoked = _client_with(cloud, FixedToken(creds.token))
    _assert_401(revoked.zones().list(project=p.name))  # the access token dies with its key
    self_signed = gce.compute_client(cloud, p.info, "ZonesClient")
    with pytest.raises(gexc.Unauthorized):
        list(self_signed.list(project=p.name))


def test_self_signed_jwt_with_scope_is_accepted(cloud, project, zone):
    zones = gce.compute_client(cloud, project.info, "ZonesClient", scoped=True)
    assert zone in [z.name for z in zones.list(project=project.name)]


def test_another_projects_instance_is_invisible(cloud, project, api, zone, demo_image):
    other = make_project(cloud, "gce-other")
    them = gce.discovery_client(cloud, other.info)
    op = (
        them.instances()
        .insert(
            project=other.name,
            zone=zone,
            body={
                "name": "secret-vm",
                "machineType": f"zones/{zone}/machineTypes/t3.micro",
                "disks": [{"boot": True, "initializeParams": {"sourceImage": demo_image}}],
            },
        )
        .execute()
    )
    theirs = them.zoneOperations().wait(project=other.name, zone=zone, operation=op["name"]).execute()
    assert theirs["status"] == "DONE"
    with pytest.raises(HttpError) as forbidden:
        api.instances().get(project=other.name, zone=zone, instance="secret-vm").execute()
    assert forbidden.value.status_code == 403
    assert json.loads(forbidden.value.content)["error"]["errors"][0]["reason"] == "forbidden"
    for name in ("secret-vm", theirs["targetId"]):
        with pytest.raises(HttpError) as missing:
            api.instances().get(project=project.name, zone=zone, instance=name).execute()
        assert missing.value.status_code == 404
    with pytest.raises(HttpError) as op_missing:
        api.zoneOperations().get(project=project.name, zone=zone, operation=op["name"]).execute()
    assert op_missing.value.status_code == 404
    listed = api.instances().list(project=project.name, zone=zone).execute().get("items", [])
    assert "secret-vm" not in [i["name"] for i in listed]
    them.instances().delete(project=other.name, zone=zone, instance="secret-vm").execute()


def test_manage_gce_key_writes_a_working_key_file(cloud, tmp_path, project):
    out = tmp_path / "key.json"
    manage = Path(sys.executable).with_name("ocs-manage")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    done = subprocess.run(
        [
            str(manage),
            "--config-file",
            str(cloud.aio.conf_file),
            "account",
            "gce-key",
            project.name,
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    info = json.loads(out.read_text())
    assert info["type"] == "service_account" and info["project_id"] == project.name
    assert info["token_uri"] == cloud.endpoint + "/token"
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    api = gce.discovery_client(cloud, info)
    assert api.zones().list(project=project.name).execute()["items"]
    with cloud.session() as s:  # only the public half is stored
        stored = db_gce.get_service_key(s, info["private_key_id"])
        assert stored is not None and "PRIVATE" not in stored.public_key


def test_access_tokens_expire_after_their_lifetime(cloud, project):
    """The sealed access token carries its expiry; the clock is injected here."""
    from datetime import UTC, datetime, timedelta

    from ocs.api_ec2.service import database_url
    from ocs.api_gce.auth import Authenticator
    from ocs.api_gce.errors import GceError
    from ocs.crypto import load_secret_box
    from ocs.db import engine as db_engine

    conf = cloud.conf
    clock = [datetime.now(UTC)]
    engine = db_engine.make_engine(database_url(conf))
    try:
        auth = Authenticator(
            db_engine.session_factory(engine),
            load_secret_box(conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir),
            now=lambda: clock[0],
            token_lifetime=600,
            clock_skew=300,
        )
        now = int(clock[0].timestamp())
        assertion = jwt.sign(
            {
                "iss": project.info["client_email"],
                "aud": project.info["token_uri"],
                "iat": now,
                "exp": now + 3600,
            },
            _private_key(project.info),
            project.info["private_key_id"],
        )
        issued = auth.exchange(
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
            project.info["token_uri"],
        )
        assert issued["expires_in"] == 600
        header = f"Bearer {issued['access_token']}"
        assert auth.authenticate(header).project == project.name
        clock[0] += timedelta(seconds=599)
        assert auth.authenticate(header).account_id == project.account.account_id
        clock[0] += timedelta(seconds=2)
        with pytest.raises(GceError) as expired:
            auth.authenticate(header)
        assert expired.value.status == 401 and expired.value.detail == "access token expired"
    finally:
        engine.dispose()
