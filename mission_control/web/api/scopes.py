"""What each token may do: the scopes, the principal a request acts as, and one rule per endpoint.

Every route of the app has an entry in :data:`RULES` (``tests/api/test_scopes.py`` walks the URL map
and fails on a route without one, so a new route cannot be forgotten). A rule names the scopes that
grant it (``admin`` grants everything) and the service boundary it keeps for tokens bound to a service:

* ``unbound``: only tokens bound to no service (token and signing-secret management, channels,
  alerts, metrics, mission definitions' writes).
* ``job`` / ``run`` / ``service`` / ``mission``: the object the path names must be the token's
  service's (a job by its ``service``, a run by its job's, a service by name, a mission by the service
  that started it). Another service's object answers 404 to a read (its existence is not revealed) and
  403 to a write; nothing changes. A body naming another ``service`` is a 403 too.
* ``listing``: the view filters by :func:`bound_service`, so a bound token lists its service's only.
* ``any``: bound tokens pass (mission definitions are shared templates).

``X:write`` also grants reading X; ``read`` grants every read but token and signing-secret management
and ``/metrics``; ``runs:read`` grants run reads; ``metrics`` grants ``/metrics`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mission_control.base.scopes import SCOPES as SCOPES  # re-exported: the names live in base
from mission_control.db.tables import jobs, missions, runs

BOOTSTRAP_NAME = "MC_ADMIN_TOKEN"


@dataclass(frozen=True)
class Principal:
    """Who this request acts as: the bootstrap admin (``id`` None) or one ``api_tokens`` row."""

    id: int | None
    name: str
    scopes: frozenset[str]
    service: str | None
    kind: str  # "bootstrap" | "token"

    def has(self, *any_of: str) -> bool:
        return "admin" in self.scopes or any(scope in self.scopes for scope in any_of)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


BOOTSTRAP = Principal(
    id=None, name=BOOTSTRAP_NAME, scopes=frozenset({"admin"}), service=None, kind="bootstrap"
)


@dataclass(frozen=True)
class Rule:
    grants: tuple[str, ...]  # any one of these (or admin) lets the request in; () = admin only
    boundary: str  # unbound | job | run | service | mission | listing | any | public
    write: bool = False


PUBLIC = Rule((), "public")
ADMIN_ONLY = Rule((), "unbound", write=True)


def _read(resource: str, boundary: str, *extra: str) -> Rule:
    return Rule(("read", f"{resource}:write", *extra), boundary)


def _write(scope: str, boundary: str) -> Rule:
    return Rule((scope,), boundary, write=True)


RUNS_READ = ("runs:read", "runs:write")

RULES: dict[str, Rule] = {
    # open probes, the API description, the demo target (it checks a signature instead)
    "health.healthz": PUBLIC,
    "health.readyz": PUBLIC,
    "meta.openapi_document": PUBLIC,
    "docs.api_page": PUBLIC,  # the same document as HTML
    "demo.echo": PUBLIC,
    "static": PUBLIC,  # Flask's own /static/<path> (the app ships no files there)
    "metrics.metrics": Rule(("metrics",), "unbound"),
    # jobs
    "jobs.list_jobs": _read("jobs", "listing"),
    "jobs.get_job": _read("jobs", "job"),
    "jobs.put_job": _write("jobs:write", "job"),
    "jobs.create_job": _write("jobs:write", "job"),
    "jobs.patch_job": _write("jobs:write", "job"),
    "jobs.delete_job": _write("jobs:write", "job"),
    "jobs.pause_job": _write("jobs:write", "job"),
    "jobs.resume_job": _write("jobs:write", "job"),
    "jobs.trigger_job": _write("runs:write", "job"),
    # runs
    "runs.list_all_runs": Rule(("read", *RUNS_READ), "listing"),
    "runs.get_one_run": Rule(("read", *RUNS_READ), "run"),
    # services, heartbeats, service tokens and signing secrets
    "heartbeats.post_heartbeat": _write("heartbeats:write", "service"),
    "heartbeats.get_heartbeat": _write("heartbeats:write", "service"),
    "heartbeats.post_start": _write("heartbeats:write", "service"),
    "heartbeats.get_start": _write("heartbeats:write", "service"),
    "heartbeats.post_fail": _write("heartbeats:write", "service"),
    "heartbeats.get_fail": _write("heartbeats:write", "service"),
    "heartbeats.post_log": _write("heartbeats:write", "service"),
    "heartbeats.get_log": _write("heartbeats:write", "service"),
    "heartbeats.post_code": _write("heartbeats:write", "service"),
    "heartbeats.get_code": _write("heartbeats:write", "service"),
    "services.list_services": _read("services", "listing"),
    "services.get_service": _read("services", "service"),
    "services.list_events": _read("services", "service"),
    "services.put_service": _write("services:write", "service"),
    "services.delete_service": _write("services:write", "service"),
    "services.pause_service": _write("services:write", "service"),
    "services.resume_service": _write("services:write", "service"),
    "services.create_token": ADMIN_ONLY,
    "services.list_tokens": ADMIN_ONLY,
    "services.revoke_token": ADMIN_ONLY,
    "signing_secrets.rotate_signing_secret": ADMIN_ONLY,
    "signing_secrets.list_signing_secrets": ADMIN_ONLY,
    "signing_secrets.revoke_signing_secret": ADMIN_ONLY,
    # tokens
    "tokens.create_api_token": ADMIN_ONLY,
    "tokens.list_api_tokens": ADMIN_ONLY,
    "tokens.revoke_api_token": ADMIN_ONLY,
    # the audit trail: a bound token reads its service's rows only
    "audit.list_audit": Rule(("read",), "listing"),
    # alerts and channels: fleet-wide, so unbound tokens only
    "alerts.list_all_alerts": _read("alerts", "unbound"),
    "alerts.alert_summary": _read("alerts", "unbound"),
    "alerts.get_one_alert": _read("alerts", "unbound"),
    "alerts.acknowledge_alert": _write("alerts:write", "unbound"),
    "channels.list_all_channels": _read("channels", "unbound"),
    "channels.get_one_channel": _read("channels", "unbound"),
    "channels.channel_notices": _read("channels", "unbound"),
    "channels.add_channel": _write("channels:write", "unbound"),
    "channels.remove_channel": _write("channels:write", "unbound"),
    "channels.send_test_notice": _write("channels:write", "unbound"),
    # silences mute alerts' notices: alerts' scopes
    "silences.list_all_silences": _read("alerts", "unbound"),
    "silences.get_one_silence": _read("alerts", "unbound"),
    "silences.add_silence": _write("alerts:write", "unbound"),
    "silences.expire_one_silence": _write("alerts:write", "unbound"),
    # status badges: managed with the write scope of what they show (unbound: a tag spans services;
    # the view checks the kind's scope). The images need no token at all, on purpose: browsers and
    # image proxies fetch them from READMEs without credentials, so the random key in the URL is the
    # credential (an unknown key spends the failed-authentication budget). See web/api/badges.py.
    "badges.create_badge": Rule(("services:write", "jobs:write"), "unbound", write=True),
    "badges.list_badges": _read("services", "unbound", "jobs:write"),
    "badges.revoke_badge": Rule(("services:write", "jobs:write"), "unbound", write=True),
    "badge_images.badge_svg": PUBLIC,
    "badge_images.badge_json": PUBLIC,
    # missions
    "missions.put_definition": _write("missions:write", "unbound"),
    "missions.list_definitions": _read("missions", "any"),
    "missions.get_definition": _read("missions", "any"),
    "missions.start_mission": _write("missions:write", "any"),
    "missions.list_missions": _read("missions", "listing"),
    "missions.get_mission": _read("missions", "mission"),
    "missions.signal_mission": _write("missions:write", "mission"),
    "missions.cancel_mission": _write("missions:write", "mission"),
    # the dashboard: pages need read, actions admin (see mission_control.web.dashboard)
    "dashboard.login": PUBLIC,
    "dashboard.static": PUBLIC,
    "dashboard.logout": PUBLIC,
    "dashboard.overview": Rule(("read",), "listing"),
    "dashboard.jobs": Rule(("read",), "listing"),
    "dashboard.job": Rule(("read",), "listing"),
    "dashboard.services": Rule(("read",), "listing"),
    "dashboard.alerts": Rule(("read",), "unbound"),
    "dashboard.audit": Rule(("read",), "listing"),
    "dashboard.missions": Rule(("read",), "listing"),
    "dashboard.mission": Rule(("read",), "listing"),
    "dashboard.pause_job": ADMIN_ONLY,
    "dashboard.resume_job": ADMIN_ONLY,
    "dashboard.trigger_job": ADMIN_ONLY,
    "dashboard.cancel_mission": ADMIN_ONLY,
    "dashboard.acknowledge_alert": ADMIN_ONLY,
    "dashboard.silences": Rule(("read",), "unbound"),
    "dashboard.expire_silence_now": ADMIN_ONLY,
}

# Endpoints whose body may name a service (a job's ``service``): a bound token may only name its own.
BODY_NAMES_SERVICE = {"jobs.put_job", "jobs.create_job", "jobs.patch_job"}


def principal() -> Principal | None:
    """The principal of this request (None outside a request or on a public route)."""
    return g.get("principal") if has_request_context() else None


def bound_service() -> str | None:
    """The service this request's token is bound to, or None (unbound, or no token)."""
    who = principal()
    return who.service if who is not None else None


def check(
    endpoint: str,
    who: Principal,
    owner_of: Callable[[str, dict[str, Any]], str | None],
) -> tuple[int, str, str | None] | None:
    """Why ``who`` may not call ``endpoint`` here: (status, message, field), or None if it may.

    ``owner_of(boundary, view_args)`` answers the service owning the object the path names (None if
    there is no such object, which the view then answers as it always does).
    """
    rule = RULES[endpoint]
    if rule.boundary == "public":
        return None
    if not who.has(*rule.grants):
        needed = " or ".join((*rule.grants, "admin")) if rule.grants else "admin"
        return 403, f"scope: this token ({who.name}) lacks the scope this needs: {needed}", "scope"
    if who.service is None:
        return None
    if rule.boundary == "unbound":
        return 403, f"service: this token is bound to {who.service!r}; this needs an unbound token", "service"
    if rule.boundary in ("job", "run", "service", "mission"):
        owner = owner_of(rule.boundary, dict(request.view_args or {}))
        if owner is not None and owner != who.service:
            if endpoint.startswith("heartbeats."):
                return 403, f"service: this token may only beat for {who.service!r}", "service"
            if rule.write:
                return (
                    403,
                    f"service: this token may act only on service {who.service!r}'s objects",
                    "service",
                )
            return 404, f"{_field(rule.boundary)}: not found", _field(rule.boundary)
    if endpoint in BODY_NAMES_SERVICE:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and "service" in body and body["service"] != who.service:
            return 403, f"service: this token may only register jobs of service {who.service!r}", "service"
    return None


def _field(boundary: str) -> str:
    return {"job": "name", "run": "run_id", "service": "name", "mission": "id"}[boundary]


def owner_lookup(engine: Engine) -> Callable[[str, dict[str, Any]], str | None]:
    """``owner_of`` for :func:`check`: one indexed query naming the service that owns the object.

    An object that exists but belongs to no service (a run whose job was deleted, a mission an unbound
    token started) answers ``""``, which no bound token's service equals.
    """

    def owner_of(boundary: str, args: dict[str, Any]) -> str | None:
        if boundary == "service":
            return str(args.get("name"))
        if boundary == "job":
            statement = select(jobs.c.service).where(jobs.c.name == args.get("name"))
        elif boundary == "run":
            statement = (
                select(func.coalesce(jobs.c.service, ""))
                .select_from(runs.outerjoin(jobs, jobs.c.id == runs.c.job_id))
                .where(runs.c.id == args.get("run_id"))
            )
        else:
            statement = select(func.coalesce(missions.c.service, "")).where(
                missions.c.id == args.get("mission_id")
            )
        with engine.connect() as conn:
            return conn.execute(statement).scalar()

    return owner_of
