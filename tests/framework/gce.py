"""Google's own Compute Engine clients, pointed at a test cloud and authenticated with a
service-account key of one of its accounts."""

from __future__ import annotations

from typing import Any

from ocs.api_gce import keyfile
from ocs.db import accounts as db_accounts
from ocs.db import gce as db_gce


def service_account_info(cloud: Any, account_name: str) -> dict[str, Any]:
    """A new service-account key file (as a dict) of ``account_name``, as ``ocs-manage account
    gce-key`` writes it."""
    private_pem, public_pem = keyfile.generate()
    with cloud.session() as s:
        account = db_accounts.get_account(s, account_name)
        key_id = db_gce.new_key_id()
        email = keyfile.client_email(account.name, key_id)
        db_gce.create_service_key(s, account.id, email, public_pem, key_id)
    return keyfile.key_file(
        project=account_name, key_id=key_id, private_key_pem=private_pem, email=email, endpoint=cloud.endpoint
    )


def credentials(info: dict[str, Any]) -> Any:
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/compute"]
    )


def discovery_client(cloud: Any, info: dict[str, Any]) -> Any:
    """google-api-python-client's compute v1 (its bundled discovery document) on this cloud."""
    from googleapiclient.discovery import build

    return build(
        "compute",
        "v1",
        static_discovery=True,
        client_options={"api_endpoint": cloud.endpoint + "/compute/v1/"},
        credentials=credentials(info),
        cache_discovery=False,
    )


def compute_client(
    cloud: Any, info: dict[str, Any], kind: str = "InstancesClient", *, scoped: bool = False
) -> Any:
    """A google-cloud-compute client whose operations are polled on this cloud too.

    google-cloud-compute makes the operations clients of ``.result()`` without the
    caller's client_options (they would go to Google): inject ours.
    """
    from google.cloud import compute_v1
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_info(info)
    if scoped:
        creds = creds.with_scopes(["https://www.googleapis.com/auth/compute"])
    opts = {"api_endpoint": cloud.endpoint}
    client = getattr(compute_v1, kind)(client_options=opts, credentials=creds)
    services = getattr(client._transport, "_extended_operations_services", None)
    if services is not None:
        services["zone_operations"] = compute_v1.ZoneOperationsClient(client_options=opts, credentials=creds)
        services["region_operations"] = compute_v1.RegionOperationsClient(
            client_options=opts, credentials=creds
        )
        services["global_operations"] = compute_v1.GlobalOperationsClient(
            client_options=opts, credentials=creds
        )
    return client
