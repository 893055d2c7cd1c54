"""Options of the [network] group: the addresses the cloud hands out."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "network"

OPTS = [
    cfg.ListOpt(
        "public_address_pool",
        default=["198.51.100.0/24"],
        help="IPv4 CIDR blocks whose addresses AllocateAddress hands out as elastic IP "
        "addresses (the network and broadcast address of each block are left out). "
        "The default is TEST-NET-2 (RFC 5737), which is never routed on the internet: "
        "set it to the public block this cloud's NAT really owns.",
    ),
    cfg.IntOpt(
        "elastic_ips_per_account",
        default=5,
        min=0,
        help="Elastic IP addresses one account may hold at once; AllocateAddress "
        "answers AddressLimitExceeded past it (EC2's default limit is 5 per region).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
