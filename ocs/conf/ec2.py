"""Options of the [ec2] group: what the EC2 API presents to clients."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "ec2"

OPTS = [
    cfg.StrOpt(
        "region",
        default="us-east-1",
        help="Name of the region this cloud serves. Signed requests must name it "
        "in their credential scope. A region-named default lets tools that assume "
        "an AWS region run unchanged.",
    ),
    cfg.ListOpt(
        "availability_zones",
        default=["us-east-1a", "us-east-1b", "us-east-1c"],
        help="Availability zones of the region, as DescribeAvailabilityZones shows "
        "them. Every account's default VPC gets one default subnet per zone.",
    ),
    cfg.BoolOpt(
        "strict_credential_scope",
        default=False,
        help="Whether a SigV4-signed request's credential scope must name exactly "
        "this region and the service 'ec2'. When false (the default), any service "
        "name and region are accepted and the request runs in this region: clients "
        "such as boto 2 derive both from the endpoint's host name (against "
        "127.0.0.1 they sign the scope '.../0/127/aws4_request'). Either way the "
        "signature covers the scope the client names, so the key is proven.",
    ),
    cfg.StrOpt(
        "default_vpc_cidr",
        default="172.31.0.0/16",
        help="CIDR block of every account's default VPC (as on EC2).",
    ),
    cfg.IntOpt(
        "terminated_instance_ttl",
        default=3600,
        min=0,
        help="Seconds a terminated instance stays visible to Describe calls before "
        "it is purged (EC2 shows them for about an hour).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
