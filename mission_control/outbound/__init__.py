"""Outbound HTTP: the one low part every outgoing request goes through (the address policy, the
hard-deadline sender, request signing, per-service signing secrets), shared by jobs, missions and notices.
"""
