"""Settings: every variable parsed one way, in one place, and refused in one line that names it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mission_control.base.config import DEFAULT_DATABASE_URL, ConfigError, Settings
from mission_control.cli import main
from mission_control.db.engine import engine_for
from mission_control.runtime.logs import json_logs_wanted
from mission_control.web.api import create_app

SECRETS = {"MC_ADMIN_TOKEN": "a" * 16, "MC_SIGNING_SECRET": "s" * 32}


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("word", ["True", "true", "TRUE", "1", "yes", "Yes", "on", "ON"])
def test_a_boolean_reads_true_in_any_case(word):
    assert Settings.from_env({"MC_SMTP_STARTTLS": word}).smtp_starttls is True
    assert Settings.from_env({"MC_DASHBOARD_INSECURE_COOKIE": word}).dashboard_insecure_cookie is True


@pytest.mark.parametrize("word", ["False", "false", "0", "no", "NO", "off", "Off", ""])
def test_a_boolean_reads_false_in_any_case_and_unset_is_false(word):
    assert Settings.from_env({"MC_SMTP_STARTTLS": word, "MC_DEMO_ECHO": word}).smtp_starttls is False
    assert Settings.from_env({"MC_DEMO_ECHO": word}).demo_echo is False


def test_a_word_that_is_not_a_boolean_is_refused_rather_than_read_as_false():
    assert refusal({"MC_SMTP_STARTTLS": "maybe"}) == (
        "MC_SMTP_STARTTLS must be true or false (or 1/0, yes/no, on/off), got 'maybe'"
    )


def test_a_rate_takes_a_fraction():
    assert Settings.from_env({"MC_HEARTBEATS_PER_S": "0.5"}).heartbeats_per_s == 0.5
    assert refusal({"MC_HEARTBEATS_PER_S": "0"}) == (
        "MC_HEARTBEATS_PER_S must be greater than 0 and at most 1000000, got 0"
    )
    assert refusal({"MC_HEARTBEATS_PER_S": "nan"}).startswith("MC_HEARTBEATS_PER_S must be a finite number")


def test_a_pool_size_that_is_not_a_number_is_refused_in_one_line_naming_it():
    assert refusal({"MC_DB_POOL_SIZE": "abc"}) == "MC_DB_POOL_SIZE must be an integer, got 'abc'"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "70000", "PORT must be between 1 and 65535, got 70000"),
        ("MC_SMTP_PORT", "1.5", "MC_SMTP_PORT must be an integer, got '1.5'"),
        ("MC_MAX_REQUEST_BYTES", "10", "MC_MAX_REQUEST_BYTES must be between 1024 and 67108864, got 10"),
        ("MC_DB_MAX_OVERFLOW", "-1", "MC_DB_MAX_OVERFLOW must be between 0 and 10000, got -1"),
        ("MC_HTTP_POOL_SIZE", "many", "MC_HTTP_POOL_SIZE must be an integer, got 'many'"),
        ("WEB_THREADS", "0", "WEB_THREADS must be between 1 and 10000, got 0"),
        ("WEB_READ_TIMEOUT", "soon", "WEB_READ_TIMEOUT must be a number, got 'soon'"),
        ("WEB_CONCURRENCY", "two", "WEB_CONCURRENCY must be an integer, got 'two'"),
        ("MC_PRUNE_INTERVAL_S", "0", "MC_PRUNE_INTERVAL_S must be between 1 and 31622400, got 0"),
        ("MC_LOG_FORMAT", "xml", "MC_LOG_FORMAT must be 'json' or 'text', got 'xml'"),
    ],
)
def test_a_value_out_of_its_type_or_range_is_refused_naming_the_variable(name, value, message):
    assert refusal({name: value}) == message


def test_every_bad_variable_is_named_on_the_same_line():
    assert refusal({"MC_DB_POOL_SIZE": "abc", "MC_SMTP_STARTTLS": "sure"}) == (
        "MC_SMTP_STARTTLS must be true or false (or 1/0, yes/no, on/off), got 'sure'; "
        "MC_DB_POOL_SIZE must be an integer, got 'abc'"
    )


def test_an_empty_variable_counts_as_unset():
    settings = Settings.from_env({"MC_SMTP_HOST": "", "MC_SMTP_PORT": "", "MC_HEARTBEATS_PER_S": ""})
    assert (settings.smtp_host, settings.smtp_port, settings.heartbeats_per_s) == (None, 25, 10.0)


def test_the_mc_names_win_over_the_platform_aliases_and_an_empty_one_falls_through():
    platform = {"DATABASE_URL": "postgres://u@db/app", "REDIS_URL": "redis://r:6379/0"}
    settings = Settings.from_env(platform)
    assert settings.database_url == "postgresql+psycopg2://u@db/app"
    assert settings.broker_url == "redis://r:6379/0"
    both = Settings.from_env(
        {**platform, "MC_DATABASE_URL": "sqlite:///mine.db", "MC_BROKER_URL": "memory://"}
    )
    assert (both.database_url, both.broker_url) == ("sqlite:///mine.db", "memory://")
    empty = Settings.from_env({**platform, "MC_DATABASE_URL": "", "MC_BROKER_URL": ""})
    assert (empty.database_url, empty.broker_url) == ("postgresql+psycopg2://u@db/app", "redis://r:6379/0")
    assert Settings.from_env({}).database_url == DEFAULT_DATABASE_URL


def test_lists_are_comma_separated_and_skip_empty_items():
    settings = Settings.from_env(
        {
            "MC_MISSION_MODULES": " billing.missions, ,ops.steps,",
            "MC_ENCRYPTION_KEY": "k" * 32 + " , " + "j" * 32,
        }
    )
    assert settings.mission_modules == ("billing.missions", "ops.steps")
    assert settings.encryption_keys == ("k" * 32, "j" * 32)


def test_settings_built_by_hand_ignore_the_environment(monkeypatch):
    monkeypatch.setenv("MC_SMTP_PORT", "2525")
    monkeypatch.setenv("WEB_THREADS", "3")
    assert Settings().smtp_port == 25
    assert Settings(web_threads=5).web_threads == 5
    assert (Settings.from_env().smtp_port, Settings.from_env().web_threads) == (2525, 3)


def test_settings_are_frozen_and_keep_secrets_out_of_their_repr():
    settings = Settings.from_env({**SECRETS, "MC_SMTP_PASSWORD": "hunter2-password"})
    with pytest.raises(ValueError):
        settings.port = 1  # type: ignore[misc]
    assert "hunter2" not in repr(settings) and "a" * 16 not in repr(settings)


def test_the_database_pool_comes_from_the_settings():
    settings = Settings.from_env(
        {
            "MC_DATABASE_URL": "postgresql://u@127.0.0.1/none",
            "MC_DB_POOL_SIZE": "7",
            "MC_DB_MAX_OVERFLOW": "3",
        }
    )
    engine = engine_for(settings)  # SQLAlchemy connects lazily: nothing is dialled here
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (7, 3)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_the_log_format_comes_from_the_settings_in_any_case():
    assert json_logs_wanted(Settings.from_env({})) is True
    assert json_logs_wanted(Settings.from_env({"MC_LOG_FORMAT": "TEXT"})) is False


@pytest.mark.parametrize(("value", "secure"), [("", True), ("0", True), ("1", False), ("True", False)])
def test_the_dashboard_cookie_is_secure_unless_the_settings_say_otherwise(value, secure):
    settings = Settings.from_env(
        {
            **SECRETS,
            "MC_DATABASE_URL": "sqlite://",
            "MC_BROKER_URL": "memory://",
            "MC_DASHBOARD_INSECURE_COOKIE": value,
        }
    )
    app = create_app(settings)
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is secure
    finally:
        app.extensions["mission_control"].engine.dispose()


class _Gunicorn:
    """Stands in for gunicorn: records the options `mission-control web` would start it with."""

    options: dict[str, object] = {}
    ignored: list[str] = []

    def __init__(self, defaults: dict[str, object], overrides: dict[str, object]) -> None:
        type(self).options = {**defaults, **overrides}  # no config file, no GUNICORN_CMD_ARGS

    def run(self) -> None:
        pass


@pytest.fixture
def gunicorn(monkeypatch):
    monkeypatch.setattr("mission_control.cli.web._Gunicorn", _Gunicorn)
    _Gunicorn.options = {}
    return _Gunicorn


def test_web_takes_its_gunicorn_options_from_the_settings_and_its_flags_win(gunicorn):
    env = {
        **SECRETS,
        "WEB_CONCURRENCY": "3",
        "WEB_THREADS": "5",
        "WEB_MAX_CONNECTIONS": "70",
        "WEB_READ_TIMEOUT": "2.5",
        "PORT": "8123",
    }
    result = CliRunner().invoke(main, ["web", "--host", "127.0.0.1"], env=env)
    assert result.exit_code == 0, result.output
    options = gunicorn.options
    assert (options["bind"], options["workers"], options["threads"]) == ("127.0.0.1:8123", 3, 5)
    assert options["worker_connections"] == 70
    assert options["worker_class"].read_timeout_s == 2.5  # type: ignore[attr-defined]

    result = CliRunner().invoke(main, ["web", "--workers", "1", "--threads", "2", "--port", "9000"], env=env)
    assert result.exit_code == 0, result.output
    assert (gunicorn.options["bind"], gunicorn.options["workers"], gunicorn.options["threads"]) == (
        "0.0.0.0:9000",
        1,
        2,
    )


def test_web_warns_that_forwarded_allow_ips_is_ignored(gunicorn):
    result = CliRunner().invoke(main, ["web"], env={**SECRETS, "FORWARDED_ALLOW_IPS": "*"})
    assert result.exit_code == 0, result.output
    assert "FORWARDED_ALLOW_IPS is ignored" in result.output
    assert gunicorn.options["forwarded_allow_ips"] == ""
