"""What every resource blueprint answers the same way: model bodies, path names, keyset pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from flask import Response, jsonify
from pydantic import BaseModel

from mission_control.base.config import Settings
from mission_control.jobs.spec import NAME_PATTERN
from mission_control.outbound.secretbox import SecretBox
from mission_control.web.api.errors import ApiError

T = TypeVar("T")


def json_response(model: BaseModel, status: int = 200) -> Response:
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


def check_name(name: str, field: str = "name") -> None:
    """A name from the path must be one the registry could hold; a 422 naming the field otherwise."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ApiError(
            422, "validation_error", f"{field}: {name!r} does not match [a-z0-9][a-z0-9._-]{{0,127}}", field
        )


def keyset_page(rows: Sequence[T], limit: int, cursor_of: Callable[[T], Any]) -> tuple[list[T], str | None]:
    """``rows`` was read with ``limit + 1``: the page, and the cursor of the next one if there is one."""
    page = list(rows[:limit])
    return page, (str(cursor_of(page[-1])) if len(rows) > limit else None)


@lru_cache(maxsize=8)
def secret_box(settings: Settings) -> SecretBox:
    """The box sealing stored secrets (MC_SECRET_KEY), one per settings so its cache is shared."""
    return SecretBox.from_settings(settings)
