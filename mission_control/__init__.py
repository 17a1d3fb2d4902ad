"""Mission Control: the control plane every scheduled task of a fleet routes through."""

__version__ = "0.1.0"
