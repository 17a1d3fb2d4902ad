"""Services and their heartbeats: registration, ingest, service tokens (issued, listed, revoked one by
one; rows of ``api_tokens`` scoped ``heartbeats:write``, see :mod:`mission_control.db.api_tokens`), and
the staleness check. Who may send a heartbeat is the web app's scope check, except for a token's
heartbeat, which :meth:`ServiceRegistry.record_heartbeat` checks in its own transaction (the hot path:
one statement on PostgreSQL, token check included).

A service's stored state changes only by conditional UPDATEs: the heartbeat takes the row lock
(``FOR UPDATE``) and the staleness check skips locked rows and updates only if the row is still the
one it read (same state, same heartbeat count). So any number of web processes and checkers can run
at once and a state flips once, with one flip record and at most one alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Interval,
    Select,
    String,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from mission_control.base.clock import Clock
from mission_control.db import tags as tag_index
from mission_control.db.alerts import AlertChange, AlertKind, open_alert, resolve_alerts
from mission_control.db.api_tokens import (
    TOUCH_EVERY_S,
    ApiTokenStore,
    HeartbeatCredential,
    heartbeat_token,
    heartbeat_token_cte,
)
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import heartbeats, service_flips, services
from mission_control.db.types import UTCDateTime
from mission_control.monitoring import heartbeat_runs as runs
from mission_control.monitoring.service_state import (
    ServiceState,
    cron_schedule,
    early_resolves,
    expected_after,
    health_at,
    is_early,
)

EVENT_COLUMNS = ("number", "received_at", "status", "message", "truncated", "rid", "duration_s", "exit_code")


class ServiceNotFound(LookupError):
    pass


class TokenNotAccepted(LookupError):
    """A token's heartbeat was not recorded: the token does not let it in, or the service is unknown.

    Nothing was written; the caller's full authentication says which (401, 403, 404 or a registration).
    """


@dataclass(frozen=True)
class ServiceConfig:
    interval_s: float | None  # None for a cron-scheduled service (``cron`` set)
    grace_s: float
    max_runtime_s: float | None = None  # a run started and not ended in this long is hung
    cron: str | None = None  # heartbeats expected at each instant of this cron line, in ``timezone``
    timezone: str | None = None
    fail_threshold: int = 1  # service_down after this many failures in a row
    early_tolerance_s: float | None = None  # a heartbeat this much before expected is early
    tags: tuple[str, ...] = ()  # validated by the caller (mission_control.base.tags)

    def columns(self) -> dict[str, Any]:
        """The service's columns this config sets."""
        return {
            "interval_s": self.interval_s,
            "grace_s": self.grace_s,
            "max_runtime_s": self.max_runtime_s,
            "schedule_cron": self.cron,
            "schedule_timezone": (self.timezone or "UTC") if self.cron is not None else None,
            "fail_threshold": self.fail_threshold,
            "early_tolerance_s": self.early_tolerance_s,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str = field(repr=False)  # shown once to whoever asked for it, never stored


@dataclass(frozen=True)
class HeartbeatResult:
    service: RowMapping
    created: bool
    changes: list[AlertChange] = field(default_factory=list)
    token: RowMapping | dict[str, Any] | None = None  # the token checked with it: id, name, scopes, service
    duration_s: float | None = None  # the end of a started run: how long it took
    received_at: datetime | None = None  # when it was recorded (a start or log moves no last_seen_at)


@dataclass(frozen=True)
class CheckResult:
    examined: int
    flipped: dict[str, str]  # service name -> new state
    changes: list[AlertChange]


class ServiceRegistry:
    """Services as rows; every method is one short transaction."""

    def __init__(self, engine: Engine, clock: Clock, *, log_size: int = 100) -> None:
        self.engine = engine
        self.clock = clock
        self.log_size = log_size
        self.tokens = ApiTokenStore(engine, clock)

    # --- registration -------------------------------------------------------------------------

    def put(
        self, name: str, config: ServiceConfig, *, audit: AuditEntry | None = None
    ) -> tuple[RowMapping, bool]:
        """Create the service or change its interval and grace; returns (row, created).

        Every operator write here takes ``audit``: a change is recorded in its own transaction (a put
        that changes nothing records nothing).
        """
        now = self.clock.now()
        with self.engine.begin() as conn:
            created = _insert_if_missing(conn, name, config, now)
            row = _lock(conn, name)
            assert row is not None
            if created:
                write_audit(conn, audit, at=now, subject_kind="service", subject_name=name,
                            service=name, after=_audit_view(row))  # fmt: skip
            wanted = config.columns()
            if not created and any(row[key] != value for key, value in wanted.items()):
                write_audit(conn, audit, at=now, subject_kind="service", subject_name=name, service=name,
                            before=_audit_view(row), after=_audit_view(dict(row) | wanted))  # fmt: skip
                health = _health(row, now, **wanted)
                expected = _expected(row, **wanted)
                _set(conn, row, now, health.state, health.deadline_at, "reconfigured",
                     expected_at=expected, **wanted)  # fmt: skip
            if created or list(row["tags"]) != list(config.tags):
                tag_index.replace(conn, "service", name, config.tags)
            return _get(conn, name), created  # type: ignore[return-value]

    def get(self, name: str) -> RowMapping | None:
        with self.engine.connect() as conn:
            return _get(conn, name)

    def list(
        self,
        *,
        state: str | None = None,
        after: str | None = None,
        limit: int = 100,
        name: str | None = None,
        tags: Sequence[str] = (),
    ) -> list[RowMapping]:
        """Services by name; ``name`` keeps only that one (a listing for a service-bound token);
        ``tags``: only services carrying every one of them."""
        statement = tag_index.filtered(select(services), "service", services.c.name, tags)
        statement = statement.order_by(services.c.name).limit(limit)
        if name is not None:
            statement = statement.where(services.c.name == name)
        if state:
            statement = statement.where(services.c.state == state)
        if after:
            statement = statement.where(services.c.name > after)
        with self.engine.connect() as conn:
            return list(conn.execute(statement).mappings())

    def delete(self, name: str, *, audit: AuditEntry | None = None) -> bool:
        """Remove the service and its heartbeat-only tokens (tokens with other scopes stay)."""
        with self.engine.begin() as conn:
            row = _lock(conn, name)
            deleted = conn.execute(delete(services).where(services.c.name == name)).rowcount == 1
            tag_index.forget(conn, "service", name)
            if deleted and row is not None:
                write_audit(conn, audit, at=self.clock.now(), subject_kind="service", subject_name=name,
                            service=name, before=_audit_view(row))  # fmt: skip
        if deleted:
            self.tokens.delete_service_tokens(name)
        return deleted

    def set_paused(self, name: str, paused: bool, *, audit: AuditEntry | None = None) -> RowMapping:
        """Pause (state ``paused``, no alerts) or resume (state recomputed from the last heartbeat).

        Pausing resolves an open ``service_down`` alert: an operator who silences a service has seen it.
        """
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = _lock(conn, name)
            if row is None:
                raise ServiceNotFound(name)
            if paused == (row.paused_at is not None):
                return row
            health = _health(row, now, paused=paused)
            _set(
                conn,
                row,
                now,
                health.state,
                health.deadline_at,
                "paused" if paused else "resumed",
                paused_at=now if paused else None,
            )
            if paused:
                kinds = [AlertKind.SERVICE_DOWN, AlertKind.SERVICE_HUNG, AlertKind.SERVICE_EARLY]
                resolve_alerts(conn, kinds, name, now)
            after = _get(conn, name)
            write_audit(conn, audit, at=now, subject_kind="service", subject_name=name, service=name,
                        before=_audit_view(row), after=_audit_view(after))  # fmt: skip
            return after  # type: ignore[return-value]

    # --- tokens -------------------------------------------------------------------------------

    def create_token(
        self, name: str, label: str | None = None, *, audit: AuditEntry | None = None
    ) -> IssuedToken:
        """A new token for this service's heartbeats, with the id it is listed and revoked by; the
        token is shown once, only its digest is stored. Raises :class:`ServiceNotFound`."""
        if self.get(name) is None:
            raise ServiceNotFound(name)
        issued = self.tokens.create_service_token(name, label, audit=audit)
        return IssuedToken(id=issued.row["id"], token=issued.token)

    def list_tokens(self, name: str) -> list[RowMapping]:
        """The service's tokens (id, label, created_at; never a token or its digest), oldest first.

        Raises :class:`ServiceNotFound` for an unknown service.
        """
        if self.get(name) is None:
            raise ServiceNotFound(name)
        return self.tokens.service_tokens(name)

    def revoke_token(self, name: str, token_id: int, *, audit: AuditEntry | None = None) -> bool:
        """Revoke one of the service's tokens: its next heartbeat is refused as an unknown token's.

        False if the service has no token with that id (another service's token is not touched);
        raises :class:`ServiceNotFound` for an unknown service.
        """
        if self.get(name) is None:
            raise ServiceNotFound(name)
        return self.tokens.revoke_service_token(name, token_id, audit=audit)

    # --- heartbeats ---------------------------------------------------------------------------

    def record_heartbeat(
        self,
        name: str,
        *,
        status: str,
        message: str | None,
        truncated: bool,
        register: ServiceConfig | None = None,
        token: HeartbeatCredential | None = None,
        rid: str | None = None,
        exit_code: int | None = None,
        duration_s: float | None = None,
    ) -> HeartbeatResult:
        """Record one heartbeat durably (committed before returning) and move the state on.

        ``status`` is the event: ``ok`` and ``fail`` (a success or failure: proof of life, and the end
        of a started run), ``start`` (a run began; see :mod:`.heartbeat_runs`) or ``log`` (kept in the
        service's events, nothing else changes). ``rid`` names the run; ``exit_code`` is kept with it;
        ``duration_s`` (the sender's own measure) is kept on an end that no start pairs with.
        A plain ``ok``/``fail`` without ``rid`` or ``exit_code`` is the hot path: on PostgreSQL one
        statement, plus the closing of a run only when the service has one open.

        ``register`` creates an unknown service with that config; without it an unknown service
        raises :class:`ServiceNotFound` and nothing is written. With ``token`` the heartbeat counts
        only if that token lets it in (:func:`~mission_control.db.api_tokens.may_beat`), checked in
        the same transaction (on PostgreSQL by the same statement) and returned as ``token``;
        otherwise, or for an unknown service, :class:`TokenNotAccepted` and nothing is written.
        """
        now = self.clock.now()
        plain = rid is None and exit_code is None and duration_s is None and status in ("ok", "fail")
        with self.engine.begin() as conn:
            if plain and conn.dialect.name == "postgresql" and token is not None:
                return self._beat_with_token(conn, name, now, status, message, truncated, token)
            if plain and conn.dialect.name == "postgresql":
                beaten = conn.execute(
                    _BEAT_IN_ONE,
                    {"p_name": name, "p_now": now, "p_status": status, "p_message": message,
                     "p_truncated": truncated, "p_log_size": self.log_size},
                ).mappings().first()  # fmt: skip
                if beaten is not None:
                    return _after_beat(conn, dict(beaten), name, now, status, message, None)
                # An unknown service: the general path below registers it or refuses.
            created = False
            checked = None
            if token is not None:
                checked = heartbeat_token(conn, token, name, now)
                if checked is None:
                    raise TokenNotAccepted(name)
            row = _lock(conn, name)
            if row is None:
                if token is not None:
                    raise TokenNotAccepted(name)
                if register is None:
                    raise ServiceNotFound(name)
                created = _insert_if_missing(conn, name, register, now)
                row = _lock(conn, name)
                assert row is not None
            number = row.heartbeat_count + 1
            beat: dict[str, Any] = {}
            if status in ("ok", "fail"):
                fail_count = row.fail_count + 1 if status == "fail" else 0
                expected = _expected(row, last_seen_at=now)
                early = row.paused_at is None and is_early(
                    now, expected_at=row.expected_at, early_tolerance_s=row.early_tolerance_s
                )
                early_at = row.early_at
                if early:
                    early_at = now
                elif early_resolves(early_at=row.early_at, previous_seen_at=row.last_seen_at, early=False):
                    early_at = None
                beat = {"last_seen_at": now, "last_status": status, "last_message": message,
                        "fail_count": fail_count, "expected_at": expected, "early_at": early_at}  # fmt: skip
                health = _health(row, now, **beat)
                reason = "heartbeat: fail" if status == "fail" else "heartbeat"
            else:  # start, log: no proof of life; the state is what it is now
                health = _health(row, now)
                reason = "no heartbeat"
            outcome = runs.record(conn, row, status, rid, now)
            deadline = runs.fold(health.deadline_at, outcome.run_deadline)
            if row.paused_at is not None:
                deadline = None
            _set(
                conn,
                row,
                now,
                health.state,
                deadline,
                reason,
                fold=False,
                heartbeat_count=number,
                open_runs=outcome.open_runs,
                **beat,
            )
            if outcome.duration_s is None and status in ("ok", "fail"):
                outcome.duration_s = duration_s
            event = {"rid": rid, "duration_s": outcome.duration_s, "exit_code": exit_code}
            _log_heartbeat(conn, row.id, number, self.log_size, now, status, message, truncated, **event)
            changes = _alerts_for(conn, name, row.state, health.state, now, message, None if beat else row,
                                  fail_count=beat.get("fail_count"))  # fmt: skip
            if beat:
                changes += _early_alerts(conn, name, now, row.early_at, early_at, row.expected_at,
                                         row.early_tolerance_s)  # fmt: skip
            changes += outcome.changes
            after = _get(conn, name)
            return HeartbeatResult(after, created, changes, checked, outcome.duration_s, now)  # type: ignore[arg-type]

    def _beat_with_token(
        self,
        conn: Connection,
        name: str,
        now: datetime,
        status: str,
        message: str | None,
        truncated: bool,
        token: HeartbeatCredential,
    ) -> HeartbeatResult:
        """PostgreSQL: a token's heartbeat of a known service in one statement, the token checked
        (and its ``last_used_at`` touched when due) by it."""
        beaten = conn.execute(
            _BEAT_WITH_TOKEN,
            {"p_name": name, "p_now": now, "p_status": status, "p_message": message,
             "p_truncated": truncated, "p_log_size": self.log_size, "p_digest": token.digest,
             "p_from_header": token.from_header,
             "p_touch_before": now - timedelta(seconds=TOUCH_EVERY_S)},
        ).mappings().first()  # fmt: skip
        if beaten is None:
            raise TokenNotAccepted(name)
        checked = {key: beaten[f"token_{key}"] for key in ("id", "name", "scopes", "service")}
        return _after_beat(conn, dict(beaten), name, now, status, message, checked)

    def recent_heartbeats(self, names: Sequence[str], limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """The newest ``limit`` heartbeats of each named service, newest first (one query for all)."""
        return self._newest(heartbeats, heartbeats.c.number, EVENT_COLUMNS, names, limit)

    def events(self, name: str, *, before: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """One service's kept events (heartbeats, starts, ends, logs), newest first, ``number`` below
        ``before`` (keyset paging). Raises :class:`ServiceNotFound`."""
        with self.engine.connect() as conn:
            service_id = conn.execute(select(services.c.id).where(services.c.name == name)).scalar()
            if service_id is None:
                raise ServiceNotFound(name)
            statement = (
                select(*(heartbeats.c[column] for column in EVENT_COLUMNS))
                .where(heartbeats.c.service_id == service_id)
                .order_by(heartbeats.c.number.desc())
                .limit(limit)
            )
            if before is not None:
                statement = statement.where(heartbeats.c.number < before)
            return [dict(row) for row in conn.execute(statement).mappings()]

    def flips(self, names: Sequence[str], limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """The newest ``limit`` state changes of each named service, newest first (one query for all)."""
        columns = ("at", "from_state", "to_state", "reason")
        return self._newest(service_flips, service_flips.c.id, columns, names, limit)

    def _newest(
        self, table: Any, order: Any, columns: Sequence[str], names: Sequence[str], limit: int
    ) -> dict[str, list[dict[str, Any]]]:
        ranked = (
            select(
                services.c.name.label("service_name"),
                *(table.c[column] for column in columns),
                func.row_number().over(partition_by=table.c.service_id, order_by=order.desc()).label("rank"),
            )
            .join(services, services.c.id == table.c.service_id)
            .where(services.c.name.in_(list(names)))
            .subquery()
        )
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.service_name, ranked.c.rank)
            ).mappings():
                out[row["service_name"]].append({column: row[column] for column in columns})
        return out

    # --- staleness ----------------------------------------------------------------------------

    def check_stale(self, *, batch: int = 1000) -> CheckResult:
        """Flag services whose deadline has passed (``up`` -> ``late`` -> ``down``), opening alerts.

        Reads only rows whose ``deadline_at`` is due (the index) and locks them with SKIP LOCKED, so
        concurrent checkers never wait on each other or flip a row twice. A heartbeat for a row in
        the batch waits for this transaction (0.1-0.35 s for 335 flips at 10,000 services, measured).
        """
        now = self.clock.now()
        flipped: dict[str, str] = {}
        changes: list[AlertChange] = []
        with self.engine.begin() as conn:
            rows = (
                conn.execute(
                    select(services)
                    .where(services.c.deadline_at <= now)
                    .order_by(services.c.deadline_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
                .mappings()
                .all()
            )
            moves: list[dict[str, Any]] = []
            flips: list[dict[str, Any]] = []
            downs: list[Any] = []
            # Services with started runs: a run past its deadline is hung (service_hung); the
            # service's deadline becomes the earlier of its state's and its runs' still to watch.
            watched = [row for row in rows if row.open_runs and row.paused_at is None]
            run_deadlines, changes = runs.find_hung(conn, watched, now)
            for row in rows:
                health = _health(row, now)
                deadline = health.deadline_at
                if row.open_runs and row.paused_at is None:
                    deadline = runs.fold(deadline, run_deadlines.get(row.id))
                if health.state == row.state and deadline == row.deadline_at:
                    continue
                changed = health.state.value != row.state
                moves.append(
                    {
                        "b_id": row.id,
                        "b_old": row.state,
                        "b_count": row.heartbeat_count,
                        "b_state": health.state.value,
                        "b_deadline": deadline,
                        "b_changed_at": now if changed else row.state_changed_at,
                        "b_now": now,
                    }
                )
                if changed:
                    flipped[row.name] = health.state.value
                    flip = {
                        "service_id": row.id,
                        "at": now,
                        "from_state": row.state,
                        "reason": "no heartbeat",
                    }
                    flips.append({**flip, "to_state": health.state.value})
                    if health.state == ServiceState.DOWN:
                        downs.append(row)
            # The rows are locked (or, on SQLite, the transaction is the only writer): every
            # conditional update below applies, so they go as one batch instead of one per row.
            if moves:
                conn.execute(_CHECK_MOVE, moves)
            if flips:
                conn.execute(insert(service_flips), flips)
            for row in downs:
                changes += _alerts_for(conn, row.name, row.state, ServiceState.DOWN, now, None, row=row)
        return CheckResult(examined=len(rows), flipped=flipped, changes=changes)

    def prune_flips(self, keep_per_service: int) -> int:
        """Keep the newest ``keep_per_service`` flips of each service."""
        ranked = select(
            service_flips.c.id,
            func.row_number()
            .over(partition_by=service_flips.c.service_id, order_by=service_flips.c.id.desc())
            .label("rank"),
        ).subquery()
        with self.engine.begin() as conn:
            return conn.execute(
                delete(service_flips).where(
                    service_flips.c.id.in_(select(ranked.c.id).where(ranked.c.rank > keep_per_service))
                )
            ).rowcount


def _audit_view(row: Any) -> dict[str, Any]:
    """A service as the audit trail shows it: what an operator sets, not what heartbeats move."""
    view = {"interval_s": row["interval_s"], "grace_s": row["grace_s"], "paused_at": row["paused_at"]}
    for key in ("max_runtime_s", "schedule_cron", "schedule_timezone"):
        if row[key] is not None:
            view[key] = row[key]
    if row["fail_threshold"] != 1:
        view["fail_threshold"] = row["fail_threshold"]
    if row["tags"]:
        view["tags"] = list(row["tags"])
    return view


def _get(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(services).where(services.c.name == name)).mappings().first()


def _lock(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(services).where(services.c.name == name).with_for_update()).mappings().first()


def _insert_if_missing(conn: Connection, name: str, config: ServiceConfig, now: datetime) -> bool:
    insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = conn.execute(
        insert_(services)
        .values(
            name=name,
            **config.columns(),
            state=ServiceState.NEW.value,
            state_changed_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[services.c.name])
    )
    return result.rowcount == 1


def _health(row: Any, now: datetime, **overrides: Any) -> Any:
    """The row's health at ``now``; ``overrides`` are column values (and ``paused``) to use instead."""

    def value(key: str) -> Any:
        return overrides[key] if key in overrides else row[key]

    return health_at(
        now,
        last_seen_at=value("last_seen_at"),
        last_status=value("last_status"),
        interval_s=value("interval_s"),
        grace_s=value("grace_s"),
        paused=overrides["paused"] if "paused" in overrides else row["paused_at"] is not None,
        schedule=cron_schedule(value("schedule_cron"), value("schedule_timezone")),
        fail_count=value("fail_count"),
        fail_threshold=value("fail_threshold"),
    )


def _expected(row: Any, **overrides: Any) -> datetime | None:
    """When the row's next heartbeat is expected (``overrides`` as for :func:`_health`)."""

    def value(key: str) -> Any:
        return overrides[key] if key in overrides else row[key]

    last_seen_at = value("last_seen_at")
    if last_seen_at is None:
        return None
    schedule = cron_schedule(value("schedule_cron"), value("schedule_timezone"))
    return expected_after(last_seen_at, interval_s=value("interval_s"), schedule=schedule)


def _set(
    conn: Connection,
    row: Any,
    now: datetime,
    state: ServiceState,
    deadline_at: datetime | None,
    reason: str,
    *,
    fold: bool = True,
    **values: Any,
) -> bool:
    """Conditionally write the service's new state (and a flip record if it changed).

    ``fold``: the deadline given is the state's; the service's open runs' deadlines are folded in
    (unless it is paused). A caller that already folded them says ``fold=False``.
    """
    if fold and row.open_runs and state != ServiceState.PAUSED:
        deadline_at = runs.fold(deadline_at, runs.run_deadline(conn, row.id))
    changed = state.value != row.state
    extra = {"state_changed_at": now} if changed else {}
    result = conn.execute(
        update(services)
        .where(
            services.c.id == row.id,
            services.c.state == row.state,
            services.c.heartbeat_count == row.heartbeat_count,
        )
        .values(state=state.value, deadline_at=deadline_at, updated_at=now, **extra, **values)
    )
    if result.rowcount != 1:
        return False
    if changed:
        _record_flip(conn, row.id, now, row.state, state.value, reason)
    return True


def _record_flip(
    conn: Connection, service_id: int, now: datetime, before: str, after: str, reason: str
) -> None:
    conn.execute(
        insert(service_flips).values(
            service_id=service_id, at=now, from_state=before, to_state=after, reason=reason
        )
    )


def _build_beat_in_one(*, with_token: bool = False) -> Select:
    """PostgreSQL: a heartbeat of a known service as one statement (lock, update, log it in the ring).

    Returns the updated row with ``old_state``; the caller records a flip and alerts only when the
    state changed, which a steady heartbeat never does. ``with_token``: only if the token
    (``p_digest``) lets it in, the row carrying the token's ``token_id``, ``token_name``,
    ``token_scopes`` and ``token_service``; no row (nothing written) otherwise.
    """
    now = bindparam("p_now", type_=UTCDateTime())
    status = bindparam("p_status", type_=String())
    old = select(services.c.id, services.c.state, services.c.early_at, services.c.expected_at).where(
        services.c.name == bindparam("p_name")
    )
    if with_token:
        tok, touched = heartbeat_token_cte()
        old = old.where(select(tok.c.id).exists())
    old = old.with_for_update(of=services).cte("old")
    down = and_(status == "fail", services.c.fail_count + 1 >= services.c.fail_threshold)
    new_state = case(
        (services.c.paused_at.is_not(None), ServiceState.PAUSED.value),
        (down, ServiceState.DOWN.value),
        else_=ServiceState.UP.value,
    )
    # A cron service's next instant is not SQL's to compute: NULL here, and the caller (who sees
    # schedule_cron in the row returned) sets it in the same transaction.
    expected = case(
        (services.c.schedule_cron.is_(None), now + services.c.interval_s * _ONE_SECOND), else_=None
    )
    # service_state.is_early and early_resolves, on the row's values before this heartbeat.
    early = and_(
        services.c.early_tolerance_s.is_not(None),
        services.c.paused_at.is_(None),
        services.c.expected_at - services.c.early_tolerance_s * _ONE_SECOND > now,
    )
    early_at = case(
        (early, now), (services.c.early_at < services.c.last_seen_at, null()), else_=services.c.early_at
    )
    beaten = (
        update(services)
        .where(services.c.id == old.c.id)
        .values(
            last_seen_at=now,
            last_status=status,
            last_message=bindparam("p_message", type_=Text()),
            heartbeat_count=services.c.heartbeat_count + 1,
            fail_count=case((status == "fail", services.c.fail_count + 1), else_=0),
            early_at=early_at,
            state=new_state,
            expected_at=expected,
            deadline_at=case((and_(services.c.paused_at.is_(None), ~down), expected), else_=None),
            state_changed_at=case((new_state != services.c.state, now), else_=services.c.state_changed_at),
            updated_at=now,
        )
        .returning(
            *services.c,
            old.c.state.label("old_state"),
            old.c.early_at.label("old_early_at"),
            old.c.expected_at.label("old_expected_at"),
        )
        .cte("beaten")
    )
    # The ring slot is overwritten if it exists, else filled. Not INSERT … ON CONFLICT: SQLAlchemy
    # does not cache PostgreSQL's dialect INSERT, and compiling this statement anew cost ~4 ms per
    # heartbeat. The service's row lock serialises heartbeats of one service, so the slot cannot race.
    slot = beaten.c.heartbeat_count % bindparam("p_log_size")
    values = {
        "number": beaten.c.heartbeat_count,
        "received_at": now,
        "status": status,
        "message": bindparam("p_message", type_=Text()),
        "truncated": bindparam("p_truncated", type_=Boolean()),
        # A plain heartbeat names no run and no exit code; the slot may hold an older event's.
        "rid": null(),
        "duration_s": null(),
        "exit_code": null(),
    }
    overwritten = (
        update(heartbeats)
        .where(heartbeats.c.service_id == beaten.c.id, heartbeats.c.slot == slot)
        .values(**values)
        .returning(heartbeats.c.slot)
        .cte("overwritten")
    )
    filled = (
        insert(heartbeats)
        .from_select(
            ["service_id", "slot", *values],
            select(beaten.c.id, slot, *values.values()).where(~select(overwritten.c.slot).exists()),
        )
        .cte("filled")
    )
    if not with_token:
        return select(beaten).add_cte(overwritten, filled)
    token_columns = (tok.c[key].label(f"token_{key}") for key in ("id", "name", "scopes", "service"))
    return (
        select(beaten, *token_columns)
        .select_from(beaten.join(tok, true()))
        .add_cte(overwritten, filled, touched)
    )


_ONE_SECOND = literal_column("interval '1 second'", type_=Interval())
_CHECK_MOVE = (
    update(services)
    .where(
        services.c.id == bindparam("b_id"),
        services.c.state == bindparam("b_old"),
        services.c.heartbeat_count == bindparam("b_count"),
    )
    .values(
        state=bindparam("b_state"),
        deadline_at=bindparam("b_deadline", type_=UTCDateTime()),
        state_changed_at=bindparam("b_changed_at", type_=UTCDateTime()),
        updated_at=bindparam("b_now", type_=UTCDateTime()),
    )
)
_BEAT_IN_ONE = _build_beat_in_one()
_BEAT_WITH_TOKEN = _build_beat_in_one(with_token=True)


def _log_heartbeat(
    conn: Connection,
    service_id: int,
    number: int,
    log_size: int,
    now: datetime,
    status: str,
    message: str | None,
    truncated: bool,
    *,
    rid: str | None = None,
    duration_s: float | None = None,
    exit_code: int | None = None,
) -> None:
    insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    values = {
        "number": number,
        "received_at": now,
        "status": status,
        "message": message,
        "truncated": truncated,
        "rid": rid,
        "duration_s": duration_s,
        "exit_code": exit_code,
    }
    statement = insert_(heartbeats).values(service_id=service_id, slot=number % log_size, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["service_id", "slot"], set_=values))


def _close_run(
    conn: Connection, beaten: Any, status: str, now: datetime, result: HeartbeatResult
) -> HeartbeatResult:
    """After the one-statement heartbeat of a service with open runs: the end of its run without a
    run id (its duration onto the event just logged), hung runs a success ends, the deadline again."""
    outcome = runs.record(conn, beaten, status, None, now)
    deadline = beaten["deadline_at"]
    if beaten["paused_at"] is None:
        deadline = runs.fold(deadline, outcome.run_deadline)
    conn.execute(
        update(services)
        .where(services.c.id == beaten["id"])
        .values(open_runs=outcome.open_runs, deadline_at=deadline)
    )
    if outcome.duration_s is not None:
        conn.execute(
            update(heartbeats)
            .where(heartbeats.c.service_id == beaten["id"], heartbeats.c.number == beaten["heartbeat_count"])
            .values(duration_s=outcome.duration_s)
        )
    row = {**beaten, "open_runs": outcome.open_runs, "deadline_at": deadline}
    return HeartbeatResult(
        row,  # type: ignore[arg-type]
        result.created,
        result.changes + outcome.changes,
        result.token,
        outcome.duration_s,
    )


def _after_beat(
    conn: Connection,
    beaten: dict[str, Any],
    name: str,
    now: datetime,
    status: str,
    message: str | None,
    checked: dict[str, Any] | None,
) -> HeartbeatResult:
    """After the one-statement heartbeat: a flip and its alerts when the state changed, a cron
    service's next instant (SQL left it NULL; only a cron service's heartbeat pays this statement),
    the run it ends when the service has runs open."""
    changes: list[AlertChange] = []
    if beaten["old_state"] != beaten["state"]:
        reason = "heartbeat: fail" if status == "fail" else "heartbeat"
        _record_flip(conn, beaten["id"], now, beaten["old_state"], beaten["state"], reason)
        after = ServiceState(beaten["state"])
        changes = _alerts_for(
            conn, name, beaten["old_state"], after, now, message, fail_count=beaten["fail_count"]
        )
    if beaten["early_at"] != beaten["old_early_at"]:  # early now, or clean again: rare, one more statement
        changes += _early_alerts(conn, name, now, beaten["old_early_at"], beaten["early_at"],
                                 beaten["old_expected_at"], beaten["early_tolerance_s"])  # fmt: skip
    if beaten["schedule_cron"] is not None:
        expected = _expected(beaten)
        deadline = _health(beaten, now).deadline_at
        conn.execute(
            update(services)
            .where(services.c.id == beaten["id"])
            .values(expected_at=expected, deadline_at=deadline)
        )
        beaten.update(expected_at=expected, deadline_at=deadline)
    if beaten["open_runs"]:
        return _close_run(conn, beaten, status, now, HeartbeatResult(beaten, False, changes, checked))  # type: ignore[arg-type]
    return HeartbeatResult(beaten, False, changes, checked)  # type: ignore[arg-type]


def _early_alerts(
    conn: Connection,
    name: str,
    now: datetime,
    before: datetime | None,
    after: datetime | None,
    expected_at: datetime | None,
    tolerance_s: float | None,
) -> list[AlertChange]:
    """``service_early`` from a heartbeat's move of ``early_at``: set to now opens it (or counts one
    more occurrence), cleared resolves it."""
    if after == now and tolerance_s is not None and expected_at is not None:
        text = (
            f"service {name} beat early: at {now.isoformat()}, more than {tolerance_s:g} s before it was "
            f"expected ({expected_at.isoformat()})"
        )
        change = open_alert(conn, AlertKind.SERVICE_EARLY, name, now, text,
                            {"service": name, "expected_at": expected_at.isoformat()})  # fmt: skip
        return [change] if change else []
    if before is not None and after is None:
        return resolve_alerts(conn, [AlertKind.SERVICE_EARLY], name, now)
    return []


def _alerts_for(
    conn: Connection,
    name: str,
    before: str,
    after: ServiceState,
    now: datetime,
    message: str | None,
    row: Any = None,
    *,
    fail_count: int | None = None,
) -> list[AlertChange]:
    if after.value == before:
        return []
    if after == ServiceState.DOWN:
        if row is not None and row.last_seen_at is not None:
            text = f"service {name} is down: no heartbeat since {row.last_seen_at.isoformat()}"
        else:
            text = f"service {name} is down: it reported failure" + (f" ({message[:200]})" if message else "")
            if fail_count is not None and fail_count > 1:
                text += f", {fail_count} times in a row"
        change = open_alert(conn, AlertKind.SERVICE_DOWN, name, now, text, {"service": name})
        return [change] if change else []
    if after == ServiceState.UP:
        return resolve_alerts(conn, [AlertKind.SERVICE_DOWN], name, now)
    return []
