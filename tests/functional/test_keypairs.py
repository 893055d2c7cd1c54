"""Key pairs through boto3 and aws-cli, as the EC2 API reference and user guide describe them."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

KEY_ID = re.compile(r"^key-[0-9a-f]{17}$")
OPENSSL = shutil.which("openssl")
SSH_KEYGEN = shutil.which("ssh-keygen")


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def openssh_line(public_key: object, comment: str = "") -> bytes:
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line + (b" " + comment.encode() if comment else b"")


@pytest.fixture(scope="module")
def other(cloud):
    return cloud.client(cloud.create_account("keypairs-other"))


@pytest.fixture
def name(request):
    """A key name unique to the test."""
    return "kp-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60]


# --- CreateKeyPair -------------------------------------------------------------------------


def test_create_rsa_by_default(ec2, name, tmp_path):
    made = ec2.create_key_pair(KeyName=name)
    assert made["KeyName"] == name
    assert KEY_ID.match(made["KeyPairId"])
    assert made["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert re.fullmatch(r"([0-9a-f]{2}:){19}[0-9a-f]{2}", made["KeyFingerprint"])
    private = serialization.load_pem_private_key(made["KeyMaterial"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert made["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())
    if OPENSSL:  # the user guide's own check
        pem = tmp_path / "k.pem"
        pem.write_text(made["KeyMaterial"])
        der_cli = subprocess.run(
            [OPENSSL, "pkcs8", "-in", str(pem), "-inform", "PEM", "-outform", "DER", "-topk8", "-nocrypt"],
            capture_output=True,
            check=True,
        ).stdout
        out = subprocess.run([OPENSSL, "sha1", "-c"], input=der_cli, capture_output=True, check=True).stdout
        assert out.decode().strip().split("= ")[1] == made["KeyFingerprint"]
    described = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    assert described["KeyType"] == "rsa"
    assert described["KeyFingerprint"] == made["KeyFingerprint"]
    assert described["KeyPairId"] == made["KeyPairId"]
    expected = openssh_line(private.public_key()).decode()
    assert described["PublicKey"].split()[:2] == expected.split()[:2]


def test_create_ed25519(ec2, name):
    made = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    assert made["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = serialization.load_ssh_private_key(made["KeyMaterial"].encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    blob = base64.b64decode(openssh_line(private.public_key()).split()[1])
    assert made["KeyFingerprint"] == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    assert made["KeyFingerprint"].endswith("=")  # EC2 keeps the base64 padding
    described = ec2.describe_key_pairs(KeyPairIds=[made["KeyPairId"]], IncludePublicKey=True)["KeyPairs"][0]
    assert described["KeyType"] == "ed25519"
    assert described["PublicKey"].split()[1] == base64.b64encode(blob).decode()


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_create_ppk(ec2, name, key_type):
    made = ec2.create_key_pair(KeyName=name, KeyType=key_type, KeyFormat="ppk")
    algorithm = "ssh-rsa" if key_type == "rsa" else "ssh-ed25519"
    assert made["KeyMaterial"].startswith(f"PuTTY-User-Key-File-2: {algorithm}\nEncryption: none\n")
    assert "Private-MAC: " in made["KeyMaterial"]


def test_create_time_and_no_public_key_by_default(ec2, name):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    described = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]
    assert "PublicKey" not in described
    assert before <= described["CreateTime"] <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    assert described["Tags"] == []


def test_create_with_tags(ec2, name):
    made = ec2.create_key_pair(
        KeyName=name,
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "Name", "Value": "mine"}]}],
    )
    assert made["Tags"] == [{"Key": "Name", "Value": "mine"}]
    described = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]
    assert described["Tags"] == [{"Key": "Name", "Value": "mine"}]
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [made["KeyPairId"]]}])["Tags"]
    assert tags == [
        {"Key": "Name", "Value": "mine", "ResourceId": made["KeyPairId"], "ResourceType": "key-pair"}
    ]


def test_tag_specification_for_another_type_is_refused(ec2, name):
    with pytest.raises(ClientError) as exc:
        ec2.create_key_pair(
            KeyName=name,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
        )
    assert error_code(exc) == "InvalidParameterValue"
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"]


def test_create_tags_and_delete_tags_on_a_key_pair(ec2, name):
    key_id = ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyPairId"]
    ec2.create_tags(Resources=[key_id], Tags=[{"Key": "team", "Value": "blue"}])
    assert ec2.describe_key_pairs(KeyPairIds=[key_id])["KeyPairs"][0]["Tags"] == [
        {"Key": "team", "Value": "blue"}
    ]
    ec2.delete_tags(Resources=[key_id], Tags=[{"Key": "team"}])
    assert ec2.describe_key_pairs(KeyPairIds=[key_id])["KeyPairs"][0]["Tags"] == []


def test_duplicate_name(ec2, name):
    ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    for call in (
        lambda: ec2.create_key_pair(KeyName=name),
        lambda: ec2.import_key_pair(
            KeyName=name, PublicKeyMaterial=openssh_line(ed25519.Ed25519PrivateKey.generate().public_key())
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "InvalidKeyPair.Duplicate"
        assert exc.value.response["Error"]["Message"] == f"The keypair '{name}' already exists."
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_names_are_case_sensitive(ec2, name):
    ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    ec2.create_key_pair(KeyName=name.upper(), KeyType="ed25519")
    names = {k["KeyName"] for k in ec2.describe_key_pairs(KeyNames=[name, name.upper()])["KeyPairs"]}
    assert names == {name, name.upper()}


@pytest.mark.parametrize("bad", ["x" * 256, " leading", "trailing ", "caf\u00e9"])
def test_invalid_names(ec2, bad):
    with pytest.raises(ClientError) as exc:
        ec2.create_key_pair(KeyName=bad)
    assert error_code(exc) == "InvalidParameterValue"


def test_longest_name(ec2):
    name = "n" * 255
    assert ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyName"] == name
    ec2.delete_key_pair(KeyName=name)


def test_invalid_key_type_and_format(ec2, name):
    for kwargs in ({"KeyType": "dsa"}, {"KeyFormat": "der"}):
        with pytest.raises(ClientError) as exc:
            ec2.create_key_pair(KeyName=name, **kwargs)
        assert error_code(exc) == "InvalidParameterValue"


def test_dry_run(ec2, name):
    with pytest.raises(ClientError) as exc:
        ec2.create_key_pair(KeyName=name, DryRun=True)
    assert error_code(exc) == "DryRunOperation"
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"]


# --- ImportKeyPair -------------------------------------------------------------------------


def test_import_rsa_fingerprint_is_md5_of_public_key(ec2, name):
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=openssh_line(public, "me@laptop"))
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert imported["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
    assert KEY_ID.match(imported["KeyPairId"]) and imported["KeyName"] == name
    assert "KeyMaterial" not in imported
    described = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    assert described["KeyType"] == "rsa"
    assert described["PublicKey"] == openssh_line(public, "me@laptop").decode()


def test_import_ed25519(ec2, name):
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = openssh_line(public)
    imported = ec2.import_key_pair(
        KeyName=name,
        PublicKeyMaterial=line + b"\n",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    blob = base64.b64decode(line.split()[1])
    assert imported["KeyFingerprint"] == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    assert imported["Tags"] == [{"Key": "k", "Value": "v"}]
    described = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    assert described["KeyType"] == "ed25519"
    assert described["PublicKey"] == f"{line.decode()} {name}"


@pytest.mark.skipif(SSH_KEYGEN is None or OPENSSL is None, reason="needs ssh-keygen and openssl")
def test_import_key_made_by_ssh_keygen_matches_user_guide_commands(ec2, name, tmp_path):
    path = tmp_path / "id_rsa"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "rsa", "-b", "4096", "-N", "", "-f", str(path)], check=True)
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=path.with_suffix(".pub").read_bytes())
    pem = subprocess.run(
        [SSH_KEYGEN, "-e", "-f", str(path), "-m", "PEM"], capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        [OPENSSL, "rsa", "-RSAPublicKey_in", "-outform", "DER"], input=pem, capture_output=True, check=True
    ).stdout
    md5 = subprocess.run([OPENSSL, "md5", "-c"], input=der, capture_output=True, check=True).stdout
    assert imported["KeyFingerprint"] == md5.decode().strip().split("= ")[1]


def test_import_rfc4716_and_pem(ec2, name):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    blob = base64.b64encode(base64.b64decode(openssh_line(public).split()[1])).decode()
    rfc4716 = '---- BEGIN SSH2 PUBLIC KEY ----\nComment: "me"\n'
    rfc4716 += (
        "\n".join(blob[i : i + 70] for i in range(0, len(blob), 70)) + "\n---- END SSH2 PUBLIC KEY ----\n"
    )
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    first = ec2.import_key_pair(KeyName=name + "-ssh2", PublicKeyMaterial=rfc4716.encode())
    second = ec2.import_key_pair(KeyName=name + "-pem", PublicKeyMaterial=pem)
    assert first["KeyFingerprint"] == second["KeyFingerprint"]


@pytest.mark.parametrize(
    "material",
    [
        b"not a key",
        base64.b64encode(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKzvfE+qS09w+okgrO0gY7jryF0lSCxdEO/O0UaUhuZe"),
        openssh_line(ec.generate_private_key(ec.SECP256R1()).public_key()),
        b"ssh-dss AAAAB3NzaC1kc3MAAACBAP",
    ],
    ids=["garbage", "base64-twice", "ecdsa", "dsa"],
)
def test_import_bad_material(ec2, name, material):
    with pytest.raises(ClientError) as exc:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=material)
    assert error_code(exc) == "InvalidKey.Format"
    assert exc.value.response["Error"]["Message"] == "Key is not in valid OpenSSH public key format"


def test_import_empty_material_is_missing(ec2, name):
    with pytest.raises(ClientError) as exc:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=b"")
    assert error_code(exc) == "MissingParameter"


# --- DescribeKeyPairs ----------------------------------------------------------------------


def test_describe_unknown_name_and_id(ec2, name):
    ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    with pytest.raises(ClientError) as exc:
        ec2.describe_key_pairs(KeyNames=[name, "no-such-key"])
    assert error_code(exc) == "InvalidKeyPair.NotFound"
    assert exc.value.response["Error"]["Message"] == "The key pair 'no-such-key' does not exist"
    with pytest.raises(ClientError) as exc:
        ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    assert error_code(exc) == "InvalidKeyPair.NotFound"
    assert "key-0123456789abcdef0" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        ec2.describe_key_pairs(KeyPairIds=["not-an-id"])
    assert error_code(exc) == "InvalidKeyPair.Malformed"


def test_describe_filters(ec2, name):
    a = ec2.create_key_pair(
        KeyName=name + "-a",
        KeyType="ed25519",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "env", "Value": "prod"}]}],
    )
    b = ec2.create_key_pair(KeyName=name + "-b")

    def names(*filters):
        found = ec2.describe_key_pairs(Filters=list(filters))["KeyPairs"]
        return sorted(k["KeyName"] for k in found if k["KeyName"].startswith(name))

    assert names({"Name": "key-name", "Values": [name + "-*"]}) == [name + "-a", name + "-b"]
    assert names({"Name": "key-pair-id", "Values": [b["KeyPairId"]]}) == [name + "-b"]
    assert names({"Name": "fingerprint", "Values": [a["KeyFingerprint"]]}) == [name + "-a"]
    assert names({"Name": "key-type", "Values": ["rsa"]}, {"Name": "key-name", "Values": [name + "*"]}) == [
        name + "-b"
    ]
    assert names({"Name": "tag:env", "Values": ["prod"]}) == [name + "-a"]
    assert names({"Name": "tag-key", "Values": ["env"]}) == [name + "-a"]
    assert names({"Name": "tag-value", "Values": ["prod"]}) == [name + "-a"]
    assert names({"Name": "key-name", "Values": [name + "-a"]}, {"Name": "key-type", "Values": ["rsa"]}) == []
    with pytest.raises(ClientError) as exc:
        ec2.describe_key_pairs(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_code(exc) == "InvalidParameterValue"


def test_names_and_ids_together(ec2, name):
    a = ec2.create_key_pair(KeyName=name + "-a", KeyType="ed25519")
    ec2.create_key_pair(KeyName=name + "-b", KeyType="ed25519")
    found = ec2.describe_key_pairs(KeyNames=[name + "-a"], KeyPairIds=[a["KeyPairId"]])["KeyPairs"]
    assert [k["KeyName"] for k in found] == [name + "-a"]


# --- DeleteKeyPair -------------------------------------------------------------------------


def test_delete_by_name_and_by_id(ec2, name):
    a = ec2.create_key_pair(KeyName=name + "-a", KeyType="ed25519")
    b = ec2.create_key_pair(KeyName=name + "-b", KeyType="ed25519")
    ec2.create_tags(Resources=[a["KeyPairId"]], Tags=[{"Key": "x", "Value": "y"}])
    gone = ec2.delete_key_pair(KeyName=name + "-a")
    assert gone["Return"] is True and gone["KeyPairId"] == a["KeyPairId"]
    gone = ec2.delete_key_pair(KeyPairId=b["KeyPairId"])
    assert gone["Return"] is True and gone["KeyPairId"] == b["KeyPairId"]
    with pytest.raises(ClientError) as exc:
        ec2.describe_key_pairs(KeyNames=[name + "-a"])
    assert error_code(exc) == "InvalidKeyPair.NotFound"
    assert not ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [a["KeyPairId"]]}])["Tags"]
    # The name is free again.
    assert ec2.create_key_pair(KeyName=name + "-a", KeyType="ed25519")["KeyPairId"] != a["KeyPairId"]


def test_delete_of_nothing_succeeds_as_on_ec2(ec2):
    gone = ec2.delete_key_pair(KeyName="never-existed")
    assert gone["Return"] is True and "KeyPairId" not in gone
    gone = ec2.delete_key_pair(KeyPairId="key-0123456789abcdef0")
    assert gone["Return"] is True and "KeyPairId" not in gone


def test_delete_errors(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.delete_key_pair()
    assert error_code(exc) == "MissingParameter"
    with pytest.raises(ClientError) as exc:
        ec2.delete_key_pair(KeyPairId="nonsense")
    assert error_code(exc) == "InvalidKeyPair.Malformed"


# --- accounts --------------------------------------------------------------------------------


def test_accounts_are_isolated(ec2, other, name):
    mine = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    assert name not in {k["KeyName"] for k in other.describe_key_pairs()["KeyPairs"]}
    for call in (
        lambda: other.describe_key_pairs(KeyNames=[name]),
        lambda: other.describe_key_pairs(KeyPairIds=[mine["KeyPairId"]]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as exc:
        other.create_tags(Resources=[mine["KeyPairId"]], Tags=[{"Key": "a", "Value": "b"}])
    assert error_code(exc) == "InvalidKeyPair.NotFound"
    # Deleting another account's key pair deletes nothing (and says nothing).
    assert "KeyPairId" not in other.delete_key_pair(KeyPairId=mine["KeyPairId"])
    assert "KeyPairId" not in other.delete_key_pair(KeyName=name)
    assert ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]["KeyPairId"] == mine["KeyPairId"]
    # The other account may use the same name.
    theirs = other.create_key_pair(KeyName=name, KeyType="ed25519")
    assert theirs["KeyPairId"] != mine["KeyPairId"]
    assert other.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]["KeyPairId"] == theirs["KeyPairId"]


# --- aws-cli ---------------------------------------------------------------------------------


def test_aws_cli_create_key_pair_key_material_text(cloud, name, tmp_path):
    result = cloud.aws(
        "ec2", "create-key-pair", "--key-name", name, "--query", "KeyMaterial", "--output", "text"
    )
    assert result.returncode == 0, result.stderr
    pem = tmp_path / f"{name}.pem"
    pem.write_text(result.stdout)
    pem.chmod(0o400)
    private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    if SSH_KEYGEN:
        derived = subprocess.run(
            [SSH_KEYGEN, "-y", "-f", str(pem)], capture_output=True, text=True, check=True
        )
        assert derived.stdout.startswith("ssh-rsa ")
    described = json.loads(cloud.aws("ec2", "describe-key-pairs", "--key-names", name).stdout)
    assert described["KeyPairs"][0]["KeyName"] == name


def test_aws_cli_import_key_pair_fileb(cloud, name, tmp_path):
    pub = tmp_path / "id.pub"
    pub.write_bytes(openssh_line(ed25519.Ed25519PrivateKey.generate().public_key(), "me@host") + b"\n")
    result = cloud.aws(
        "ec2", "import-key-pair", "--key-name", name, "--public-key-material", f"fileb://{pub}"
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["KeyName"] == name and out["KeyFingerprint"].endswith("=")
    gone = cloud.aws("ec2", "delete-key-pair", "--key-name", name)
    assert gone.returncode == 0, gone.stderr
