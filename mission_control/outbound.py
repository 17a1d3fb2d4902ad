"""Which addresses Mission Control may send requests to: the SSRF guard's policy.

Anyone who may register a job, a mission with an ``http`` step or a webhook channel chooses a URL that a
worker then requests from inside the network. Cloud metadata services (169.254.169.254 on AWS, GCP and
Azure, fd00:ec2::254 on AWS' IPv6 instances) hand the host's credentials to whoever asks from it, so
link-local and metadata addresses are refused unless an operator allows them. Loopback and private
ranges stay allowed by default: development, the tests and internal services live there, and an
operator who wants them closed adds them to ``MC_OUTBOUND_DENY``.

The policy judges *addresses*, never host names: ``http_trigger`` asks it about every address a host
resolves to and connects only to one it allows, so neither a DNS name pointing at a metadata address
nor a record that changes between check and connect (DNS rebinding) gets through. This module is pure
(standard library only) so configuration can parse and validate its networks at start-up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Link-local (v4 and v6; 169.254.169.254 is the metadata service of most clouds) and AWS' IPv6 one.
DEFAULT_DENIED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
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
            "(link-local and cloud metadata addresses by default; see MC_OUTBOUND_DENY, MC_OUTBOUND_ALLOW)"
        )


@dataclass(frozen=True)
class OutboundPolicy:
    """Denied networks, and allowed ones that override them (an operator who really means a target).

    An address is allowed unless it falls in a ``deny`` network and in no ``allow`` network. An
    IPv4-mapped IPv6 address (``::ffff:169.254.169.254``) reaches its IPv4 address, so it is judged as
    that address too.
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
        if not _within(forms, self.deny):
            return True
        return _within(forms, self.allow)


DEFAULT_POLICY = OutboundPolicy()


def parse_networks(raw: str | None, name: str) -> tuple[IPNetwork, ...]:
    """Comma-separated networks in CIDR notation (a bare address is a /32 or /128).

    Raises ``ValueError`` naming ``name`` and the offending item; host bits set (``10.1.2.3/8``) count
    as a mistake, since the operator's intent (a host or the whole network?) cannot be told.
    """
    networks: list[IPNetwork] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ValueError(f"{name}: {item!r} is not a network in CIDR notation ({exc})") from None
    return tuple(networks)


def _forms(address: IPAddress) -> list[IPAddress]:
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        forms.append(address.ipv4_mapped)
    for form in list(forms):
        if form.is_unspecified:
            forms.append(_THIS_HOST[form.version])
    return forms


def _within(forms: Sequence[IPAddress], networks: Sequence[IPNetwork]) -> bool:
    return any(form.version == net.version and form in net for form in forms for net in networks)
