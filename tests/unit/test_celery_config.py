"""The Celery configuration lets the plain commands work: declared queues, the registry's scheduler."""

from __future__ import annotations

from mission_control.celery_app import app


def test_a_worker_without_q_consumes_both_queues_each_routed_only_to_itself():
    queues = app.amqp.queues
    assert set(queues) == {"triggers", "default"}
    assert {name: queues[name].routing_key for name in queues} == {
        "triggers": "triggers",
        "default": "default",
    }
    assert app.amqp.router.route({}, "mission_control.trigger")["queue"].name == "triggers"


def test_a_beat_without_s_runs_the_registry_scheduler():
    assert app.conf.beat_scheduler == "mission_control.scheduler:RegistryScheduler"
