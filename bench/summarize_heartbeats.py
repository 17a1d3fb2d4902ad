"""Medians of the heartbeat and staleness JSON lines (``bench/run_heartbeats.sh`` results files).

usage: python bench/summarize_heartbeats.py bench/results/heartbeats-<stamp>.jsonl [more.jsonl ...]

Groups ingest lines by (auth, web workers, wrk options) and staleness lines by whether a channel was
configured, and prints the median of each figure with its range and the number of runs. Runs made with
a profiler attached are left out.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def results(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out.append(record.get("result", record))
    return out


def median(values: list[Any]) -> str:
    xs = [v for v in values if v is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:g}"
    return f"{statistics.median(xs):g} [{min(xs):g}-{max(xs):g}]"


def dig(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


INGEST = [
    "per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "not_2xx",
    "ok_2xx",
    "db_heartbeats_delta",
    "db_minus_2xx",
    "xacts_per_heartbeat",
    "cpu_ms_per_heartbeat.web",
    "cpu_ms_per_heartbeat.postgres",
]
STALENESS = [
    "flagged",
    "notified",
    "alert.p50_s",
    "alert.p99_s",
    "alert.max_s",
    "alert_visible.p50_s",
    "alert_visible.p99_s",
    "alert_visible.max_s",
    "alert_all.missing",
    "webhook_all.missing",
    "webhook.p50_s",
    "webhook.p99_s",
    "webhook.max_s",
    "late.p50_s",
    "late.p99_s",
    "checker_ticks.with_alerts",
    "checker_ticks.start_to_commit.p50_s",
    "checker_ticks.start_to_commit.max_s",
    "default_queue_depth.max",
    "cpu_s.worker1",
]


def main(argv: list[str]) -> int:
    records = results([Path(a) for a in argv])
    ingest: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    stale: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.get("scenario") == "heartbeat_ingest" and "profile" not in r:
            ingest[(r["auth"], r["web_workers"], r["wrk"])].append(r)
        elif r.get("scenario") == "staleness" and "profile" not in r:
            stale[r.get("channel", True)].append(r)
        elif r.get("scenario") == "heartbeat_statements":
            for auth in ("admin", "token"):
                print(f"statements {auth}: {json.dumps(r[auth])}")
    for (auth, workers, wrk), runs in sorted(ingest.items()):
        durable = all(r["durable"] for r in runs)
        print(f"\ningest auth={auth} workers={workers} wrk={wrk}: {len(runs)} run(s), durable={durable}")
        for key in INGEST:
            print(f"  {key}: {median([dig(r, key) for r in runs])}")
    for channel, runs in sorted(stale.items()):
        print(f"\nstaleness channel={channel}: {len(runs)} run(s)")
        for key in STALENESS:
            # A first version of the bench polled ``id > last`` and missed alerts; only complete counts.
            usable = [
                r
                for r in runs
                if not key.startswith("alert_visible") or r["alert_visible"]["n"] == r["flagged"]
            ]
            print(f"  {key}: {median([dig(r, key) for r in usable])} ({len(usable)} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
