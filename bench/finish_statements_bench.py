"""Statements per successful run on PostgreSQL and CPU per run, in process against a local target.

usage: PYTHONPATH=. .venv/bin/python bench/finish_statements_bench.py

Executes 500 manual runs of one job with ``execute_run`` on an engine made as workers make it (no
pre-ping); makes and drops its own database ``mc_fin``.
"""

import time

from sqlalchemy import create_engine, event, text

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.base.config import Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.execution.executor import ExecutionContext, execute_run
from mission_control.jobs.registry import JobRegistry
from mission_control.outbound.sender import make_session
from mission_control.scheduling.claiming import create_manual_run
from tests.factories import job_spec
from tests.targets import TargetServer

admin = create_engine("postgresql://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
with admin.connect() as c:
    c.execute(text("DROP DATABASE IF EXISTS mc_fin"))
    c.execute(text("CREATE DATABASE mc_fin"))
url = "postgresql://postgres@127.0.0.1/mc_fin"
setup = make_engine(url)
migrate.upgrade(setup)
engine = make_engine(url, pool_pre_ping=False)
with TargetServer() as target:
    JobRegistry(setup).put(job_spec("fin", target={"url": f"{target.url}/ok"}, concurrency="allow"))
    ids = [create_manual_run(setup, "fin", SYSTEM_CLOCK.now()) for _ in range(500)]
    session = make_session()
    ctx = ExecutionContext(
        engine=engine, clock=SYSTEM_CLOCK, settings=Settings(signing_secret="s" * 32), session=session
    )
    execute_run(ids[0], ctx)
    count = [0]
    event.listen(engine, "before_cursor_execute", lambda *a: count.__setitem__(0, count[0] + 1))
    cpu = time.process_time()
    for run_id in ids[1:]:
        execute_run(run_id, ctx)
    n = len(ids) - 1
    cpu_ms = (time.process_time() - cpu) / n * 1000
    print(
        f"{count[0] / n:.2f} statements per run, {cpu_ms:.2f} ms CPU per run (this process, target included)"
    )
    session.close()
engine.dispose()
setup.dispose()
with admin.connect() as c:
    c.execute(text("DROP DATABASE mc_fin"))
