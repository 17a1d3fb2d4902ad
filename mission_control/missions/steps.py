"""Doing one attempt of an ``http`` or ``call`` step, outside any transaction.

HTTP steps go out like job triggers (same hard deadline, same signature, redirects not followed) with
``Idempotency-Key: mission:<id>:<step>``, the same for every attempt of the step, because delivery is
at-least-once: a worker that dies after the target acted but before the result was committed makes
the step run again, and the target must be able to tell.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from mission_control.base.clock import Clock
from mission_control.missions.callables import StepCallable, StepFailed
from mission_control.missions.machine import StepOutcome, StepRequest
from mission_control.outbound.sender import send
from mission_control.outbound.signing import SIGNATURE_HEADER, sign

USER_AGENT = "mission-control"
DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024


@dataclass(frozen=True)
class StepRunner:
    session: requests.Session
    signing_secret: str
    clock: Clock
    callables: Callable[[], Mapping[str, StepCallable]]
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    def run(self, request: StepRequest) -> StepOutcome:
        if request.kind == "http":
            return self._http(request)
        return run_callable(request, self.callables())

    def _http(self, request: StepRequest) -> StepOutcome:
        body = None if request.body is None else json.dumps(request.body, separators=(",", ":")).encode()
        headers = {"User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(request.headers)
        headers.update(
            {
                "Idempotency-Key": request.idempotency_key,
                "X-Mission-Control-Mission": request.mission_id,
                "X-Mission-Control-Step": request.step,
                "X-Mission-Control-Attempt": str(request.attempt),
                SIGNATURE_HEADER: sign(
                    self.signing_secret,
                    method=request.method,
                    url=request.url,
                    idempotency_key=request.idempotency_key,
                    body=body or b"",
                    timestamp=int(self.clock.now().timestamp()),
                ),
            }
        )
        outcome = send(
            self.session,
            method=request.method,
            url=request.url,
            headers=headers,
            body=body,
            timeout_s=request.timeout_s,
            excerpt_bytes=self.max_output_bytes,
            now=self.clock.now(),
        )
        if outcome.kind == "timeout":
            return StepOutcome(
                ok=False,
                retryable=True,
                code="timeout",
                message=outcome.error_message or "",
                duration_ms=outcome.duration_ms,
            )
        if outcome.kind == "refused":  # the outbound policy (SSRF guard): a retry would be refused too
            return StepOutcome(
                ok=False,
                retryable=False,
                code="destination_refused",
                message=outcome.error_message or "",
                duration_ms=outcome.duration_ms,
            )
        if outcome.kind != "response":
            return StepOutcome(
                ok=False,
                retryable=True,
                code="connection_error",
                message=f"{outcome.error_class}: {outcome.error_message}",
                duration_ms=outcome.duration_ms,
            )
        return http_outcome(
            outcome.status or 0,
            outcome.excerpt or "",
            outcome.truncated,
            outcome.duration_ms,
            outcome.retry_after_s,
        )


def http_outcome(
    status: int,
    text: str,
    truncated: bool,
    duration_ms: float | None = None,
    retry_after_s: float | None = None,
) -> StepOutcome:
    """A response as a step outcome: 2xx succeeds with the JSON body (or its text) as output; 5xx, 429
    and 408 are retried; any other status fails the step at once, as for a job's trigger."""
    if 200 <= status < 300:
        if truncated:
            return StepOutcome(
                ok=False,
                code="output_too_large",
                http_status=status,
                duration_ms=duration_ms,
                message="the response body is larger than the step output limit",
            )
        return StepOutcome(ok=True, output=_parse_output(text), http_status=status, duration_ms=duration_ms)
    retryable = status >= 500 or status in (408, 429)
    return StepOutcome(
        ok=False,
        retryable=retryable,
        code="http_error",
        http_status=status,
        message=f"HTTP {status}: {text[:200]}",
        duration_ms=duration_ms,
        retry_after_s=retry_after_s,
    )


def _parse_output(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_callable(request: StepRequest, registry: Mapping[str, StepCallable]) -> StepOutcome:
    """Call a registered function with the step's args, within the step's timeout.

    Python cannot stop a thread, so a callable that overruns is abandoned: the attempt is recorded
    ``timeout`` and retried, while the call itself finishes in the background. Step functions should
    carry their own timeouts on what they wait for.
    """
    fn = registry.get(request.function)
    if fn is None:
        return StepOutcome(
            ok=False,
            code="unknown_function",
            message=f"no step function {request.function!r} is registered with this worker",
        )
    result: dict[str, Any] = {}
    started = time.monotonic()

    def target() -> None:
        try:
            value = fn(request.args)
        except BaseException as exc:  # every failure is the step's outcome
            result["error"] = exc
            return
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            result["not_json"] = exc
            return
        result["value"] = value

    thread = threading.Thread(target=target, name=f"mc-step-{request.step}", daemon=True)
    thread.start()
    thread.join(request.timeout_s)
    duration_ms = round((time.monotonic() - started) * 1000, 3)
    if thread.is_alive():
        return StepOutcome(
            ok=False,
            retryable=True,
            code="timeout",
            duration_ms=duration_ms,
            message=f"{request.function} did not return within {request.timeout_s:g} s",
        )
    error = result.get("error")
    if isinstance(error, StepFailed):
        return StepOutcome(
            ok=False, retryable=error.retryable, code=error.code, message=str(error), duration_ms=duration_ms
        )
    if "not_json" in result:
        return StepOutcome(
            ok=False,
            code="output_not_json",
            duration_ms=duration_ms,
            message=f"{request.function} returned something JSON cannot hold: {result['not_json']}",
        )
    if error is not None:
        return StepOutcome(
            ok=False,
            retryable=True,
            code="exception",
            message=f"{type(error).__name__}: {error}"[:500],
            duration_ms=duration_ms,
        )
    return StepOutcome(ok=True, output=result.get("value"), duration_ms=duration_ms)
