"""Request and response models of the missions API; the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from mission_control.jobs.spec import Name
from mission_control.missions.definition import MissionDefinition
from mission_control.missions.store import MISSION_ID_PATTERN

MissionId = Annotated[str, StringConstraints(pattern=MISSION_ID_PATTERN)]
MISSION_STATUSES = Literal["running", "waiting", "completed", "failed", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DefinitionOut(_Out):
    name: str
    version: int = Field(description="bumped by every PUT that changes the definition")
    created_at: str
    definition: dict[str, JsonValue]


class DefinitionList(_Out):
    definitions: list[DefinitionOut]


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    definition: Name = Field(description="the definition to start (its latest version)")
    input: JsonValue = Field(None, description="must match the definition's input_schema")
    id: MissionId | None = Field(None, description="caller-chosen unique id; generated when omitted")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field("cancelled", min_length=1, max_length=1000)


class Waiting(_Out):
    kind: Literal["signal", "timer", "retry"]
    step: str
    signal: str | None = None
    until: str | None = Field(None, description="when the wait ends (a signal's deadline, a timer, a retry)")


class MissionError(_Out):
    code: str
    message: str
    at: str
    step: str | None = None


class StepState(_Out):
    name: str
    kind: str
    status: str
    output: JsonValue = None
    attempts: int


class AttemptOut(_Out):
    step: str
    attempt: int
    started_at: str
    finished_at: str | None = None
    status: str
    error: dict[str, JsonValue] | None = None
    http_status: int | None = None
    duration_ms: float | None = None


class SignalOut(_Out):
    name: str
    step: str
    payload: JsonValue = None
    received_at: str


class TimerOut(_Out):
    kind: Literal["sleep", "retry", "timeout"]
    step: str
    due_at: str
    status: Literal["scheduled", "fired", "cancelled"]
    fired_at: str | None = None


class MissionSummary(_Out):
    id: str
    definition: str
    version: int
    status: MISSION_STATUSES
    cursor: str | None = Field(None, description="the step the mission is at (null once finished)")
    waiting: Waiting | None = None
    error: MissionError | None = None
    created_at: str
    updated_at: str
    finished_at: str | None = None


class MissionOut(MissionSummary):
    input: JsonValue = None
    cancel_reason: str | None = None
    steps: list[StepState]
    history: list[dict[str, JsonValue]]
    attempts: list[AttemptOut]
    signals: list[SignalOut]
    timers: list[TimerOut]


class MissionList(_Out):
    missions: list[MissionSummary]
    next_cursor: str | None


class MissionListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: MISSION_STATUSES | None = Field(None, description="only missions in this status")
    definition: Name | None = Field(None, description="only missions of this definition")
    limit: int = Field(50, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(None, max_length=400, description="next_cursor of the previous page")


class DefinitionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, le=2**31 - 1, description="that version instead of the latest")


def definition_out(name: str, version: int, created_at: Any, definition: MissionDefinition) -> DefinitionOut:
    from mission_control.missions.machine import ts

    return DefinitionOut(
        name=name, version=version, created_at=ts(created_at), definition=definition.as_json()
    )


__all__ = ["MissionDefinition"]
