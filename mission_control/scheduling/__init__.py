"""Scheduling: claiming due slots and retries from the database, sending their messages, waking
missions, and reconciling runs whose message or worker was lost. The beat's Celery class that drives
these is :mod:`mission_control.runtime.beat`.
"""
