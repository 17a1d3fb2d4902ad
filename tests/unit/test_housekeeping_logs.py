"""Celery's lines about periodic housekeeping move to DEBUG; lines about real work stay at INFO.

The records are made by Celery's own logging calls (beat's "Sending due task", the worker's "received"
and "succeeded"), so a Celery upgrade that changed their shape would fail here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.app import trace
from celery.beat import Scheduler

from beat_schedule import BEAT_SCHEDULE
from mission_control.runtime.logs import HousekeepingAtDebug
from mission_control.runtime.tasks import HOUSEKEEPING_TASKS


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[tuple[_Kept, HousekeepingAtDebug]]:
    handler = _Kept()
    quiet = HousekeepingAtDebug(["mission_control.check_services"])
    loggers = [logging.getLogger(name) for name in HousekeepingAtDebug.LOGGERS]
    saved = [(logger, logger.level, list(logger.filters), logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    quiet.install()
    try:
        yield handler, quiet
    finally:
        for logger, level, filters, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.filters[:] = filters
            logger.propagate = propagate


def _received(name: str) -> None:
    context = {"id": "1", "name": name, "args": "()", "kwargs": "{}", "eta": None}
    logging.getLogger("celery.worker.strategy").info(trace.LOG_RECEIVED, context, extra={"data": context})


def _succeeded(name: str) -> None:
    trace.info(
        trace.LOG_SUCCESS,
        {"id": "1", "name": name, "return_value": "0", "runtime": 0.001, "args": "()", "kwargs": "{}"},
    )


def _sending(entry: str, task: str) -> None:
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", entry, task)


def test_housekeeping_lines_are_not_printed_at_info(kept):
    handler, _ = kept
    _sending("check-services", "mission_control.check_services")
    _received("mission_control.check_services")
    _succeeded("mission_control.check_services")
    assert handler.records == []


def test_lines_about_other_tasks_stay_at_info(kept):
    handler, _ = kept
    _sending("something", "mission_control.trigger")
    _received("mission_control.trigger")
    _succeeded("mission_control.trigger")
    assert [r.levelname for r in handler.records] == ["INFO", "INFO", "INFO"]
    assert "mission_control.trigger[1] received" in handler.records[1].getMessage()


def test_at_debug_housekeeping_lines_are_there_marked_debug(kept):
    handler, _ = kept
    for name in HousekeepingAtDebug.LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    _received("mission_control.check_services")
    [record] = handler.records
    assert record.levelname == "DEBUG" and "check_services[1] received" in record.getMessage()


def test_a_housekeeping_failure_is_not_quieted(kept):
    handler, _ = kept
    logging.getLogger("celery.app.trace").error(
        "Task %(name)s[%(id)s] raised unexpected: %(exc)s",
        {"name": "mission_control.check_services", "id": "1", "exc": "OperationalError"},
    )
    assert [r.levelname for r in handler.records] == ["ERROR"]


def test_installing_twice_leaves_one_filter(kept):
    _, quiet = kept
    quiet.install()
    for name in HousekeepingAtDebug.LOGGERS:
        assert sum(isinstance(f, HousekeepingAtDebug) for f in logging.getLogger(name).filters) == 1


def test_every_periodic_task_of_the_beat_schedule_is_housekeeping():
    assert {entry["task"] for entry in BEAT_SCHEDULE.values()} == set(HOUSEKEEPING_TASKS)


def test_beats_own_sending_line_for_housekeeping_is_quieted(kept):
    handler, _ = kept
    app = Celery("probe", set_as_current=False)
    scheduler = Scheduler(app, lazy=True)
    scheduler.apply_async = lambda *args, **kwargs: None  # type: ignore[method-assign]
    for name, task in (("check-services", "mission_control.check_services"), ("other", "other.task")):
        scheduler.apply_entry(scheduler.Entry(name=name, task=task, schedule=1.0, app=app))
    assert [r.getMessage() for r in handler.records] == ["Scheduler: Sending due task other (other.task)"]
