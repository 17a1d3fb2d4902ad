"""The names of the scopes an API token may carry: one tuple both sides read.

The server (:mod:`mission_control.web.api.scopes`, which holds what each scope grants) and the CLI
(``mission-control tokens create --scope``) both need the list. It lives here, in ``base``, because it
is plain data: the CLI may import it without pulling in Flask or SQLAlchemy, and adding a scope on the
server can no longer leave the CLI's choices behind.
"""

from __future__ import annotations

SCOPES = (
    "admin",
    "read",
    "metrics",
    "jobs:write",
    "runs:read",
    "runs:write",
    "services:write",
    "heartbeats:write",
    "missions:write",
    "channels:write",
    "alerts:write",
)
