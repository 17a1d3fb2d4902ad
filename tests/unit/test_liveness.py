"""Beat's liveness mark and its verdict, without processes: a pass refreshes the mark, a pass that fails
against the database refreshes only the loop's time (never the last good pass), writes are at most one
a second, a stopped beat leaves no mark, and the verdict reads age and outage as documented in
mission_control/runtime/liveness.py. The same probe against a real beat is in tests/e2e/test_health_checks.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery import Celery
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from mission_control.cli import main
from mission_control.runtime.beat import RegistryScheduler
from mission_control.runtime.liveness import LivenessMark, default_path, judge, read_mark


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def _mark(path: Path, clocks: Clocks) -> LivenessMark:
    return LivenessMark(path, clock=lambda: clocks.wall, monotonic=lambda: clocks.mono)


def _age(path: Path, seconds: float) -> None:
    """Date the file's modification time (the loop's last pass) ``seconds`` back from now."""
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


def test_a_pass_writes_the_mark_and_a_failed_pass_keeps_the_last_good_one(tmp_path, clocks):
    path = tmp_path / "beat.alive"
    mark = _mark(path, clocks)
    mark.passed()
    first = read_mark(path)
    assert first.ok_at == clocks.wall and first.failing_since is None and first.pid == os.getpid()

    clocks.advance(5)
    mark.failed("OperationalError")  # the outcome changed: written at once
    failing = read_mark(path)
    assert failing.ok_at == first.ok_at  # a failed pass never refreshes the last good pass
    assert failing.failing_since == clocks.wall and failing.error == "OperationalError"

    clocks.advance(3)
    mark.failed("OperationalError")
    assert read_mark(path).failing_since == failing.failing_since  # since the first failure
    mark.passed()
    back = read_mark(path)
    assert back.ok_at == clocks.wall and back.failing_since is None and back.error is None


def test_the_mark_is_written_at_most_once_a_second_unless_the_outcome_changes(tmp_path, clocks):
    path = tmp_path / "beat.alive"
    mark = _mark(path, clocks)
    mark.passed()
    written = json.loads(path.read_text())
    clocks.advance(0.5)
    mark.passed()
    assert json.loads(path.read_text()) == written  # not rewritten within the second
    clocks.advance(0.6)
    mark.passed()
    assert json.loads(path.read_text())["ok_at"] == clocks.wall
    clocks.advance(0.1)
    mark.failed("OperationalError")
    assert json.loads(path.read_text())["failing_since"] == clocks.wall  # a change is written at once
    assert not list(tmp_path.glob("*.tmp"))  # replaced whole, nothing left beside it


def test_an_unwritable_mark_never_stops_the_scheduler(tmp_path, clocks, caplog):
    mark = _mark(tmp_path / "missing-directory" / "beat.alive", clocks)
    mark.passed()
    clocks.advance(2)
    mark.passed()
    assert [r.message for r in caplog.records if "liveness mark" in r.message][:1]
    assert len([r for r in caplog.records if "liveness mark" in r.message]) == 1  # warned once


def _write(path: Path, *, pass_at: float, ok_at: float | None, failing_since: float | None = None) -> None:
    error = None if failing_since is None else "OperationalError"
    body = {"pid": 7, "ok_at": ok_at, "failing_since": failing_since, "error": error}
    path.write_text(json.dumps(body))
    os.utime(path, (pass_at, pass_at))  # the modification time is the loop's last pass


def test_the_verdict(tmp_path):
    path = tmp_path / "beat.alive"
    now = 1_000_000.0
    missing = judge(path, now=now)
    assert not missing.healthy and "no liveness mark" in missing.reason

    _write(path, pass_at=now - 1, ok_at=now - 1)
    assert judge(path, now=now).healthy
    _write(path, pass_at=now - 31, ok_at=now - 31)
    stale = judge(path, now=now)
    assert not stale.healthy and "31 s ago" in stale.reason and "stopped or stuck" in stale.reason
    assert judge(path, now=now, max_age_s=60).healthy

    # The loop runs (a pass a second ago) but every pass has failed against the database for 100 s.
    _write(path, pass_at=now - 1, ok_at=now - 101, failing_since=now - 100)
    outage = judge(path, now=now)
    assert outage.healthy  # by default: a restart would not bring the database back
    assert "unreachable for 100 s (OperationalError)" in outage.reason
    strict = judge(path, now=now, require_registry=True)
    assert not strict.healthy and "unreachable for 100 s" in strict.reason
    _write(path, pass_at=now - 1, ok_at=now - 6, failing_since=now - 5)
    assert judge(path, now=now, require_registry=True).healthy  # failing for less than --max-age

    path.write_text("not json")
    broken = judge(path, now=path.stat().st_mtime)
    assert not broken.healthy and "unreadable" in broken.reason


def test_stopping_removes_the_mark(tmp_path, clocks):
    path = tmp_path / "beat.alive"
    mark = _mark(path, clocks)
    mark.passed()
    mark.remove()
    assert not path.exists()
    mark.remove()  # twice is harmless


def _scheduler(path: Path) -> RegistryScheduler:
    app = Celery("liveness-test", set_as_current=False)
    app.conf.result_expires = None
    app.conf.beat_schedule = {}
    runtime = SimpleNamespace(settings=SimpleNamespace(database_url="sqlite://"), engine=None)
    return RegistryScheduler(app=app, runtime=runtime, liveness_file=path)  # type: ignore[arg-type]


def test_beats_registry_pass_marks_and_a_database_failure_keeps_the_last_good_pass(tmp_path, monkeypatch):
    path = tmp_path / "beat.alive"
    scheduler = _scheduler(path)
    monkeypatch.setattr(scheduler, "_pass", lambda: 0.5)
    assert scheduler.tick_registry() == 0.5
    good = read_mark(path)
    assert good.ok_at is not None and good.failing_since is None

    def unreachable() -> float:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(scheduler, "_pass", unreachable)
    scheduler.tick_registry()
    failing = read_mark(path)
    assert failing.ok_at == good.ok_at and failing.error == "OperationalError"
    assert failing.failing_since is not None and failing.pass_at >= good.pass_at


def test_the_probe_and_beat_agree_on_the_default_path():
    assert default_path().name == "mission-control-beat.alive"
    beats = CliRunner().invoke(main, ["beat", "--help"])
    probes = CliRunner().invoke(main, ["health", "beat", "--help"])
    assert "--liveness-file" in beats.stdout and "--liveness-file" in probes.stdout
    for helped in (beats.stdout, probes.stdout):  # click wraps lines, at hyphens too
        assert "mission-control-beat.aliveinthetemporarydirectory" in "".join(helped.split())
