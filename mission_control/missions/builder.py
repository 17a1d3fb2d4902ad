"""The Python way to write a definition: ``mission("approval").start(...).http(...)...end()``.

The builder only collects the JSON form; :meth:`MissionBuilder.end` validates it with the same code
the API uses, so a definition written in Python and one sent as JSON are checked identically.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mission_control.missions.definition import MissionDefinition, StepRetry, parse_definition

RetryLike = StepRetry | dict[str, Any] | None


class MissionBuilder:
    def __init__(self, name: str, description: str | None = None) -> None:
        self._data: dict[str, Any] = {"name": name, "steps": []}
        if description is not None:
            self._data["description"] = description

    def start(self, *, input_schema: dict[str, Any] | None = None) -> MissionBuilder:
        """Declare the JSON Schema a start's input must match (any JSON object when omitted)."""
        if input_schema is not None:
            self._data["input_schema"] = input_schema
        return self

    def http(
        self,
        name: str,
        *,
        url: str,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        body: Any = None,
        timeout_s: float = 30.0,
        retry: RetryLike = None,
    ) -> MissionBuilder:
        step: dict[str, Any] = {
            "name": name,
            "kind": "http",
            "url": url,
            "method": method,
            "timeout_s": timeout_s,
        }
        if headers:
            step["headers"] = headers
        if body is not None:
            step["body"] = body
        return self._add(step, retry)

    def wait_for(
        self,
        name: str,
        *,
        signal: str | None = None,
        schema: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> MissionBuilder:
        step: dict[str, Any] = {"name": name, "kind": "wait_for"}
        if signal is not None:
            step["signal"] = signal
        if schema is not None:
            step["schema"] = schema
        if timeout_s is not None:
            step["timeout_s"] = timeout_s
        return self._add(step, None)

    def sleep(
        self, name: str, *, seconds: float | None = None, until: str | datetime | None = None
    ) -> MissionBuilder:
        step: dict[str, Any] = {"name": name, "kind": "sleep"}
        if seconds is not None:
            step["seconds"] = seconds
        if until is not None:
            step["until"] = until.isoformat() if isinstance(until, datetime) else until
        return self._add(step, None)

    def call(
        self, name: str, *, function: str, args: Any = None, timeout_s: float = 30.0, retry: RetryLike = None
    ) -> MissionBuilder:
        step: dict[str, Any] = {"name": name, "kind": "call", "function": function, "timeout_s": timeout_s}
        if args is not None:
            step["args"] = args
        return self._add(step, retry)

    def end(self) -> MissionDefinition:
        """The validated definition; raises DefinitionError naming the field at fault."""
        return parse_definition(self._data)

    def _add(self, step: dict[str, Any], retry: RetryLike) -> MissionBuilder:
        if retry is not None:
            step["retry"] = retry.model_dump() if isinstance(retry, StepRetry) else dict(retry)
        self._data["steps"].append(step)
        return self


def mission(name: str, description: str | None = None) -> MissionBuilder:
    return MissionBuilder(name, description)
