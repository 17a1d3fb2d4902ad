"""Pools sized from the environment fit a small plan's connection limit.

A small PostgreSQL plan allows 20 connections. With the pools of before (20 per process, beat's
autocommit engine up to 2 more), web's two gunicorn processes, a worker and a beat could open 82. With
``MC_DB_MAX_CONNECTIONS=20`` (app.json sets it) every process keeps its share instead, and the
deployment's most, counted from the engines each process builds, plus one for the release command,
stays within the budget.
"""

from __future__ import annotations

import pytest

from mission_control.base.config import Settings
from mission_control.db.engine import engine_for, make_autocommit_engine

URL = "postgres://u:p@127.0.0.1:1/mc"


def _most(engine) -> int:
    pool = engine.pool
    return pool.size() + max(pool._max_overflow, 0)


def _deployment_most(env: dict[str, str]) -> int:
    settings = Settings.from_env({"DATABASE_URL": URL, **env})
    engines = [engine_for(settings) for _ in range(settings.web_concurrency)]  # each gunicorn worker's
    engines.append(engine_for(settings))  # the worker's
    engines += [engine_for(settings), make_autocommit_engine(settings.database_url)]  # beat's, its peek
    engines.append(make_autocommit_engine(settings.database_url))  # beat's housekeeping probe
    release = 1  # `mission-control db upgrade`, or a one-off, while the old processes still run
    return sum(_most(engine) for engine in engines) + release


@pytest.mark.parametrize(
    ("env", "budget"),
    [
        ({"MC_DB_MAX_CONNECTIONS": "20"}, 20),
        ({"MC_DB_MAX_CONNECTIONS": "20", "WEB_CONCURRENCY": "3"}, 20),
        ({"MC_DB_MAX_CONNECTIONS": "20", "MC_DB_MAX_OVERFLOW": "1"}, 20),
        ({"MC_DB_MAX_CONNECTIONS": "120"}, 120),
    ],
)
def test_web_twice_a_worker_and_a_beat_fit_the_budget(env, budget):
    assert _deployment_most(env) <= budget


def test_the_budget_is_used_not_wasted():
    settings = Settings.from_env({"MC_DB_MAX_CONNECTIONS": "20"})
    assert settings.db_pool == 4  # (20 - 3) // (2 + 2)
    assert _deployment_most({"MC_DB_MAX_CONNECTIONS": "20"}) == 19


def test_an_explicit_pool_size_wins_and_without_a_budget_the_pool_is_20():
    assert Settings.from_env({"MC_DB_MAX_CONNECTIONS": "20", "MC_DB_POOL_SIZE": "7"}).db_pool == 7
    assert Settings.from_env({}).db_pool == 20


@pytest.mark.parametrize(
    ("cmd_args", "web_processes"),
    [("--workers 3", 3), ("-w4 --threads 8", 4), ("--workers=5", 5), ("--log-level debug", 2), ("'", 2)],
)
def test_a_workers_option_in_gunicorn_cmd_args_counts_as_gunicorn_counts_it(cmd_args, web_processes):
    """GUNICORN_CMD_ARGS="--workers 3" boots three web processes (gunicorn reads it), so every process
    sizes its pool for three, not for WEB_CONCURRENCY's two; without a --workers (or unparsable),
    WEB_CONCURRENCY counts. Before, the budget assumed two and three web processes could overdraw it."""
    env = {"MC_DB_MAX_CONNECTIONS": "20", "WEB_CONCURRENCY": "2", "GUNICORN_CMD_ARGS": cmd_args}
    settings = Settings.from_env(env)
    assert settings.web_processes == web_processes
    assert settings.db_pool == max(1, (20 - 3) // (web_processes + 2) - settings.db_max_overflow)
    assert settings.db_pool * (web_processes + 2) + 3 <= 20
