"""Settings read once from the environment, in this one place.

Every process (web, worker, beat, CLI) builds one :class:`Settings` at start-up, so a misconfiguration
fails loudly there rather than on the first request, and in one line naming the variable
(:class:`ConfigError`). No other module reads the environment for its configuration: it takes a
``Settings`` (or builds one with :meth:`Settings.from_env` where it has none at hand), so each variable
is parsed one way everywhere, and README.md's table of variables is generated from the fields below
(``python -m mission_control.base.settings_doc --write``; a test keeps the two in step).

The invariants kept here:

* A variable set to the empty string counts as unset (``MC_SMTP_HOST=`` means no SMTP server).
* Booleans read ``true/false``, ``1/0``, ``yes/no``, ``on/off`` in any case; anything else is an error,
  never a silent false.
* Heroku-style aliases (``DATABASE_URL``, ``REDIS_URL``, ``PORT``) are accepted so the Procfile runs
  unchanged on such platforms; the ``MC_`` name wins when both are set.
* ``Settings(...)`` takes only its arguments (tests and benchmarks build one by hand); only
  :meth:`Settings.from_env` reads an environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mission_control.base.networks import IPNetwork, parse_network

DEFAULT_DATABASE_URL = "sqlite:///mission-control.db"
DEFAULT_BROKER_URL = "sqla+sqlite:///mission-control-broker.db"
# Connections an engine keeps, and adds on demand, per process (db.engine uses them without settings).
DEFAULT_DB_POOL_SIZE = 20
DEFAULT_DB_MAX_OVERFLOW = 0
# Of MC_DB_MAX_CONNECTIONS: the release command (or one one-off) and beat's two autocommit engines.
DB_RESERVED_CONNECTIONS = 3
ENV_PREFIX = "MC_"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class ConfigError(RuntimeError):
    """The environment lacks something a process cannot run without, or holds a value it cannot use.

    The message is one line that starts with the variable's name (``MC_X must be ...``) and never
    shows a secret's value.
    """


def _flag(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"must be true or false (or 1/0, yes/no, on/off), got {value!r}")
    return value


def _items(value: object) -> object:
    """A comma-separated string as a tuple of its non-empty, stripped items (a sequence as it is)."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _networks(value: object) -> object:
    # A typo here would silently leave a metadata service reachable (or a real target refused), so it
    # stops the process at start-up instead.
    items = _items(value)
    if not isinstance(items, tuple | list):
        return items
    networks = []
    for item in items:
        try:
            networks.append(item if isinstance(item, IPNetwork) else parse_network(str(item)))
        except ValueError as exc:
            raise ValueError(
                f"must be comma-separated networks in CIDR notation; {str(item)!r} is not ({exc})"
            ) from None
    return tuple(networks)


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Flag = Annotated[bool, BeforeValidator(_flag)]
Names = Annotated[tuple[str, ...], BeforeValidator(_items)]
Networks = Annotated[tuple[IPNetwork, ...], BeforeValidator(_networks)]
LogFormat = Annotated[Literal["json", "text"], BeforeValidator(_lower)]

_KIB = 1024
_MIB = 1024 * 1024
_DAY_S = 86_400


class Settings(BaseSettings):
    """Process configuration: one field per environment variable (see README.md's generated table).

    A field's variable is ``MC_`` and its name in capitals unless ``validation_alias`` names it (a
    tuple of choices: the first one set wins). The order of the fields is the order of the table.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        case_sensitive=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    # --- where the state lives ---------------------------------------------------------------------
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("MC_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the registry; `postgres://` URLs are accepted",
    )
    redis_tls_verify: Flag = Field(
        True,
        description="verify the certificate of a `rediss://` broker (Celery, Flower, the queue-depth "
        "metric: every Redis client); `false` for an add-on with a self-signed certificate, such as "
        "Heroku Redis (app.json sets it). A `ssl_cert_reqs` in the URL itself wins",
    )
    broker_url: str = Field(
        DEFAULT_BROKER_URL,
        validation_alias=AliasChoices("MC_BROKER_URL", "REDIS_URL"),
        description="Celery broker; a `rediss://` URL gets `ssl_cert_reqs` from `MC_REDIS_TLS_VERIFY`",
    )
    # --- secrets -------------------------------------------------------------------------------------
    admin_token: str | None = Field(
        None,
        repr=False,
        description="admin bearer token, at least 16 characters. Unset: `web` refuses to start "
        "(`dev` generates one)",
    )
    signing_secret: str | None = Field(
        None,
        repr=False,
        description="HMAC key for outgoing signatures of services without their own secret, at least 32 "
        "characters. Unset: `web` and `worker` refuse to start (`dev` generates one)",
    )
    session_secret: str | None = Field(
        None,
        repr=False,
        description="key of the dashboard's session cookie, at least 32 characters. Unset: one is "
        "generated once and kept in the database",
    )
    # Keys that encrypt stored secrets (per-service signing secrets, secret job headers, channel URLs)
    # at rest, newest first (the first encrypts, all decrypt); none: one derived from MC_SIGNING_SECRET.
    # MC_ENCRYPTION_KEY is its earlier name. See mission_control/outbound/secretbox.py.
    encryption_keys: Names = Field(
        (),
        repr=False,
        validation_alias=AliasChoices("MC_SECRET_KEY", "MC_ENCRYPTION_KEY"),
        description="comma-separated keys (newest first; at least 32 characters each) that encrypt "
        "stored secrets (secret job headers, channel URLs, per-service signing secrets): the first "
        "encrypts, all decrypt; to rotate, put the new key first, run `mission-control db "
        "reencrypt-secrets`, then drop the old one. Unset: a key derived from `MC_SIGNING_SECRET` (set "
        "one so that receivers holding `MC_SIGNING_SECRET` cannot read a copy of the database's secrets)",
    )
    # --- the web process -----------------------------------------------------------------------------
    port: int = Field(8001, ge=1, le=65535, validation_alias="PORT", description="HTTP port of `web`")
    web_concurrency: int = Field(
        2,
        ge=1,
        le=1024,
        validation_alias="WEB_CONCURRENCY",
        description="gunicorn processes of `web` (its `--workers` overrides)",
    )
    gunicorn_cmd_args: str = Field(
        "",
        validation_alias="GUNICORN_CMD_ARGS",
        description="gunicorn's own options, read by `web` as gunicorn reads them; a `--workers` here "
        "counts in `MC_DB_PROCESSES`' default, in every process",
    )
    web_threads: int = Field(
        16,
        ge=1,
        le=10_000,
        validation_alias="WEB_THREADS",
        description="threads per `web` process (its `--threads` overrides); requests wait on the "
        "database, not the CPU",
    )
    web_read_timeout_s: float = Field(
        10.0,
        ge=0.5,
        le=300,
        allow_inf_nan=False,
        validation_alias="WEB_READ_TIMEOUT",
        description="seconds a request's head may take to arrive, and its body after that; slower "
        "connections are answered 408 and closed (`--read-timeout` overrides)",
    )
    web_max_connections: int = Field(
        1000,
        ge=1,
        le=100_000,
        validation_alias="WEB_MAX_CONNECTIONS",
        description="open connections per `web` process; at the limit the one reading longest is "
        "closed for a newcomer (`--max-connections` overrides)",
    )
    max_request_bytes: int = Field(
        _MIB, ge=_KIB, le=64 * _MIB, description="largest request body the API reads"
    )
    max_target_body_bytes: int = Field(
        64 * _KIB, ge=0, le=16 * _MIB, description="largest `target.body` a job may carry"
    )
    # Reverse proxies in front of the web app that are trusted to append to X-Forwarded-For (and
    # -Proto): the client address rate limits key on is the one this many hops back.
    proxy_hops: int = Field(
        0,
        ge=0,
        le=10,
        description="reverse proxies you control in front of `web` that append to `X-Forwarded-For` "
        "(1 behind one load balancer); client address and scheme are taken that many hops back "
        "(werkzeug `ProxyFix`; the Host header is never taken from `X-Forwarded-Host`). 0 trusts no "
        "forwarded header",
    )
    forwarded_allow_ips: str | None = Field(
        None,
        validation_alias="FORWARDED_ALLOW_IPS",
        description="ignored: gunicorn's own setting, which `web` overrides so that gunicorn trusts no "
        "peer's forwarded headers (`MC_PROXY_HOPS` does that); `web` warns at start-up when it is set",
    )
    # Rate limits (per web process): refused credentials per client address per minute, and
    # heartbeats per second per service token (bursts of ten seconds' worth).
    auth_failures_per_min: int = Field(
        30,
        ge=1,
        le=1_000_000,
        description="refused credentials (API, heartbeats, dashboard sign-in) a client address may make "
        "per minute, as a burst refilling over the minute; beyond it every refused credential from there "
        "answers 429 with `Retry-After` (a valid one is never refused by it). Counted per web process",
    )
    heartbeats_per_s: float = Field(
        10.0,
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="heartbeats per second a service token may send (bursts of ten seconds' worth, at "
        "least 10); beyond it 429 with `Retry-After`. The admin token is not limited. Per web process",
    )
    dashboard_insecure_cookie: Flag = Field(
        False,
        description="send the dashboard's session cookie without `Secure`, for plain HTTP to hosts "
        "other than localhost; a production deployment never sets it",
    )
    # Serve POST /demo/echo, the target of `mission-control dev`'s demo job.
    demo_echo: Flag = Field(
        False, description="serve `POST /demo/echo`, the target of `mission-control dev`'s demo job"
    )
    # --- scheduler and executor ----------------------------------------------------------------------
    # Scheduler: a slot older than this when claimed counts as missed (the job's misfire policy applies).
    misfire_grace_s: int = Field(
        15,
        ge=1,
        le=_DAY_S,
        description="how late a slot may be claimed and still count as on time",
    )
    scheduler_batch: int = Field(1000, ge=1, le=100_000, description="jobs claimed per scheduler transaction")
    # Executor: response bodies kept per attempt; a run's lease lasts its timeout plus this margin.
    response_excerpt_bytes: int = Field(
        4096, ge=0, le=_MIB, description="bytes of each answer kept with the attempt"
    )
    lease_margin_s: int = Field(
        10, ge=1, le=3600, description="a run's (or mission step's) lease lasts `timeout_s` plus this"
    )
    # Reconciler: a run still queued this long after it was enqueued is enqueued again.
    requeue_after_s: int = Field(
        30,
        ge=1,
        le=_DAY_S,
        description="a queued run, or a mission whose step message went unanswered, is enqueued again "
        "after this long",
    )
    mission_modules: Names = Field(
        (),
        description="comma-separated modules a worker imports for `call` steps' `@step_function`s",
    )
    http_pool_size: int = Field(
        128, ge=1, le=100_000, description="keep-alive connections per worker process"
    )
    # Outgoing requests (SSRF guard): networks denied besides the defaults (link-local, cloud
    # metadata), and networks allowed even when denied. See mission_control/outbound/policy.py.
    outbound_deny: Networks = Field(
        (),
        description="comma-separated networks (CIDR) no outgoing request may connect to, added to the "
        "defaults and checked against every address a host resolves to (e.g. `127.0.0.0/8,10.0.0.0/8`); "
        "an invalid one stops the process at start-up. Unset: only the defaults, link-local, the cloud "
        'metadata addresses and the IPv4-embedding IPv6 forms listed under "Security" (loopback and '
        "private ranges allowed)",
    )
    outbound_allow: Networks = Field(
        (),
        description="comma-separated networks (CIDR) allowed even when denied, e.g. a link-local target "
        "an operator really means",
    )
    # --- retention -----------------------------------------------------------------------------------
    # Retention: runs older than this, or beyond this many per job, are pruned.
    run_retention_days: int = Field(
        30, ge=1, le=3650, description="days of run history kept (finished missions: the same days)"
    )
    run_retention_per_job: int = Field(1000, ge=1, le=10_000_000, description="finished runs kept per job")
    audit_retention_days: int = Field(
        365, ge=1, le=36_500, description="days of audit trail kept (GET /api/v1/audit)"
    )
    prune_interval_s: float = Field(
        3600.0,
        ge=1,
        le=366 * _DAY_S,
        allow_inf_nan=False,
        description="how often beat sends the retention task",
    )
    # --- services and heartbeats ---------------------------------------------------------------------
    # Services: defaults for a service a heartbeat registers; the heartbeat log kept per service.
    service_interval_s: int = Field(
        60,
        ge=1,
        le=366 * _DAY_S,
        description="interval of a service its first (admin) heartbeat registers",
    )
    service_grace_s: int = Field(
        60,
        ge=0,
        le=366 * _DAY_S,
        description="grace of a service its first (admin) heartbeat registers",
    )
    heartbeat_log_size: int = Field(
        100,
        ge=1,
        le=100_000,
        description="heartbeats kept per service (a ring: a flood overwrites, never grows)",
    )
    heartbeat_message_bytes: int = Field(
        10 * _KIB,
        ge=0,
        le=_MIB,
        description="heartbeat message kept; longer ones are cut and marked `truncated`",
    )
    # --- email notices -------------------------------------------------------------------------------
    # Email notices: the SMTP server (none: email channels fail their notices as permanent errors).
    smtp_host: str | None = Field(
        None,
        description="the SMTP server email channels send through. Unset: email notices fail as "
        "permanent errors",
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="port of the SMTP server")
    smtp_user: str | None = Field(None, description="user name at the SMTP server, if it wants one")
    smtp_password: str | None = Field(None, repr=False, description="password of `MC_SMTP_USER`")
    smtp_starttls: Flag = Field(False, description="upgrade the SMTP connection with STARTTLS")
    smtp_from: str = Field("mission-control@localhost", description="sender address of email notices")
    # --- the processes' plumbing ---------------------------------------------------------------------
    db_pool_size: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="PostgreSQL connections kept per process (threads queue for a pooled connection). "
        "Unset: 20, or with `MC_DB_MAX_CONNECTIONS` set, that budget's share: `(MC_DB_MAX_CONNECTIONS - "
        '3) // MC_DB_PROCESSES - MC_DB_MAX_OVERFLOW`, at least 1 (see "Database connections")',
    )
    db_max_connections: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="PostgreSQL connections the whole deployment may open (the plan's limit, e.g. 20); "
        "sizes each process's pool when `MC_DB_POOL_SIZE` is unset. Unset: no budget",
    )
    db_processes: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="processes sharing `MC_DB_MAX_CONNECTIONS`. Unset: one web dyno's gunicorn processes "
        "(a `--workers` in `GUNICORN_CMD_ARGS`, else `WEB_CONCURRENCY`) + 2 (one worker, one beat); "
        "raise it when scaling out",
    )
    db_max_overflow: int = Field(
        DEFAULT_DB_MAX_OVERFLOW,
        ge=0,
        le=10_000,
        description="PostgreSQL connections added on demand per process beyond the pool (closed after use)",
    )
    log_format: LogFormat = Field(
        "json",
        description="logs of every process: `json` (one object per line; executor lines carry `run_id`, "
        "`job`, `attempt`, outcome; web's access lines `method`, `path` without the query string, "
        "`status`, `duration_ms`) or `text` (Celery's and gunicorn's own; `mission-control dev` sets it)",
    )
    prometheus_multiproc_dir: str | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="an empty directory where processes write their counters for web's `/metrics` to "
        "add up (prometheus-client's multiprocess mode, which prometheus-client reads itself too; "
        "`mission-control dev` points every process at one). Unset: `mission-control web` makes a "
        "private one for its gunicorn processes and removes it at exit",
    )
    metrics_job_series: int = Field(
        0,
        ge=0,
        le=10_000,
        description="per-job series, bounded: jobs each worker counts under their own name in "
        "`mc_job_runs_total{job_name,status}` (the first that many to end a run; later ones count as "
        "`_other`), and enabled jobs web's `/metrics` reports "
        "`mc_job_last_success_timestamp_seconds{job_name}` for (the first that many by name). 0: no "
        "per-job series",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="port a worker or a beat serves its own `/metrics` on (runs, attempt durations, "
        "firing lag, tick durations; the same token as web's `/metrics`: `metrics` scope or admin). "
        "Two processes on one host each need their own: run the beat with a different value (e.g. "
        "worker 9101, beat 9102). Unset: no endpoint",
    )
    metrics_address: str = Field(
        "0.0.0.0",
        min_length=1,
        description="address the `MC_METRICS_PORT` endpoint listens on (`127.0.0.1` for local scrapes only)",
    )

    @property
    def db_pool(self) -> int:
        """The pool each process keeps: ``MC_DB_POOL_SIZE``, else its share of the connection budget.

        Of ``MC_DB_MAX_CONNECTIONS``, 1 is left for the release command or a one-off ``heroku run``
        and 2 for beat's one-connection autocommit engines (its idle peek and the housekeeping probe);
        the rest is split evenly between the processes, each of which may also open its overflow.
        """
        if self.db_pool_size is not None:
            return self.db_pool_size
        if self.db_max_connections is None:
            return DEFAULT_DB_POOL_SIZE
        processes = self.db_processes or self.web_processes + 2
        return max(1, (self.db_max_connections - DB_RESERVED_CONNECTIONS) // processes - self.db_max_overflow)

    @property
    def web_processes(self) -> int:
        """gunicorn processes of one ``web``, as gunicorn will count them: a ``--workers`` (``-w``) in
        ``GUNICORN_CMD_ARGS``, else ``WEB_CONCURRENCY``. Worker and beat dynos see the platform's
        ``GUNICORN_CMD_ARGS`` too, so every process sizes its pool for the same web. (A ``workers`` in a
        ``gunicorn.conf.py`` or a ``--workers`` on the command line is invisible here: set
        ``MC_DB_PROCESSES`` then.) Parsed with gunicorn's own option parser, so every spelling counts."""
        if self.gunicorn_cmd_args.strip():
            import shlex

            from gunicorn.config import Config

            try:
                parsed, _ = Config().parser().parse_known_args(shlex.split(self.gunicorn_cmd_args))
            except (ValueError, SystemExit):  # unbalanced quotes, or an option gunicorn itself refuses
                parsed = None
            if parsed is not None and parsed.workers:
                return int(parsed.workers)
        return self.web_concurrency

    @field_validator("broker_url")
    @classmethod
    def _broker_tls(cls, url: str, info: ValidationInfo) -> str:
        return redis_url_with_tls(url, verify=info.data.get("redis_tls_verify", True))

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, url: str) -> str:
        return normalize_database_url(url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the arguments: an object built by hand never picks up the caller's environment.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``env`` (default: this process's environment).

        Raises :class:`ConfigError` with one line naming each variable whose value cannot be used.
        """
        source = EnvironmentSource(cls, os.environ if env is None else env)
        values = source()
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, source.read_from)) from None

    @classmethod
    def env_names(cls, field_name: str) -> tuple[str, ...]:
        """The variables a field is read from, in order of precedence."""
        return env_names(field_name, cls.model_fields[field_name])

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


def env_names(field_name: str, field: FieldInfo) -> tuple[str, ...]:
    """``validation_alias`` when the field has one (its choices in order), else ``MC_`` + the name."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return (alias,)
    if isinstance(alias, AliasChoices):
        return tuple(choice for choice in alias.choices if isinstance(choice, str))
    return (ENV_PREFIX + field_name.upper(),)


class EnvironmentSource(PydanticBaseSettingsSource):
    """The values of one environment mapping as raw strings, keyed by field name.

    pydantic-settings' own environment source reads only ``os.environ`` and decodes list-like fields
    as JSON (``MC_OUTBOUND_DENY=10.0.0.0/8`` is a comma-separated list here); this one reads any
    mapping (tests pass dicts), leaves every value to the field's own parsing, treats an empty value as
    unset, and remembers which variable each value came from for error messages.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ
        self.read_from: dict[str, str] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for name in env_names(field_name, field):
            value = self.environ.get(name)
            if value:
                return value, name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field_name] = value
                self.read_from[field_name] = name
        return values


def _explain(exc: ValidationError, read_from: Mapping[str, str]) -> str:
    """One line for every problem: the variable, what its value must be, and the value it got.

    Secrets are plain strings, which never fail to parse, so no secret's value reaches a message.
    """
    fields = Settings.model_fields
    by_name = {
        name: field_name for field_name in fields for name in (field_name, *Settings.env_names(field_name))
    }
    problems = []
    for error in exc.errors(include_url=False):
        field_name = by_name.get(str(error["loc"][0]) if error["loc"] else "", "")
        if not field_name:
            problems.append(f"settings: {error['msg']}")
            continue
        variable = read_from.get(field_name) or Settings.env_names(field_name)[0]
        problems.append(f"{variable} {_must(error, fields[field_name])}")
    return "; ".join(problems)


def _must(error: Any, field: FieldInfo) -> str:
    kind = error["type"]
    value = error.get("input")
    shown = value if isinstance(value, str) and len(value) <= 80 else str(value)[:80] + "..."
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return f"must be an integer, got {shown!r}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number, got {shown!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {shown!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {describe_bounds(field)}, got {shown}"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}, got {shown!r}"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    return f"is not valid: {error['msg']}"


def field_bounds(field: FieldInfo) -> dict[str, Any]:
    """The numeric bounds a field declares, by kind: ``{"ge": 1, "le": 65535}``."""
    return {
        kind: getattr(item, kind)
        for item in field.metadata
        for kind in ("ge", "gt", "le", "lt")
        if getattr(item, kind, None) is not None
    }


def describe_bounds(field: FieldInfo) -> str:
    """``between 1 and 65535`` (both bounds inclusive), else each bound in words."""
    bounds = field_bounds(field)
    if set(bounds) == {"ge", "le"}:
        return f"between {plain_number(bounds['ge'])} and {plain_number(bounds['le'])}"
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
    return " and ".join(f"{words[kind]} {plain_number(bound)}" for kind, bound in bounds.items())


def plain_number(value: float) -> str:
    """``1000000`` and ``0.5``, never ``1e+06`` or ``10.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


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


def redis_url_with_tls(url: str, *, verify: bool) -> str:
    """A ``rediss://`` URL that says how to check the server's certificate, for every client.

    kombu (the broker, Flower) reads ``ssl_cert_reqs`` from the URL and without it silently skips
    verification; redis-py's ``from_url`` (the queue-depth metric) reads it too and without it
    verifies. Written into the one URL they all get, both behave the same: ``required`` unless
    ``verify`` is false. A URL that already names ``ssl_cert_reqs`` is left alone.
    """
    if not url.startswith("rediss://"):
        return url
    parts = urlsplit(url)
    if any(key == "ssl_cert_reqs" for key, _ in parse_qsl(parts.query)):
        return url
    query = "&".join(filter(None, [parts.query, f"ssl_cert_reqs={'required' if verify else 'none'}"]))
    return urlunsplit(parts._replace(query=query))


def redis_ssl_options(url: str) -> dict[str, Any] | None:
    """Celery's ``broker_use_ssl`` for a ``rediss://`` URL from :func:`redis_url_with_tls` (else None).

    For the clients that read the setting rather than the URL: Flower's broker page builds its own
    redis-py client from ``broker_use_ssl`` alone, and verifies when it is unset.
    """
    if not url.startswith("rediss://"):
        return None
    import ssl

    given = dict(parse_qsl(urlsplit(url).query)).get("ssl_cert_reqs", "required")
    modes = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
    return {"ssl_cert_reqs": modes.get(given.lower().removeprefix("cert_"), ssl.CERT_REQUIRED)}


def normalize_database_url(url: str) -> str:
    """Map platform-style URLs (``postgres://``) to the SQLAlchemy dialect we ship a driver for."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def export_variable(name: str, value: str | None) -> None:
    """Set ``name`` (or with None, remove it) in this process's environment, which the processes it
    starts inherit: for a library that reads its own variable (prometheus-client reads
    ``PROMETHEUS_MULTIPROC_DIR`` at import; ``mission-control web`` sets it for its gunicorn processes).
    Settings are read through :meth:`Settings.from_env`; this only writes."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
