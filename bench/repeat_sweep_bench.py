"""One repeat sweep (``notices.due_repeats``) over N open alerts and 2 repeating channels.

usage: PYTHONPATH=. .venv/bin/python bench/repeat_sweep_bench.py 2000

Makes and drops its own database ``mc_rep`` on 127.0.0.1; prints statements and wall time for a sweep
with nothing due and one with every repeat due.
"""

import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, event, text

from mission_control.db import migrate
from mission_control.db.alerts import AlertKind, open_alert
from mission_control.db.engine import make_engine
from mission_control.monitoring.notifications.notices import ChannelSpec, create_channel, due_repeats, route

N = int(sys.argv[1])
admin = create_engine("postgresql://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
with admin.connect() as c:
    c.execute(text("DROP DATABASE IF EXISTS mc_rep"))
    c.execute(text("CREATE DATABASE mc_rep"))
e = make_engine("postgresql://postgres@127.0.0.1/mc_rep")
migrate.upgrade(e)
t0 = datetime(2026, 3, 1, tzinfo=UTC)
for name in ("a", "b"):
    create_channel(e, ChannelSpec(name, "webhook", {"url": "http://127.0.0.1:9/x"}, None, "*", 600, True), t0)
with e.begin() as conn:
    ids = [open_alert(conn, AlertKind.SERVICE_DOWN, f"s{i}", t0, "down").alert_id for i in range(N)]
route(e, [(i, "opened") for i in ids], t0)
count = [0]
event.listen(e, "before_cursor_execute", lambda *a: count.__setitem__(0, count[0] + 1))
for at, label in ((t0 + timedelta(seconds=300), "nothing due"), (t0 + timedelta(seconds=601), "all due")):
    count[0] = 0
    w = time.perf_counter()
    made = due_repeats(e, at)
    print(f"{label}: {len(made)} notices, {count[0]} statements, {(time.perf_counter() - w) * 1000:.0f} ms")
e.dispose()
with admin.connect() as c:
    c.execute(text("DROP DATABASE mc_rep"))
