"""Request and response models of the API that are not the job spec itself."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from mission_control.base.schedules import ScheduleError, load_timezone, parse_cron
from mission_control.base.tags import MAX_TAGS, TAG_HELP, Tag, Tags
from mission_control.jobs.registry import JobRecord
from mission_control.jobs.secrets import redacted_target
from mission_control.jobs.spec import NAME_PATTERN, JobSpec, Name, ScheduleSpec
from mission_control.monitoring.notifications.notices import destination
from mission_control.outbound.service_secrets import DEFAULT_OVERLAP_S, MAX_OVERLAP_S


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _absent(description: str | None = None) -> Any:
    """A field that may be left out but is never null: its Python default (None, "not given") stays out
    of the document, where ``default: null`` would contradict the field's own type."""
    return Field(None, description=description, json_schema_extra=_no_default)


class JobPut(JobSpec):
    """A job as sent to ``PUT /jobs/{name}``: the name comes from the path and may be omitted here."""

    name: Name | None = Field(None, description="optional; must equal the name in the path")  # type: ignore[assignment]


class JobPatch(BaseModel):
    """Fields to change. ``target`` and ``retry`` merge one level deep; ``schedule`` is replaced whole.

    Documents ``PATCH /jobs/{name}``, whose body is merged into the stored job and validated as a whole
    job. A field left out stays as it is; null is a value like any other, and only the fields a job
    may hold null in (``expected_runtime_s``; ``name``, which stands for the path) accept it, so the
    others are documented without their null branch (``SkipJsonSchema``).
    """

    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(
        None, description="may be given (or null) but must equal the path; jobs cannot be renamed"
    )
    service: Name | SkipJsonSchema[None] = _absent()
    target: dict[str, Any] | SkipJsonSchema[None] = _absent(
        description="keys of target to change (url, method, headers, body, signature)"
    )
    schedule: ScheduleSpec | SkipJsonSchema[None] = _absent()
    timeout_s: Annotated[float, Field(gt=0, le=3600)] | SkipJsonSchema[None] = _absent()
    expected_runtime_s: Annotated[float, Field(gt=0, le=86_400)] | None = Field(
        None, description="null: no expectation"
    )
    retry: dict[str, Any] | SkipJsonSchema[None] = _absent(description="keys of retry to change")
    concurrency: Literal["allow", "forbid"] | SkipJsonSchema[None] = _absent()
    misfire: Literal["run_once", "skip"] | SkipJsonSchema[None] = _absent()
    enabled: bool | SkipJsonSchema[None] = _absent()
    tags: Tags | SkipJsonSchema[None] = _absent(description=f"replaces the job's tags; {TAG_HELP}")


def _iso_instant(value: Any) -> Any:
    """Pydantic reads a bare number as Unix seconds; the API documents ISO 8601 instants only."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)\s*", value):
        raise ValueError("give an ISO 8601 instant with an offset, e.g. 2026-03-01T12:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant)]
"""A query-string instant: ISO 8601 with an offset (``2026-03-01T12:00:00Z``)."""


RUN_STATUSES = Literal[
    "queued", "running", "retrying", "succeeded", "failed", "timed_out", "skipped", "cancelled"
]


class LastRun(BaseModel):
    """The newest run of a job, as shown with the job."""

    id: int
    status: RUN_STATUSES
    scheduled_for: datetime
    finished_at: datetime | None
    duration_ms: float | None = Field(description="from the first attempt's start to the run's end")


class JobOut(JobSpec):
    """A registered job: its spec and what the registry derives and keeps about it."""

    schedule_description: str = Field(description="the schedule in words, in its timezone")
    next_run_at: datetime | None = Field(
        description="next slot (UTC); null while paused or when nothing is left"
    )
    last_run: LastRun | None = Field(description="the newest run, or null before the first")
    revision: int = Field(description="incremented on every change")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: JobRecord, last_run: dict[str, Any] | None = None) -> JobOut:
        summary = None
        if last_run is not None:
            summary = LastRun.model_construct(
                id=last_run["id"],
                status=last_run["status"],
                scheduled_for=last_run["scheduled_for"],
                finished_at=last_run["finished_at"],
                duration_ms=duration_ms(last_run),
            )
        return cls.model_construct(
            **{**dict(record.spec), "target": redacted_target(record.spec.target)},  # secrets as "****"
            schedule_description=record.spec.to_schedule().describe(),
            next_run_at=record.next_run_at,
            last_run=summary,
            revision=record.revision,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


def duration_ms(row: dict[str, Any]) -> float | None:
    started, finished = row.get("started_at"), row.get("finished_at")
    if started is None or finished is None:
        return None
    return round((finished - started).total_seconds() * 1000, 3)


class AttemptOut(BaseModel):
    number: int
    status: Literal["running", "succeeded", "failed", "timed_out"]
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    http_status: int | None
    response_headers: dict[str, str] | None = Field(description="headers of note from the answer")
    response_excerpt: str | None = Field(description="the start of the answer's body")
    response_truncated: bool = Field(description="the body was longer than the excerpt")
    error_class: str | None
    error_message: str | None
    worker: str | None


class RunOut(BaseModel):
    id: int
    job: str = Field(description="the job's name")
    scheduled_for: datetime = Field(description="the slot this run stands for (UTC)")
    trigger: Literal["schedule", "catch_up", "manual"]
    status: RUN_STATUSES
    reason: str | None = Field(description="why a run was skipped, cancelled or failed")
    missed_count: int = Field(description="slots this run stands for that were missed (catch-up or skip)")
    attempt_count: int
    max_attempts: int
    slow: bool = Field(description="an attempt ran past the job's expected_runtime_s")
    http_status: int | None = Field(description="status of the last answer")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when a retrying run tries again")
    duration_ms: float | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> RunOut:
        fields = {name: row[name] for name in cls.model_fields if name in row}
        return cls.model_construct(**fields, job=row["job_name"], duration_ms=duration_ms(row))


class RunDetail(RunOut):
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, row: dict[str, Any]) -> RunDetail:
        base = RunOut.of(row)
        return cls.model_construct(
            **dict(base), attempts=[AttemptOut.model_construct(**attempt) for attempt in row["attempts"]]
        )


class RunList(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = Field(description="pass as `cursor` for older runs; null on the last page")


class RunListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: Name | None = Field(None, description="only runs of this job")
    status: RUN_STATUSES | None = Field(None, description="only runs in this status")
    since: Instant | None = Field(None, description="only slots at or after this instant (with offset)")
    until: Instant | None = Field(None, description="only slots before this instant (with offset)")
    limit: int = Field(50, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page")


TagFilter = Annotated[list[Tag], Field(max_length=MAX_TAGS)]


def _tag_filter(what: str) -> Any:
    """``?tag=`` (repeatable): only objects carrying every tag given."""
    return Field(
        default_factory=list,
        description=f"only {what} carrying this tag; repeat it for {what} carrying all of them",
        json_schema_extra=_no_default,
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
    tag: TagFilter = _tag_filter("jobs")
    limit: int = Field(100, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(
        None, pattern=NAME_PATTERN, description="next_cursor of the previous page (opaque)"
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


# --- services and heartbeats ------------------------------------------------------------------

SERVICE_STATES = Literal["new", "up", "late", "down", "paused"]
ONE_YEAR_S = 366 * 86_400


def _not_null(schema: dict[str, Any]) -> None:
    """An Optional field documented as its value only: absent, never null."""
    kept = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
    if len(kept) == 1:
        schema.update(kept[0])
    schema.pop("default", None)


class ServiceSchedule(BaseModel):
    """A cron-scheduled service's schedule: read with the jobs' cronie DST rules."""

    model_config = ConfigDict(extra="forbid")

    # Declared first so the cron validator can read it from the already-validated data.
    timezone: str = Field("UTC", description="IANA timezone the cron line is read in, e.g. Europe/Riga")
    cron: str = Field(
        description="5-field cron expression or an alias such as @daily: a heartbeat is expected after "
        "each instant (late once an instant passes with no heartbeat since it, down grace_s later)",
        examples=["30 2 * * *"],
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            load_timezone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse_cron(value, info.data.get("timezone", "UTC"))
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value


# A service expects heartbeats on exactly one of these (the view answers 422 naming the field).
_ONE_OF_EXPECTATIONS = {"oneOf": [{"required": ["interval_s"]}, {"required": ["schedule"]}]}


class ServicePut(BaseModel):
    """Exactly one of ``interval_s`` and ``schedule``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_OF_EXPECTATIONS)

    # Absent, never null in the document (a null is taken as absent); plain Optionals, so an error
    # inside the schedule is named ``schedule.cron``, not after a union member.
    interval_s: float | None = Field(
        None,
        gt=0,
        le=ONE_YEAR_S,
        description="a heartbeat is expected this often; exactly one of interval_s and schedule",
        json_schema_extra=_not_null,
    )
    schedule: ServiceSchedule | None = Field(
        None,
        description="a heartbeat is expected after each instant of a cron line, instead of interval_s",
        json_schema_extra=_not_null,
    )
    grace_s: float = Field(0, ge=0, le=ONE_YEAR_S, description="late for this long before it is down")
    fail_threshold: int = Field(
        1, ge=1, le=1000, description="service_down opens after this many failures in a row (fail, exit code)"
    )
    early_tolerance_s: float | None = Field(
        None,
        ge=0,
        le=ONE_YEAR_S,
        description="a heartbeat more than this before it is expected (the last heartbeat + interval_s, or "
        "the first cron instant after it) opens service_early; it resolves after one whole interval or "
        "slot without an early heartbeat; absent: never early",
    )
    max_runtime_s: float | None = Field(
        None,
        gt=0,
        le=ONE_YEAR_S,
        description="a run started (POST /heartbeats/{name}/start) and not ended within this is hung "
        "(alert service_hung); absent: runs are never hung",
    )
    tags: Tags = Field(default_factory=list, description=f"{TAG_HELP}; absent: none")

    @field_validator("interval_s", "schedule", mode="before")
    @classmethod
    def _absent_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("give a value or leave the field out")
        return value


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "fail"] = Field("ok", description="fail marks the service down at once")
    message: str | None = Field(
        None, description="kept with the heartbeat; cut past 10 KiB, never refused (NUL becomes U+FFFD)"
    )
    interval_s: float | None = Field(
        None, gt=0, le=ONE_YEAR_S, description="admin token only: for a new service"
    )
    grace_s: float | None = Field(
        None, ge=0, le=ONE_YEAR_S, description="admin token only: for a new service"
    )


class HeartbeatQuery(BaseModel):
    """Only with the admin token: how to register a service its first heartbeat names."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float | None = Field(None, gt=0, le=ONE_YEAR_S, description="for a new service")
    grace_s: float | None = Field(None, ge=0, le=ONE_YEAR_S, description="for a new service")
    status: Literal["ok", "fail"] | None = Field(None, description="instead of a body, for GET one-liners")
    token: str | None = Field(
        None, max_length=200, description="a service token, for clients without headers"
    )
    rid: UUID | None = Field(
        None, description="run id: this end closes the run started with the same rid (POST …/start?rid=)"
    )


RID_HELP = (
    "run id (a UUID): pairs a start with its end when runs overlap; a start without one pairs with the "
    "next end without one"
)


class SignalQuery(BaseModel):
    """The query of ``/heartbeats/{name}/start|fail|log|{code}``."""

    model_config = ConfigDict(extra="forbid")

    rid: UUID | None = Field(None, description=RID_HELP)
    interval_s: float | None = Field(None, gt=0, le=ONE_YEAR_S, description="for a new service")
    grace_s: float | None = Field(None, ge=0, le=ONE_YEAR_S, description="for a new service")
    token: str | None = Field(
        None, max_length=200, description="a service token, for clients without headers"
    )


class SignalIn(BaseModel):
    """A signal's JSON body (any other body is its message, as for a heartbeat)."""

    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        None, description="kept with the event; cut past 10 KiB, never refused (NUL becomes U+FFFD)"
    )
    duration_s: float | None = Field(
        None,
        ge=0,
        le=ONE_YEAR_S,
        description="the run's duration as the sender measured it; kept on an end no start pairs with",
    )
    interval_s: float | None = Field(
        None, gt=0, le=ONE_YEAR_S, description="admin token only: for a new service"
    )
    grace_s: float | None = Field(
        None, ge=0, le=ONE_YEAR_S, description="admin token only: for a new service"
    )


class ServiceOut(BaseModel):
    name: str
    state: SERVICE_STATES
    interval_s: float | None = Field(description="null for a cron-scheduled service")
    schedule: ServiceSchedule | None = Field(None, description="a cron-scheduled service's schedule")
    grace_s: float
    last_seen_at: datetime | None
    last_status: Literal["ok", "fail"] | None
    last_message: str | None
    deadline_at: datetime | None = Field(description="when the state next changes unless a heartbeat arrives")
    state_changed_at: datetime
    heartbeat_count: int
    paused: bool
    created_at: datetime
    max_runtime_s: float | None = Field(None, description="a started run not ended within this is hung")
    open_runs: int = Field(0, description="runs started and not yet ended")
    fail_threshold: int = Field(1, description="service_down opens after this many failures in a row")
    fail_count: int = Field(0, description="failures in a row so far (a success resets it)")
    early_tolerance_s: float | None = Field(None, description="a heartbeat this much early is early")
    expected_at: datetime | None = Field(None, description="when the next heartbeat is expected")
    tags: list[str] = Field(default_factory=list, description="the service's tags")

    @classmethod
    def of(cls, row: Any) -> ServiceOut:
        fields = {name: row[name] for name in cls.model_fields if name in row}
        if row.get("schedule_cron") is not None:
            fields["schedule"] = ServiceSchedule.model_construct(
                cron=row["schedule_cron"], timezone=row["schedule_timezone"]
            )
        return cls.model_construct(**fields, paused=row["paused_at"] is not None)


EVENT_KINDS = Literal["ok", "fail", "start", "log"]


class HeartbeatOut(BaseModel):
    """One kept event: a heartbeat (``ok``/``fail``, also an exit code's), a run's ``start``, a ``log``."""

    number: int
    received_at: datetime
    status: EVENT_KINDS
    message: str | None
    truncated: bool
    rid: str | None = Field(None, description="the run id it named")
    duration_s: float | None = Field(None, description="an end paired with its start: the run's duration")
    exit_code: int | None = Field(None, description="sent as POST /heartbeats/{name}/{code}")


class EventList(BaseModel):
    events: list[HeartbeatOut] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class EventQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=1000, description="page size (1..1000)")
    cursor: int | None = Field(
        None, ge=0, le=2**63 - 1, description="next_cursor of the previous page (events numbered below it)"
    )


class FlipOut(BaseModel):
    at: datetime
    from_state: SERVICE_STATES
    to_state: SERVICE_STATES
    reason: str


class ServiceDetail(ServiceOut):
    heartbeats: list[HeartbeatOut] = Field(description="the most recent heartbeats, newest first")
    flips: list[FlipOut] = Field(description="the most recent state changes, newest first")


class ServiceList(BaseModel):
    services: list[ServiceOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class ServiceListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: SERVICE_STATES | None = Field(None, description="only services in this state")
    tag: TagFilter = _tag_filter("services")
    limit: int = Field(100, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(None, pattern=NAME_PATTERN, description="next_cursor of the previous page")


class HeartbeatAccepted(BaseModel):
    service: str
    state: SERVICE_STATES
    created: bool = Field(description="this heartbeat registered the service")
    received_at: datetime
    deadline_at: datetime | None
    truncated: bool = Field(description="the message was cut to the stored size")
    event: EVENT_KINDS = Field("ok", description="what was recorded")
    rid: str | None = Field(None, description="the run id it named")
    duration_s: float | None = Field(None, description="an end paired with its start: the run's duration")
    exit_code: int | None = Field(None, description="the exit code sent")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, max_length=128, description="where the token is used, for people")


class TokenOut(BaseModel):
    service: str
    token: str = Field(description="shown once; only its SHA-256 digest is stored")
    label: str | None


class TokenCreated(TokenOut):
    id: int = Field(description="the token's id: how it is listed and revoked")


class TokenInfo(BaseModel):
    id: int
    label: str | None
    created_at: datetime


class TokenList(BaseModel):
    tokens: list[TokenInfo] = Field(description="the service's tokens, oldest first (never the tokens)")


class SigningSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_s: float = Field(
        DEFAULT_OVERLAP_S,
        ge=0,
        le=MAX_OVERLAP_S,
        description="how long the secrets this one replaces keep signing, so receivers can switch over",
    )


class SigningSecretIssued(BaseModel):
    id: int
    service: str
    secret: str = Field(description="shown once; stored encrypted. `whsec_` + base64 of 32 random bytes")
    created_at: datetime
    previous_expire_at: datetime = Field(description="when the secrets this one replaced stop signing")


class SigningSecretOut(BaseModel):
    id: int
    kind: Literal["own", "default"] = Field(description="`default`: MC_SIGNING_SECRET, during an overlap")
    created_at: datetime
    expires_at: datetime | None = Field(description="null: the current secret")


class SigningSecretList(BaseModel):
    service: str
    signing_secrets: list[SigningSecretOut] = Field(
        description="the secrets signing this service's requests now, newest first; empty: MC_SIGNING_SECRET"
    )


# --- alerts -----------------------------------------------------------------------------------

ALERT_KINDS = Literal["service_down", "service_hung", "service_early", "job_failed", "job_slow", "job_missed"]
ALERT_STATES = Literal["open", "acknowledged", "resolved"]


class AlertOut(BaseModel):
    id: int
    kind: ALERT_KINDS
    subject: str = Field(description="the service or job the alert is about")
    state: ALERT_STATES
    message: str
    details: dict[str, Any] | None
    occurrences: int = Field(description="how often the condition was seen while this alert was unresolved")
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    ack_comment: str | None
    resolved_at: datetime | None
    duration_s: float | None = Field(description="opened to resolved, for resolved alerts")
    silence_id: int | None = Field(
        None, description="the silence that last kept a notice about it from going"
    )

    @classmethod
    def of(cls, row: Any) -> AlertOut:
        fields = {name: row[name] for name in cls.model_fields if name in row}
        resolved = row["resolved_at"]
        duration = (resolved - row["opened_at"]).total_seconds() if resolved else None
        return cls.model_construct(**fields, duration_s=duration)


class AlertList(BaseModel):
    alerts: list[AlertOut]
    next_cursor: str | None = Field(description="pass as `cursor` for older alerts; null on the last page")


class AlertListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "acknowledged", "resolved", "unresolved"] | None = Field(
        None, description="only alerts in this state (unresolved = open or acknowledged)"
    )
    kind: ALERT_KINDS | None = Field(None, description="only alerts of this kind")
    subject: Name | None = Field(None, description="only alerts about this service or job")
    since: Instant | None = Field(None, description="opened at or after this instant (with offset)")
    until: Instant | None = Field(None, description="opened before this instant (with offset)")
    limit: int = Field(50, ge=1, le=1000, description="page size (1..1000)")
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page")


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(None, max_length=2000, description="what is being done about it")


class AlertPattern(BaseModel):
    kind: ALERT_KINDS
    subject: str
    alerts: int = Field(description="alerts opened")
    occurrences: int = Field(description="times the condition was seen")
    unresolved: int
    resolved: int
    mean_time_to_recovery_s: float | None
    longest_s: float | None = Field(description="the longest alert, open ones counted up to now")
    total_open_s: float = Field(description="time spent with an unresolved alert")
    last_opened_at: datetime


class AlertSummary(BaseModel):
    patterns: list[AlertPattern] = Field(description="per kind and subject, unresolved first")


class AlertSummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant | None = Field(None, description="only alerts opened at or after this instant")


# --- notification channels --------------------------------------------------------------------

EMAIL_PATTERN = r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,253}$"


CHANNEL_KINDS = Literal["webhook", "slack", "email", "pagerduty", "apprise"]
URL_KINDS = ("webhook", "slack", "apprise")


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: CHANNEL_KINDS
    url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s]+$",
        description="webhook or Slack incoming-webhook URL (http or https), or an Apprise URL "
        "(ntfy://…, tgram://…, pagerduty://…); write-only: a credential",
    )
    to: list[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]] | None = Field(
        None, min_length=1, max_length=50, description="email recipients"
    )
    routing_key: str | None = Field(
        None,
        min_length=8,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="pagerduty: the Events API v2 integration (routing) key; write-only: a credential",
    )
    events_url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="pagerduty: where events go (default https://events.pagerduty.com/v2/enqueue)",
    )
    alert_kinds: list[ALERT_KINDS] | None = Field(
        None, min_length=1, description="only these kinds; null for all"
    )
    subject_pattern: str = Field(
        "*", min_length=1, max_length=128, description="fnmatch pattern, e.g. billing-*"
    )
    tag_pattern: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        pattern=r"^[a-z0-9_.:/*?\[\]!-]+$",
        description="fnmatch pattern one of the subject's tags must match too (team:billing, tier:*); "
        "null: any subject, tagged or not",
    )
    repeat_interval_s: float | None = Field(
        None, ge=60, le=7 * 86_400, description="notify again this often while open and unacknowledged"
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _destination_fits_kind(self) -> ChannelIn:
        if self.kind != "pagerduty":
            if self.routing_key is not None:
                raise ValueError("routing_key: only a pagerduty channel takes `routing_key`")
            if self.events_url is not None:
                raise ValueError("events_url: only a pagerduty channel takes `events_url`")
        if self.kind == "email":
            if not self.to or self.url is not None:
                raise ValueError("to: an email channel needs `to` (and no `url`)")
        elif self.kind == "pagerduty":
            if not self.routing_key:
                raise ValueError("routing_key: a pagerduty channel needs `routing_key`")
            if self.url is not None or self.to is not None:
                raise ValueError("url: a pagerduty channel takes `routing_key` and `events_url`, no `url`")
        elif not self.url or self.to is not None:
            raise ValueError(f"url: a {self.kind} channel needs `url` (and no `to`)")
        if self.kind in ("webhook", "slack") and not re.match(r"https?://", self.url or ""):
            raise ValueError(f"url: a {self.kind} channel's URL is an http or https URL")
        if self.kind == "slack" and not (self.url or "").startswith("https://"):
            raise ValueError("url: Slack incoming webhooks are https URLs")
        return self


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: CHANNEL_KINDS
    destination: str = Field(
        description="where notices go; URLs shown only to their host (they carry secrets)"
    )
    alert_kinds: list[ALERT_KINDS] | None
    subject_pattern: str
    tag_pattern: str | None = Field(None, description="one of the subject's tags must match; null: any")
    repeat_interval_s: float | None
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> ChannelOut:
        """The channel as answered: its URL (a credential) shown to its host and port only."""
        fields = {name: row[name] for name in cls.model_fields if name in row}
        return cls.model_construct(**fields, destination=destination(row["target"]))


class ChannelList(BaseModel):
    channels: list[ChannelOut]


class NoticeAttemptOut(BaseModel):
    number: int
    at: datetime
    duration_ms: float
    outcome: Literal["sent", "transient", "permanent"]
    detail: str | None


class NoticeOut(BaseModel):
    id: int
    alert_id: int | None
    event: Literal["opened", "resolved", "repeat", "acknowledged", "test"]
    status: Literal["pending", "sent", "failed", "silenced"]
    silence_id: int | None = Field(description="the silence that kept this notice from being sent")
    attempts: int
    error_kind: Literal["transient", "permanent"] | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery_attempts: list[NoticeAttemptOut]

    @classmethod
    def of(cls, row: dict[str, Any]) -> NoticeOut:
        fields = {name: row[name] for name in cls.model_fields if name in row and name != "delivery_attempts"}
        attempts = [NoticeAttemptOut.model_construct(**a) for a in row.get("delivery_attempts", [])]
        return cls.model_construct(**fields, delivery_attempts=attempts)


class NoticeList(BaseModel):
    notices: list[NoticeOut]
