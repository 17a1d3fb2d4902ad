"""Request signatures under the path receivers import: ``from mission_control.signing import verify``.

The implementation is :mod:`mission_control.outbound.signing`, the low part every outgoing request
(jobs, missions, notices) is signed with; this module re-exports its public names so code written
against the documented path keeps working.
"""

from mission_control.outbound.signing import *  # noqa: F403  (its __all__: sign, verify and their names)
from mission_control.outbound.signing import __all__ as __all__
