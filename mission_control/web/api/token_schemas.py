"""Request and response models of ``/api/v1/tokens`` (kept apart from ``schemas.py``, which other
resources share): what a token is asked for with, and what is shown of it (the secret only once)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mission_control.jobs.spec import NAME_PATTERN, Name
from mission_control.web.api.scopes import SCOPES

Scope = Literal[SCOPES]  # type: ignore[valid-type]


class ApiTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="unique, for people: who holds the token, e.g. billing-deployer")
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES), description="what the token may do")
    service: Name | None = Field(None, description="the one service it may act for; null: every service")
    expires_at: datetime | None = Field(None, description="refused (401) from then on; null: never")

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[str]) -> list[str]:
        return list(dict.fromkeys(scopes))

    @field_validator("expires_at", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):  # JSON has no dates: a number is no time
            raise ValueError("an ISO-8601 time with a zone, e.g. 2027-01-01T00:00:00Z")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2027-01-01T00:00:00Z")
        return value


class ApiTokenOut(BaseModel):
    id: int = Field(description="how the token is revoked")
    name: str
    scopes: list[str]
    service: str | None
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None = Field(description="within a minute: uses are recorded once a minute")
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="shown once; only its SHA-256 digest is stored")


class ApiTokenList(BaseModel):
    tokens: list[ApiTokenOut]


class ApiTokenListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: bool = Field(False, description="include revoked tokens")


__all__ = [
    "NAME_PATTERN",
    "ApiTokenCreated",
    "ApiTokenIn",
    "ApiTokenList",
    "ApiTokenListQuery",
    "ApiTokenOut",
]
