"""The beat scheduler class under the name operators type: ``-S mission_control.scheduler:RegistryScheduler``.

The scheduler lives in :mod:`mission_control.runtime.beat`; this module keeps the public path.
"""

from mission_control.runtime.beat import RegistryScheduler

__all__ = ["RegistryScheduler"]
