"""Telling people: alert changes become notices on channels (webhook, Slack, email, PagerDuty,
Apprise), delivered by Celery tasks with retries, every attempt recorded.

Flow: an alert change (opened, resolved, acknowledged) or a repeat is *routed* to the channels whose
kind filter and subject pattern match, as one notice row each (idempotent on a dedup key; kept, not
sent, while a silence matches); each notice is then *delivered* by its own task, so a slow or
failing channel never holds up alerting or another channel.
"""
