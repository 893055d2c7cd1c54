"""What the metadata service knows about a caller: plain, immutable values.

:class:`CallerKey` says *where a request comes from*; :class:`InstanceMetadata`
is everything the service may tell that instance about itself. The service gets
the second from the first through an injected ``lookup`` and never asks anything
else, so it cannot answer with data the lookup did not hand it for that caller.

Why the key has two parts
-------------------------
A source address alone does not identify an instance: two VPCs may both use
``10.0.0.0/16`` and each have an instance at ``10.0.0.5``. A request to
169.254.169.254 arrives through one network, though, and whatever listens there
(a listener inside the subnet's network namespace, or a proxy that knows its
subnet) knows which. So the key is ``(network_id, source_ip)`` where
``network_id`` is the id of the subnet the request came in through. Subnet ids
are unique across the cloud and a private address is unique within a subnet,
so two callers with the same address in different VPCs (or different subnets)
always have different keys. ``source_ip`` is kept in canonical form (an
IPv4-mapped IPv6 address such as ``::ffff:10.0.0.5`` becomes ``10.0.0.5``), so
the same caller never has two spellings.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

HTTP_TOKENS = ("optional", "required")
HTTP_ENDPOINT = ("enabled", "disabled")
INSTANCE_METADATA_TAGS = ("disabled", "enabled")
MIN_HOP_LIMIT = 1
MAX_HOP_LIMIT = 64


def canonical_ip(text: str) -> str:
    """The canonical spelling of an IPv4 or IPv6 address; raises ``ValueError``."""
    address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@dataclass(frozen=True)
class CallerKey:
    """Where a metadata request comes from: the subnet it arrived through and its source address."""

    network_id: str
    source_ip: str

    def __post_init__(self) -> None:
        if not self.network_id:
            raise ValueError("a caller key needs the id of the network the request came through")
        object.__setattr__(self, "source_ip", canonical_ip(self.source_ip))


@dataclass(frozen=True)
class MetadataOptions:
    """EC2's ``InstanceMetadataOptions`` for one instance (same names, same defaults)."""

    http_tokens: str = "optional"
    http_put_response_hop_limit: int = 1
    http_endpoint: str = "enabled"
    instance_metadata_tags: str = "disabled"

    def __post_init__(self) -> None:
        if self.http_tokens not in HTTP_TOKENS:
            raise ValueError(f"http_tokens must be one of {HTTP_TOKENS}, not {self.http_tokens!r}")
        if self.http_endpoint not in HTTP_ENDPOINT:
            raise ValueError(f"http_endpoint must be one of {HTTP_ENDPOINT}, not {self.http_endpoint!r}")
        if self.instance_metadata_tags not in INSTANCE_METADATA_TAGS:
            raise ValueError(
                f"instance_metadata_tags must be one of {INSTANCE_METADATA_TAGS},"
                f" not {self.instance_metadata_tags!r}"
            )
        hop = self.http_put_response_hop_limit
        if isinstance(hop, bool) or not isinstance(hop, int) or not MIN_HOP_LIMIT <= hop <= MAX_HOP_LIMIT:
            raise ValueError(f"http_put_response_hop_limit must be 1..64, not {hop!r}")

    @property
    def tokens_required(self) -> bool:
        return self.http_tokens == "required"

    @property
    def endpoint_enabled(self) -> bool:
        return self.http_endpoint == "enabled"

    @property
    def tags_enabled(self) -> bool:
        return self.instance_metadata_tags == "enabled"


@dataclass(frozen=True)
class InterfaceMetadata:
    """One attached network interface, as ``meta-data/network/interfaces/macs/<mac>/`` shows it.

    ``local_ipv4s`` and ``vpc_ipv4_cidr_blocks`` list the primary entry first;
    ``ipv4_associations`` maps each public address to the private one it is NATed to.
    """

    mac: str
    device_number: int
    interface_id: str
    subnet_id: str
    subnet_ipv4_cidr_block: str
    vpc_id: str
    vpc_ipv4_cidr_blocks: tuple[str, ...]
    local_ipv4s: tuple[str, ...]
    owner_id: str
    local_hostname: str
    security_group_ids: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    ipv4_associations: Mapping[str, str] = field(default_factory=dict)
    public_hostname: str | None = None
    ipv6s: tuple[str, ...] = ()
    subnet_ipv6_cidr_blocks: tuple[str, ...] = ()
    vpc_ipv6_cidr_blocks: tuple[str, ...] = ()
    network_card_index: int = 0

    @property
    def public_ipv4s(self) -> tuple[str, ...]:
        return tuple(self.ipv4_associations)


@dataclass(frozen=True)
class InstanceMetadata:
    """Everything the metadata service may tell one instance about itself.

    ``public_keys`` maps key-pair names to OpenSSH public keys, in index order
    (``public-keys/0`` is the first); the key text is served exactly as given.
    ``user_data`` is the decoded user data (``None``: the instance has none, and
    ``user-data`` answers 404). ``pending_time`` is the launch time (UTC).
    ``hostname`` defaults to ``local_hostname`` and ``mac`` to the MAC of the
    interface with device number 0. ``tags`` are served only when
    ``metadata_options.instance_metadata_tags`` is ``enabled``.
    """

    instance_id: str
    ami_id: str
    instance_type: str
    account_id: str
    region: str
    availability_zone: str
    local_ipv4: str
    local_hostname: str
    pending_time: dt.datetime
    hostname: str = ""
    mac: str = ""
    public_ipv4: str | None = None
    public_hostname: str | None = None
    interfaces: tuple[InterfaceMetadata, ...] = ()
    security_groups: tuple[str, ...] = ()
    public_keys: Mapping[str, str] = field(default_factory=dict)
    user_data: bytes | None = None
    architecture: str = "x86_64"
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    reservation_id: str = ""
    launch_index: int = 0
    block_device_mapping: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata_options: MetadataOptions = field(default_factory=MetadataOptions)

    def __post_init__(self) -> None:
        if not self.hostname:
            object.__setattr__(self, "hostname", self.local_hostname)
        if not self.mac:
            primary = [i for i in self.interfaces if i.device_number == 0]
            object.__setattr__(self, "mac", primary[0].mac if primary else "")
