"""Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* CreateKeyPair makes a 2048-bit RSA key (default) or an ED25519 key and returns
  the unencrypted private key once: RSA as PKCS#1 PEM, ED25519 in the OpenSSH
  format, either as a PuTTY key with ``KeyFormat=ppk`` (see :mod:`ocs.keys`).
* Fingerprints follow the EC2 user guide ("Verify the fingerprint of your key
  pair"): SHA-1 of the PKCS#8 private key for RSA keys EC2 made, MD5 of the public
  key for imported RSA keys, base64 SHA-256 for ED25519 keys.
* A name already used by the account: ``InvalidKeyPair.Duplicate`` "The keypair
  'X' already exists." [EC2 error codes; moto]. Names are 1 to 255 ASCII
  characters without leading or trailing spaces [EC2 user guide].
* Material ImportKeyPair cannot read (or a DSA/ECDSA key): ``InvalidKey.Format``
  "Key is not in valid OpenSSH public key format" [aws/aws-sdk-js#314,
  StreisandEffect/streisand#1171 for ECDSA].
* DescribeKeyPairs with a name or ID the account does not have:
  ``InvalidKeyPair.NotFound`` "The key pair 'X' does not exist" / "The key pair ID
  'key-...' does not exist" [hashicorp/vault-guides#260; floci-io/floci#1932].
  Names and IDs given together must both match (they are ANDed, as EC2 ANDs
  every other criterion). Not paginated. ``PublicKey`` only with
  ``IncludePublicKey``.
* DeleteKeyPair succeeds (``Return`` true) even when no such key pair exists
  [boto/boto3#865, cloud-barista/cb-spider#37]; ``KeyPairId`` is returned when one
  was deleted. With both a name and an ID, the ID decides. With neither:
  ``MissingParameter``. A malformed ID: ``InvalidKeyPair.Malformed``.
"""

from __future__ import annotations

from typing import Any

from ocs import errors, ids, keys
from ocs.api_ec2 import filters, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.db import keypairs as repo
from ocs.db import tags as db_tags
from ocs.db.models.keypairs import KeyPair

RESOURCE_TYPE = repo.RESOURCE_TYPE

resources.register("key_pair", RESOURCE_TYPE, repo.key_pair_exists)


def _store(ctx: RequestContext, name: str, tags: list[dict[str, str]], **fields: Any) -> KeyPair:
    row = repo.create_key_pair(ctx.session, ctx.account_id, name, created_at=ctx.now(), **fields)
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(row.id, RESOURCE_TYPE)], tags)
    return row


def _with_tags(out: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    if tags:
        out["Tags"] = tags
    return out


def create_key_pair(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = keys.validate_key_name(params.get("KeyName"))
    key_type = params.get("KeyType") or keys.RSA
    key_format = params.get("KeyFormat") or keys.PEM
    tags = tagging.tag_specifications_for(params, RESOURCE_TYPE, action="CreateKeyPair")
    if repo.find_key_pair(ctx.session, ctx.account_id, name) is not None:
        raise repo.duplicate(name)
    made = keys.generate(key_type, key_format, comment=name)
    row = _store(
        ctx,
        name,
        tags,
        key_type=made.key_type,
        fingerprint=made.fingerprint,
        public_key=made.public_key,
        imported=False,
    )
    out = {
        "KeyName": row.name,
        "KeyFingerprint": row.fingerprint,
        "KeyMaterial": made.key_material,
        "KeyPairId": row.id,
    }
    return _with_tags(out, tags)


def import_key_pair(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = keys.validate_key_name(params.get("KeyName"))
    material = params.get("PublicKeyMaterial")
    if not material:  # absent or empty: EC2 says it is missing
        raise errors.MissingParameter(name="PublicKeyMaterial")
    tags = tagging.tag_specifications_for(params, RESOURCE_TYPE, action="ImportKeyPair")
    key = keys.parse_public_key(material)
    row = _store(
        ctx,
        name,
        tags,
        key_type=key.key_type,
        fingerprint=key.fingerprint,
        public_key=key.openssh(name),
        imported=True,
    )
    out = {"KeyFingerprint": row.fingerprint, "KeyName": row.name, "KeyPairId": row.id}
    return _with_tags(out, tags)


def _item(row: KeyPair, tags: list[dict[str, str]], include_public_key: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "KeyPairId": row.id,
        "KeyFingerprint": row.fingerprint,
        "KeyName": row.name,
        "KeyType": row.key_type,
        "Tags": tags,
        "CreateTime": row.created_at,
    }
    if include_public_key:
        item["PublicKey"] = row.public_key
    return item


def _select(rows: list[KeyPair], names: list[str], key_pair_ids: list[str]) -> list[KeyPair]:
    """The rows named by ``names`` and ``key_pair_ids``; NotFound for any missing one."""
    for key_pair_id in key_pair_ids:
        ids.validate("key_pair", key_pair_id)
    by_name = {row.name: row for row in rows}
    by_id = {row.id: row for row in rows}
    for name in names:
        if name not in by_name:
            raise repo.name_not_found(name)
    for key_pair_id in key_pair_ids:
        if key_pair_id not in by_id:
            raise ids.not_found("key_pair", key_pair_id)
    if names:
        rows = [row for row in rows if row.name in set(names)]
    if key_pair_ids:
        rows = [row for row in rows if row.id in set(key_pair_ids)]
    return rows


def describe_key_pairs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = repo.list_key_pairs(ctx.session, ctx.account_id)
    rows = _select(rows, list(params.get("KeyNames") or []), list(params.get("KeyPairIds") or []))
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [row.id for row in rows])
    include = bool(params.get("IncludePublicKey"))
    items = [_item(row, tags[row.id], include) for row in rows]
    return {"KeyPairs": filters.filter_action("DescribeKeyPairs", items, params.get("Filters"))}


def delete_key_pair(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    key_pair_id = params.get("KeyPairId")
    name = params.get("KeyName")
    if key_pair_id:
        ids.validate("key_pair", key_pair_id)
        row = repo.find_key_pair_by_id(ctx.session, ctx.account_id, key_pair_id)
    elif name:
        row = repo.find_key_pair(ctx.session, ctx.account_id, name)
    else:
        raise errors.MissingParameter(name="KeyName or KeyPairId")
    if row is None:
        return {"Return": True}
    deleted = row.id
    repo.delete_key_pairs(ctx.session, [row])
    return {"Return": True, "KeyPairId": deleted}


ACTIONS = {
    "CreateKeyPair": create_key_pair,
    "ImportKeyPair": import_key_pair,
    "DescribeKeyPairs": describe_key_pairs,
    "DeleteKeyPair": delete_key_pair,
}
