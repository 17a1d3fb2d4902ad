"""Apprise channels: one URL (``ntfy://…``, ``tgram://…``, ``pagerduty://…``, ``json://…``) reaches any
of the 100+ services the Apprise library speaks to, so we need not write a sender for each.

A channel's Apprise URL carries its credentials (bot tokens, API keys, passwords), so it is sealed at
rest like a webhook URL and shown as its scheme, and its host only when that is a host name
(``notices.shown_url``). Apprise and its plugins log URLs and service replies; its logger is kept
quiet (nothing below CRITICAL) so no credential reaches our logs, and an attempt's recorded detail is
made of our own words and HTTP status codes only.

The outbound policy (SSRF guard) holds for what Apprise sends: the delivery runs inside
:func:`mission_control.outbound.socket_guard.guarded`, which judges every socket Apprise's plugins
connect (after DNS resolution, after redirects) and refuses denied addresses before a byte is sent;
before that, the URL's own host is resolved and judged, so a plainly denied destination is refused
without Apprise being asked at all. That module's docstring says what is and is not guaranteed.

Outcomes: a refused destination or a URL Apprise does not know is permanent; an HTTP 4xx answer
(other than 408 and 429) is permanent; anything else that failed (429, 5xx, connection errors,
timeouts, no answer we saw) is transient and retried as every channel's notices are.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from mission_control.monitoring.notifications import messages
from mission_control.monitoring.notifications.senders import Delivery, elapsed_ms
from mission_control.outbound.policy import DEFAULT_POLICY, DestinationRefused, OutboundPolicy
from mission_control.outbound.socket_guard import check_host, guarded

TIMEOUT_S = 30.0  # the whole Apprise call, its own retries included

# Apprise logs the URLs it posts to and what services answer: either may carry a credential.
_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.setLevel(logging.CRITICAL)
_APPRISE_LOG.propagate = False


def apprise_url_known(url: str) -> bool:
    """Whether Apprise can build a service from ``url`` (its scheme is a plugin's, its parts fit)."""
    import apprise

    return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None


def send(
    url: str, items: list[tuple[str, dict[str, Any] | None]], policy: OutboundPolicy = DEFAULT_POLICY
) -> Delivery:
    """Hand one message (a headline and the notices' lines) to Apprise under the outbound policy."""
    import apprise

    started = time.monotonic()
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    try:
        # Only a host that is one (a name with a dot, an address): many schemes put a token there,
        # which must not go to a DNS resolver.
        if host and ("." in host or ":" in host):
            check_host(host, port, policy)
    except DestinationRefused as exc:
        return Delivery("permanent", str(exc), elapsed_ms(started))
    # async_mode off: Apprise calls the service in this thread (or, with a timeout, in its pool with a
    # copy of this context), never in a thread the guard does not follow. Redirects are not followed,
    # as for webhooks and triggers (the guard would judge the new address anyway).
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False, http_redirects=False))
    if not notifier.add(url):
        return Delivery("permanent", "not an Apprise URL of a service Apprise supports", elapsed_ms(started))
    with guarded(policy) as record:
        try:
            ok = bool(
                notifier.notify(
                    title=messages.headline(items),
                    body=messages.text(items),
                    body_format=apprise.NotifyFormat.TEXT,
                    timeout=TIMEOUT_S,
                )
            )
        except DestinationRefused:
            ok = False
    if record.refused:
        return Delivery("permanent", str(record.refused[0]), elapsed_ms(started))
    statuses = record.statuses
    if ok:
        detail = f"HTTP {statuses[-1]}" if statuses else "accepted by Apprise"
        return Delivery("sent", detail, elapsed_ms(started))
    failed = [s for s in statuses if not 200 <= s < 300]
    if failed:
        last = failed[-1]
        transient = last in (408, 429) or last >= 500
        return Delivery("transient" if transient else "permanent", f"HTTP {last}", elapsed_ms(started))
    if record.errors:
        return Delivery("transient", f"connection failed ({record.errors[-1]})", elapsed_ms(started))
    return Delivery("transient", "Apprise reported a failure", elapsed_ms(started))
