"""Python callables that ``call`` steps run, registered by name in the worker's own code.

A team with its own worker code registers ``@step_function("billing.charge")`` in a module the worker
imports (``MC_MISSION_MODULES=billing.missions``). The callable receives the step's rendered ``args``
and returns something JSON can hold; raising :class:`StepFailed` (``retryable=False``) fails the step
at once, any other exception is retried per the step's policy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

StepCallable = Callable[[Any], Any]

_REGISTRY: dict[str, StepCallable] = {}


class StepFailed(Exception):
    """Raised by a step callable to fail its step with a message; retried only if ``retryable``."""

    def __init__(self, message: str, *, retryable: bool = False, code: str = "step_failed") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


def step_function(name: str) -> Callable[[StepCallable], StepCallable]:
    """Register ``fn`` under ``name`` for ``call`` steps; registering another under a taken name fails."""

    def register(fn: StepCallable) -> StepCallable:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(f"a step function named {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return register


def registered() -> dict[str, StepCallable]:
    return dict(_REGISTRY)


def import_modules(modules: Iterable[str]) -> None:
    """Import the modules where step functions live (a worker's ``Settings.mission_modules``, which
    ``MC_MISSION_MODULES`` lists)."""
    for module in modules:
        importlib.import_module(module)
