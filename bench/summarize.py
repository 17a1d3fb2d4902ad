"""Turn a results file of bench/run_all.sh into the comparison tables of bench/README.md.

usage: python bench/summarize.py bench/results/STAMP.jsonl [MORE.jsonl ...]

Given several files, a kind of result (ours at 10k, sqla at 100k, ...) found in a later file replaces
the same kind from earlier ones, so a partial re-run (``PARTS=ours``) can update one side of the table.

Where ours ran several times at one size, the table shows the median of the runs (and the range), so a
single noisy run on a shared 2-core machine does not decide a row. Ratios are ours / peer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def load(path: Path) -> dict[str, list[Result]]:
    """Results grouped by kind: ``ours-<N>``, ``sqla-<N>``, ``redbeat-<N>``, ``e2e-...``, ``two-...``."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        label, result = record["label"], record["result"]
        if label.startswith("ours-") and label.endswith("-redis"):
            groups[f"ours-redis-{result['N']}"].append(result)
        elif label.startswith("ours-"):
            groups[f"ours-{result['N']}"].append(result)
        elif label.startswith("peer-two-"):
            groups[f"two-{result['which']}"].append(result)
        elif label.startswith("peer-"):
            groups[f"{result['which']}-{result['N']}"].append(result)
        elif label.startswith("beat-rss"):
            groups[f"beat-rss-{result['jobs']}"].append(result)
        else:
            groups[label].append(result)
    return groups


def med(results: list[Result], get: Callable[[Result], float | None]) -> float | None:
    values = [v for v in (get(r) for r in results) if v is not None]
    return statistics.median(values) if values else None


def spread(results: list[Result], get: Callable[[Result], float | None], unit: str, digits: int = 2) -> str:
    values = [v for v in (get(r) for r in results) if v is not None]
    if not values:
        return "n/a"
    text = f"{statistics.median(values):.{digits}f} {unit}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}-{max(values):.{digits}f})"
    return text


def ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    return f"{a / b:.3g}x"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("results", type=Path, nargs="+")
    args = p.parse_args(argv)
    g: dict[str, list[Result]] = {}
    for path in args.results:
        g.update(load(path))
    sizes = sorted({int(k.split("-")[1]) for k in g if k.startswith("ours-") and k.split("-")[1].isdigit()})

    def idle(r: Result) -> float | None:
        return r.get("idle_tick", {}).get("p50_ms")

    def per_s(r: Result) -> float | None:
        return r.get("burst", {}).get("per_s")

    def rss(r: Result) -> float | None:
        return r.get("rss_mb")

    print("| figure | N | ours (median of runs) | sqla | redbeat | ours/sqla | ours/redbeat |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = [
        ("idle tick p50", idle, "ms", 3),
        ("idle tick p95", lambda r: r.get("idle_tick", {}).get("p95_ms"), "ms", 3),
        ("idle tick max", lambda r: r.get("idle_tick", {}).get("max_ms"), "ms", 3),
        ("burst sends/s (1000 due)", per_s, "/s", 0),
        ("burst wall", lambda r: r.get("burst", {}).get("wall_s"), "s", 3),
        ("startup", lambda r: r.get("startup_load_s"), "s", 3),
        ("RSS (ru_maxrss)", rss, "MB", 1),
    ]
    for title, get, unit, digits in rows:
        for n in sizes:
            ours = g.get(f"ours-{n}", [])
            sqla, red = g.get(f"sqla-{n}", []), g.get(f"redbeat-{n}", [])
            print(
                f"| {title} | {n:,} | {spread(ours, get, unit, digits)} | {spread(sqla, get, unit, digits)} "
                f"| {spread(red, get, unit, digits)} | {ratio(med(ours, get), med(sqla, get))} "
                f"| {ratio(med(ours, get), med(red, get))} |"
            )
    print()
    print("| ours: edit noticed | N | p50 of trials (median of runs) | max over all trials | two beats |")
    print("| --- | --- | --- | --- | --- |")
    for n in sizes:
        ours = g.get(f"ours-{n}", [])
        worst = max((r["edit_noticed"]["max_s"] for r in ours), default=None)
        two = [r["two_beats"] for r in ours]
        two_text = "; ".join(
            f"{t['runs']} runs/{t['slots']} slots, dup runs {t['duplicate_runs']}, dup msgs "
            f"{t['duplicate_messages']}, missing {t['missing_runs']}, split {t['per_process']}"
            for t in two
        )
        print(
            f"| | {n:,} | {spread(ours, lambda r: r['edit_noticed']['p50_s'], 's', 3)} | {worst} s "
            f"| {two_text} |"
        )
    print()
    print("| peers: reload | N | sqla tick_after_edit_s | sqla schedule_changed_ms | redbeat edit_save_ms |")
    print("| --- | --- | --- | --- | --- |")
    for n in sizes:
        sqla, red = g.get(f"sqla-{n}", []), g.get(f"redbeat-{n}", [])
        print(
            f"| | {n:,} | {spread(sqla, lambda r: r.get('tick_after_edit_s'), 's', 3)} "
            f"| {spread(sqla, lambda r: r.get('schedule_changed_ms'), 'ms', 3)} "
            f"| {spread(red, lambda r: r.get('edit_save_ms'), 'ms', 3)} |"
        )
    for key in sorted(k for k in g if k.startswith(("two-", "ours-redis-", "e2e-", "beat-rss-", "meta"))):
        for r in g[key]:
            print(f"\n{key}: {json.dumps(r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
