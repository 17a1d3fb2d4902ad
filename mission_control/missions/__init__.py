"""Missions: durable multi-step flows (HTTP calls, signals, sleeps, Python calls) run by the same engine.

Layers, each importing only the ones before it: ``templates`` and ``definition`` (what a mission is),
``machine`` (pure state transitions of one mission document), ``steps`` (doing one step's I/O), then
the engines: ``store``/``engine`` (durable, PostgreSQL or SQLite, driven by Celery workers and the
beat tick) and :mod:`mission_control.testing` (in memory, for users' unit tests).
"""

from mission_control.missions.builder import mission
from mission_control.missions.callables import StepFailed, step_function
from mission_control.missions.definition import (
    DefinitionError,
    MissionDefinition,
    StepRetry,
    parse_definition,
)

__all__ = [
    "DefinitionError",
    "MissionDefinition",
    "StepFailed",
    "StepRetry",
    "mission",
    "parse_definition",
    "step_function",
]
