"""A small client of the Mission Control HTTP API, used by the CLI and by services.

It speaks only HTTP and needs only ``requests``: it is published alone as the ``mission-control-client``
distribution (``clients/python``, whose ``mission_control_client`` is this very package) and is
re-exported by the server package as ``mission_control.client``. So it imports nothing of
``mission_control``; ``_signing`` is the signature scheme's only copy, which the server's
:mod:`mission_control.outbound.signing` re-exports, so signer and verifier cannot drift apart.

Every error is a :class:`MissionControlError`; the common kinds have subclasses (:class:`NotFound`,
:class:`Unauthorized`, :class:`Forbidden`, :class:`Conflict`, :class:`RateLimited`,
:class:`Unavailable`). Idempotent calls (GET, PUT, DELETE) and heartbeats are retried when the
server answers that it is briefly unavailable or rate-limits them, waiting what ``Retry-After`` asks
(within a bound); a POST that creates or changes something is never repeated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from ._signing import SIGNATURE_HEADER, verify

__all__ = [
    "Conflict",
    "Forbidden",
    "MissionControl",
    "MissionControlError",
    "Monitor",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "verify_signature",
]

log = logging.getLogger(__name__)

UNFINISHED = frozenset({"queued", "running", "retrying"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({429, 502, 503, 504})


class MissionControlError(RuntimeError):
    """The API answered with an error (or not at all)."""

    def __init__(self, status: int | None, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{message} ({code}{f', HTTP {status}' if status else ''})")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s: float | None = None


class Unauthorized(MissionControlError):
    """401: no token, or one the server does not know (revoked, expired, mistyped)."""


class Forbidden(MissionControlError):
    """403: the token is valid but lacks the scope, or is bound to another service."""


class NotFound(MissionControlError):
    """404: no such job, run, service, alert, channel, token or mission."""


class Conflict(MissionControlError):
    """409: the request contradicts the current state (a name taken, a run already finished...)."""


class RateLimited(MissionControlError):
    """429: too many requests; ``retry_after_s`` says when to try again (None if not said)."""


class Unavailable(MissionControlError):
    """503 (or 502/504, or no answer at all): the server cannot serve now; worth retrying later."""


_KINDS: dict[int, type[MissionControlError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def _error(status: int | None, code: str, message: str, field: str | None = None) -> MissionControlError:
    kind = Unavailable if status is None and code == "unreachable" else _KINDS.get(status or 0)
    return (kind or MissionControlError)(status, code, message, field)


class MissionControl:
    """``MissionControl(url, token)``; every method is one HTTP call (or one per page for listings)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
        retries: int = 3,
        max_retry_wait_s: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
    ):
        """``retries``: how many times an idempotent call or a heartbeat is repeated after a 429, 502,
        503 or 504 (not after no answer at all); each wait is what ``Retry-After`` asks (else 0.5, 1,
        2... s), and a wait longer than ``max_retry_wait_s`` is not made: the error is raised at once
        instead."""
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.retries = retries
        self.max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep

    # -- jobs ------------------------------------------------------------------------------------------

    def jobs(
        self,
        *,
        service: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] = (),
        page_size: int = 500,
    ) -> Iterator[dict]:
        """Every job, page by page; ``tags``: only jobs carrying all of them."""
        params: dict[str, Any] = {"limit": page_size}
        if service is not None:
            params["service"] = service
        if enabled is not None:
            params["enabled"] = "true" if enabled else "false"
        if tags:
            params["tag"] = list(tags)
        while True:
            page = self._call("GET", "/api/v1/jobs", params=params)
            yield from page["jobs"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def job(self, name: str) -> dict:
        return self._call("GET", f"/api/v1/jobs/{quote(name, safe='')}")

    def put_job(self, spec: Mapping[str, Any]) -> tuple[dict, bool]:
        """Register ``spec`` (idempotent); returns the stored job and whether it was newly created."""
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise MissionControlError(None, "validation_error", "name: a job needs a name", "name")
        response = self._request("PUT", f"/api/v1/jobs/{quote(name, safe='')}", body=spec)
        return response.json(), response.status_code == 201

    def delete_job(self, name: str) -> None:
        self._call("DELETE", f"/api/v1/jobs/{quote(name, safe='')}")

    def pause_job(self, name: str) -> dict:
        return self._call("POST", f"/api/v1/jobs/{quote(name, safe='')}/pause")

    def resume_job(self, name: str) -> dict:
        return self._call("POST", f"/api/v1/jobs/{quote(name, safe='')}/resume")

    def trigger(
        self, name: str, *, wait: bool = False, timeout_s: float = 300.0, poll_s: float = 0.5
    ) -> dict:
        """Run ``name`` now; with ``wait``, poll until the run ends (or ``timeout_s`` passes)."""
        run = self._call("POST", f"/api/v1/jobs/{quote(name, safe='')}/trigger")
        if not wait:
            return run
        deadline = time.monotonic() + timeout_s
        while run["status"] in UNFINISHED:
            if time.monotonic() > deadline:
                raise MissionControlError(
                    None, "timeout", f"run {run['id']} still {run['status']} after {timeout_s} s"
                )
            time.sleep(poll_s)
            run = self.run(run["id"])
        return run

    # -- runs ------------------------------------------------------------------------------------------

    def runs(self, *, job: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
        """The newest ``limit`` runs, newest first."""
        params: dict[str, Any] = {"limit": min(limit, 1000)}
        if job is not None:
            params["job"] = job
        if status is not None:
            params["status"] = status
        found: list[dict] = []
        while len(found) < limit:
            page = self._call("GET", "/api/v1/runs", params=params)
            found.extend(page["runs"])
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        return found[:limit]

    def run(self, run_id: int) -> dict:
        return self._call("GET", f"/api/v1/runs/{int(run_id)}")

    # -- services, heartbeats and alerts ----------------------------------------------------------------

    def heartbeat(
        self,
        service: str,
        *,
        status: str = "ok",
        message: str | None = None,
        rid: str | None = None,
        retry_for_s: float = 0,
    ) -> dict:
        """Tell Mission Control ``service`` is alive (``status="fail"`` marks it down at once).

        ``rid``: this ends the run :meth:`start` began with the same run id. ``retry_for_s``: also
        repeat it while the server cannot be reached, for up to that long in all (see :meth:`start`).
        """
        body: dict[str, Any] = {"status": status}
        if message is not None:
            body["message"] = message
        # A repeated heartbeat says the same thing again, so it is retried like an idempotent call.
        return self._ping(self._beat_path(service), rid=rid, body=body, retry_for_s=retry_for_s)

    def start(
        self, service: str, *, rid: str | None = None, message: str | None = None, retry_for_s: float = 0
    ) -> dict:
        """A run of ``service`` starts: its end (:meth:`exit_status`, :meth:`heartbeat`, with the same
        ``rid`` if given) records how long it took, and a run not ended within the service's
        ``max_runtime_s`` opens ``service_hung``. Runs that may overlap should each have their own
        ``rid`` (a UUID, e.g. ``str(uuid.uuid4())``).

        ``retry_for_s``: repeat the ping after a network error (and 429/502/503/504) with growing
        pauses (0.5, 1, 2... s) until it is delivered or that long has passed in all; each attempt
        waits at most what is left. The last error is raised.
        """
        return self._ping(
            self._beat_path(service, "start"), rid=rid, body=_message(message), retry_for_s=retry_for_s
        )

    def exit_status(
        self,
        service: str,
        code: int,
        *,
        rid: str | None = None,
        message: str | None = None,
        duration_s: float | None = None,
        retry_for_s: float = 0,
    ) -> dict:
        """Report a command's exit status: 0 is success, 1-255 failure (the code is kept). It ends the
        run :meth:`start` began (same ``rid``); ``duration_s``, as measured here, is kept when no start
        reached the server. ``message``: e.g. the end of the command's output (cut past 10 KiB)."""
        body = _message(message)
        if duration_s is not None:
            body["duration_s"] = round(duration_s, 3)
        path = self._beat_path(service, str(int(code)))
        return self._ping(path, rid=rid, body=body, retry_for_s=retry_for_s)

    def log(self, service: str, message: str, *, rid: str | None = None, retry_for_s: float = 0) -> dict:
        """Keep a message among ``service``'s events without changing its state."""
        return self._ping(
            self._beat_path(service, "log"), rid=rid, body=_message(message), retry_for_s=retry_for_s
        )

    def events(self, service: str, *, limit: int = 50) -> list[dict]:
        """``service``'s newest kept events (heartbeats, starts, ends, logs), newest first."""
        return self._newest(f"/api/v1/services/{quote(service, safe='')}/events", "events", limit)

    def services(
        self, *, state: str | None = None, tags: Sequence[str] = (), page_size: int = 500
    ) -> Iterator[dict]:
        """Every service, page by page; ``tags``: only services carrying all of them."""
        params: dict[str, Any] = {"limit": page_size}
        if state is not None:
            params["state"] = state
        if tags:
            params["tag"] = list(tags)
        while True:
            page = self._call("GET", "/api/v1/services", params=params)
            yield from page["services"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def service(self, name: str) -> dict:
        return self._call("GET", f"/api/v1/services/{quote(name, safe='')}")

    def put_service(
        self,
        name: str,
        *,
        interval_s: float | None = None,
        grace_s: float = 0,
        max_runtime_s: float | None = None,
        schedule: dict[str, str] | None = None,
        fail_threshold: int | None = None,
        tags: Sequence[str] | None = None,
        early_tolerance_s: float | None = None,
    ) -> dict:
        """Register or change a service: ``interval_s`` or ``schedule`` (``{"cron": …, "timezone": …}``).

        A PUT replaces: ``tags`` left out leaves the service with none."""
        optional = {"interval_s": interval_s, "schedule": schedule, "max_runtime_s": max_runtime_s,
                    "fail_threshold": fail_threshold, "tags": list(tags) if tags else None,
                    "early_tolerance_s": early_tolerance_s}  # fmt: skip
        body = {"grace_s": grace_s} | {key: value for key, value in optional.items() if value is not None}
        return self._call("PUT", f"/api/v1/services/{quote(name, safe='')}", body=body)

    def delete_service(self, name: str) -> None:
        """Remove a service with its tokens and history."""
        self._call("DELETE", f"/api/v1/services/{quote(name, safe='')}")

    def pause_service(self, name: str) -> dict:
        """Silence a service: no staleness, no alerts until it is resumed."""
        return self._call("POST", self._service_path(name, "pause"))

    def resume_service(self, name: str) -> dict:
        return self._call("POST", self._service_path(name, "resume"))

    def service_tokens(self, service: str) -> list[dict]:
        """The service's heartbeat tokens: id, label, created_at (never the tokens themselves)."""
        return self._call("GET", self._service_path(service, "tokens"))["tokens"]  # type: ignore[no-any-return]

    def create_service_token(self, service: str, label: str | None = None) -> dict:
        """A token that may send this service's heartbeats only: ``token`` is shown this once."""
        body = {"label": label} if label else None
        return self._call("POST", self._service_path(service, "tokens"), body=body)

    def revoke_service_token(self, service: str, token_id: int) -> None:
        self._call("DELETE", f"{self._service_path(service, 'tokens')}/{int(token_id)}")

    def create_token(
        self,
        name: str,
        scopes: list[str],
        *,
        service: str | None = None,
        expires_at: str | datetime | None = None,
    ) -> dict:
        """A named token with these scopes (admin only), optionally bound to one service: ``token`` is
        shown this once."""
        when = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
        body = {"name": name, "scopes": list(scopes), "service": service, "expires_at": when}
        return self._call("POST", "/api/v1/tokens", body=body)

    def tokens(self, *, include_revoked: bool = False) -> list[dict]:
        """Every live token (with ``include_revoked``, revoked ones too); never the secrets."""
        path = "/api/v1/tokens?all=true" if include_revoked else "/api/v1/tokens"
        return self._call("GET", path)["tokens"]  # type: ignore[no-any-return]

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token: its next request is refused (401)."""
        self._call("DELETE", f"/api/v1/tokens/{int(token_id)}")

    def create_badge(
        self, *, service: str | None = None, job: str | None = None, tag: str | None = None
    ) -> dict:
        """A status badge for one service, job or tag: ``key`` and ``svg_url``/``json_url`` (paths on
        this server, no token needed) are shown this once; :meth:`badge_url` makes them absolute."""
        given = {kind: value for kind, value in (("service", service), ("job", job), ("tag", tag)) if value}
        return self._call("POST", "/api/v1/badges", body=given)

    def badges(self, *, include_revoked: bool = False) -> list[dict]:
        """Every live badge (with ``include_revoked``, revoked ones too); never a key."""
        params = {"all": "true"} if include_revoked else None
        return self._call("GET", "/api/v1/badges", params=params)["badges"]  # type: ignore[no-any-return]

    def revoke_badge(self, badge_id: int) -> None:
        """Revoke a badge: its URL answers 404 from now on."""
        self._call("DELETE", f"/api/v1/badges/{int(badge_id)}")

    def badge_url(self, path: str) -> str:
        """A badge's ``svg_url`` or ``json_url`` as an absolute URL on this server."""
        return self.url + path

    def audit(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int = 50,
    ) -> list[dict]:
        """The newest ``limit`` audit rows, newest first (``subject``: ``kind:name`` or a name)."""
        return self._newest(
            "/api/v1/audit",
            "entries",
            limit,
            subject=subject,
            actor=actor,
            action=action,
            since=since.isoformat() if isinstance(since, datetime) else since,
            until=until.isoformat() if isinstance(until, datetime) else until,
        )

    def signing_secrets(self, service: str) -> list[dict]:
        """The secrets signing the service's requests now (ids and lifetimes, never the values)."""
        answer = self._call("GET", self._service_path(service, "signing-secrets"))
        return answer["signing_secrets"]  # type: ignore[no-any-return]

    def rotate_signing_secret(self, service: str, *, overlap_s: float | None = None) -> dict:
        """Issue the service a new signing secret (``secret``, shown this once); the ones it replaces
        keep signing for ``overlap_s`` (the server's default: a day)."""
        body = None if overlap_s is None else {"overlap_s": overlap_s}
        return self._call("POST", self._service_path(service, "signing-secrets"), body=body)

    def revoke_signing_secret(self, service: str, secret_id: int) -> None:
        self._call("DELETE", f"{self._service_path(service, 'signing-secrets')}/{int(secret_id)}")

    @staticmethod
    def _service_path(service: str, part: str) -> str:
        return f"/api/v1/services/{quote(service, safe='')}/{part}"

    def alerts(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        subject: str | None = None,
        limit: int = 50,
    ) -> list[dict]:
        """The newest ``limit`` alerts (``state="unresolved"``: open or acknowledged), newest first."""
        return self._newest("/api/v1/alerts", "alerts", limit, state=state, kind=kind, subject=subject)

    def alert(self, alert_id: int) -> dict:
        return self._call("GET", f"/api/v1/alerts/{int(alert_id)}")

    def acknowledge(self, alert_id: int, comment: str | None = None) -> dict:
        body = {"comment": comment} if comment is not None else {}
        return self._call("POST", f"/api/v1/alerts/{int(alert_id)}/acknowledge", body=body)

    # -- notification channels -------------------------------------------------------------------------

    def channels(self) -> list[dict]:
        """Every notification channel; a URL is shown only to its host (``destination``)."""
        return self._call("GET", "/api/v1/channels")["channels"]  # type: ignore[no-any-return]

    def channel(self, channel_id: int) -> dict:
        return self._call("GET", f"/api/v1/channels/{int(channel_id)}")

    def add_channel(self, spec: Mapping[str, Any]) -> dict:
        """Add a channel (``name``, ``kind`` and ``url`` or ``to``; see ``ChannelIn`` in the API
        document); a name already taken is refused (409), not updated."""
        return self._call("POST", "/api/v1/channels", body=dict(spec))

    def delete_channel(self, channel_id: int) -> None:
        self._call("DELETE", f"/api/v1/channels/{int(channel_id)}")

    def send_test_notice(self, channel_id: int) -> dict:
        """Queue a test notice through the channel; the answer is the notice (its delivery follows)."""
        return self._call("POST", f"/api/v1/channels/{int(channel_id)}/test")

    def channel_notices(self, channel_id: int) -> list[dict]:
        """The channel's recent notices, each with its delivery attempts."""
        answer = self._call("GET", f"/api/v1/channels/{int(channel_id)}/notices")
        return answer["notices"]  # type: ignore[no-any-return]

    # -- silences --------------------------------------------------------------------------------------

    def silences(self, state: str | None = None) -> list[dict]:
        """Every silence, newest first (``state``: only ``pending``, ``active`` or ``expired`` ones)."""
        params = {"state": state} if state is not None else None
        return self._call("GET", "/api/v1/silences", params=params)["silences"]  # type: ignore[no-any-return]

    def silence(self, silence_id: int) -> dict:
        return self._call("GET", f"/api/v1/silences/{int(silence_id)}")

    def add_silence(
        self,
        *,
        ends_at: str | datetime,
        comment: str,
        alert_kinds: Sequence[str] | None = None,
        subject_pattern: str = "*",
        tag_pattern: str | None = None,
        starts_at: str | datetime | None = None,
    ) -> dict:
        """Silence the notices of matching alerts (they still open and are recorded) from ``starts_at``
        (default now) to ``ends_at`` (times with a timezone). ``alert_kinds``: only these (default
        every kind); ``subject_pattern``, ``tag_pattern``: fnmatch patterns on the alert's subject and
        one of its tags. Not retried (a POST creates)."""
        body: dict[str, Any] = {"subject_pattern": subject_pattern, "ends_at": ends_at, "comment": comment}
        if alert_kinds:
            body["alert_kinds"] = list(alert_kinds)
        if tag_pattern is not None:
            body["tag_pattern"] = tag_pattern
        if starts_at is not None:
            body["starts_at"] = starts_at
        return self._call("POST", "/api/v1/silences", body=body)

    def expire_silence(self, silence_id: int) -> dict:
        """End a silence now; it is kept, as expired (the answer). Repeating it is harmless."""
        return self._call("DELETE", f"/api/v1/silences/{int(silence_id)}")

    # -- missions --------------------------------------------------------------------------------------

    def put_mission_definition(self, definition: Mapping[str, Any] | Any) -> tuple[dict, bool]:
        """Register a definition (a dict, or what ``mission(...)...end()`` built); True if a new version."""
        body = definition.as_json() if hasattr(definition, "as_json") else dict(definition)
        response = self._request(
            "PUT", f"/api/v1/mission-definitions/{quote(body['name'], safe='')}", body=body
        )
        return response.json(), response.status_code == 201

    def start_mission(self, definition: str, input: Any = None, *, id: str | None = None) -> dict:
        body: dict[str, Any] = {"definition": definition, "input": input}
        if id is not None:
            body["id"] = id
        return self._call("POST", "/api/v1/missions", body=body)

    def mission(self, mission_id: str) -> dict:
        return self._call("GET", f"/api/v1/missions/{quote(mission_id, safe='')}")

    def missions(
        self, *, status: str | None = None, definition: str | None = None, limit: int = 50
    ) -> list[dict]:
        """The newest ``limit`` missions (summaries), newest first."""
        return self._newest("/api/v1/missions", "missions", limit, status=status, definition=definition)

    def signal(self, mission_id: str, name: str, payload: Any = None) -> dict:
        path = f"/api/v1/missions/{quote(mission_id, safe='')}/signals/{quote(name, safe='')}"
        return self._call("POST", path, body=payload)

    def cancel_mission(self, mission_id: str, reason: str = "cancelled") -> dict:
        return self._call(
            "POST", f"/api/v1/missions/{quote(mission_id, safe='')}/cancel", body={"reason": reason}
        )

    def monitor(self, service: str) -> Monitor:
        """Heartbeat ``ok`` when a unit of work ends well and ``fail`` (with the error) when it raises.

        Works as ``with mc.monitor("billing"): ...`` and as a decorator ``@mc.monitor("billing")``.
        A heartbeat that cannot be delivered is logged, never raised: monitoring must not break the
        work it watches.
        """
        return Monitor(self, service)

    # -- plumbing --------------------------------------------------------------------------------------

    @staticmethod
    def _beat_path(service: str, signal: str | None = None) -> str:
        path = f"/api/v1/heartbeats/{quote(service, safe='')}"
        return f"{path}/{signal}" if signal else path

    def _ping(self, path: str, *, rid: str | None, body: Any, retry_for_s: float) -> dict:
        """A heartbeat-like POST, repeated on 429/502/503/504 as heartbeats are and, with
        ``retry_for_s``, also when there was no answer at all, until that long has passed."""
        params = {"rid": rid} if rid is not None else None
        if retry_for_s <= 0:
            return self._call("POST", path, params=params, body=body, retry=True)  # type: ignore[no-any-return]
        began = time.monotonic()
        waited = 0.0  # counted apart too, so an injected ``sleep`` is bounded as a real one is

        def spent() -> float:
            return max(time.monotonic() - began, waited)

        attempt = 0
        while True:
            left = retry_for_s - spent()
            try:
                return self._call_once_within(path, params, body, max(0.1, min(self.timeout_s, left)))
            except (RateLimited, Unavailable) as error:
                wait_s = _backoff_s(error.retry_after_s, attempt)
                if spent() + wait_s >= retry_for_s:
                    raise
                log.info("POST %s: %s; retrying in %.1f s", path, error.code, wait_s)
                self._sleep(wait_s)
                waited += wait_s
                attempt += 1

    def _call_once_within(self, path: str, params: Any, body: Any, timeout_s: float) -> dict:
        """One POST with its own time limit (what is left of a bounded ping)."""
        response = self._request_once("POST", path, params=params, body=body, timeout_s=timeout_s)
        return response.json()  # type: ignore[no-any-return]

    def _newest(self, path: str, key: str, limit: int, **filters: str | None) -> list[dict]:
        """Up to ``limit`` items of a newest-first listing, following its cursor page by page."""
        params: dict[str, Any] = {"limit": min(limit, 1000)}
        params.update({name: value for name, value in filters.items() if value is not None})
        found: list[dict] = []
        while len(found) < limit:
            page = self._call("GET", path, params=params)
            found.extend(page[key])
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        return found[:limit]

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise MissionControlError(
                response.status_code,
                "bad_response",
                f"{self.url} answered HTTP {response.status_code} without JSON: is it Mission Control?",
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        retry: bool | None = None,
    ) -> requests.Response:
        """One call, repeated (``retry``; by default for GET, PUT and DELETE) while the server answers
        429/502/503/504, up to ``self.retries`` times."""
        retried = method.upper() in IDEMPOTENT_METHODS if retry is None else retry
        attempt = 0
        while True:
            try:
                return self._request_once(method, path, params=params, body=body)
            except (RateLimited, Unavailable) as error:
                wait_s = _backoff_s(error.retry_after_s, attempt)
                # No answer at all is not retried: a dead or unreachable server would cost the
                # caller several timeouts, and the CLI should say so at once.
                if error.status is None or not retried:
                    raise
                if attempt >= self.retries or wait_s > self.max_retry_wait_s:
                    raise
                log.info("%s %s: %s; retrying in %.1f s", method, path, error.code, wait_s)
                self._sleep(wait_s)
                attempt += 1

    def _request_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout_s: float | None = None,
    ) -> requests.Response:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body, default=_json_default).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method, self.url + path, params=params, data=data, headers=headers, timeout=timeout_s
            )
        except requests.RequestException as exc:
            raise _error(
                None, "unreachable", f"cannot reach {self.url} ({_why_unreachable(exc, timeout_s)})"
            ) from None
        if response.status_code >= 400:
            try:
                body_error = response.json()["error"]
                failure = _error(
                    response.status_code,
                    str(body_error["code"]),
                    str(body_error["message"]),
                    body_error.get("field"),
                )
            except (ValueError, KeyError, TypeError):
                excerpt = " ".join(response.text[:200].split())
                failure = _error(
                    response.status_code,
                    "http_error",
                    excerpt or f"{self.url} answered HTTP {response.status_code}",
                )
            failure.retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
            raise failure
        return response


class Monitor(contextlib.ContextDecorator):
    """See :meth:`MissionControl.monitor`."""

    def __init__(self, client: MissionControl, service: str) -> None:
        self.client = client
        self.service = service

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            status, message = "ok", None
        else:
            status, message = "fail", f"{type(exc).__name__}: {exc}"[:2000]
        try:
            self.client.heartbeat(self.service, status=status, message=message)
        except MissionControlError as error:
            log.warning("heartbeat for %s not delivered: %s", self.service, error.code)
        return False  # never swallow the work's own exception


def verify_signature(
    secret: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True if a request really comes from Mission Control and was meant for this method and URL.

    ``X-Mission-Control-Signature`` must sign the method, the URL (``url`` is the one this request
    was called on, e.g. Flask's ``request.url``; behind a proxy that rewrites scheme or host, the
    public URL), the ``Idempotency-Key`` header and ``body`` with ``secret`` (the service's own
    signing secret, or MC_SIGNING_SECRET), and be at most ``tolerance_s`` old, so neither an old
    request nor one captured on its way to another endpoint can be replayed here. ``headers`` may be
    any mapping (Flask's ``request.headers`` is case-insensitive; a plain dict is searched without
    regard to case). Never raises for a malformed request.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    return verify(
        secret,
        lowered.get(SIGNATURE_HEADER.lower()),
        method=method,
        url=url,
        idempotency_key=lowered.get("idempotency-key", ""),
        body=body,
        now=int(time.time() if now is None else now),
        tolerance_s=tolerance_s,
    )


def _why_unreachable(exc: requests.RequestException, timeout_s: float) -> str:
    """The root cause of a failed request in a few words ("Connection refused", "Name or service not
    known"), not urllib3's nested reprs."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_s:g} s"
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _retry_after_s(header: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date (RFC 9110); None if absent or
    unreadable."""
    if not header:
        return None
    try:
        return max(0.0, float(header.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _backoff_s(retry_after_s: float | None, attempt: int) -> float:
    """What to wait before retry number ``attempt + 1``: the server's word, else 0.5, 1, 2... s."""
    return retry_after_s if retry_after_s is not None else 0.5 * 2**attempt


def _message(message: str | None) -> dict[str, Any]:
    return {} if message is None else {"message": message}


def _json_default(value: Any) -> Any:
    # YAML files give datetimes for unquoted timestamps (a one-shot's `at`).
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
