"""Hand-made EC2 Query requests, SigV4-signed, for tests that need to send what boto3 never would."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FORM = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def error(self) -> tuple[str, str, str]:
        """(Code, Message, RequestID) of EC2's error document; AssertionError if it is not one."""
        root = ElementTree.fromstring(self.body)
        assert root.tag == "Response", self.text[:300]
        err = root.find("./Errors/Error")
        assert err is not None, self.text[:300]
        return err.findtext("Code") or "", err.findtext("Message") or "", root.findtext("RequestID") or ""


def signed_post(
    cloud,
    account,
    body: bytes | str | dict,
    content_type: str = FORM,
    timeout: float = 30,
    extra_headers: dict[str, str] | None = None,
) -> Reply:
    """POST ``body`` (form text, raw bytes, or a dict of parameters) to ``cloud``, signed as
    ``account``; ``extra_headers`` are sent too, unsigned."""
    if isinstance(body, dict):
        body = urlencode(body)
    data = body.encode("utf-8") if isinstance(body, str) else body
    account = account or cloud.admin
    req = AWSRequest(
        method="POST", url=cloud.endpoint + "/", data=data, headers={"Content-Type": content_type}
    )
    SigV4Auth(Credentials(account.access_key_id, account.secret_access_key), "ec2", cloud.region).add_auth(
        req
    )
    prepared = req.prepare()
    url = urlsplit(prepared.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        headers = {**dict(prepared.headers), **(extra_headers or {})}
        conn.request("POST", url.path or "/", body=prepared.body, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read())
    finally:
        conn.close()


def call(cloud, account, action: str, **params: str) -> Reply:
    """One action with flat wire parameters (``InstanceId.1=...``)."""
    return signed_post(cloud, account, {"Action": action, "Version": "2016-11-15", **params})
