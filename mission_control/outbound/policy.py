"""Which addresses Mission Control may send requests to: the SSRF guard's policy.

Anyone who may register a job, a mission with an ``http`` step or a webhook channel chooses a URL that a
worker then requests from inside the network. Cloud metadata services hand the host's credentials to
whoever asks from it, so link-local and metadata addresses are refused unless an operator allows them:
169.254.0.0/16 (169.254.169.254 on AWS, GCP, Azure and Oracle), fe80::/10, fd00:ec2::254 (AWS' IPv6
one), fd20:ce::254 (GCP's IPv6 one), 100.100.100.200 (Alibaba), 168.63.129.16 (Azure's WireServer) and
192.0.0.192 (Oracle's older one). So are the IPv6 forms that embed an IPv4 address (IPv4-mapped
``::ffff:0:0/96``, SIIT's IPv4-translated ``::ffff:0:0:0/96``, IPv4-compatible ``::/96`` but for ``::``
and ``::1``, NAT64's ``64:ff9b::/96`` and the local-use NAT64 prefix ``64:ff9b:1::/48``),
since a dual-stack socket or a NAT64 gateway turns them into a connection to that IPv4 address: they
would otherwise be a second spelling of every denied IPv4 address. Loopback and private ranges stay
allowed by default: development, the tests and internal services live there, and an operator who wants
them closed adds them to ``MC_OUTBOUND_DENY``.

An address is judged as every address it stands for: itself, the IPv4 address it embeds, and for the
unspecified address this host's loopback. Each must be allowed, so opening an IPv6 form with
``MC_OUTBOUND_ALLOW`` (``64:ff9b::/96`` on an IPv6-only network behind DNS64, say) never opens the
IPv4 addresses that are denied themselves (``64:ff9b::a9fe:a9fe`` is still 169.254.169.254).

The policy judges *addresses*, never host names: the sender (:mod:`mission_control.outbound.sender`)
asks it about every address a host resolves to and connects only to one it allows, so neither a DNS
name pointing at a metadata address nor a record that changes between check and connect (DNS
rebinding) gets through. This module is pure
(standard library only); configuration parses the networks it adds with
:func:`mission_control.base.networks.parse_networks`, and :func:`policy_from` builds a process's policy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mission_control.base.networks import IPNetwork, parse_networks

if TYPE_CHECKING:
    from mission_control.base.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that embed an IPv4 address in their last 32 bits (RFC 4291 section 2.5.5, RFC 6052).
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# SIIT's IPv4-translated form (RFC 2765): ::ffff:0:a.b.c.d.
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
# RFC 8215's local-use NAT64 prefix: where the IPv4 address sits depends on the prefix length each
# network picks, so the whole range is denied rather than read.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# RFC 4291's IPv4-compatible form is ::/96 without :: (unspecified) and ::1 (loopback).
_NOT_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/127")
IPV4_COMPATIBLE: tuple[ipaddress.IPv6Network, ...] = tuple(
    sorted(ipaddress.IPv6Network("::/96").address_exclude(_NOT_IPV4_COMPATIBLE))
)

# Link-local (v4 and v6; 169.254.169.254 is the metadata service of most clouds), the other clouds'
# metadata addresses, and the IPv6 forms of IPv4 addresses (see the module docstring).
DEFAULT_DENIED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS, IPv6
    ipaddress.ip_network("fd20:ce::254/128"),  # GCP, IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.ip_network("168.63.129.16/32"),  # Azure WireServer
    ipaddress.ip_network("192.0.0.192/32"),  # Oracle Cloud (older instances)
    IPV4_MAPPED,
    IPV4_TRANSLATED,
    NAT64_WELL_KNOWN,
    NAT64_LOCAL_USE,
    *IPV4_COMPATIBLE,
)

# Connecting to the unspecified address reaches this host, so it is judged as loopback would be.
_THIS_HOST: dict[int, IPAddress] = {
    4: ipaddress.IPv4Address("127.0.0.1"),
    6: ipaddress.IPv6Address("::1"),
}


class DestinationRefused(Exception):
    """A request's host resolved only to addresses the outbound policy denies; nothing was connected.

    Deliberately not an ``OSError``: urllib3 and requests would wrap one as a connection error, which
    callers retry, while a refused destination stays refused however often it is tried. The message
    names the host and the addresses, never the URL, whose query string may carry a secret.
    """

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        self.host = host
        self.addresses = tuple(addresses)
        if self.addresses == (host,):
            where = f"{host} is"
        else:
            where = f"{host} resolves to {', '.join(self.addresses)}, which"
            where += " are" if len(self.addresses) > 1 else " is"
        super().__init__(
            f"refused to connect: {where} denied by the outbound policy "
            "(by default link-local and cloud metadata addresses, and IPv6 forms of IPv4 addresses; "
            "see MC_OUTBOUND_DENY, MC_OUTBOUND_ALLOW)"
        )


@dataclass(frozen=True)
class OutboundPolicy:
    """Denied networks, and allowed ones that override them (an operator who really means a target).

    An address is allowed when each of its forms (itself, the IPv4 address an IPv4-mapped,
    IPv4-compatible or NAT64 address embeds, and loopback for the unspecified address) falls in no
    ``deny`` network or also in an ``allow`` one. So ``::ffff:169.254.169.254`` and
    ``64:ff9b::a9fe:a9fe`` are judged as 169.254.169.254 as well as by their own ranges.
    """

    deny: tuple[IPNetwork, ...] = DEFAULT_DENIED
    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def with_defaults(cls, deny: Iterable[IPNetwork] = (), allow: Iterable[IPNetwork] = ()) -> OutboundPolicy:
        """The default denied networks plus ``deny``; configuration can add to them, never drop them
        silently (``allow`` is the explicit way to open one)."""
        return cls(deny=(*DEFAULT_DENIED, *deny), allow=tuple(allow))

    def allows(self, address: str | IPAddress) -> bool:
        """Whether a connection to ``address`` (an IP literal, IPv6 zone allowed) may be made."""
        forms = _forms(ipaddress.ip_address(address) if isinstance(address, str) else address)
        return not any(_within(form, self.deny) and not _within(form, self.allow) for form in forms)


DEFAULT_POLICY = OutboundPolicy()

__all__ = [
    "DEFAULT_POLICY",
    "DestinationRefused",
    "IPNetwork",
    "OutboundPolicy",
    "parse_networks",
    "policy_from",
]


def policy_from(settings: Settings) -> OutboundPolicy:
    """Where this process's requests may go: the default denials plus ``MC_OUTBOUND_DENY``, with
    ``MC_OUTBOUND_ALLOW`` as exceptions. Every session that sends triggers is built with it."""
    return OutboundPolicy.with_defaults(deny=settings.outbound_deny, allow=settings.outbound_allow)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, IPv4-translated, IPv4-compatible or well-known NAT64 IPv6
    address stands for."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    plain = ipaddress.IPv6Address(int(address))  # without a zone index, which `in` would not ignore
    if plain in NAT64_WELL_KNOWN or plain in IPV4_TRANSLATED or any(plain in net for net in IPV4_COMPATIBLE):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def _forms(address: IPAddress) -> list[IPAddress]:
    forms: list[IPAddress] = [address]
    embedded = embedded_ipv4(address)
    if embedded is not None:
        forms.append(embedded)
    for form in list(forms):
        if form.is_unspecified:
            forms.append(_THIS_HOST[form.version])
    return forms


def _within(form: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(form.version == net.version and form in net for net in networks)
