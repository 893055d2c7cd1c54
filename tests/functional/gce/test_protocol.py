"""The Compute Engine dispatch table against Google's discovery document, and requests
no client library would send: always a Compute Engine error document, never a 5xx."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import requests

from ocs.api_gce.app import all_routes
from tests.framework import gce


def _discovery_methods() -> dict[tuple[str, str], dict]:
    text = (resources.files("googleapiclient") / "discovery_cache/documents/compute.v1.json").read_text()
    methods: dict[tuple[str, str], dict] = {}

    def walk(node: dict) -> None:
        for method in (node.get("methods") or {}).values():
            methods[(method["httpMethod"], method["flatPath"])] = method
        for child in (node.get("resources") or {}).values():
            walk(child)

    walk(json.loads(text))
    return methods


def test_every_route_is_a_method_of_the_discovery_document():
    methods = _discovery_methods()
    for route in all_routes():
        method = methods.get((route.method, route.template))
        assert method is not None, f"{route.method} {route.template} is no Compute Engine v1 method"
        assert route.response == (method.get("response") or {}).get("$ref", route.response), route.template
        assert route.request == (method.get("request") or {}).get("$ref"), route.template
        assert route.permission.startswith("compute."), route.template


@pytest.fixture(scope="module")
def token(project):
    from google.auth.transport.requests import Request

    creds = gce.credentials(project.info)
    creds.refresh(Request())
    return creds.token


def _request(cloud, token, method, path, **kw):
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return requests.request(method, cloud.endpoint + path, headers=headers, timeout=30, **kw)


def _error(answer) -> dict:
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    return answer.json()["error"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/compute/v1/"),
        ("GET", "/compute/v1/projects"),
        ("GET", "/compute/v1/projects/{p}/zones/{z}/widgets"),
        ("PUT", "/compute/v1/projects/{p}/zones"),
        ("GET", "/compute/v2/projects/{p}/zones"),
        ("GET", "/compute/v1/projects/{p}/zones/{z}/instances/a/b/c"),
    ],
)
def test_unknown_paths_are_json_404(cloud, token, project, zone, method, path):
    answer = _request(cloud, token, method, path.format(p=project.name, z=zone))
    assert answer.status_code == 404
    assert _error(answer)["errors"][0]["reason"] == "notFound"


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"name": 5}', "application/json"),
        (b'{"name": "x", "machineType": ["a"]}', "application/json"),
        (b'{"name": "x", "unknownField": 1}', "application/json"),
        (b'{"name": "x", "disks": "nope"}', "application/json"),
        (b'{"name": "x", "disks": [{"initializeParams": {"diskSizeGb": "ten"}}]}', "application/json"),
        (b'{"name": "x", "labels": {"a": 5}}', "application/json"),
        (b'{"name": "x", "metadata": {"items": [{"key": "a b", "value": "v"}]}}', "application/json"),
        (b'{"name": "x", "networkInterfaces": [{}, {}]}', "application/json"),
        (
            b'{"name": "ok", "machineType": "zones/Z/machineTypes/t3.micro", "disks": [{"source": "x"}]}',
            "application/json",
        ),
        (
            b'{"name": "ok", "machineType": "zones/Z/machineTypes/t3.micro", "disks": [{"initializeParams": {}}]}',
            "application/json",
        ),
        (
            b'{"name": "ok", "machineType": "zones/Z/machineTypes/t3.micro", "disks": [{"initializeParams": {"sourceImage": ""}}]}',
            "application/json",
        ),
    ],
)
def test_bad_insert_bodies_are_400(cloud, token, project, zone, body, content_type):
    body = body.replace(b"zones/Z/", f"zones/{zone}/".encode())
    answer = _request(
        cloud,
        token,
        "POST",
        f"/compute/v1/projects/{project.name}/zones/{zone}/instances",
        data=body,
        headers={"Content-Type": content_type},
    )
    assert answer.status_code == 400, answer.text
    error = _error(answer)
    assert error["code"] == 400 and error["errors"][0]["reason"] in ("invalid", "parseError", "badRequest")


@pytest.mark.parametrize(
    "query",
    [
        "maxResults=-1",
        "maxResults=abc",
        "maxResults=100000",
        "pageToken=garbage",
        "filter=name%20%3D",
        "orderBy=status",
    ],
)
def test_bad_list_parameters_are_400(cloud, token, project, zone, query):
    answer = _request(
        cloud, token, "GET", f"/compute/v1/projects/{project.name}/zones/{zone}/instances?{query}"
    )
    assert answer.status_code == 400, answer.text
    assert _error(answer)["errors"][0]["reason"] == "invalid"


def test_bad_serial_port_parameters_are_400(cloud, token, project, zone):
    for query in ("port=9", "port=x", "start=x"):
        answer = _request(
            cloud,
            token,
            "GET",
            f"/compute/v1/projects/{project.name}/zones/{zone}/instances/nope/serialPort?{query}",
        )
        assert answer.status_code in (400, 404), answer.text


def test_unknown_zone_is_400_and_unknown_operation_404(cloud, token, project, zone):
    answer = _request(cloud, token, "GET", f"/compute/v1/projects/{project.name}/zones/mars-1a/instances")
    assert answer.status_code == 400 and "Unknown zone" in _error(answer)["message"]
    answer = _request(
        cloud, token, "GET", f"/compute/v1/projects/{project.name}/zones/{zone}/operations/nope"
    )
    assert answer.status_code == 404
    answer = _request(cloud, token, "GET", f"/compute/v1/projects/{project.name}/global/operations/nope")
    assert answer.status_code == 404
    answer = _request(
        cloud, token, "GET", f"/compute/v1/projects/{project.name}/regions/{cloud.region}/operations"
    )
    assert answer.status_code == 200 and answer.json()["kind"] == "compute#operationList"


def test_the_ec2_api_still_answers_on_the_same_listener(cloud, ec2):
    assert ec2.describe_regions()["Regions"][0]["RegionName"] == cloud.region
    assert (
        requests.get(cloud.endpoint + "/not-gce", timeout=10).status_code == 400
    )  # EC2's own error document


def test_an_unexpected_error_is_a_bare_500_and_logged(cloud, project, token, caplog):
    from falcon import testing

    from ocs.api_ec2.service import database_url
    from ocs.api_gce.app import GceDeps, create_app
    from ocs.api_gce.routes import Route
    from ocs.api_gce.service import settings_from_conf
    from ocs.crypto import load_secret_box
    from ocs.db import engine as db_engine

    def boom(ctx, path, query, body):
        raise RuntimeError("secret internals /var/lib/ocs")

    conf = cloud.conf
    engine = db_engine.make_engine(database_url(conf))
    try:
        deps = GceDeps(
            settings=settings_from_conf(conf),
            sessions=db_engine.session_factory(engine),
            secret_box=load_secret_box(
                conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir
            ),
            routes=[Route("GET", "projects/{project}/boom", boom, "compute.projects.get")],
        )
        client = testing.TestClient(create_app(deps))
        answer = client.simulate_get(
            f"/compute/v1/projects/{project.name}/boom", headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        engine.dispose()
    assert answer.status_code == 500
    error = answer.json["error"]
    assert error["code"] == 500 and error["errors"][0]["reason"] == "backendError"
    assert "secret internals" not in answer.text and "Traceback" not in answer.text
    assert any(
        "secret internals" in (r.exc_text or "") or r.exc_info
        for r in caplog.records
        if r.levelname == "ERROR"
    )
