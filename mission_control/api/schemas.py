"""Request and response models of the API that are not the job spec itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mission_control.jobspec import NAME_PATTERN, JobSpec, Name, ScheduleSpec
from mission_control.registry import JobRecord


class JobPut(JobSpec):
    """A job as sent to ``PUT /jobs/{name}``: the name comes from the path and may be omitted here."""

    name: Name | None = Field(None, description="optional; must equal the name in the path")  # type: ignore[assignment]


class JobPatch(BaseModel):
    """Fields to change. ``target`` and ``retry`` merge one level deep; ``schedule`` is replaced whole."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(
        None, description="may be given but must equal the path; jobs cannot be renamed"
    )
    service: Name | None = None
    target: dict[str, Any] | None = Field(
        None, description="keys of target to change (url, method, headers, body)"
    )
    schedule: ScheduleSpec | None = None
    timeout_s: float | None = None
    expected_runtime_s: float | None = None
    retry: dict[str, Any] | None = Field(None, description="keys of retry to change")
    concurrency: Literal["allow", "forbid"] | None = None
    misfire: Literal["run_once", "skip"] | None = None
    enabled: bool | None = None


class JobOut(JobSpec):
    """A registered job: its spec and what the registry derives and keeps about it."""

    schedule_description: str = Field(description="the schedule in words, in its timezone")
    next_run_at: datetime | None = Field(
        description="next slot (UTC); null while paused or when nothing is left"
    )
    revision: int = Field(description="incremented on every change")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: JobRecord) -> JobOut:
        return cls.model_construct(
            **dict(record.spec),
            schedule_description=record.spec.to_schedule().describe(),
            next_run_at=record.next_run_at,
            revision=record.revision,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class JobList(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` to get the next page; null on the last page"
    )


class JobListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: Name | None = Field(None, description="only jobs of this service")
    enabled: bool | None = Field(None, description="only enabled (true) or paused (false) jobs")
    limit: int = Field(100, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(
        None, pattern=NAME_PATTERN, description="next_cursor of the previous page (opaque)"
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
