"""The dev broker (kombu's SQL transport, cheap to wait on): a message is seen by the cheap read,
delivered once, deleted when delivered, and an unacknowledged one is back in its queue when the consumer
goes (what the stock transport guarantees)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from sqlalchemy import create_engine, text

from mission_control.runtime.dev_transport import Transport

QUEUES = [Queue(name, Exchange(name, "direct"), name) for name in ("triggers", "default")]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, Connection]]:
    url = f"sqlite:///{tmp_path / 'broker.db'}"
    connection = Connection(url, transport=Transport)
    try:
        yield url, connection
    finally:
        connection.release()


def _rows(url: str) -> list[tuple[str, bool]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT q.name, m.visible FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id"
            return [(name, bool(visible)) for name, visible in conn.execute(text(query))]
    finally:
        engine.dispose()


def _publish(connection: Connection, queue: str, body: dict[str, int]) -> None:
    with connection.channel() as channel:
        Producer(channel).publish(
            body, exchange=queue, routing_key=queue, declare=[Queue(queue, Exchange(queue, "direct"), queue)]
        )


def test_a_published_message_is_seen_delivered_once_and_deleted(broker):
    url, connection = broker
    received: list[dict[str, int]] = []
    channel = connection.channel()
    consumer = Consumer(
        channel, QUEUES, callbacks=[lambda body, message: (received.append(body), message.ack())]
    )
    consumer.consume()
    assert not channel.has_waiting()
    _publish(connection, "triggers", {"run_id": 7})
    assert channel.has_waiting()
    connection.drain_events(timeout=2)
    assert received == [{"run_id": 7}]
    assert _rows(url) == []  # deleted when delivered, not kept hidden
    assert not channel.has_waiting()
    with pytest.raises(TimeoutError):
        connection.drain_events(timeout=0.3)


def test_a_message_in_a_queue_nobody_consumes_here_is_not_waiting(broker):
    url, connection = broker
    channel = connection.channel()
    Consumer(channel, QUEUES, callbacks=[lambda body, message: message.ack()]).consume()
    _publish(connection, "elsewhere", {"n": 1})
    assert not channel.has_waiting()
    assert _rows(url) == [("elsewhere", True)]


def test_an_unacknowledged_message_is_back_in_its_queue_when_the_consumer_goes(broker):
    url, connection = broker
    channel = connection.channel()
    Consumer(channel, QUEUES, callbacks=[lambda body, message: None]).consume()  # never acks
    _publish(connection, "default", {"n": 1})
    connection.drain_events(timeout=2)
    assert _rows(url) == []
    channel.close()  # as a worker that stops warm: kombu puts unacknowledged messages back
    assert _rows(url) == [("default", True)]
