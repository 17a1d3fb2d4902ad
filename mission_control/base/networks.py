"""Networks in CIDR notation as settings name them (``MC_OUTBOUND_DENY``, ``MC_OUTBOUND_ALLOW``).

Parsing lives down here, beside the settings, so that configuration can refuse a typo at start-up
without importing the outbound part that later enforces the networks (a lower part never imports an
upper one); :mod:`mission_control.outbound.policy` re-exports both names.
"""

from __future__ import annotations

import ipaddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(item: str) -> IPNetwork:
    """One network in CIDR notation (a bare address is a /32 or /128).

    Raises ``ValueError`` saying what is wrong with it; host bits set (``10.1.2.3/8``) count as a
    mistake, since the operator's intent (a host or the whole network?) cannot be told.
    """
    return ipaddress.ip_network(item.strip(), strict=True)


def parse_networks(raw: str | None, name: str) -> tuple[IPNetwork, ...]:
    """Comma-separated networks (see :func:`parse_network`); empty items are skipped.

    Raises ``ValueError`` naming ``name`` and the offending item.
    """
    networks: list[IPNetwork] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(parse_network(item))
        except ValueError as exc:
            raise ValueError(f"{name}: {item!r} is not a network in CIDR notation ({exc})") from None
    return tuple(networks)
