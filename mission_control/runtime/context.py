"""Process-wide resources of worker and beat processes, built once from the settings.

Web requests get theirs from the Flask app; Celery tasks and the beat scheduler have no app object to
hang them on, so they share one :class:`Runtime` per process, created on first use (after any fork).
Tests install their own with :func:`set_runtime`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from mission_control.base.clock import SYSTEM_CLOCK, Clock
from mission_control.base.config import Settings
from mission_control.db.engine import engine_for

if TYPE_CHECKING:
    import requests

    from mission_control.execution.executor import ExecutionContext
    from mission_control.missions.steps import StepRunner
    from mission_control.missions.store import MissionStore
    from mission_control.monitoring.notifications.notices import DeliveryContext
    from mission_control.outbound.service_secrets import SigningKeys


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock = SYSTEM_CLOCK
    pid: int = field(default_factory=os.getpid)
    _session: requests.Session | None = None
    _missions: MissionStore | None = None
    _runner: StepRunner | None = None
    _signing_keys: SigningKeys | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Runtime:
        # No pre-ping (a round trip per checkout, twice per run): the executor retries a transition
        # once on a dead connection and beat backs off and retries its tick.
        return cls(settings=settings, engine=engine_for(settings, pool_pre_ping=False), clock=clock)

    def execution_context(self) -> ExecutionContext:
        # Imported here, not at the top: beat shares this module and must not carry the executor's
        # HTTP and validation stack (pydantic, requests) in its memory.
        from mission_control.execution.executor import ExecutionContext
        from mission_control.outbound.policy import policy_from
        from mission_control.outbound.sender import make_session
        from mission_control.outbound.service_secrets import signing_keys
        from mission_control.runtime import notify as dispatch

        with self._lock:
            if self._session is None:
                self._session = make_session(
                    pool_size=self.settings.http_pool_size, policy=policy_from(self.settings)
                )
            if self._signing_keys is None:
                # One per process, so its cache serves every run (a context is made per task).
                self._signing_keys = signing_keys(self.engine, self.clock, self.settings)
        return ExecutionContext(
            engine=self.engine,
            clock=self.clock,
            settings=self.settings,
            session=self._session,
            notify=dispatch.notify,
            enqueue_missions=_enqueue_missions,
            signing_keys=self._signing_keys,
        )

    def mission_store(self) -> MissionStore:
        from mission_control.missions.store import MissionStore

        with self._lock:
            if self._missions is None:
                self._missions = MissionStore(
                    self.engine, self.clock, requeue_after_s=self.settings.requeue_after_s
                )
            return self._missions

    def step_runner(self) -> StepRunner:
        """Built once per process: the step functions' modules are imported with it, not per task."""
        from mission_control.missions.callables import import_modules, registered
        from mission_control.missions.steps import StepRunner

        ctx = self.execution_context()
        with self._lock:
            if self._runner is None:
                import_modules(self.settings.mission_modules)
                self._runner = StepRunner(
                    session=ctx.session,
                    signing_secret=ctx.signing_secret,
                    clock=self.clock,
                    callables=registered,
                )
            return self._runner

    def delivery_context(self) -> DeliveryContext:
        from mission_control.monitoring.notifications.notices import DeliveryContext
        from mission_control.monitoring.notifications.senders import SmtpServer
        from mission_control.outbound.policy import policy_from

        self.execution_context()  # makes the shared HTTP session
        assert self._session is not None
        s = self.settings
        return DeliveryContext(
            session=self._session,
            smtp=SmtpServer(s.smtp_host, s.smtp_port, s.smtp_user, s.smtp_password, s.smtp_starttls),
            smtp_from=s.smtp_from,
            signing_secret=s.signing_secret,
            box=self.execution_context().secret_box,
            policy=policy_from(s),
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self.engine.dispose()


def _enqueue_missions(mission_ids: object) -> int:
    from mission_control.runtime.app import app
    from mission_control.scheduling.queueing import enqueue_missions

    return enqueue_missions(app, list(mission_ids))  # type: ignore[call-overload]


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = Runtime.from_settings(Settings.from_env())
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    with _runtime_lock:
        _runtime = runtime
