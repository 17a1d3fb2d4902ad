"""The Redis transport's close path after Celery collected a lost connection, against a private Redis."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Producer, Queue

from mission_control.redis_transport import Transport


@pytest.fixture
def queue() -> Queue:
    return Queue("triggers", Exchange("triggers", type="direct"), routing_key="triggers")


def _detached_channel_holding_a_message(url: str, transport: object, queue: Queue) -> object:
    """A channel with one delivered, unacknowledged message whose transport Celery has collected."""
    connection = Connection(url, transport=transport)
    channel = connection.channel()
    Producer(channel).publish({"run_id": 1}, exchange=queue.exchange, routing_key=queue.routing_key,
                              declare=[queue])  # fmt: skip
    message = queue(channel).get(no_ack=False)
    assert message is not None and not message.acknowledged
    # What Celery's on_connection_error_after_connected does first: connection.collect() detaches the
    # transport; a channel whose close had stopped half way is then closed again.
    connection._do_close_transport()
    return channel


def test_stock_kombu_raises_attribute_error_closing_a_detached_channel(redis_server, queue) -> None:
    """The failure this module exists for; if kombu fixes it, this test says the subclass can go."""
    from kombu.transport.redis import Transport as Stock

    channel = _detached_channel_holding_a_message(redis_server.url, Stock, queue)
    with pytest.raises(AttributeError, match="hostname"):
        channel.close()


def test_closing_a_detached_channel_is_a_connection_error_celery_ignores(redis_server, queue) -> None:
    channel = _detached_channel_holding_a_message(redis_server.url, Transport, queue)
    errors = Transport.connection_errors
    with pytest.raises(errors):
        channel.close()
    assert channel.closed
    channel.close()  # a second close is a no-op, as for any closed channel


def test_an_attached_channel_still_restores_its_unacknowledged_message(redis_server, queue) -> None:
    with Connection(redis_server.url, transport=Transport) as connection:
        channel = connection.channel()
        Producer(channel).publish({"run_id": 2}, exchange=queue.exchange, routing_key=queue.routing_key,
                                  declare=[queue])  # fmt: skip
        assert queue(channel).get(no_ack=False) is not None
        channel.close()  # restores the unacknowledged message to its queue
        again = queue(connection.channel()).get(no_ack=True)
        assert again is not None and again.payload == {"run_id": 2}


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/0"])
def test_every_process_that_loads_the_app_serves_redis_urls_with_it(url: str) -> None:
    import mission_control.celery_app  # noqa: F401  (installs the transport, as in every process)

    connection = Connection(url)
    assert connection.transport_cls in ("redis", "rediss")
    assert type(connection.transport) is Transport
    # The URL keeps its scheme: Flower picks its queue inspector by it, and logs show it.
    assert connection.as_uri().startswith(url.split(":", 1)[0] + "://")
