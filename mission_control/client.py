"""``mission_control.client``: the client library, where the CLI and existing services import it from.

The code is :mod:`mission_control._client`, which is also published alone (requests only) as the
``mission-control-client`` distribution, importable there as ``mission_control_client``.
"""

from __future__ import annotations

from mission_control._client import (
    Conflict,
    Forbidden,
    MissionControl,
    MissionControlError,
    Monitor,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    verify_signature,
)

__all__ = [
    "Conflict",
    "Forbidden",
    "MissionControl",
    "MissionControlError",
    "Monitor",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "verify_signature",
]
