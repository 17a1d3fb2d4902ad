"""Kombu's Redis transport, made safe to close after Celery has collected its connection.

When a worker loses Redis, Celery's consumer first *collects* the connection (kombu detaches the
transport: ``transport.client = None``) and then closes it. If the first attempt to close a channel
stopped half way (the channel was inside a BRPOP when the socket died), the second attempt restores
the channel's unacknowledged messages through a client built from ``transport.client``, which is now
``None``: kombu 5.7.0 raises ``AttributeError``, which Celery does not count as a connection error,
and the worker ends with "Unrecoverable error" instead of reconnecting. A Redis restart under load
then leaves a fleet with no workers (bench/README.md, "Chaos").

Here a detached channel answers that restore with a connection error, which Celery's close path
ignores as it does any other, and the consumer reconnects. Nothing is lost by not restoring from a
detached channel: the messages are still in Redis's unacked index (restored after the visibility
timeout) or gone with a restarted Redis, and either way the reconciler re-enqueues their runs from
the database (DESIGN.md invariant 1).

:func:`install` puts it (and its Sentinel twin, whose channel builds its client the same way)
behind the ``redis``, ``rediss`` and ``sentinel`` schemes rather than naming it in
``broker_transport``: URLs keep their scheme, which Flower's broker view reads to inspect the queues
and which every log line shows.
"""

from __future__ import annotations

from typing import Any

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class _RefuseDetachedConnection:
    """Building a client for a channel whose transport was collected is a connection error."""

    connection: Any

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError(
                "the broker connection was already collected; not reconnecting from it"
            )
        return super()._connparams(asynchronous)  # type: ignore[misc]


class Channel(_RefuseDetachedConnection, kombu_redis.Channel):
    pass


class SentinelChannel(_RefuseDetachedConnection, kombu_redis.SentinelChannel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


ALIASES = {"redis": "Transport", "rediss": "Transport", "sentinel": "SentinelTransport"}


def install() -> None:
    """Serve ``redis://``, ``rediss://`` and ``sentinel://`` with these transports in every kombu
    connection of the process."""
    for scheme, name in ALIASES.items():
        kombu_transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:{name}"
        # kombu caches resolved aliases; a connection made before this call must not pin the stock class.
        kombu_transport._transport_cache.pop(scheme, None)
