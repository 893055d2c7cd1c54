"""Images through boto3 and aws-cli: visibility, errors, filters, attributes, registration."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ocs.conf.images import store_path
from ocs.db import images as db_images
from ocs.images import importer
from ocs.images.store import ImageStore

ID = re.compile(r"^(ami|aki|ari)-[0-9a-f]{17}$")


def error_code(exc_info: pytest.ExceptionInfo[ClientError]) -> str:
    return exc_info.value.response["Error"]["Code"]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Images:
    """Puts images into the test cloud the way ``ocs-manage image import`` does."""

    def __init__(self, cloud, tmp: Path):
        self.cloud = cloud
        self.tmp = tmp
        self.store = ImageStore(store_path(cloud.conf))

    def put(self, account, name: str | None = None, *, data: bytes = b"disk bytes", **fields) -> str:
        path = self.tmp / secrets.token_hex(4)
        path.write_bytes(data)
        request = importer.ImportRequest(
            path=path, account_id=account.account_id, name=name or unique("img"), **fields
        )
        with self.cloud.session() as s:
            return importer.import_image(s, self.store, request).id


@pytest.fixture
def images(cloud, tmp_path):
    return Images(cloud, tmp_path)


@pytest.fixture
def alice(cloud):
    return cloud.create_account(unique("alice"))


@pytest.fixture
def bob(cloud):
    return cloud.create_account(unique("bob"))


def ids_of(response) -> set[str]:
    return {i["ImageId"] for i in response["Images"]}


# --- the default image -------------------------------------------------------------


def test_default_image_is_public_and_launchable(cloud, ec2, bob):
    mine = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    assert len(mine) == 1
    image = mine[0]
    assert ID.match(image["ImageId"]) and image["ImageId"].startswith("ami-")
    assert image["OwnerId"] == cloud.admin.account_id
    assert image["Public"] is True
    assert image["State"] == "available"
    assert image["ImageType"] == "machine"
    assert image["Architecture"] == "x86_64"
    assert image["RootDeviceType"] == "ebs"
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["VirtualizationType"] == "hvm"
    assert image["Hypervisor"] == "xen"
    assert image["PlatformDetails"] == "Linux/UNIX"
    assert image["UsageOperation"] == "RunInstances"
    assert image["ImageLocation"] == f"{cloud.admin.account_id}/ocs-demo"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", image["CreationDate"])
    assert image["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "VolumeSize": 1, "VolumeType": "gp2", "Encrypted": False},
        }
    ]
    others = cloud.client(bob).describe_images()["Images"]
    assert image["ImageId"] in {i["ImageId"] for i in others}
    with cloud.session() as s:
        assert db_images.get_launchable_image(s, bob.account_id, image["ImageId"]).name == "ocs-demo"


def test_default_image_is_registered_once(cloud):
    with cloud.session() as s:
        assert (
            importer.ensure_default_image(s, ImageStore(store_path(cloud.conf)), cloud.admin.account_id)
            is None
        )
        assert len([i for i in db_images.list_images(s) if i.name == "ocs-demo"]) == 1


# --- visibility --------------------------------------------------------------------


def test_private_image_visibility_matrix(cloud, images, alice, bob):
    a, b = cloud.client(alice), cloud.client(bob)
    image_id = images.put(alice)
    assert image_id in ids_of(a.describe_images())
    assert image_id in ids_of(a.describe_images(Owners=["self"]))
    assert image_id not in ids_of(b.describe_images())
    assert image_id not in ids_of(b.describe_images(Owners=[alice.account_id]))
    # An existing image the caller may not see is left out, as EC2 does.
    assert b.describe_images(ImageIds=[image_id])["Images"] == []
    with pytest.raises(ClientError) as exc:
        b.describe_image_attribute(ImageId=image_id, Attribute="description")
    assert error_code(exc) == "InvalidAMIID.NotFound"

    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": bob.account_id}]})
    shared = b.describe_images(ImageIds=[image_id])["Images"]
    assert [i["ImageId"] for i in shared] == [image_id]
    assert shared[0]["Public"] is False and shared[0]["OwnerId"] == alice.account_id
    assert image_id in ids_of(b.describe_images())
    assert image_id in ids_of(b.describe_images(ExecutableUsers=["self"]))
    assert image_id in ids_of(b.describe_images(Owners=[alice.account_id]))
    assert image_id not in ids_of(b.describe_images(Owners=["self"]))
    with cloud.session() as s:
        assert db_images.get_launchable_image(s, bob.account_id, image_id).id == image_id

    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": bob.account_id}]})
    assert b.describe_images(ImageIds=[image_id])["Images"] == []
    assert image_id not in ids_of(b.describe_images(ExecutableUsers=["self"]))


def test_public_image_is_visible_to_everyone(cloud, images, alice, bob):
    a, b = cloud.client(alice), cloud.client(bob)
    image_id = images.put(alice)
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    assert b.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is True
    assert image_id in ids_of(b.describe_images(ExecutableUsers=["all"]))
    assert image_id not in ids_of(b.describe_images(ExecutableUsers=["self"]))
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"Group": "all"}]})
    assert image_id not in ids_of(b.describe_images())


def test_executable_users_means_explicit_permissions(cloud, images, alice, bob):
    a = cloud.client(alice)
    own = images.put(alice)
    shared = images.put(alice)
    a.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": bob.account_id}]})
    assert own not in ids_of(a.describe_images(ExecutableUsers=["self"]))
    assert ids_of(a.describe_images(ExecutableUsers=[bob.account_id])) == {shared}
    assert ids_of(a.describe_images(Owners=["self"], ExecutableUsers=[bob.account_id, "all"])) == {shared}


def test_owner_aliases_match_no_ocs_image(ec2):
    assert ec2.describe_images(Owners=["amazon", "aws-marketplace"])["Images"] == []


@pytest.mark.parametrize(
    "params", [{"Owners": ["nobody"]}, {"Owners": ["12345"]}, {"ExecutableUsers": ["someone"]}]
)
def test_bad_owner_or_user_is_malformed(ec2, params):
    with pytest.raises(ClientError) as exc:
        ec2.describe_images(**params)
    assert error_code(exc) == "InvalidUserID.Malformed"


# --- image ids ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["ami-xyz", "i-0123456789abcdef0", "ami-0123456789ABCDEF0", "image"])
def test_malformed_image_id(ec2, bad):
    with pytest.raises(ClientError) as exc:
        ec2.describe_images(ImageIds=[bad])
    assert error_code(exc) == "InvalidAMIID.Malformed"


def test_unknown_image_id_is_not_found(ec2):
    missing = "ami-0123456789abcdef0"
    with pytest.raises(ClientError) as exc:
        ec2.describe_images(ImageIds=[missing])
    assert error_code(exc) == "InvalidAMIID.NotFound"
    assert exc.value.response["Error"]["Message"] == f"The image id '[{missing}]' does not exist"


def test_kernel_and_ramdisk_ids_describe_together(cloud, images, alice):
    a = cloud.client(alice)
    kernel = images.put(alice, image_type="kernel", data=b"vmlinuz")
    ramdisk = images.put(alice, image_type="ramdisk", data=b"initrd")
    assert kernel.startswith("aki-") and ramdisk.startswith("ari-")
    found = a.describe_images(ImageIds=[kernel, ramdisk])["Images"]
    assert {i["ImageId"]: i["ImageType"] for i in found} == {kernel: "kernel", ramdisk: "ramdisk"}
    assert all(i["RootDeviceType"] == "instance-store" for i in found)
    assert all("BlockDeviceMappings" not in i or i["BlockDeviceMappings"] == [] for i in found)


# --- filters and pagination -------------------------------------------------------


def test_filters(cloud, images, alice):
    a = cloud.client(alice)
    web = images.put(alice, unique("web-server"), architecture="arm64")
    db = images.put(alice, unique("database"))
    kernel = images.put(alice, unique("kern"), image_type="kernel", data=b"k")
    a.create_tags(Resources=[db], Tags=[{"Key": "role", "Value": "db"}])

    def found(*flt):
        return ids_of(a.describe_images(Owners=["self"], Filters=list(flt)))

    assert found({"Name": "name", "Values": ["web-*"]}) == {web}
    assert found({"Name": "name", "Values": ["data?ase-*", "web-server-*"]}) == {web, db}
    assert found({"Name": "architecture", "Values": ["arm64"]}) == {web}
    assert found({"Name": "image-type", "Values": ["kernel"]}) == {kernel}
    assert found({"Name": "is-public", "Values": ["false"]}) == {web, db, kernel}
    assert found({"Name": "owner-id", "Values": [alice.account_id]}) == {web, db, kernel}
    assert found({"Name": "state", "Values": ["available"]}, {"Name": "image-id", "Values": [db]}) == {db}
    assert found({"Name": "tag:role", "Values": ["db"]}) == {db}
    assert found({"Name": "root-device-type", "Values": ["instance-store"]}) == {kernel}
    assert found({"Name": "block-device-mapping.volume-size", "Values": ["1"]}) == {web, db}
    assert found({"Name": "virtualization-type", "Values": ["hvm"]}) == {web, db}
    assert found({"Name": "hypervisor", "Values": ["xen"]}) == {web, db, kernel}
    assert found({"Name": "owner-alias", "Values": ["amazon"]}) == set()
    with pytest.raises(ClientError) as exc:
        found({"Name": "no-such-filter", "Values": ["x"]})
    assert error_code(exc) == "InvalidParameterValue"


def test_paginator_returns_every_image_exactly_once(cloud, images, alice):
    a = cloud.client(alice)
    made = {images.put(alice, data=secrets.token_bytes(8)) for _ in range(7)}
    seen: list[str] = []
    pages = a.get_paginator("describe_images").paginate(Owners=["self"], PaginationConfig={"PageSize": 2})
    for page in pages:
        assert len(page["Images"]) <= 2
        seen += [i["ImageId"] for i in page["Images"]]
    assert sorted(seen) == sorted(made)
    first = a.describe_images(Owners=["self"], MaxResults=3)
    assert len(first["Images"]) == 3 and first["NextToken"]


def test_max_results_out_of_range(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.describe_images(MaxResults=0)
    assert error_code(exc) == "InvalidParameterValue"


def test_include_deprecated_and_disabled_are_accepted(ec2):
    assert ec2.describe_images(Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True)["Images"]


# --- DeregisterImage ----------------------------------------------------------------


def test_deregister_image(cloud, images, alice, bob):
    a = cloud.client(alice)
    image_id = images.put(alice)
    a.create_tags(Resources=[image_id], Tags=[{"Key": "k", "Value": "v"}])
    with pytest.raises(ClientError) as exc:
        cloud.client(bob).deregister_image(ImageId=image_id)
    assert error_code(exc) == "InvalidAMIID.NotFound"
    assert a.deregister_image(ImageId=image_id)["Return"] is True
    assert image_id not in ids_of(a.describe_images())
    assert a.describe_images(ImageIds=[image_id])["Images"] == []
    assert a.describe_tags(Filters=[{"Name": "resource-id", "Values": [image_id]}])["Tags"] == []
    for call in (
        lambda: a.deregister_image(ImageId=image_id),
        lambda: a.describe_image_attribute(ImageId=image_id, Attribute="description"),
        lambda: a.modify_image_attribute(ImageId=image_id, Description={"Value": "x"}),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "InvalidAMIID.Unavailable"
    with cloud.session() as s:
        with pytest.raises(Exception) as err:
            db_images.get_launchable_image(s, alice.account_id, image_id)
        assert getattr(err.value, "code", "") == "InvalidAMIID.Unavailable"


def test_deregister_someone_elses_public_image_is_auth_failure(cloud, ec2, bob):
    demo = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["ocs-demo"]}])
    image_id = demo["Images"][0]["ImageId"]
    b = cloud.client(bob)
    for call in (
        lambda: b.deregister_image(ImageId=image_id),
        lambda: b.describe_image_attribute(ImageId=image_id, Attribute="launchPermission"),
        lambda: b.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}),
        lambda: b.reset_image_attribute(ImageId=image_id, Attribute="launchPermission"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "AuthFailure"
        assert exc.value.response["Error"]["Message"] == f"Not authorized for image:{image_id}"


@pytest.mark.parametrize("call", ["deregister_image", "describe_image_attribute"])
def test_unknown_and_malformed_for_single_image_actions(ec2, call):
    extra = {"Attribute": "description"} if call == "describe_image_attribute" else {}
    with pytest.raises(ClientError) as exc:
        getattr(ec2, call)(ImageId="ami-00000000000000000", **extra)
    assert error_code(exc) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as exc:
        getattr(ec2, call)(ImageId="ami-nope", **extra)
    assert error_code(exc) == "InvalidAMIID.Malformed"


def test_dry_run(cloud, images, alice):
    a = cloud.client(alice)
    image_id = images.put(alice)
    with pytest.raises(ClientError) as exc:
        a.deregister_image(ImageId=image_id, DryRun=True)
    assert error_code(exc) == "DryRunOperation"
    assert a.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"


# --- attributes ---------------------------------------------------------------------


def test_attribute_round_trips(cloud, images, alice, bob):
    a = cloud.client(alice)
    kernel = images.put(alice, image_type="kernel", data=b"vmlinuz")
    ramdisk = images.put(alice, image_type="ramdisk", data=b"initrd")
    image_id = images.put(alice, kernel_id=kernel, ramdisk_id=ramdisk, description="first")

    def attr(name):
        out = a.describe_image_attribute(ImageId=image_id, Attribute=name)
        assert out["ImageId"] == image_id
        return out

    assert attr("description")["Description"] == {"Value": "first"}
    a.modify_image_attribute(ImageId=image_id, Description={"Value": "second"})
    assert attr("description")["Description"] == {"Value": "second"}
    a.modify_image_attribute(ImageId=image_id, Attribute="description", Value="third")
    assert attr("description")["Description"] == {"Value": "third"}
    assert attr("kernel")["KernelId"] == {"Value": kernel}
    assert attr("ramdisk")["RamdiskId"] == {"Value": ramdisk}
    assert attr("productCodes")["ProductCodes"] == []
    assert attr("sriovNetSupport").get("SriovNetSupport", {}) == {}
    assert attr("deregistrationProtection")["DeregistrationProtection"] == {"Value": "disabled"}
    assert attr("launchPermission")["LaunchPermissions"] == []

    a.modify_image_attribute(
        ImageId=image_id,
        Attribute="launchPermission",
        OperationType="add",
        UserIds=[bob.account_id],
        UserGroups=["all"],
    )
    perms = attr("launchPermission")["LaunchPermissions"]
    assert {"Group": "all"} in perms and {"UserId": bob.account_id} in perms
    a.modify_image_attribute(
        ImageId=image_id, Attribute="launchPermission", OperationType="remove", UserGroups=["all"]
    )
    assert attr("launchPermission")["LaunchPermissions"] == [{"UserId": bob.account_id}]
    a.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert attr("launchPermission")["LaunchPermissions"] == []

    a.modify_image_attribute(ImageId=image_id, ImdsSupport={"Value": "v2.0"})
    assert attr("imdsSupport")["ImdsSupport"] == {"Value": "v2.0"}
    assert a.describe_images(ImageIds=[image_id])["Images"][0]["ImdsSupport"] == "v2.0"


def test_an_image_without_kernel_or_ramdisk_names_none(cloud, images, alice):
    """DescribeImageAttribute kernel/ramdisk of an image booted without them leaves the
    member out (no empty <kernel/>: clients read an empty one as a kernel of no id)."""
    a = cloud.client(alice)
    image_id = images.put(alice, description="no kernel")
    for attribute, member in (("kernel", "KernelId"), ("ramdisk", "RamdiskId")):
        out = a.describe_image_attribute(ImageId=image_id, Attribute=attribute)
        assert out["ImageId"] == image_id and member not in out


def test_block_device_mapping_attribute_is_auth_failure(cloud, images, alice):
    image_id = images.put(alice)
    with pytest.raises(ClientError) as exc:
        cloud.client(alice).describe_image_attribute(ImageId=image_id, Attribute="blockDeviceMapping")
    assert error_code(exc) == "AuthFailure"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "InvalidParameterCombination"),
        (
            {"Description": {"Value": "x"}, "LaunchPermission": {"Add": [{"Group": "all"}]}},
            "InvalidParameterCombination",
        ),
        # what EC2 answers the ec2api-tempest-plugin
        ({"Attribute": "kernel", "Value": "aki-0123456789abcdef0"}, "InvalidParameterCombination"),
        ({"Attribute": "unsupported"}, "InvalidParameterCombination"),
        ({"Attribute": "blockDeviceMapping"}, "InvalidParameter"),
        ({"LaunchPermission": {"Add": [{"UserId": "bob"}]}}, "InvalidAMIAttributeItemValue"),
        (
            {"Attribute": "launchPermission", "OperationType": "add", "UserGroups": ["friends"]},
            "InvalidAMIAttributeItemValue",
        ),
        ({"Attribute": "launchPermission", "UserIds": ["123456789012"]}, "InvalidParameterCombination"),
        ({"LaunchPermission": {}}, "InvalidParameterCombination"),
        ({"ImdsSupport": {"Value": "v1.0"}}, "InvalidParameterValue"),
        ({"Attribute": "description"}, "MissingParameter"),
    ],
)
def test_modify_image_attribute_errors(cloud, images, alice, params, code):
    image_id = images.put(alice)
    with pytest.raises(ClientError) as exc:
        cloud.client(alice).modify_image_attribute(ImageId=image_id, **params)
    assert error_code(exc) == code


def test_unknown_attribute_name_is_an_invalid_request(ec2):
    # EC2 answers InvalidRequest (ec2api-tempest-plugin test_check_bad_image_attribute...).
    demo = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    for attribute in ("colour", "unsupported"):
        with pytest.raises(ClientError) as exc:
            ec2.describe_image_attribute(ImageId=demo, Attribute=attribute)
        assert error_code(exc) == "InvalidRequest"


def test_short_hex_image_ids_are_well_formed(ec2):
    for image_id in ("ami-0", "ami-00000000", "ami-bad"):
        with pytest.raises(ClientError) as exc:
            ec2.describe_images(ImageIds=[image_id])
        assert error_code(exc) == "InvalidAMIID.NotFound"


# --- RegisterImage ------------------------------------------------------------------


def test_register_kernel_booted_image(cloud, images, alice):
    a = cloud.client(alice)
    kernel = images.put(alice, image_type="kernel", data=b"vmlinuz", architecture="arm64")
    ramdisk = images.put(alice, image_type="ramdisk", data=b"initrd", architecture="arm64")
    name = unique("kernel booted")
    image_id = a.register_image(
        Name=name,
        KernelId=kernel,
        RamdiskId=ramdisk,
        Description="boots from initramfs",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "kb"}]}],
    )["ImageId"]
    assert image_id.startswith("ami-")
    image = a.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["KernelId"] == kernel and image["RamdiskId"] == ramdisk
    assert image["Name"] == name and image["Description"] == "boots from initramfs"
    assert image["Architecture"] == "arm64"
    assert image["VirtualizationType"] == "paravirtual"
    assert image["RootDeviceType"] == "instance-store"
    assert image["State"] == "available" and image["Public"] is False
    assert image["Tags"] == [{"Key": "Name", "Value": "kb"}]
    with cloud.session() as s:
        launchable = db_images.get_launchable_image(s, alice.account_id, image_id)
        assert launchable.location is None and launchable.kernel_id == kernel


def test_register_from_an_image_location(cloud, ec2, alice):
    a = cloud.client(alice)
    demo = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][
        0
    ]
    image_id = a.register_image(Name=unique("my-copy"), ImageLocation=demo["ImageLocation"])["ImageId"]
    image = a.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["OwnerId"] == alice.account_id
    assert image["RootDeviceType"] == "ebs"
    assert image["BlockDeviceMappings"] == demo["BlockDeviceMappings"]
    with cloud.session() as s:
        mine = db_images.get_launchable_image(s, alice.account_id, image_id)
        original = db_images.get_launchable_image(s, alice.account_id, demo["ImageId"])
        assert mine.location == original.location and mine.checksum == original.checksum


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Name": "x"}, "InvalidAMIName.Malformed"),
        ({"Name": "bad*name"}, "InvalidAMIName.Malformed"),
        ({"Name": "n" * 129}, "InvalidAMIName.Malformed"),
        ({"Name": "no-disk-no-kernel"}, "InvalidParameterCombination"),
        ({"Name": "unknown-kernel", "KernelId": "aki-0123456789abcdef0"}, "InvalidAMIID.NotFound"),
        ({"Name": "wrong-kind", "KernelId": "ari-0123456789abcdef0"}, "InvalidAMIID.Malformed"),
        ({"Name": "bad-location", "ImageLocation": "bucket/manifest.xml"}, "InvalidManifest"),
        (
            {
                "Name": "snap",
                "RootDeviceName": "/dev/sda1",
                "BlockDeviceMappings": [
                    {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}
                ],
            },
            "InvalidSnapshot.NotFound",
        ),
        (
            {
                "Name": "bad-tags",
                "ImageLocation": "x",
                "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
            },
            "InvalidParameterValue",
        ),
    ],
)
def test_register_image_errors(cloud, alice, params, code):
    client = cloud.client(alice, parameter_validation=False)  # boto3 would refuse short names itself
    with pytest.raises(ClientError) as exc:
        client.register_image(**params)
    assert error_code(exc) == code


def test_register_with_someone_elses_private_kernel_is_not_found(cloud, images, alice, bob):
    kernel = images.put(alice, image_type="kernel", data=b"vmlinuz")
    with pytest.raises(ClientError) as exc:
        cloud.client(bob).register_image(Name="borrowed", KernelId=kernel)
    assert error_code(exc) == "InvalidAMIID.NotFound"


def test_duplicate_name(cloud, images, alice):
    a = cloud.client(alice)
    kernel = images.put(alice, image_type="kernel", data=b"vmlinuz")
    taken = images.put(alice, "taken-name")
    with pytest.raises(ClientError) as exc:
        a.register_image(Name="taken-name", KernelId=kernel)
    assert error_code(exc) == "InvalidAMIName.Duplicate"
    assert exc.value.response["Error"]["Message"] == f"AMI name taken-name is already in use by AMI {taken}"
    a.deregister_image(ImageId=taken)
    assert a.register_image(Name="taken-name", KernelId=kernel)["ImageId"].startswith("ami-")


# --- launching (the repository RunInstances uses) ---------------------------------


def test_launchable_image_errors(cloud, images, alice, bob):
    private = images.put(alice)
    kernel = images.put(alice, image_type="kernel", data=b"k")

    def code_for(account, image_id):
        with cloud.session() as s, pytest.raises(Exception) as err:
            db_images.get_launchable_image(s, account.account_id, image_id)
        return err.value.code

    assert code_for(bob, "ami-0123456789abcdef0") == "InvalidAMIID.NotFound"
    assert code_for(bob, private) == "AuthFailure"
    assert code_for(alice, kernel) == "InvalidAMIID.Malformed"
    assert code_for(alice, "ami-xyz") == "InvalidAMIID.Malformed"


# --- tags on shared images ----------------------------------------------------------


def test_tags_on_a_public_image_belong_to_the_tagger(cloud, ec2, bob):
    demo = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["ocs-demo"]}])
    image_id = demo["Images"][0]["ImageId"]
    b = cloud.client(bob)
    b.create_tags(Resources=[image_id], Tags=[{"Key": "mine", "Value": "bob"}])
    assert b.describe_images(ImageIds=[image_id])["Images"][0]["Tags"] == [{"Key": "mine", "Value": "bob"}]
    assert "Tags" not in ec2.describe_images(ImageIds=[image_id])["Images"][0]


# --- aws-cli --------------------------------------------------------------------------


def test_aws_cli_describe_images_owners_self(cloud, images, alice):
    image_id = images.put(alice, unique("cli"))
    result = cloud.aws("ec2", "describe-images", "--owners", "self", account=alice)
    assert result.returncode == 0, result.stderr
    assert [i["ImageId"] for i in json.loads(result.stdout)["Images"]] == [image_id]
    result = cloud.aws("ec2", "describe-images", "--image-ids", "ami-0123456789abcdef0", account=alice)
    assert result.returncode != 0
    assert "InvalidAMIID.NotFound" in result.stderr
