"""PagerDuty Events API v2: an alert of ours becomes a PagerDuty alert, and follows it through its life.

PagerDuty's Events API takes one event per request (``POST https://events.pagerduty.com/v2/enqueue``,
``{"routing_key", "event_action", "dedup_key", "payload": {"summary", "source", "severity",
"custom_details", ...}}``) and answers 202 when it accepted it, 400 for an event it will never accept,
429 when the integration sends too fast and 5xx when PagerDuty itself is in trouble. So:

* opened and repeat notices ``trigger``, resolved ones ``resolve``, acknowledged ones ``acknowledge``;
  a test notice triggers a test alert and resolves it at once, so a test leaves no incident open;
* every event of one alert carries the same ``dedup_key`` (:func:`dedup_key`, made of the alert's
  kind, subject and database id: stable across repeats, redeliveries and restarts), so PagerDuty
  folds repeats into one incident and our resolve closes it;
* 429 and 5xx (and connection errors, timeouts) are transient, retried as every channel's are; any
  other 4xx is permanent.

A message of several notices is sent as that many requests, in order, stopping at the first that is
not accepted: a retry sends the whole message again, which PagerDuty absorbs through the dedup keys
(a second trigger of an open incident adds nothing, a second resolve of a resolved one nothing).

The routing key is a credential (anyone holding it can page the team): it is stored sealed, opened
only here, never logged, and no detail recorded with an attempt names it or the URL.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from mission_control.monitoring.notifications import messages
from mission_control.monitoring.notifications.senders import Delivery, elapsed_ms, post_json

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ACTIONS = {"opened": "trigger", "repeat": "trigger", "resolved": "resolve", "acknowledged": "acknowledge"}
# How bad each kind of alert is, in PagerDuty's four severities.
SEVERITIES = {
    "service_down": "critical",
    "service_hung": "error",
    "service_early": "warning",
    "job_failed": "error",
    "job_slow": "warning",
    "job_missed": "warning",
}
SUMMARY_MAX = 1024  # PagerDuty truncates payload.summary at 1024 characters
DEDUP_KEY_MAX = 255


def dedup_key(alert: dict[str, Any]) -> str:
    """The key every event of this alert carries: the same for its trigger, repeats, ack and resolve."""
    return f"mission-control/{alert['kind']}/{alert['subject']}/{alert['id']}"[:DEDUP_KEY_MAX]


def event(routing_key: str, event_name: str, alert: dict[str, Any]) -> dict[str, Any]:
    """The Events API v2 document for one notice about ``alert``."""
    action = ACTIONS[event_name]
    document: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(alert),
    }
    if action == "trigger":
        document["payload"] = {
            "summary": f"{alert['kind']} {alert['subject']}: {alert['message']}"[:SUMMARY_MAX],
            "source": alert["subject"],
            "severity": SEVERITIES.get(alert["kind"], "error"),
            "timestamp": messages.plain(alert["opened_at"]),
            "component": alert["subject"],
            "class": alert["kind"],
            "group": "mission-control",
            "custom_details": {
                "alert_id": alert["id"],
                "state": alert["state"],
                "occurrences": alert["occurrences"],
                "opened_at": messages.plain(alert["opened_at"]),
                "details": alert.get("details"),
            },
        }
        document["client"] = "Mission Control"
    return document


def test_events(routing_key: str) -> list[dict[str, Any]]:
    """A test alert triggered and resolved at once: proves the key works without leaving an incident."""
    key = f"mission-control/test/{uuid.uuid4().hex}"
    return [
        {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": "Mission Control test notice: this channel works",
                "source": "mission-control",
                "severity": "info",
            },
            "client": "Mission Control",
        },
        {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key},
    ]


def send(
    session: requests.Session,
    events_url: str,
    routing_key: str,
    items: list[tuple[str, dict[str, Any] | None]],
) -> Delivery:
    """Send one event per notice, in order; the first one not accepted decides the outcome."""
    started = time.monotonic()
    documents: list[dict[str, Any]] = []
    for event_name, alert in items:
        if alert is None:
            documents.extend(test_events(routing_key))
        elif event_name in ACTIONS:
            documents.append(event(routing_key, event_name, alert))
    for document in documents:
        result = post_json(session, events_url, document)
        if result.outcome != "sent":
            return Delivery(
                result.outcome, f"{document['event_action']}: {result.detail}", elapsed_ms(started)
            )
    return Delivery("sent", f"{len(documents)} event(s) accepted", elapsed_ms(started))
