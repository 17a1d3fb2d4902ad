"""What a job is: the validated specification services register.

These pydantic models are the single definition of a job: the API validates requests with them, the
OpenAPI document is generated from them, the registry stores what they produce and the executor reads
it back through them. They import nothing from Flask, Celery or SQLAlchemy.

Strict mode is on: a JSON API that turns ``"30"`` into ``30`` or ``"yes"`` into ``True`` hides client
bugs, so types must be what they say (integers are still accepted where a number is expected).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mission_control.base import schedules
from mission_control.base.schedules import Schedule, ScheduleError
from mission_control.base.tags import TAG_HELP, Tags
from mission_control.outbound.signing import SignatureScheme

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

DEFAULT_MAX_TARGET_BODY_BYTES = 64 * 1024
MAX_URL_LENGTH = 2048
MAX_HEADERS = 64
MAX_HEADER_VALUE_LENGTH = 8192

# RFC 9110 hop-by-hop and connection-managed headers: a trigger cannot meaningfully set them, and some
# (Host, Content-Length, Transfer-Encoding) would let a stored job smuggle a different request.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Set by Mission Control on every trigger; a job must not be able to forge them.
RESERVED_HEADER_PREFIX = "x-mission-control-"
RESERVED_HEADERS = frozenset({"idempotency-key"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

READ_ONLY_FIELDS = frozenset(
    {"next_run_at", "last_run", "created_at", "updated_at", "revision", "schedule_description"}
)


def _is_none(value: object) -> bool:
    return value is None


def _reading_stored(info: ValidationInfo) -> bool:
    """Whether this validation reads back a spec stored earlier (``context={"stored": True}``, as the
    registry and the mission store read them): rules added later must not make stored ones unreadable."""
    return bool((info.context or {}).get("stored"))


# How stored secret values begin (mission_control.outbound.secretbox.SEALED_PREFIX; that module imports
# cryptography, which this pure module does not). A client never sends one: values arrive in plaintext.
SEALED_PREFIX = "mc-sealed:v1:"
# What answers show for a secret header's value, and what a client sends back to keep the stored one.
SECRET_PLACEHOLDER = "****"
# Headers whose values are credentials whether or not the job lists them in ``secret_headers``.
DEFAULT_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _not_sealed(value: str, info: ValidationInfo) -> str:
    if value.startswith(SEALED_PREFIX) and not _reading_stored(info):
        raise ValueError(f"a header value must not begin with {SEALED_PREFIX!r} (the value is not shown)")
    return value


def _no_surrounding_whitespace(value: str, info: ValidationInfo) -> str:
    # HTTP clients refuse such a value at send time (requests: "Invalid leading whitespace ... in
    # header value: '<the value>'"), and that error, secret and all, would become the run's error
    # message on the dashboard. Refused here instead, by a message that never repeats the value.
    if value != value.strip() and not _reading_stored(info):
        raise ValueError("a header value must not begin or end with whitespace (the value is not shown)")
    return value


HeaderValue = Annotated[str, AfterValidator(_no_surrounding_whitespace), AfterValidator(_not_sealed)]


class StrictModel(BaseModel):
    """Unknown fields are errors, not silently dropped: a typo must not become a default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ScheduleSpec(StrictModel):
    """Exactly one of ``cron``, ``every_s`` or ``at``, with the IANA timezone it is read in."""

    # Declared first so the cron and `at` validators can read it from the already-validated data.
    timezone: str = Field("UTC", description="IANA timezone the schedule is read in, e.g. Europe/Riga")
    # Answers show only the kind chosen: {"cron": ..., "timezone": ...}, not nulls for the other two.
    cron: str | None = Field(
        None,
        exclude_if=_is_none,
        description="5-field cron expression or an alias such as @hourly",
        examples=["*/5 * * * *"],
    )
    every_s: int | None = Field(
        None,
        exclude_if=_is_none,
        ge=1,
        le=31_536_000,
        description="fixed interval in seconds, aligned to the Unix epoch",
    )
    at: datetime | None = Field(
        None,
        exclude_if=_is_none,
        description="one-shot instant (ISO-8601; without an offset it is read in `timezone`)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            schedules.load_timezone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            schedules.parse_cron(value, info.data.get("timezone", "UTC"))
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _localize_at(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str | datetime):
            raise ValueError("at must be an ISO-8601 date-time string")
        try:
            parsed = schedules.schedule_from_dict({"at": value, "timezone": info.data.get("timezone", "UTC")})
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        assert isinstance(parsed, schedules.OneShotSchedule)
        return parsed.at

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> ScheduleSpec:
        given = [key for key in ("cron", "every_s", "at") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "a schedule needs exactly one of cron, every_s or at"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def to_schedule(self) -> Schedule:
        return schedules.cached_schedule(self.model_dump(exclude_none=True))


class MissionStart(StrictModel):
    """A mission each run starts instead of sending a request (its id: ``<job>:<run id>``)."""

    definition: Name = Field(description="the mission definition to start (its latest version)")
    input: JsonValue = Field(
        None, description="the mission's input; must match the definition's input_schema"
    )


class TargetSpec(StrictModel):
    """What a run does: send an HTTP request (``url``…), or start a mission (``mission``)."""

    url: str | None = Field(None, max_length=MAX_URL_LENGTH, description="http(s) URL the trigger is sent to")
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    headers: dict[str, HeaderValue] = Field(
        default_factory=dict,
        description="extra request headers; values must not begin or end with whitespace",
    )
    secret_headers: list[str] = Field(
        default_factory=list,
        exclude_if=lambda names: not names,
        max_length=MAX_HEADERS,
        description=(
            "names of further headers whose values are credentials. Their values, and those of "
            "Authorization, Proxy-Authorization, Cookie and X-Api-Key, are write-only: stored encrypted, "
            'sent on triggers, answered as "****"; sending "****" back keeps the stored value'
        ),
    )
    body: JsonValue = Field(None, description="JSON body sent with the request; null sends none")
    signature: SignatureScheme = Field(
        "mission-control",
        description=(
            "signature headers: X-Mission-Control-Signature (binds method, URL, Idempotency-Key and body), "
            "or the Standard Webhooks set (webhook-id, webhook-timestamp, webhook-signature)"
        ),
    )
    mission: MissionStart | None = Field(None, description="instead of a request: start this mission")

    @model_validator(mode="after")
    def _request_or_mission(self) -> TargetSpec:
        if self.mission is None and self.url is None:
            raise ValueError("give url (a request to send) or mission (a mission to start)")
        if self.mission is not None and (
            self.url is not None
            or self.headers
            or self.secret_headers
            or self.body is not None
            or self.method != "POST"
            or self.signature != "mission-control"
        ):
            raise ValueError("a target that starts a mission has no url, method, headers, body or signature")
        return self

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            port = parts.port  # raises on a malformed or out-of-range port
        except ValueError as exc:
            raise ValueError(f"url is not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must start with http:// or https://")
        if not parts.hostname:
            raise ValueError("url has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry credentials; put them in target.headers")
        if port == 0:
            raise ValueError("url has port 0")
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise ValueError("url contains whitespace or control characters")
        return value

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_HEADERS:
            raise ValueError(f"at most {MAX_HEADERS} headers are allowed")
        seen: set[str] = set()
        for name, header_value in value.items():
            lowered = name.lower()
            if not _TOKEN.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP token")
            if lowered in seen:
                raise ValueError(f"header {name!r} is given twice (names are case-insensitive)")
            seen.add(lowered)
            if lowered in FORBIDDEN_HEADERS:
                raise ValueError(
                    f"header {name!r} is hop-by-hop or managed by the HTTP client and cannot be set"
                )
            if lowered.startswith(RESERVED_HEADER_PREFIX) or lowered in RESERVED_HEADERS:
                raise ValueError(
                    f"header {name!r} is set by Mission Control on every trigger and cannot be set"
                )
            if len(header_value) > MAX_HEADER_VALUE_LENGTH and not header_value.startswith(SEALED_PREFIX):
                raise ValueError(f"header {name!r} is longer than {MAX_HEADER_VALUE_LENGTH} characters")
            if any(ch in header_value for ch in "\r\n\x00"):
                raise ValueError(f"header {name!r} contains a line break or NUL")
        return value

    @field_validator("secret_headers")
    @classmethod
    def _header_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _TOKEN.match(name):
                raise ValueError(f"secret_headers: {name!r} is not a valid HTTP header name")
        return value

    def secret_header_names(self) -> frozenset[str]:
        """The lower-cased names of the headers whose values are write-only."""
        return DEFAULT_SECRET_HEADERS | {name.lower() for name in self.secret_headers}

    @field_validator("body")
    @classmethod
    def _body_within_limit(cls, value: JsonValue, info: ValidationInfo) -> JsonValue:
        limit = (info.context or {}).get("max_target_body_bytes", DEFAULT_MAX_TARGET_BODY_BYTES)
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > limit:
            raise ValueError(
                f"body is {size} bytes as JSON; the limit is {limit} bytes (MC_MAX_TARGET_BODY_BYTES)"
            )
        return value


class RetrySpec(StrictModel):
    """How failed attempts are retried: exponential backoff from ``backoff_s``, capped, with jitter."""

    max_attempts: int = Field(3, ge=1, le=20, description="attempts in all, the first included (1..20)")
    backoff_s: float = Field(1.0, ge=0, le=3600, description="delay before the second attempt (0..3600 s)")
    backoff_max_s: float = Field(300.0, ge=0, le=86_400, description="cap on any one delay (0..86400 s)")
    jitter: float = Field(0.1, ge=0, le=1, description="random spread as a fraction of each delay (0..1)")

    @field_validator("backoff_max_s")
    @classmethod
    def _cap_not_below_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("backoff_s")
        if base is not None and value < base:
            raise ValueError(f"backoff_max_s ({value}) must not be below backoff_s ({base})")
        return value


class JobSpec(StrictModel):
    """A job as a service registers it."""

    name: Name = Field(description="unique name matching [a-z0-9][a-z0-9._-]{0,127}")
    service: Name = Field(description="the service that owns the job")
    target: TargetSpec
    schedule: ScheduleSpec
    timeout_s: float = Field(30.0, gt=0, le=3600, description="hard limit on one attempt (0 < t <= 3600 s)")
    expected_runtime_s: float | None = Field(
        None, gt=0, le=86_400, description="a run longer than this is marked slow (0 < t <= 86400 s)"
    )
    retry: RetrySpec = Field(default_factory=RetrySpec)
    concurrency: Literal["allow", "forbid"] = Field(
        "forbid", description="forbid: a slot due while the previous run is unfinished is skipped"
    )
    misfire: Literal["run_once", "skip"] = Field(
        "run_once", description="what to do with slots missed while no scheduler ran"
    )
    enabled: bool = True
    tags: Tags = Field(default_factory=list, description=TAG_HELP, examples=[["team:billing", "tier:1"]])

    def to_schedule(self) -> Schedule:
        return self.schedule.to_schedule()


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a PATCH body to a job's JSON form.

    Top-level keys replace; ``target`` and ``retry`` merge one level deep so a caller can change one
    header map or one retry knob without restating the rest. ``schedule`` is replaced whole, because
    its kinds exclude each other and merging ``every_s`` into a cron schedule would be meaningless.
    """
    merged = dict(current)
    for key, value in patch.items():
        if key in ("target", "retry") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


class SpecError(ValueError):
    """A spec that is well-formed but cannot be registered now; ``field`` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_registrable(spec: JobSpec, now: datetime, previous: JobSpec | None) -> None:
    """Refuse a one-shot whose instant has passed, unless it is the one already stored.

    Re-registering an unchanged one-shot after it fired must stay a no-op, or services that PUT their
    jobs on every deploy would start failing the day after.
    """
    at = spec.schedule.at
    if at is not None and at <= now and (previous is None or previous.schedule != spec.schedule):
        raise SpecError(f"at {at.isoformat()} is in the past (now is {now.isoformat()})", "schedule.at")
