"""Client mistakes get EC2's error document and a 4xx, never a 5xx."""

from __future__ import annotations

import urllib.request
from xml.etree import ElementTree

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_post(cloud, body: str, content_type: str = "application/x-www-form-urlencoded; charset=utf-8"):
    """POST ``body`` signed with the admin key, the way a hand-written EC2 client would."""
    req = AWSRequest(
        method="POST", url=cloud.endpoint + "/", data=body.encode(), headers={"Content-Type": content_type}
    )
    creds = Credentials(cloud.admin.access_key_id, cloud.admin.secret_access_key)
    SigV4Auth(creds, "ec2", cloud.region).add_auth(req)
    prepared = req.prepare()
    http = urllib.request.Request(
        prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(http, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def parse_error(payload: bytes) -> tuple[str, str, str]:
    root = ElementTree.fromstring(payload)
    assert root.tag == "Response"
    err = root.find("./Errors/Error")
    return err.findtext("Code"), err.findtext("Message"), root.findtext("RequestID")


def test_unknown_action_is_invalid_action(cloud):
    status, payload = signed_post(cloud, "Action=FlyToTheMoon&Version=2016-11-15")
    assert status == 400
    code, message, request_id = parse_error(payload)
    assert code == "InvalidAction"
    assert "FlyToTheMoon" in message
    assert len(request_id) == 36


def test_missing_action(cloud):
    status, payload = signed_post(cloud, "Version=2016-11-15")
    assert status == 400
    assert parse_error(payload)[0] == "MissingAction"


def test_unknown_parameter(cloud):
    status, payload = signed_post(cloud, "Action=DescribeRegions&Version=2016-11-15&Bogus=1")
    assert status == 400
    code, message, _ = parse_error(payload)
    assert code == "UnknownParameter"
    assert "Bogus" in message


def test_bad_boolean_is_invalid_parameter_value(cloud):
    status, payload = signed_post(cloud, "Action=DescribeRegions&Version=2016-11-15&AllRegions=maybe")
    assert status == 400
    assert parse_error(payload)[0] == "InvalidParameterValue"


def test_success_response_is_ec2_xml(cloud):
    status, payload = signed_post(cloud, "Action=DescribeRegions&Version=2016-11-15")
    assert status == 200
    root = ElementTree.fromstring(payload)
    ns = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
    assert root.tag == ns + "DescribeRegionsResponse"
    assert len(root.findtext(ns + "requestId")) == 36
    assert root.find(f"{ns}regionInfo/{ns}item/{ns}regionName").text == cloud.region


def test_other_paths_get_an_error_document(cloud):
    req = urllib.request.Request(cloud.endpoint + "/no/such/path", method="GET")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as err:
        assert 400 <= err.code < 500
        assert parse_error(err.read())[0]


def test_botocore_parses_our_errors(cloud):
    session = botocore.session.get_session()
    client = session.create_client(
        "ec2",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        aws_access_key_id=cloud.admin.access_key_id,
        aws_secret_access_key=cloud.admin.secret_access_key,
    )
    try:
        client.describe_regions(Filters=[{"Name": "bogus", "Values": ["x"]}])
        raise AssertionError("expected an error")
    except client.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterValue"
        assert exc.response["ResponseMetadata"]["RequestId"]


def test_presigned_get_url_works(cloud, ec2):
    url = ec2.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60, HttpMethod="GET")
    with urllib.request.urlopen(url, timeout=10) as resp:
        payload = resp.read()
    ns = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
    assert (
        ElementTree.fromstring(payload).find(f"{ns}regionInfo/{ns}item/{ns}regionName").text == cloud.region
    )


def test_tampered_presigned_url_is_refused(ec2):
    url = ec2.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60, HttpMethod="GET")
    try:
        urllib.request.urlopen(url.replace("Action=DescribeRegions", "Action=DescribeVpcs"), timeout=10)
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as err:
        assert err.code == 403
        assert parse_error(err.read())[0] == "SignatureDoesNotMatch"
