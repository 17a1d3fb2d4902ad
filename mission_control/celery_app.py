"""The Celery application, under the name operators type: ``celery -A mission_control.celery_app worker``.

The application itself is built in :mod:`mission_control.runtime.app`; this module keeps the path that
Procfiles, Flower and people's shell history name, and re-exports ``app`` so Celery finds it.
"""

from mission_control.runtime.app import app

__all__ = ["app"]
