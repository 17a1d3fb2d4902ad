"""Celery settings for every Mission Control process (``app.config_from_object("celeryconfig")``).

The database is the truth and the broker only a transport (DESIGN.md invariant 1), so there is no
result backend, messages are JSON only, and a task is acknowledged only after it ran, so a worker that
dies mid-task has its message redelivered.
"""

from kombu import Exchange, Queue

from beat_schedule import BEAT_SCHEDULE
from mission_control.base.config import Settings, redis_ssl_options

_settings = Settings.from_env()

broker_url = _settings.broker_url
if broker_url.startswith("sqla+"):
    # The serverless dev broker: kombu's SQL transport, with a polling interval fit for a demo.
    broker_url = broker_url.removeprefix("sqla+")
    broker_transport = "mission_control.runtime.dev_transport:Transport"
broker_connection_retry_on_startup = True
# rediss://: the URL carries ssl_cert_reqs (MC_REDIS_TLS_VERIFY); Flower's broker page reads only this.
broker_use_ssl = redis_ssl_options(broker_url)

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

result_backend = None
task_ignore_result = True

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

timezone = "UTC"
enable_utc = True

task_default_queue = "default"
task_create_missing_queues = True
# HTTP triggers get their own queue so housekeeping never waits behind a burst of triggers.
task_routes = {"mission_control.trigger": {"queue": "triggers"}}
# Declared, so a plain `celery -A mission_control worker` (no -Q) consumes both: without this list a
# worker consumes only task_default_queue and no trigger ever runs. Each has its own exchange and
# routing key, as Celery makes a queue named by -Q: a bare Queue(name) binds to the default exchange's
# `default` key, and then a trigger sent to `triggers` would be delivered to both queues.
task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in ("triggers", "default"))

# Redis redelivers a message whose worker died only after this long; the reconciler is faster (it
# watches run leases), so this is the backstop, not the mechanism.
broker_transport_options = {"visibility_timeout": 3600} if broker_url.startswith("redis") else {}
worker_hijack_root_logger = False
worker_send_task_events = False

beat_schedule = BEAT_SCHEDULE
# A plain `celery -A mission_control beat` (no -S) runs the registry's scheduler, not Celery's file-backed
# one (which fires none of the registry's jobs and writes celerybeat-schedule files).
beat_scheduler = "mission_control.scheduler:RegistryScheduler"
