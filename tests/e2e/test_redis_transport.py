"""The Redis transports' close path after Celery collected a lost connection, against a private Redis
(and a private Sentinel in front of it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer, Queue
from kombu.transport import redis as stock

from mission_control.runtime import redis_transport
from tests.e2e.conftest import SentinelServer


@dataclass
class Broker:
    url: str
    options: dict[str, Any]
    ours: type
    stock: type


@pytest.fixture
def sentinel(redis_server, tmp_path: Path) -> Iterator[SentinelServer]:
    server = SentinelServer(tmp_path / "sentinel", redis_server)
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["redis", "sentinel"])
def broker(request) -> Broker:
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        return Broker(url, {}, redis_transport.Transport, stock.Transport)
    url = request.getfixturevalue("sentinel").url
    return Broker(url, {"master_name": "mc"}, redis_transport.SentinelTransport, stock.SentinelTransport)


QUEUE = Queue("triggers", Exchange("triggers", type="direct"), routing_key="triggers")


def _publish(channel: Any, payload: dict[str, int]) -> None:
    producer = Producer(channel)
    producer.publish(payload, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE])


def _detached_channel_holding_a_message(broker: Broker, transport: type) -> Any:
    """A channel with one delivered, unacknowledged message whose transport Celery has collected."""
    connection = Connection(broker.url, transport=transport, transport_options=broker.options)
    channel = connection.channel()
    _publish(channel, {"run_id": 1})
    message = QUEUE(channel).get(no_ack=False)
    assert message is not None and not message.acknowledged
    # What Celery's on_connection_error_after_connected does first: connection.collect() detaches the
    # transport; a channel whose close had stopped half way is then closed again.
    connection._do_close_transport()
    return channel


def test_stock_kombu_raises_attribute_error_closing_a_detached_channel(broker: Broker) -> None:
    """The failure this module exists for; if kombu fixes it, this test says the subclasses can go."""
    channel = _detached_channel_holding_a_message(broker, broker.stock)
    with pytest.raises(AttributeError):
        channel.close()


def test_closing_a_detached_channel_is_a_connection_error_celery_ignores(broker: Broker) -> None:
    channel = _detached_channel_holding_a_message(broker, broker.ours)
    with pytest.raises(broker.ours.connection_errors):
        channel.close()
    assert channel.closed
    channel.close()  # a second close is a no-op, as for any closed channel


def test_an_attached_channel_still_restores_its_unacknowledged_message(broker: Broker) -> None:
    with Connection(broker.url, transport=broker.ours, transport_options=broker.options) as connection:
        channel = connection.channel()
        _publish(channel, {"run_id": 2})
        assert QUEUE(channel).get(no_ack=False) is not None
        channel.close()  # restores the unacknowledged message to its queue
        again = QUEUE(connection.channel()).get(no_ack=True)
        assert again is not None and again.payload == {"run_id": 2}


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        ("redis://127.0.0.1:6379/0", redis_transport.Transport),
        ("rediss://127.0.0.1:6380/0", redis_transport.Transport),
        ("sentinel://127.0.0.1:26379/0", redis_transport.SentinelTransport),
    ],
)
def test_every_process_that_loads_the_app_serves_redis_urls_with_it(url: str, ours: type) -> None:
    import mission_control.runtime.app  # noqa: F401  (installs the transports, as in every process)

    connection = Connection(url)
    assert type(connection.transport) is ours
    # The URL keeps its scheme: Flower picks its queue inspector by it, and logs show it.
    assert connection.as_uri().startswith(url.split(":", 1)[0] + "://")
