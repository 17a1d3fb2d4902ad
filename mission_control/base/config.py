"""Settings read once from the environment.

Every process (web, worker, beat, CLI) builds one :class:`Settings` at start-up, so a misconfiguration
fails loudly there rather than on the first request. Heroku-style aliases (``DATABASE_URL``,
``REDIS_URL``, ``PORT``) are accepted so the Procfile runs unchanged on such platforms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mission_control.base.networks import IPNetwork, parse_networks

DEFAULT_DATABASE_URL = "sqlite:///mission-control.db"
DEFAULT_BROKER_URL = "sqla+sqlite:///mission-control-broker.db"


class ConfigError(RuntimeError):
    """The environment lacks something a process cannot run without."""


@dataclass(frozen=True)
class Settings:
    """Process configuration; see the table in README.md for each variable."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    admin_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    port: int = 8001
    max_request_bytes: int = 1024 * 1024
    max_target_body_bytes: int = 64 * 1024
    # Scheduler: a slot older than this when claimed counts as missed (the job's misfire policy applies).
    misfire_grace_s: int = 15
    scheduler_batch: int = 1000
    # Executor: response bodies kept per attempt; a run's lease lasts its timeout plus this margin.
    response_excerpt_bytes: int = 4096
    lease_margin_s: int = 10
    # Reconciler: a run still queued this long after it was enqueued is enqueued again.
    requeue_after_s: int = 30
    # Retention: runs older than this, or beyond this many per job, are pruned.
    run_retention_days: int = 30
    run_retention_per_job: int = 1000
    # Services: defaults for a service a heartbeat registers; the heartbeat log kept per service.
    service_interval_s: int = 60
    service_grace_s: int = 60
    heartbeat_log_size: int = 100
    heartbeat_message_bytes: int = 10 * 1024
    # Email notices: the SMTP server (none: email channels fail their notices as permanent errors).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_from: str = "mission-control@localhost"
    # Serve POST /demo/echo, the target of `mission-control dev`'s demo job.
    demo_echo: bool = False
    # Outgoing requests (SSRF guard): networks denied besides the defaults (link-local, cloud
    # metadata), and networks allowed even when denied. See mission_control/outbound/policy.py.
    outbound_deny: tuple[IPNetwork, ...] = ()
    outbound_allow: tuple[IPNetwork, ...] = ()
    # Rate limits (per web process): refused credentials per client address per minute, and
    # heartbeats per second per service token (bursts of ten seconds' worth).
    auth_failures_per_min: int = 30
    heartbeats_per_s: float = 10.0
    # Reverse proxies in front of the web app that are trusted to append to X-Forwarded-For (and
    # -Proto): the client address rate limits key on is the one this many hops back.
    proxy_hops: int = 0
    # The dashboard's session-cookie key; none: generated once and kept in the database.
    session_secret: str | None = field(default=None, repr=False)
    # Keys that encrypt per-service signing secrets at rest, newest first (the first encrypts, all
    # decrypt); none: one derived from MC_SIGNING_SECRET. See mission_control/outbound/secretbox.py.
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=normalize_database_url(
                env.get("MC_DATABASE_URL") or env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
            ),
            broker_url=env.get("MC_BROKER_URL") or env.get("REDIS_URL") or DEFAULT_BROKER_URL,
            admin_token=env.get("MC_ADMIN_TOKEN") or None,
            signing_secret=env.get("MC_SIGNING_SECRET") or None,
            port=_int(env, "PORT", 8001, low=1, high=65535),
            max_request_bytes=_int(env, "MC_MAX_REQUEST_BYTES", 1024 * 1024, low=1024, high=64 * 1024 * 1024),
            max_target_body_bytes=_int(
                env, "MC_MAX_TARGET_BODY_BYTES", 64 * 1024, low=0, high=16 * 1024 * 1024
            ),
            misfire_grace_s=_int(env, "MC_MISFIRE_GRACE_S", 15, low=1, high=86_400),
            scheduler_batch=_int(env, "MC_SCHEDULER_BATCH", 1000, low=1, high=100_000),
            response_excerpt_bytes=_int(env, "MC_RESPONSE_EXCERPT_BYTES", 4096, low=0, high=1024 * 1024),
            lease_margin_s=_int(env, "MC_LEASE_MARGIN_S", 10, low=1, high=3600),
            requeue_after_s=_int(env, "MC_REQUEUE_AFTER_S", 30, low=1, high=86_400),
            run_retention_days=_int(env, "MC_RUN_RETENTION_DAYS", 30, low=1, high=3650),
            run_retention_per_job=_int(env, "MC_RUN_RETENTION_PER_JOB", 1000, low=1, high=10_000_000),
            service_interval_s=_int(env, "MC_SERVICE_INTERVAL_S", 60, low=1, high=366 * 86_400),
            service_grace_s=_int(env, "MC_SERVICE_GRACE_S", 60, low=0, high=366 * 86_400),
            heartbeat_log_size=_int(env, "MC_HEARTBEAT_LOG_SIZE", 100, low=1, high=100_000),
            heartbeat_message_bytes=_int(
                env, "MC_HEARTBEAT_MESSAGE_BYTES", 10 * 1024, low=0, high=1024 * 1024
            ),
            smtp_host=env.get("MC_SMTP_HOST") or None,
            smtp_port=_int(env, "MC_SMTP_PORT", 25, low=1, high=65535),
            smtp_user=env.get("MC_SMTP_USER") or None,
            smtp_password=env.get("MC_SMTP_PASSWORD") or None,
            smtp_starttls=env.get("MC_SMTP_STARTTLS", "") in ("1", "true", "yes"),
            smtp_from=env.get("MC_SMTP_FROM") or "mission-control@localhost",
            demo_echo=env.get("MC_DEMO_ECHO", "") in ("1", "true", "yes"),
            outbound_deny=_networks(env, "MC_OUTBOUND_DENY"),
            outbound_allow=_networks(env, "MC_OUTBOUND_ALLOW"),
            auth_failures_per_min=_int(env, "MC_AUTH_FAILURES_PER_MIN", 30, low=1, high=1_000_000),
            heartbeats_per_s=float(_int(env, "MC_HEARTBEATS_PER_S", 10, low=1, high=1_000_000)),
            proxy_hops=_int(env, "MC_PROXY_HOPS", 0, low=0, high=10),
            session_secret=env.get("MC_SESSION_SECRET") or None,
            encryption_keys=tuple(
                k.strip() for k in env.get("MC_ENCRYPTION_KEY", "").split(",") if k.strip()
            ),
        )

    def require_secrets(self) -> None:
        """Refuse to serve without the secrets that make the defaults safe (DESIGN.md invariant 7).

        Each must be long enough not to be guessed: MC_ADMIN_TOKEN 16 characters, MC_SIGNING_SECRET,
        and MC_SESSION_SECRET and each MC_ENCRYPTION_KEY key (when set) 32. Raises :class:`ConfigError`
        with a one-line message.
        """
        missing = [
            name
            for name, value in (
                ("MC_ADMIN_TOKEN", self.admin_token),
                ("MC_SIGNING_SECRET", self.signing_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} must be set; Mission Control does not run without them "
                "(`mission-control dev` generates both for a local trial)"
            )
        _check_length("MC_ADMIN_TOKEN", self.admin_token)
        _check_length("MC_SESSION_SECRET", self.session_secret)
        self.require_signing_secret()

    def require_signing_secret(self) -> None:
        """What a worker needs: it signs every trigger, and an unsigned request must never go out."""
        if not self.signing_secret:
            raise ConfigError("MC_SIGNING_SECRET must be set; workers do not send unsigned triggers")
        _check_length("MC_SIGNING_SECRET", self.signing_secret)
        for key in self.encryption_keys:
            _check_length("MC_ENCRYPTION_KEY", key)


# The shortest secret each variable takes: a guessable one would make the check it guards worthless.
MIN_SECRET_LENGTHS = {
    "MC_ADMIN_TOKEN": 16,
    "MC_SIGNING_SECRET": 32,
    "MC_SESSION_SECRET": 32,
    "MC_ENCRYPTION_KEY": 32,  # each of its comma-separated keys
}


def _check_length(name: str, value: str | None) -> None:
    """A set secret shorter than its minimum stops the process (the message never shows the value)."""
    minimum = MIN_SECRET_LENGTHS[name]
    if value is not None and len(value) < minimum:
        raise ConfigError(
            f"{name} must be at least {minimum} characters long (it has {len(value)}); generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def normalize_database_url(url: str) -> str:
    """Map platform-style URLs (``postgres://``) to the SQLAlchemy dialect we ship a driver for."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    # A typo here would silently leave a metadata service reachable (or a real target refused), so it
    # stops the process at start-up instead.
    try:
        return parse_networks(env.get(name), name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
