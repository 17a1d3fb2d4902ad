"""The dashboard: server-rendered pages of every job, service, alert and mission, on the API's own data.

Pages read without JavaScript; ``static/refresh.js`` re-fetches the page's ``<main>`` every few
seconds (``X-Fragment: 1`` answers only that part) so it stays live without a reload. Every asset is
served from here, so the Content-Security-Policy allows nothing else. Sign-in is a token with ``admin``
or ``read`` bound to no service, or with ``read`` bound to one, exchanged once for a session cookie
(:mod:`mission_control.web.dashboard.session`). A ``read`` session sees every page without action
buttons, and any action it posts anyway is refused (403): each route's rule is in
:data:`mission_control.web.api.scopes.RULES`, like the API's. A session bound to a service sees that
service's jobs, runs, service and missions only (another service's job or mission is a 404, as over
the API) and no fleet-wide page (alerts: 403).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from mission_control.db.alerts import AlertChange, AlertFilter, acknowledge, list_alerts, summarize
from mission_control.db.audit import AuditFilter, list_entries
from mission_control.jobs.history import RunFilter, get_run, last_runs, list_runs, recent_runs
from mission_control.jobs.registry import JobNotFound
from mission_control.missions.machine import STATUSES as MISSION_STATUSES
from mission_control.missions.machine import MissionConflict
from mission_control.missions.store import MissionNotFound, public_view
from mission_control.monitoring.silences import expire_silence, list_silences, state_of
from mission_control.scheduling.claiming import RunInProgress, create_manual_run
from mission_control.web.api.audit import entry, subject_filter
from mission_control.web.api.auth import is_admin, spend_auth_budget
from mission_control.web.api.scopes import RULES, bound_service, owner_lookup
from mission_control.web.dashboard import session as auth

bp = Blueprint(
    "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)

# Listed first on the overview: what needs a person now.
PROBLEM_RUN_STATUSES = ("failed", "timed_out")
PROBLEM_SERVICE_STATES = ("down", "late")


def _state() -> Any:
    return current_app.extensions["mission_control"]


@bp.before_request
def _require_sign_in() -> Response | None:
    if request.endpoint in ("dashboard.login", "dashboard.static"):
        return None
    if auth.signed_in():
        rule = RULES[request.endpoint or ""]
        if rule.boundary != "public" and not g.principal.has(*rule.grants):
            abort(403, description=f"{g.principal.name} may only look: this needs the admin scope")
        if rule.boundary == "unbound" and g.principal.service is not None:
            abort(403, description=f"{g.principal.name} sees service {g.principal.service!r} only")
        return None
    return redirect(url_for("dashboard.login", next=request.full_path if request.method == "GET" else "/"))


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(auth.SECURITY_HEADERS)
    if request.endpoint == "dashboard.static":
        response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.app_template_filter("when")
def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("iso")
def _iso(value: str | None) -> str:
    """A mission document's timestamp (ISO-8601 text) shown like every other time here."""
    if not value:
        return "—"
    return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))


@bp.app_template_filter("compact")
def _compact(value: Any, width: int = 120) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


@bp.app_template_filter("local")
def _local(value: datetime | None, zone: str) -> str:
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


@bp.app_template_filter("ms")
def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _page(template: str, **context: Any) -> str:
    """The whole page, or only its ``<main>`` for refresh.js (``X-Fragment: 1``)."""
    context["layout"] = "fragment.html" if request.headers.get("X-Fragment") == "1" else "base.html"
    context["csrf"] = auth.csrf_token()
    context["who"] = g.principal.name
    context["can_act"] = g.principal.is_admin and g.principal.service is None
    return render_template(template, **context)


# --- sign in ------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    target = auth.safe_next(request.args.get("next"))  # never redirect off this site
    if request.method == "POST":
        token = request.form.get("token", "")
        # The right token always signs in: only wrong ones spend (and consult) the address's budget.
        if is_admin(token or None, _state().admin_digest):
            auth.sign_in()
            return redirect(target)
        row = _state().tokens.lookup(token) if token else None
        if row is not None and (row["expires_at"] is None or row["expires_at"] > _state().clock.now()):
            scopes = set(row["scopes"])
            # A bound session sees its service only; acting from here is for unbound admins.
            if "read" in scopes or (scopes & {"admin"} and row["service"] is None):
                auth.sign_in(row["id"])
                return redirect(target)
            why = "That token cannot sign in: it needs the read scope, or admin with no service binding."
            return render_template("login.html", error=why, next=target), 403
        wait = spend_auth_budget()
        if wait is not None:
            message = f"Too many wrong tokens from this address; try again in {math.ceil(wait)} s."
            return render_template("login.html", error=message, next=target), 429
        return render_template(
            "login.html", error="That is not the admin token nor a token that may sign in.", next=target
        ), 401
    return render_template("login.html", error=None, next=target)


@bp.post("/logout")
def logout() -> Response:
    auth.check_csrf()
    auth.sign_out()
    return redirect(url_for("dashboard.login"))


# --- pages --------------------------------------------------------------------------------------


@bp.get("/")
def overview() -> str:
    state = _state()
    bound = bound_service()
    records = state.registry.list(limit=1000, service=bound)
    last = last_runs(state.engine, [r.id for r in records])
    statuses = Counter((last.get(r.id) or {}).get("status", "never run") for r in records)
    failing = [
        (r, last[r.id]) for r in records if r.id in last and last[r.id]["status"] in PROBLEM_RUN_STATUSES
    ]
    services = state.services.list(limit=1000, name=bound)
    by_state = Counter(s["state"] for s in services)
    troubled = [s for s in services if s["state"] in PROBLEM_SERVICE_STATES]
    troubled.sort(key=lambda s: (s["state"] != "down", s["name"]))
    # Alerts are fleet-wide (an unbound token's, as over the API): a bound session is shown none.
    open_alerts = [] if bound else list_alerts(state.engine, AlertFilter(state="unresolved", limit=50))
    return _page(
        "overview.html",
        statuses=statuses,
        failing=failing,
        by_state=by_state,
        troubled=troubled,
        open_alerts=open_alerts,
        jobs_total=len(records),
        services_total=len(services),
    )


@bp.get("/jobs")
def jobs() -> str:
    state = _state()
    records = state.registry.list(limit=1000, service=bound_service())
    ids = [r.id for r in records]
    last = last_runs(state.engine, ids)
    strips = recent_runs(state.engine, ids)

    def urgency(record: Any) -> tuple[int, str]:
        status = (last.get(record.id) or {}).get("status")
        return (0 if status in PROBLEM_RUN_STATUSES else 1, record.name)

    return _page("jobs.html", records=sorted(records, key=urgency), last=last, strips=strips)


@bp.get("/jobs/<name>")
def job(name: str) -> str | tuple[str, int]:
    state = _state()
    try:
        record = state.registry.get(name)
    except JobNotFound:
        return render_template("missing.html", what=f"job {name}"), 404
    if bound_service() not in (None, record.spec.service):  # another service's: as if there were none
        return render_template("missing.html", what=f"job {name}"), 404
    runs = list_runs(state.engine, RunFilter(job=name, limit=30))
    detailed = [get_run(state.engine, r["id"]) for r in runs[:5]]
    trail = list_entries(state.engine, AuditFilter(subject_kind="job", subject_name=name, limit=10))
    return _page("job.html", record=record, runs=runs, detailed=[d for d in detailed if d], trail=trail)


@bp.post("/jobs/<name>/pause")
def pause_job(name: str) -> Response:
    return _job_action(
        name, lambda: _state().registry.set_enabled(name, False, audit=entry("job.pause")), "paused"
    )


@bp.post("/jobs/<name>/resume")
def resume_job(name: str) -> Response:
    return _job_action(
        name, lambda: _state().registry.set_enabled(name, True, audit=entry("job.resume")), "resumed"
    )


@bp.post("/jobs/<name>/trigger")
def trigger_job(name: str) -> Response:
    def fire() -> None:
        state = _state()
        run_id = create_manual_run(state.engine, name, state.clock.now(), audit=entry("run.trigger"))
        state.enqueue([run_id])

    return _job_action(name, fire, "triggered")


def _job_action(name: str, action: Any, done: str) -> Response:
    auth.check_csrf()
    try:
        action()
        flash(f"{name} {done}")
    except JobNotFound:
        flash(f"no job named {name}")
    except RunInProgress as exc:
        flash(f"{name} forbids overlap and run {exc.run_id} is still unfinished")
    return redirect(url_for("dashboard.job", name=name))


@bp.get("/services")
def services() -> str:
    state = _state()
    rows = state.services.list(limit=1000, name=bound_service())
    order = {"down": 0, "late": 1, "new": 2, "up": 3, "paused": 4}
    rows.sort(key=lambda s: (order.get(s["state"], 9), s["name"]))
    newest = state.services.recent_heartbeats([s["name"] for s in rows[:200]], limit=20)
    beats = {name: list(reversed(recent)) for name, recent in newest.items()}
    return _page("services.html", services=rows, beats=beats)


@bp.get("/audit")
def audit() -> str:
    """The audit trail, newest first; ``?subject=kind:name`` (or a name), ``?actor=``, ``?action=``."""
    kind, name = subject_filter((request.args.get("subject") or "").strip()[:240] or None)
    actor = (request.args.get("actor") or "").strip()[:160] or None
    action = (request.args.get("action") or "").strip()[:64] or None
    where = AuditFilter(
        subject_kind=kind,
        subject_name=name,
        actor=actor,
        action=action,
        service=bound_service(),
        limit=200,
    )
    trail = list_entries(_state().engine, where)
    wanted = {"subject": request.args.get("subject", ""), "actor": actor or "", "action": action or ""}
    return _page("audit.html", trail=trail, wanted=wanted)


@bp.get("/alerts")
def alerts() -> str:
    state = _state()
    unresolved = list_alerts(state.engine, AlertFilter(state="unresolved", limit=200))
    history = list_alerts(state.engine, AlertFilter(state="resolved", limit=100))
    patterns = summarize(state.engine, state.clock.now())[:50]
    return _page("alerts.html", unresolved=unresolved, history=history, patterns=patterns)


@bp.get("/silences")
def silences() -> str:
    now = _state().clock.now()
    found = [{**row, "state": state_of(row, now)} for row in list_silences(_state().engine, now, limit=200)]
    return _page("silences.html", silences=found)


@bp.post("/silences/<int(max=9223372036854775807):silence_id>/expire")
def expire_silence_now(silence_id: int) -> Response:
    auth.check_csrf()
    row = expire_silence(_state().engine, silence_id, _state().clock.now(), audit=entry("silence.expire"))
    flash(f"no silence {silence_id}" if row is None else f"silence {silence_id} expired")
    return redirect(url_for("dashboard.silences"))


@bp.get("/missions")
def missions() -> str:
    store = _state().missions
    wanted = request.args.get("status")
    wanted = wanted if wanted in MISSION_STATUSES else None
    found, _ = store.list(status=wanted, limit=200, service=bound_service())
    counts = store.count_by_status(service=bound_service())
    return _page("missions.html", missions=found, counts=counts, statuses=MISSION_STATUSES, wanted=wanted)


@bp.get("/missions/<mission_id>")
def mission(mission_id: str) -> str | tuple[str, int]:
    bound = bound_service()
    if bound is not None:
        owner = owner_lookup(_state().engine)("mission", {"mission_id": mission_id})
        if owner != bound:  # another service's (or no service's): as if there were none
            return render_template("missing.html", what=f"mission {mission_id}"), 404
    try:
        doc = _state().missions.get(mission_id)
    except MissionNotFound:
        return render_template("missing.html", what=f"mission {mission_id}"), 404
    return _page("mission.html", m=public_view(doc))


@bp.post("/missions/<mission_id>/cancel")
def cancel_mission(mission_id: str) -> Response:
    auth.check_csrf()
    reason = (request.form.get("reason") or "").strip()[:1000] or "cancelled from the dashboard"
    try:
        _state().missions.cancel(mission_id, reason, audit=entry("mission.cancel"))
        flash(f"mission {mission_id} cancelled")
    except MissionNotFound:
        flash(f"no mission {mission_id}")
    except MissionConflict as exc:
        flash(str(exc))
    return redirect(url_for("dashboard.mission", mission_id=mission_id))


@bp.post("/alerts/<int(max=9223372036854775807):alert_id>/acknowledge")
def acknowledge_alert(alert_id: int) -> Response:
    auth.check_csrf()
    comment = (request.form.get("comment") or "").strip()[:2000] or None
    row = acknowledge(
        _state().engine, alert_id, _state().clock.now(), comment, audit=entry("alert.acknowledge")
    )
    if row is None:
        flash(f"no alert {alert_id}")
    elif row["state"] == "resolved":
        flash(f"alert {alert_id} was already resolved")
    else:
        _state().notify([AlertChange(row["id"], row["kind"], row["subject"], "acknowledged")])
        flash(f"alert {alert_id} acknowledged")
    return redirect(url_for("dashboard.alerts"))
