"""What the default ``mission-control dev`` stack costs while it waits: CPU over a window, and memory.

usage:
  python bench/idle_cost.py [--seconds 60] [--runs 3] [--no-demo] [--jsonl bench/results/x.jsonl]

Each run starts ``mission-control dev`` as ``make dev`` does (embedded defaults: SQLite registry,
kombu's SQL transport for a broker), in a temporary directory on spare ports, waits until the web
answers and the demo job's first run has succeeded, lets start-up settle, then measures:

* CPU: utime + stime (and the children's reaped time, cutime + cstime) summed over the whole process
  tree below the command, read from /proc at the start and the end of the window; reported as a
  percentage of one core.
* Memory at the end of the window: RSS summed over the tree (what the issue quoted: shared pages are
  counted once per process) and PSS (each shared page divided among the processes sharing it, from
  /proc/<pid>/smaps_rollup), the honest total.
* Pickup lag of the demo job's runs inside the window: first attempt's ``started_at`` minus the
  run's ``scheduled_for``, as the registry recorded them; and the lines the stack printed per second.

The stack is stopped with SIGINT (Ctrl-C) and any process of the tree still alive 20 s later is
killed (and reported), so a run leaves nothing behind whatever the code under test does; its directory
is deleted. One JSON object per run and
a one-line summary go to stdout; with ``--runs`` > 1 a last line gives the medians. Runs never overlap:
they take 60 s each, on a machine that may be shared (wrap in ``flock /tmp/mc-machine.lock``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, select

from mission_control.db.tables import attempts, runs

CLK_TCK = os.sysconf("SC_CLK_TCK")
SETTLE_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    return children


def tree(root: int) -> list[int]:
    """``root`` and every process below it (alive now)."""
    children = _children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process, in clock ticks (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(value) for value in fields[11:15])  # fields 14-17 of proc(5), counted from state


def _kb(path: str, key: str) -> int:
    with suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def describe(pid: int) -> str:
    with suppress(OSError):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return " ".join(a.decode(errors="replace") for a in args if a)[:120]
    return "?"


def memory(pids: list[int]) -> dict[str, Any]:
    per_process = []
    for pid in pids:
        per_process.append(
            {
                "pid": pid,
                "rss_mb": round(_kb(f"/proc/{pid}/status", "VmRSS") / 1024, 1),
                "pss_mb": round(_kb(f"/proc/{pid}/smaps_rollup", "Pss") / 1024, 1),
                "command": describe(pid),
            }
        )
    return {
        "rss_mb": round(sum(p["rss_mb"] for p in per_process), 1),
        "pss_mb": round(sum(p["pss_mb"] for p in per_process), 1),
        "processes": len(per_process),
        "per_process": per_process,
    }


def stop_tree(process: subprocess.Popen[bytes], known: set[int], timeout_s: float = 20.0) -> list[int]:
    """Ctrl-C the stack; whatever of it is still alive after ``timeout_s`` is killed and returned."""
    known |= set(tree(process.pid))
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        known |= set(tree(process.pid)) if process.poll() is None else set()
        alive = [pid for pid in known if _alive(pid)]
        if process.poll() is not None and not alive:
            return []
        time.sleep(0.2)
    leftovers = [pid for pid in known if _alive(pid)]
    for pid in leftovers:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    return leftovers


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _wait(predicate: Any, timeout_s: float, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mission-control dev exited ({process.returncode}): {log.read_text()[-3000:]}"
            )
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}: {log.read_text()[-3000:]}")


def command() -> list[str]:
    script = Path(sys.executable).parent / "mission-control"
    return [str(script), "dev"] if script.exists() else [sys.executable, "-m", "mission_control", "dev"]


def measure(seconds: float, demo: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mc-idle-"))
    port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MC_", "FLOWER_"))}
    env.update({"PORT": str(port), "FLOWER_PORT": str(flower_port)})
    log = workdir / "dev.log"
    args = command() + ([] if demo else ["--no-demo"])
    known: set[int] = set()
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    registry = create_engine(f"sqlite:///{workdir / 'mission-control.db'}")
    try:
        url = f"http://127.0.0.1:{port}"

        def web_ready() -> bool:
            try:
                return requests.get(url + "/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        _wait(web_ready, 60, "the web to answer /readyz", process, log)

        def demo_succeeded() -> bool:
            with suppress(Exception), registry.connect() as conn:
                return conn.execute(select(runs.c.id).where(runs.c.status == "succeeded")).first() is not None
            return False

        if demo:
            _wait(demo_succeeded, 60, "the demo job's first run to succeed", process, log)
        time.sleep(SETTLE_S)  # start-up work (imports, first ticks, migrations) is not idle cost

        before = {pid: cpu_ticks(pid) for pid in tree(process.pid)}
        known |= set(before)
        started = time.monotonic()
        window_start = time.time()
        log_start = log.stat().st_size
        time.sleep(seconds)
        after = {pid: cpu_ticks(pid) for pid in tree(process.pid)}
        elapsed = time.monotonic() - started
        log_end = log.stat().st_size
        known |= set(after)
        cpu_s = sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLK_TCK
        mem = memory(sorted(after))
        per_pid_cpu = {pid: (ticks - before.get(pid, 0)) / CLK_TCK for pid, ticks in after.items()}
        for entry in mem["per_process"]:
            entry["cpu_s"] = round(per_pid_cpu.get(entry["pid"], 0.0), 2)
        lags = pickup_lags_ms(registry, window_start) if demo else []
        return {
            "bench": "idle_cost",
            "demo": demo,
            "window_s": round(elapsed, 1),
            "cpu_s": round(cpu_s, 2),
            "cpu_percent_of_core": round(100 * cpu_s / elapsed, 2),
            **{k: mem[k] for k in ("rss_mb", "pss_mb", "processes")},
            "demo_runs_in_window": len(lags),
            "pickup_lag_ms_max": max(lags) if lags else None,
            "pickup_lag_ms_median": statistics.median(lags) if lags else None,
            "log_lines_per_s": round(_newlines(log, log_start, log_end) / elapsed, 2),
            "per_process": mem["per_process"],
        }
    finally:
        leftovers = stop_tree(process, known)
        registry.dispose()
        if leftovers:
            print(
                f"warning: killed {len(leftovers)} processes left after Ctrl-C: {leftovers}", file=sys.stderr
            )
        shutil.rmtree(workdir, ignore_errors=True)


def pickup_lags_ms(registry: Any, since_epoch_s: float) -> list[float]:
    query = (
        select(runs.c.scheduled_for, attempts.c.started_at)
        .join(attempts, attempts.c.run_id == runs.c.id)
        .where(attempts.c.number == 1)
    )
    lags = []
    with registry.connect() as conn:
        for scheduled_for, started_at in conn.execute(query):
            # SQLite keeps naive UTC strings: compare as UTC.
            slot = scheduled_for.timestamp() if scheduled_for.tzinfo else _utc(scheduled_for)
            start = started_at.timestamp() if started_at.tzinfo else _utc(started_at)
            if slot >= since_epoch_s:
                lags.append(round((start - slot) * 1000, 1))
    return lags


def _utc(value: datetime) -> float:
    return float(value.replace(tzinfo=UTC).timestamp())


def _newlines(log: Path, start: int, end: int) -> int:
    with log.open("rb") as handle:
        handle.seek(start)
        return handle.read(end - start).count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-demo", action="store_true", help="start the stack without its demo job")
    parser.add_argument("--jsonl", type=Path, help="append each run's JSON line to this file")
    options = parser.parse_args()
    results = []
    for _ in range(options.runs):
        result = measure(options.seconds, demo=not options.no_demo)
        results.append(result)
        line = json.dumps(result)
        print(line, flush=True)
        if options.jsonl:
            with options.jsonl.open("a") as handle:
                handle.write(line + "\n")
        print(summary(result), flush=True)
    if len(results) > 1:
        medians = {
            key: statistics.median(r[key] for r in results)
            for key in ("cpu_percent_of_core", "rss_mb", "pss_mb", "processes")
        }
        print(
            f"median of {len(results)}: {medians['cpu_percent_of_core']:.2f} % of a core, "
            f"RSS {medians['rss_mb']:.0f} MB, PSS {medians['pss_mb']:.0f} MB, "
            f"{medians['processes']} processes",
            flush=True,
        )


def summary(result: dict[str, Any]) -> str:
    lag = result["pickup_lag_ms_max"]
    return (
        f"idle cost over {result['window_s']:.0f} s: {result['cpu_percent_of_core']:.2f} % of a core, "
        f"RSS {result['rss_mb']:.0f} MB, PSS {result['pss_mb']:.0f} MB "
        f"across {result['processes']} processes, "
        f"{result['log_lines_per_s']} log lines/s"
        + (f", demo pickup lag max {lag:.0f} ms" if lag is not None else "")
    )


if __name__ == "__main__":
    main()
