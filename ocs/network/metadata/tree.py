"""The metadata tree of one instance: paths in, listings and values out. A pure module.

The layout, the names and the text formats are EC2's, as its user guide and
answers of the real service quoted in public issues show them:

- ``/`` lists the metadata versions; every version (and ``latest``) has
  ``dynamic``, ``meta-data`` and, when the instance has user data, ``user-data``
  (listed without a trailing ``/``, as EC2 does).
- A directory lists its entries one per line, subdirectories with a trailing
  ``/``; there is no newline after the last line. A directory answers with or
  without a trailing ``/`` in the request, and so does a leaf.
- ``public-keys/`` lists ``0=keyname``; ``public-keys/0/`` lists ``openssh-key``.
- A dated version shows only the categories EC2 had released by that date (the
  "version when category was released" column of EC2's categories table);
  ``latest`` shows them all.
- ``dynamic/instance-identity/document`` is EC2's JSON document (format version
  ``2017-09-30``), pretty-printed the way EC2 prints it (two-space indent,
  ``"key" : value``), its fields in EC2's order.

Only what OCS can really answer is in the tree: no ``iam/``, ``events/``,
``spot/`` or identity signatures (``pkcs7``, ``signature``) yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from ocs.network.metadata.model import InstanceMetadata, InterfaceMetadata

LATEST = "latest"
VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "2022-07-09",
    "2022-09-24",
    "2024-04-11",
    LATEST,
)
"""What ``GET /`` answers on EC2 today (observed on a real instance, flaws.cloud write-ups)."""

IDENTITY_DOCUMENT_VERSION = "2017-09-30"


@dataclass(frozen=True)
class Directory:
    """A directory of the tree; ``labels`` replaces the default listing when EC2 shows another."""

    children: Mapping[str, Node]
    labels: tuple[str, ...] | None = None

    def listing(self) -> str:
        if self.labels is not None:
            return "\n".join(self.labels)
        return "\n".join(
            f"{name}/" if isinstance(node, Directory) else name for name, node in self.children.items()
        )


Node: TypeAlias = "Directory | str | bytes"


def _released(version: str, since: str) -> bool:
    """Whether a category released in ``since`` exists in ``version``.

    Versions compare as text: ``1.0`` sorts before every date and ``latest`` after.
    """
    return version == LATEST or since <= version


class _Builder:
    """Collects a directory's entries, leaving out those newer than the version asked for."""

    def __init__(self, version: str):
        self.version = version
        self.children: dict[str, Node] = {}

    def add(self, since: str, name: str, node: Node | None) -> None:
        if node is None or not _released(self.version, since):
            return
        if isinstance(node, Directory) and not node.children:
            return
        self.children[name] = node

    def directory(self, labels: tuple[str, ...] | None = None) -> Directory:
        return Directory(dict(self.children), labels)


def _lines(values: Iterable[str]) -> str | None:
    text = "\n".join(values)
    return text or None


def version_root(meta: InstanceMetadata, version: str) -> Directory:
    """``/<version>/``: dynamic, meta-data and user-data (when the instance has some)."""
    b = _Builder(version)
    b.add("2009-04-04", "dynamic", _dynamic(meta, version))
    b.add("1.0", "meta-data", _meta_data(meta, version))
    b.add("1.0", "user-data", meta.user_data or None)
    return b.directory(labels=tuple(b.children))


def _dynamic(meta: InstanceMetadata, version: str) -> Directory:
    identity = _Builder(version)
    identity.add("2009-04-04", "document", identity_document(meta))
    b = _Builder(version)
    b.add("2009-04-04", "instance-identity", identity.directory())
    return b.directory()


def _meta_data(meta: InstanceMetadata, version: str) -> Directory:
    b = _Builder(version)
    b.add("1.0", "ami-id", meta.ami_id)
    b.add("1.0", "ami-launch-index", str(meta.launch_index))
    b.add("1.0", "ami-manifest-path", "(unknown)")
    b.add("2007-12-15", "block-device-mapping", Directory(dict(meta.block_device_mapping)))
    b.add("1.0", "hostname", meta.hostname)
    b.add("2008-09-01", "instance-action", "none")
    b.add("1.0", "instance-id", meta.instance_id)
    b.add("2019-10-01", "instance-life-cycle", "on-demand")
    b.add("2007-08-29", "instance-type", meta.instance_type)
    b.add("2008-02-01", "kernel-id", meta.kernel_id)
    b.add("2007-01-19", "local-hostname", meta.local_hostname)
    b.add("1.0", "local-ipv4", meta.local_ipv4)
    b.add("2011-01-01", "mac", meta.mac or None)
    b.add("2011-01-01", "network", _network(meta, version))
    b.add("2008-02-01", "placement", _placement(meta, version))
    b.add("2007-01-19", "public-hostname", meta.public_hostname)
    b.add("2007-01-19", "public-ipv4", meta.public_ipv4)
    b.add("1.0", "public-keys", _public_keys(meta))
    b.add("2007-10-10", "ramdisk-id", meta.ramdisk_id)
    b.add("1.0", "reservation-id", meta.reservation_id or None)
    b.add("1.0", "security-groups", _lines(meta.security_groups))
    if meta.metadata_options.tags_enabled:
        b.add("2021-03-23", "tags", _tags(meta))
    return b.directory()


def _placement(meta: InstanceMetadata, version: str) -> Directory:
    b = _Builder(version)
    b.add("2008-02-01", "availability-zone", meta.availability_zone)
    b.add("2020-08-24", "region", meta.region)
    return b.directory()


def _public_keys(meta: InstanceMetadata) -> Directory:
    children: dict[str, Node] = {}
    labels = []
    for index, (name, key) in enumerate(meta.public_keys.items()):
        children[str(index)] = Directory({"openssh-key": key})
        labels.append(f"{index}={name}")
    return Directory(children, tuple(labels))


def _tags(meta: InstanceMetadata) -> Directory:
    # EC2 refuses tag keys with '/' while tags are on in IMDS; such a key has no path here.
    instance = Directory({k: v for k, v in meta.tags.items() if k and "/" not in k})
    return Directory({"instance": instance}) if instance.children else Directory({})


def _network(meta: InstanceMetadata, version: str) -> Directory:
    macs = {
        nic.mac: _interface(nic, version) for nic in sorted(meta.interfaces, key=lambda n: n.device_number)
    }
    return Directory({"interfaces": Directory({"macs": Directory(macs)})}) if macs else Directory({})


def _interface(nic: InterfaceMetadata, version: str) -> Directory:
    b = _Builder(version)
    b.add("2011-01-01", "device-number", str(nic.device_number))
    b.add("2011-01-01", "interface-id", nic.interface_id)
    b.add("2011-01-01", "ipv4-associations", Directory(dict(nic.ipv4_associations)))
    b.add("2016-06-30", "ipv6s", _lines(nic.ipv6s))
    b.add("2007-01-19", "local-hostname", nic.local_hostname)
    b.add("2011-01-01", "local-ipv4s", _lines(nic.local_ipv4s))
    b.add("2011-01-01", "mac", nic.mac)
    b.add("2020-11-01", "network-card-index", str(nic.network_card_index))
    b.add("2011-01-01", "owner-id", nic.owner_id)
    b.add("2011-01-01", "public-hostname", nic.public_hostname)
    b.add("2011-01-01", "public-ipv4s", _lines(nic.public_ipv4s))
    b.add("2011-01-01", "security-group-ids", _lines(nic.security_group_ids))
    b.add("2011-01-01", "security-groups", _lines(nic.security_groups))
    b.add("2011-01-01", "subnet-id", nic.subnet_id)
    b.add("2011-01-01", "subnet-ipv4-cidr-block", nic.subnet_ipv4_cidr_block)
    b.add("2016-06-30", "subnet-ipv6-cidr-blocks", _lines(nic.subnet_ipv6_cidr_blocks))
    b.add("2011-01-01", "vpc-id", nic.vpc_id)
    b.add(
        "2011-01-01", "vpc-ipv4-cidr-block", nic.vpc_ipv4_cidr_blocks[0] if nic.vpc_ipv4_cidr_blocks else None
    )
    b.add("2016-06-30", "vpc-ipv4-cidr-blocks", _lines(nic.vpc_ipv4_cidr_blocks))
    b.add("2016-06-30", "vpc-ipv6-cidr-blocks", _lines(nic.vpc_ipv6_cidr_blocks))
    return b.directory()


def identity_document(meta: InstanceMetadata) -> str:
    """``dynamic/instance-identity/document``: EC2's fields, order and layout."""
    fields: list[tuple[str, object]] = [
        ("accountId", meta.account_id),
        ("architecture", meta.architecture),
        ("availabilityZone", meta.availability_zone),
        ("billingProducts", None),
        ("devpayProductCodes", None),
        ("marketplaceProductCodes", None),
        ("imageId", meta.ami_id),
        ("instanceId", meta.instance_id),
        ("instanceType", meta.instance_type),
        ("kernelId", meta.kernel_id),
        ("pendingTime", meta.pending_time.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("privateIp", meta.local_ipv4),
        ("ramdiskId", meta.ramdisk_id),
        ("region", meta.region),
        ("version", IDENTITY_DOCUMENT_VERSION),
    ]
    body = ",\n".join(f"  {json.dumps(k)} : {json.dumps(v)}" for k, v in fields)
    return "{\n" + body + "\n}"


def resolve(meta: InstanceMetadata, path: str) -> Node | None:
    """The node at ``path`` (``/latest/meta-data/instance-id``...), or ``None`` (404).

    ``/`` is the list of versions; a version EC2 does not have is not found.
    """
    parts = path.strip("/").split("/")
    if parts == [""]:
        return Directory(dict.fromkeys(VERSIONS, ""), labels=VERSIONS)
    version, rest = parts[0], parts[1:]
    if version not in VERSIONS:
        return None
    node: Node = version_root(meta, version)
    for part in rest:
        if not isinstance(node, Directory) or part not in node.children:
            return None
        node = node.children[part]
    return node
