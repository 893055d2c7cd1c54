"""Options of the [network] group: the network service's data plane on each host, and the
addresses the cloud hands out."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "network"

OPTS = [
    cfg.StrOpt(
        "driver",
        choices=[
            ("noop", "bookkeeping only (the fake hypervisor, demos)"),
            ("linux", "bridges, VXLAN, dnsmasq and nftables inside network namespaces"),
        ],
        help="Data-plane driver of ocs-network on this host. Unset: noop when "
        "[compute] driver is fake, linux otherwise (real guests need real packets).",
    ),
    cfg.ListOpt(
        "hosts",
        default=[],
        help="Compute hosts whose data plane this ocs-network serves (it listens on "
        "network.<host> for each). Unset: [DEFAULT] host alone, as in production, where "
        "one ocs-network runs on every compute host. Several hosts make sense only with "
        "the noop driver, when one process stands in for the network service of many "
        "simulated hosts (ocs-manage devcluster); the linux driver refuses them.",
    ),
    cfg.StrOpt(
        "host_namespace",
        help="Network namespace standing for this host (bridges, VXLAN devices, taps and "
        "the security-group ruleset live there). Unset: the namespace ocs-network runs "
        "in, which is what a hypervisor on the host needs. Tests set it.",
    ),
    cfg.StrOpt(
        "state_dir",
        default="/var/lib/ocs/network",
        help="Directory of the linux driver's dnsmasq files and ruleset digests.",
    ),
    cfg.StrOpt(
        "tunnel_ip",
        help="This host's VXLAN underlay address. Unset: no VXLAN (a single host). "
        "Recorded in the database, where the other hosts find it.",
    ),
    cfg.DictOpt(
        "tunnel_ips",
        default={},
        help="Underlay addresses of other hosts, as host:address pairs; a VPC's VXLAN "
        "floods to the hosts carrying it. Optional: every network service records its "
        "tunnel_ip in the database with its heartbeat and the others read it from there; "
        "an entry here overrides what the database says for that host.",
    ),
    cfg.PortOpt("vxlan_port", default=4789, help="UDP port of VXLAN between hosts."),
    cfg.IntOpt("mtu", default=1500, min=576, help="MTU of the underlay network."),
    cfg.IntOpt("dhcp_lease_time", default=3600, min=120, help="Seconds of a DHCP lease."),
    cfg.PortOpt(
        "metadata_port",
        default=8775,
        help="Port of the metadata listener inside each subnet's namespace; "
        "169.254.169.254:80 is redirected to it.",
    ),
    cfg.StrOpt(
        "metadata_token_secret",
        secret=True,
        default="ocs-metadata-token-secret",
        help="Secret (16+ bytes) signing IMDSv2 tokens; the same on every host.",
    ),
    cfg.IntOpt(
        "sync_interval",
        default=30,
        min=1,
        help="Seconds between full convergences of the host's data plane.",
    ),
    cfg.ListOpt(
        "public_address_pool",
        default=["198.51.100.0/24"],
        help="IPv4 CIDR blocks whose addresses AllocateAddress hands out as elastic IP "
        "addresses (the network and broadcast address of each block are left out). "
        "The default is TEST-NET-2 (RFC 5737), which is never routed on the internet: "
        "set it to the public block this cloud's NAT really owns.",
    ),
    cfg.StrOpt(
        "public_gateway",
        default="",
        help="The public network's router as address/prefixlen (for example "
        "198.51.100.1/24). Set, every subnet whose route table sends traffic to an "
        "internet gateway gets an uplink on the public bridge: elastic IPs and "
        "auto-assigned public addresses are answered there and translated to their "
        "instance's private address (and back), routed via this router. Empty: public "
        "addresses are recorded but nothing carries their packets. The address is never "
        "handed out from public_address_pool.",
    ),
    cfg.StrOpt(
        "public_bridge",
        default="ocs-public",
        help="Bridge of the public network on this host (made if missing, never removed).",
    ),
    cfg.StrOpt(
        "public_interface",
        default="",
        help="Network interface on the public network to put on public_bridge (for "
        "example eth1). Empty: none (one machine, or the operator bridges it).",
    ),
    cfg.BoolOpt(
        "public_gateway_on_host",
        default=False,
        help="This host holds public_gateway's address on public_bridge itself and "
        "forwards for it: on one machine, the host reaches instances' public addresses "
        "and is their router.",
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
