"""``RegistryScheduler``: Celery beat driven by the job registry in the database.

Use it as ``mission-control beat`` (or ``celery -A mission_control.celery_app beat -S
mission_control.scheduler:RegistryScheduler``).
Each tick claims due slots, due retries and missions due a look (timers, retries, deadlines) in short
transactions (see :mod:`mission_control.scheduling.claiming`),
then enqueues the committed run ids. It sleeps until the next due instant but never longer than one
second, so a registry edit takes effect within a second at any registry size, and it reads only what
is due, so an idle tick costs a couple of indexed queries however many jobs are registered. Any number
of beats may run together: row locks (SKIP LOCKED) and the unique (job, slot) key make each slot fire
once. The housekeeping entries of ``beat_schedule.py`` (reconciler, retention) run beside it as in any
Celery beat, except that a frequent one is sent only when one indexed read finds it work (``WhenDue``);
they are idempotent, so two beats running them is harmless.

After each registry pass beat refreshes its liveness mark (:mod:`mission_control.runtime.liveness`), a
file ``mission-control health beat`` reads: the loop ran, and whether the pass reached the database.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from celery.beat import Scheduler
from sqlalchemy.exc import SQLAlchemyError

from mission_control.base.instruments import TICK_SECONDS
from mission_control.db.engine import make_autocommit_engine
from mission_control.runtime.context import Runtime, get_runtime
from mission_control.runtime.housekeeping import WhenDue
from mission_control.runtime.liveness import LivenessMark, default_path
from mission_control.runtime.notify import send_notices
from mission_control.scheduling.claiming import claim_due_retries, claim_due_slots, next_wakeup
from mission_control.scheduling.queueing import enqueue_missions, enqueue_runs
from mission_control.scheduling.wakeups import claim_due

log = logging.getLogger(__name__)

MAX_SLEEP_S = 1.0
MAX_BACKOFF_S = 10.0
CONTENDED_SLEEP_S = 0.05


class RegistryScheduler(Scheduler):
    max_interval = MAX_SLEEP_S

    def __init__(
        self,
        *args: Any,
        runtime: Runtime | None = None,
        liveness_file: Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.runtime = runtime or get_runtime()
        self.liveness = LivenessMark(liveness_file or default_path())
        self._peek_engine = make_autocommit_engine(self.runtime.settings.database_url)
        self._failures = 0
        self.last_tick_s = 0.0
        self._registry_due_at = 0.0  # time.monotonic() of the next registry pass
        super().__init__(*args, **kwargs)
        self.max_interval = min(self.max_interval, MAX_SLEEP_S)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        housekeeping_sleep = super().tick(*args, **kwargs)
        # The registry is read when its own pass asked to be, not at every housekeeping tick (Celery's
        # tick comes back at once after sending an entry). A pass still follows the previous one within
        # MAX_SLEEP_S, so a registry edit takes effect within a second as before.
        now = time.monotonic()
        if now >= self._registry_due_at:
            self._registry_due_at = now + self.tick_registry()
        return min(housekeeping_sleep, max(self._registry_due_at - now, 0.0))

    def adjust(self, n: float, drift: float = 0.0) -> float:
        """Sleep the whole time until the next housekeeping entry. Celery wakes 10 ms early (a drift of
        -0.010) and then ticks again and again until the entry is due: with an entry every second, some
        25 ticks and 1 % of a core, spent to send housekeeping a few milliseconds sooner."""
        return float(super().adjust(n, drift=drift))

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Send a due housekeeping entry, unless its schedule is a ``WhenDue`` whose probe finds no work
        for it (see :mod:`mission_control.runtime.housekeeping`); either way the period counts as run."""
        if isinstance(entry.schedule, WhenDue) and not entry.schedule.work_found():
            log.debug("%s: nothing to do, not sent", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def tick_registry(self) -> float:
        """One pass over the registry; returns how long beat may sleep before the next."""
        started = time.perf_counter()
        try:
            sleep_s = self._pass()
        except SQLAlchemyError as exc:
            self._failures += 1
            delay = min(MAX_SLEEP_S * 2 ** (self._failures - 1), MAX_BACKOFF_S)
            log.warning("registry unavailable (%s); retrying in %.1f s", type(exc).__name__, delay)
            self.liveness.failed(type(exc).__name__)  # the loop runs; the last good pass stays as it was
            return delay
        finally:
            self.last_tick_s = time.perf_counter() - started
            TICK_SECONDS.observe(self.last_tick_s)
        if self._failures:
            log.info("registry reachable again after %d failed ticks", self._failures)
            self._failures = 0
        self.liveness.passed()
        return sleep_s

    def _pass(self) -> float:
        settings = self.runtime.settings
        engine = self.runtime.engine
        now = self.runtime.clock.now()
        wakeup = next_wakeup(self._peek_engine)  # an idle tick is this one indexed query and nothing else
        if wakeup is None:
            return MAX_SLEEP_S
        if wakeup > now:
            return min((wakeup - now).total_seconds(), MAX_SLEEP_S)
        claimed = claim_due_slots(
            engine, now, batch=settings.scheduler_batch, grace_s=settings.misfire_grace_s
        )
        retries = claim_due_retries(engine, now, batch=settings.scheduler_batch)
        enqueue_runs(self.app, claimed.run_ids + retries, claimed.job_names)
        woken = claim_due(
            engine, now, batch=settings.scheduler_batch, requeue_after_s=settings.requeue_after_s
        )
        enqueue_missions(self.app, woken)
        if claimed.alerts:
            send_notices(self.app, claimed.alerts)
        if woken:
            log.info("woke %d missions", len(woken))
        if claimed.slots or retries or woken:
            log.info("claimed %d slots, enqueued %d runs", claimed.slots, len(claimed.run_ids) + len(retries))
            return 0.0  # look again at once: a full batch may have left more
        # Due rows that another beat holds locked: it is claiming them now; look again shortly.
        return CONTENDED_SLEEP_S

    def close(self) -> None:
        self.liveness.remove()
        super().close()
        self.runtime.engine.dispose()
        self._peek_engine.dispose()

    @property
    def info(self) -> str:
        return f"    . registry -> {self.runtime.engine.url.render_as_string(hide_password=True)}"
