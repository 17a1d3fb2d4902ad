"""Publishing trigger messages to a real Redis: batched, complete, and never raising on an outage."""

from __future__ import annotations

import base64
import json

import redis
from celery import Celery

from mission_control.scheduling.queueing import PUBLISH_BATCH, TRIGGER_QUEUE, TRIGGER_TASK, enqueue_runs


def celery_on(url: str) -> Celery:
    app = Celery("queueing-test", broker=url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry=False)
    app.conf.broker_transport_options = {"max_retries": 0}
    return app


def test_every_run_id_is_published_once_across_batches(redis_server):
    app = celery_on(redis_server.url)
    run_ids = list(range(1, 2 * PUBLISH_BATCH + 38))

    assert enqueue_runs(app, run_ids) == len(run_ids)

    client = redis.Redis(port=redis_server.port)
    messages = [json.loads(raw) for raw in client.lrange(TRIGGER_QUEUE, 0, -1)]
    assert len(messages) == len(run_ids)
    assert {m["headers"]["task"] for m in messages} == {TRIGGER_TASK}
    published = sorted(json.loads(base64.b64decode(m["body"]))[0][0] for m in messages)
    assert published == run_ids
    app.close()


def test_an_unreachable_broker_is_reported_not_raised(redis_server):
    app = celery_on(redis_server.url)
    redis_server.stop()

    assert enqueue_runs(app, [1, 2, 3]) == 0
    app.close()
