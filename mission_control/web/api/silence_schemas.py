"""Request and response models of ``/api/v1/silences`` (see :mod:`mission_control.monitoring.silences`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from mission_control.monitoring.silences import state_of
from mission_control.web.api.schemas import ALERT_KINDS

SILENCE_STATES = Literal["pending", "active", "expired"]
MAX_SILENCE_S = 366 * 86_400


class SilenceIn(BaseModel):
    """Matchers (kinds, subject, tags), a window and why."""

    model_config = ConfigDict(extra="forbid")

    alert_kinds: list[ALERT_KINDS] | None = Field(
        None, min_length=1, description="only alerts of these kinds; null for every kind"
    )
    subject_pattern: str = Field(
        "*", min_length=1, max_length=128, description="fnmatch pattern on the alert's subject, as channels'"
    )
    tag_pattern: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        pattern=r"^[a-z0-9_.:/*?\[\]!-]+$",
        description="fnmatch pattern one of the subject's tags must match (team:billing, tier:*); "
        "null: any subject, tagged or not",
    )
    starts_at: AwareDatetime | None = Field(None, description="when it begins; null for now")
    ends_at: AwareDatetime = Field(description="when it ends; after starts_at and in the future")
    comment: str = Field(min_length=1, max_length=2000, description="why (a maintenance, a known outage)")

    @model_validator(mode="after")
    def _window(self) -> SilenceIn:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at: a silence ends after it starts")
        if self.starts_at is not None and (self.ends_at - self.starts_at).total_seconds() > MAX_SILENCE_S:
            raise ValueError("ends_at: a silence lasts at most 366 days")
        return self


class SilenceOut(BaseModel):
    id: int
    alert_kinds: list[ALERT_KINDS] | None
    subject_pattern: str
    tag_pattern: str | None
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str = Field(description="the token (or dashboard session) that made it")
    created_at: datetime
    expired_at: datetime | None = Field(description="when someone ended it early")
    state: SILENCE_STATES

    @classmethod
    def of(cls, row: Any, now: datetime) -> SilenceOut:
        fields = {name: row[name] for name in cls.model_fields if name in row}
        return cls.model_construct(**fields, state=state_of(row, now))


class SilenceList(BaseModel):
    silences: list[SilenceOut]


class SilenceListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: SILENCE_STATES | None = Field(None, description="only pending, active or expired silences")
