"""Monitoring: services and their heartbeats, staleness, and telling people about alerts (notices on
channels). Alerts themselves are records in :mod:`mission_control.db.alerts`, written by every part.
"""
