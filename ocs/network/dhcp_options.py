"""DHCP options sets as EC2 documents them (CreateDhcpOptions), checked and normalised.

A set is a list of ``(key, values)``. The keys and their rules:

* ``domain-name``: one or more names (EC2 passes several on as one space-separated
  search list); each a DNS name of at most 255 characters.
* ``domain-name-servers``: ``AmazonProvidedDNS`` or up to four IPv4 addresses.
* ``ntp-servers``: up to eight IPv4 addresses.
* ``netbios-name-servers``: up to four IPv4 addresses.
* ``netbios-node-type``: one of 1, 2, 4, 8.
* ``ipv6-address-preferred-lease-time``: seconds, 140 to 2147483647.

No configuration at all is ``MissingParameter``; an unknown key, a key without
values, a key given twice or a value breaking its key's rule is
``InvalidParameterValue``.

:func:`region_default` is the set EC2 makes for every account (``ec2.internal`` in
us-east-1, ``<region>.compute.internal`` elsewhere) and :func:`dnsmasq_options`
what a DHCP server hands out for a set.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

from ocs import errors

AMAZON_DNS = "AmazonProvidedDNS"
KEYS = (
    "domain-name",
    "domain-name-servers",
    "ntp-servers",
    "netbios-name-servers",
    "netbios-node-type",
    "ipv6-address-preferred-lease-time",
)
_MAX_ADDRESSES = {"domain-name-servers": 4, "ntp-servers": 8, "netbios-name-servers": 4}
_DOMAIN = re.compile(r"^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?$")

Configuration = tuple[str, tuple[str, ...]]


def _bad(value: object, reason: str, name: str = "value") -> errors.OcsError:
    return errors.InvalidParameterValue(value=value, name=name, reason=reason)


def _addresses(key: str, values: Sequence[str]) -> None:
    if key == "domain-name-servers" and AMAZON_DNS in values:
        if len(values) > 1:
            raise _bad(
                ", ".join(values),
                f"{AMAZON_DNS} cannot be combined with other servers.",
                "domain-name-servers",
            )
        return
    if len(values) > _MAX_ADDRESSES[key]:
        raise _bad(", ".join(values), f"At most {_MAX_ADDRESSES[key]} addresses are allowed.", key)
    for value in values:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise _bad(value, "It is not a valid IPv4 address.", key) from None


def _check(key: str, values: Sequence[str]) -> None:
    if key == "domain-name":
        for value in values:
            for name in value.split():
                if not _DOMAIN.match(name):
                    raise _bad(value, "It is not a valid domain name.", key)
    elif key in _MAX_ADDRESSES:
        _addresses(key, values)
    elif key == "netbios-node-type":
        if len(values) != 1 or values[0] not in ("1", "2", "4", "8"):
            raise _bad(", ".join(values), "Valid values: 1, 2, 4, 8.", key)
    else:  # ipv6-address-preferred-lease-time
        if len(values) != 1 or not values[0].isdigit() or not 140 <= int(values[0]) <= 2147483647:
            raise _bad(", ".join(values), "It must be a number of seconds from 140 to 2147483647.", key)


def validate(configurations: Iterable[Mapping[str, object]]) -> list[Configuration]:
    """``[{"Key": k, "Values": [...]}, ...]`` (botocore's NewDhcpConfiguration) checked."""
    out: list[Configuration] = []
    seen: set[str] = set()
    for item in configurations:
        key = str(item.get("Key") or "")
        raw = item.get("Values") or []
        values = tuple(str(v) for v in raw) if isinstance(raw, list | tuple) else (str(raw),)
        if key not in KEYS:
            raise _bad(key, "Unknown DHCP option.", "name")
        if not values or any(not v for v in values):
            raise _bad(key, "The option needs at least one value.", "name")
        if key in seen:
            raise _bad(key, "The option is given more than once.", "name")
        _check(key, values)
        seen.add(key)
        out.append((key, values))
    if not out:
        raise errors.MissingParameter(name="dhcpConfiguration")
    return out


def region_default(region: str) -> list[Configuration]:
    """The set EC2 makes for every account of ``region``."""
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return [("domain-name", (domain,)), ("domain-name-servers", (AMAZON_DNS,))]


def dnsmasq_options(configurations: Sequence[Configuration], amazon_dns: str | None) -> list[str]:
    """``dhcp-option=`` values for a set: DNS servers (AmazonProvidedDNS is ``amazon_dns``,
    the VPC's resolver, or left out when there is none), domain name and search list,
    NTP servers, NetBIOS name servers and node type."""
    given = dict(configurations)
    out: list[str] = []
    servers = [
        s
        for s in (amazon_dns if s == AMAZON_DNS else s for s in given.get("domain-name-servers", ()))
        if s is not None
    ]
    if servers:
        out.append("option:dns-server," + ",".join(servers))
    names = " ".join(given.get("domain-name", ())).split()
    if names:
        out.append(f"option:domain-name,{names[0]}")
        out.append("option:domain-search," + ",".join(names))
    if given.get("ntp-servers"):
        out.append("option:ntp-server," + ",".join(given["ntp-servers"]))
    if given.get("netbios-name-servers"):
        out.append("option:netbios-ns," + ",".join(given["netbios-name-servers"]))
    if given.get("netbios-node-type"):
        out.append(f"option:netbios-nodetype,{given['netbios-node-type'][0]}")
    return out
