"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) into the hotspot tables of README.md.

usage: python bench/spy_top.py PROFILE.txt [--top 15]

Prints, as shares of all samples: the leaf frames where the time is spent (file:line), the functions
that include the most time (any depth), and the deepest Mission Control frame of each stack, which is
the line an engineer would change.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def function_of(frame: str) -> str:
    match = FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    stacks = parse(args.profile)
    total = sum(n for _, n in stacks) or 1
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, n in stacks:
        leaf[frames[-1]] += n
        for function in {function_of(frame) for frame in frames}:
            inclusive[function] += n
        mine = [frame for frame in frames if "mission_control/" in frame]
        ours[mine[-1] if mine else "(no mission_control frame)"] += n
    print(f"{args.profile}: {total} samples")
    for title, counter in (
        ("leaf frames (self time)", leaf),
        ("functions (inclusive)", inclusive),
        ("deepest mission_control frame", ours),
    ):
        print(f"\n## {title}")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / total:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
