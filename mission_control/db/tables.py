"""The registry schema as SQLAlchemy Core tables.

This is the schema the Alembic migrations must produce; ``tests/test_migrations.py`` compares the two
so neither drifts. Change a table here and add a migration in the same commit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from mission_control.db.types import UTCDateTime, json_type

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("service", String(128), nullable=False),
    Column("target", json_type(), nullable=False),
    Column("schedule", json_type(), nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("expected_runtime_s", Float, nullable=True),
    Column("retry", json_type(), nullable=False),
    Column("concurrency", String(16), nullable=False),
    Column("misfire", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    # NULL while paused or when a one-shot has nothing left to fire: the scheduler's due query is then
    # a plain range scan of this index, with no filter on `enabled`.
    Column("next_run_at", UTCDateTime(), nullable=True),
    # Set when an operator pauses the job, so a run queued before the pause is skipped. A one-shot
    # that has fired is also disabled, but by the scheduler, and its run must still go out.
    Column("paused_at", UTCDateTime(), nullable=True),
    # Bumped on every write; a compare-and-set on it makes concurrent edits safe without long locks.
    Column("revision", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The job's tags as answered (mission_control.base.tags); subject_tags indexes them for filtering.
    Column("tags", json_type(), nullable=False, server_default=text("'[]'")),
    Index("ix_jobs_next_run_at", "next_run_at"),
    Index("ix_jobs_service_name", "service", "name"),
)


# One row per schedule slot (or manual trigger). Written by the scheduler before its task is enqueued
# (the outbox of DESIGN.md invariant 1); every row ends in a terminal status (invariant 3).
runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # SET NULL keeps the history of a deleted job readable under its name.
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
    Column("job_name", String(128), nullable=False),
    Column("scheduled_for", UTCDateTime(), nullable=False),
    Column("trigger", String(16), nullable=False),  # schedule | catch_up | manual
    Column("status", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("missed_count", Integer, nullable=False, server_default=text("0")),
    Column("attempt_count", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("enqueued_at", UTCDateTime(), nullable=True),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("leased_until", UTCDateTime(), nullable=True),
    Column("slow", Boolean, nullable=False, server_default=text("false")),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("job_id", "scheduled_for", name="uq_runs_job_id_scheduled_for"),
    Index("ix_runs_job_name_id", "job_name", "id"),
    Index("ix_runs_status_id", "status", "id"),
    # The reconciler and the retry sweep read only unfinished runs; keep that index small.
    Index(
        "ix_runs_unfinished",
        "status",
        "next_attempt_at",
        postgresql_where=text("status IN ('queued', 'running', 'retrying')"),
        sqlite_where=text("status IN ('queued', 'running', 'retrying')"),
    ),
    Index(
        "ix_runs_job_unfinished",
        "job_id",
        postgresql_where=text("status IN ('queued', 'running', 'retrying')"),
        sqlite_where=text("status IN ('queued', 'running', 'retrying')"),
    ),
    # /metrics counts the runs that finished in the last hour by status: an index-only range scan.
    Index(
        "ix_runs_finished_at_status",
        "finished_at",
        "status",
        postgresql_where=text("finished_at IS NOT NULL"),
        sqlite_where=text("finished_at IS NOT NULL"),
    ),
)

# One row per HTTP attempt of a run.
attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running | succeeded | failed | timed_out
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("response_headers", json_type(), nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Column("response_truncated", Boolean, nullable=False, server_default=text("false")),
    Column("error_class", String(128), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("worker", String(128), nullable=True),
    UniqueConstraint("run_id", "number", name="uq_attempts_run_id_number"),
)

# Services prove they are alive with heartbeats. ``deadline_at`` is when the stored state next needs
# looking at (``up`` turns ``late``, ``late`` turns ``down``); NULL for states only a heartbeat or an
# operator changes (new, down, paused). The staleness check reads only rows whose deadline passed.
services = Table(
    "services",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("interval_s", Float, nullable=True),  # NULL for a cron-scheduled service
    Column("grace_s", Float, nullable=False),
    Column("state", String(16), nullable=False),  # new | up | late | down | paused
    Column("state_changed_at", UTCDateTime(), nullable=False),
    Column("deadline_at", UTCDateTime(), nullable=True),
    Column("last_seen_at", UTCDateTime(), nullable=True),
    Column("last_status", String(8), nullable=True),  # ok | fail
    Column("last_message", Text, nullable=True),
    Column("heartbeat_count", BigInteger, nullable=False, server_default=text("0")),
    Column("paused_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # A started run older than this is hung (service_hung); NULL: runs are never hung.
    Column("max_runtime_s", Float, nullable=True),
    # How many rows of heartbeat_runs are this service's: the plain heartbeat reads it from the row it
    # updates anyway, and only when it is not 0 looks for a run to close.
    Column("open_runs", Integer, nullable=False, server_default=text("0")),
    # A cron-scheduled service (instead of interval_s): heartbeats expected at each instant, with the
    # jobs' cronie DST rules (monitoring/service_state.py).
    Column("schedule_cron", String(256), nullable=True),
    Column("schedule_timezone", String(64), nullable=True),
    # service_down opens after fail_threshold failures in a row; fail_count is the current streak.
    Column("fail_threshold", Integer, nullable=False, server_default=text("1")),
    Column("fail_count", Integer, nullable=False, server_default=text("0")),
    # A heartbeat more than early_tolerance_s before expected_at (when the next one is due; every
    # heartbeat keeps it) is early (service_early); early_at is the last early one.
    Column("early_tolerance_s", Float, nullable=True),
    Column("expected_at", UTCDateTime(), nullable=True),
    Column("early_at", UTCDateTime(), nullable=True),
    # The service's tags as answered (mission_control.base.tags); subject_tags indexes them.
    Column("tags", json_type(), nullable=False, server_default=text("'[]'")),
    Index("ix_services_deadline_at", "deadline_at"),
)

# One row per tag of a service or job (kind "service" | "job", by name), written in the same
# transaction as the object's own ``tags`` column. The primary key (kind, tag, name) is the index a
# filtered list walks in name order: ``?tag=team:billing&cursor=<name>`` is a range scan of it, joined
# to the object by its unique name, at any number of jobs and on both databases (a JSON containment
# index would be PostgreSQL's only, and would not give the keyset order).
subject_tags = Table(
    "subject_tags",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Index("ix_subject_tags_kind_name", "kind", "name"),
)

# Status badges (GET /badge/<key>.svg, no token): one row per badge, for a service, a job or a tag by
# name. The key (128 random bits and more) is shown once; only its SHA-256 is kept, so the table leaks
# no badge URL. A revoked badge keeps its row (revoked_at set) and its key answers 404 like any other.
badges = Table(
    "badges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # service | job | tag
    Column("subject", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

# Every API credential but the bootstrap MC_ADMIN_TOKEN: a name, scopes (a JSON list such as
# ["jobs:write", "runs:read"]) and optionally the one service it may act for. Only the token's SHA-256
# (hex) is kept. A revoked token keeps its row (revoked_at set) for the record but never authenticates.
# `last_used_at` is written at most once a minute per token, so a busy token costs no write per request.
# A "service token" (POST /services/{name}/tokens) is a row scoped ["heartbeats:write"] for that service.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("scopes", json_type(), nullable=False),
    Column("service", String(128), nullable=True),
    Column("label", String(128), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index("ix_api_tokens_service", "service"),
)

# The recent heartbeats of each service as a ring: slot = heartbeat number modulo the log size, so a
# flood overwrites old entries in place and storage never grows past services x log size.
heartbeats = Table(
    "heartbeats",
    metadata,
    Column("service_id", Id, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("number", BigInteger, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("status", String(8), nullable=False),
    Column("message", Text, nullable=True),
    Column("truncated", Boolean, nullable=False, server_default=text("false")),
    Column("rid", String(36), nullable=True),  # the run id the event named (?rid=)
    Column("duration_s", Float, nullable=True),  # an end paired with its start: how long the run took
    Column("exit_code", Integer, nullable=True),  # POST /heartbeats/{name}/{code}
)

# Runs started (POST /heartbeats/{name}/start) and not yet ended, one per service and run id ('' for
# a start without one). ``deadline_at`` (start + the service's max_runtime_s) is folded into the
# service's ``deadline_at`` so the staleness check finds a run that hangs; ``hung_at`` once it did.
heartbeat_runs = Table(
    "heartbeat_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service_id", Id, ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
    Column("rid", String(36), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("deadline_at", UTCDateTime(), nullable=True),
    Column("hung_at", UTCDateTime(), nullable=True),
    UniqueConstraint("service_id", "rid", name="uq_heartbeat_runs_service_id_rid"),
)

# Every change of a service's state, with why; pruned to a number per service by retention.
service_flips = Table(
    "service_flips",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service_id", Id, ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Index("ix_service_flips_service_id_id", "service_id", "id"),
)

# Alerts: at most one unresolved (open or acknowledged) alert per (kind, subject), enforced by a
# partial unique index; a repeat of the condition counts on it instead of opening another.
UNRESOLVED = "state IN ('open', 'acknowledged')"
alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # service_down | job_failed | job_slow | job_missed
    Column("subject", String(128), nullable=False),  # the service or job name
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved
    Column("message", Text, nullable=False),
    Column("details", json_type(), nullable=True),
    Column("occurrences", Integer, nullable=False, server_default=text("1")),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime(), nullable=True),
    Column("ack_comment", Text, nullable=True),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("last_notified_at", UTCDateTime(), nullable=True),
    Column("silence_id", Id, nullable=True),  # the silence that last muted a notice about it
    Index(
        "uq_alerts_unresolved",
        "kind",
        "subject",
        unique=True,
        postgresql_where=text(UNRESOLVED),
        sqlite_where=text(UNRESOLVED),
    ),
    Index("ix_alerts_subject_id", "subject", "id"),
    Index("ix_alerts_state_id", "state", "id"),
)

# Notification channels: where alert notices go, routed by alert kind and subject pattern.
channels = Table(
    "channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # webhook | slack | email
    Column("target", json_type(), nullable=False),  # {"url": ...} or {"to": [...]}
    Column("alert_kinds", json_type(), nullable=True),  # null: every kind
    Column("subject_pattern", String(128), nullable=False),  # fnmatch-style, "*" for all
    Column("repeat_interval_s", Float, nullable=True),  # null: no repeat notices
    Column("tag_pattern", String(80), nullable=True),  # fnmatch on the subject's tags; null: any
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One notice per (channel, alert, event); ``dedup_key`` makes routing idempotent under redelivery.
notices = Table(
    "notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("alert_id", Id, ForeignKey("alerts.id", ondelete="SET NULL"), nullable=True),
    Column("event", String(16), nullable=False),  # opened | resolved | repeat | acknowledged | test
    Column("dedup_key", String(128), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending | sent | failed | silenced
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("error_kind", String(16), nullable=True),  # transient | permanent
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("silence_id", Id, nullable=True),  # status "silenced": the silence that kept it from going
    Index("ix_notices_channel_id_id", "channel_id", "id"),
    Index("ix_notices_alert_id", "alert_id"),
)

# Every delivery attempt of a notice: when, how long, and what happened (never the URL or secrets).
notice_attempts = Table(
    "notice_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notice_id", Id, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # sent | transient | permanent
    Column("detail", Text, nullable=True),
    UniqueConstraint("notice_id", "number", name="uq_notice_attempts_notice_id_number"),
)

# Silences: while one is active (starts_at <= now < ends_at), alerts it matches still open and are
# recorded, but their notices are kept (status "silenced") instead of sent.
silences = Table(
    "silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_kinds", json_type(), nullable=True),  # null: every kind
    Column("subject_pattern", String(128), nullable=False),  # fnmatch-style, as channels'
    Column("tag_pattern", String(80), nullable=True),  # one of the subject's tags matches; null: any
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expired_at", UTCDateTime(), nullable=True),  # ended early by hand
    Index("ix_silences_ends_at", "ends_at"),
)

# Mission definitions: every version kept, because a running mission finishes on the version it
# started with. A PUT of an unchanged body (same digest) adds no version.
mission_definitions = Table(
    "mission_definitions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", json_type(), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Missions: one row each, the whole state in `doc` (see mission_control/missions/machine.py); the
# columns beside it exist to be indexed. `wake_at` is when the engine must look again on its own (a
# timer, a retry, a signal's deadline, an expired lease, an undelivered step message); NULL when only
# a signal or nothing can move the mission, so the partial index holds only missions with a deadline.
WAKEABLE = "wake_at IS NOT NULL"
missions = Table(
    "missions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("definition", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running | waiting | completed | failed | cancelled
    Column("doc", json_type(), nullable=False),
    Column("wake_at", UTCDateTime(), nullable=True),
    # The document's revision, for compare-and-set writes (see MissionStore.transition).
    Column("revision", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The service that started it: a token bound to that service, or that service's job; NULL when an
    # unbound token started it. Tokens bound to a service see and act on their service's missions only.
    Column("service", String(128), nullable=True),
    Index("ix_missions_wake_at", "wake_at", postgresql_where=text(WAKEABLE), sqlite_where=text(WAKEABLE)),
    Index("ix_missions_created_at_id", "created_at", "id"),
    Index("ix_missions_status_created_at_id", "status", "created_at", "id"),
    Index("ix_missions_definition_created_at_id", "definition", "created_at", "id"),
    Index("ix_missions_service_created_at_id", "service", "created_at", "id"),
)

# Keys Mission Control generates for itself when the operator configured none (today: the dashboard
# session cookies' key), created once by whichever process needs one first and shared by all.
app_secrets = Table(
    "app_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Dashboard sessions, server side: the cookie carries a random id whose SHA-256 is `id_digest`, so
# signing out (deleting the row) ends the session wherever the cookie was copied. `credential` is a
# keyed fingerprint of the token that signed in: when that token changes, the session no longer
# matches. `expires_at` is fixed at sign-in (an absolute lifetime, never renewed by use).
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("credential", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # The api_tokens row that signed in (NULL: MC_ADMIN_TOKEN): the session ends when it is revoked
    # or expires, and its scopes and service are what the session may see and do.
    Column("token_id", Id, nullable=True),
    Index("ix_dashboard_sessions_expires_at", "expires_at"),
)

# Signing secrets of one service (by the name jobs carry in `service`), encrypted at rest. Requests
# to the service's targets are signed with every secret whose `expires_at` is NULL or in the future:
# after a rotation the old secret keeps verifying until its overlap window ends.
service_signing_secrets = Table(
    "service_signing_secrets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service", String(128), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Index("ix_service_signing_secrets_service", "service"),
)

# Who changed what, through the API, CLI or dashboard: one row per change, written in the change's own
# transaction (mission_control.db.audit). `actor` is the token's name ("MC_ADMIN_TOKEN" for the
# bootstrap admin, "dashboard: <name>" for a dashboard session); `actor_token_id` is its api_tokens id
# (NULL for the bootstrap admin). `service` is the service the subject belongs to, so a bound token
# reads its own service's rows. `change` is {"before": ..., "after": ...} with secrets as "****".
# Paged newest first by (at, id); pruned after MC_AUDIT_RETENTION_DAYS.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor_token_id", Id, nullable=True),
    Column("actor", String(160), nullable=False),
    Column("client_address", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("subject_kind", String(32), nullable=False),
    Column("subject_name", String(200), nullable=False),
    Column("service", String(128), nullable=True),
    Column("change", json_type(), nullable=True),
    Index("ix_audit_log_at_id", "at", "id"),
    Index("ix_audit_log_subject", "subject_kind", "subject_name", "at"),
    Index("ix_audit_log_actor_at", "actor", "at"),
    Index("ix_audit_log_service_at", "service", "at"),
)
