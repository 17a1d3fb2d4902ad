"""Mission Control: the control plane every scheduled task of a fleet routes through.

``celery -A mission_control worker`` finds the Celery app as this package's ``app`` attribute
(``celery.app.utils.find_app`` reads ``module.app``). It is looked up lazily, on first access, so
``import mission_control`` and the client library never import Celery.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "app":
        from mission_control.celery_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
