"""``mission_control.client``: the client library, where the CLI and existing services import it from.

The code is :mod:`mission_control._client`, which is also published alone (requests only) as the
``mission-control-client`` distribution, importable there as ``mission_control_client``.
"""

from __future__ import annotations

from mission_control._client import *  # noqa: F403  (its __all__: the client, its errors, verify_signature)
from mission_control._client import __all__ as __all__
