"""Celery wiring: the application, its tasks, the beat scheduler class, kombu transports, logs and
metrics, and the per-process resources tasks share. The only part that knows Celery exists.
"""
