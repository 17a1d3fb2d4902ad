"""README.md's table of environment variables, generated from :class:`~mission_control.base.config.Settings`.

The table used to be written by hand and drifted from what the code read (``FORWARDED_ALLOW_IPS`` and
``MC_DASHBOARD_INSECURE_COOKIE`` were read but not listed). Now each row is a field of the settings:
its variable (and aliases), type and bounds, default, and the field's ``description``; the few variables
that other programs read (the Procfile's shell, the client commands) follow in a second table from
:data:`READ_ELSEWHERE`. tests/unit/test_settings_table.py fails when README.md's copy differs.

    python -m mission_control.base.settings_doc           # print the tables
    python -m mission_control.base.settings_doc --write   # replace them in README.md (at the repo root)
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic.fields import FieldInfo

from mission_control.base.config import Settings, describe_bounds, plain_number

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
REGENERATE = ".venv/bin/python -m mission_control.base.settings_doc --write"
_HEADER = ("| variable | type | default | meaning |", "| --- | --- | --- | --- |")


class Variable(NamedTuple):
    """A variable that something other than the settings reads, as its README row shows it."""

    name: str
    type: str
    default: str
    meaning: str


READ_ELSEWHERE = (
    Variable(
        "WORKER_CONCURRENCY",
        "integer",
        "256",
        "threads per worker process, given to Celery's `-c` by the Procfile's `worker` line",
    ),
    Variable(
        "FLOWER_ADDRESS", "string", "`127.0.0.1`", "address Flower listens on (the Procfile's `flower`)"
    ),
    Variable(
        "FLOWER_PORT",
        "integer",
        "5555",
        "port Flower listens on (the Procfile's `flower`, and `mission-control dev --flower`)",
    ),
    Variable(
        "MC_URL",
        "string",
        "`http://127.0.0.1:8001`",
        "API base URL of the client commands (`mission-control jobs`, `runs`, `missions`, `services`, "
        "`alerts`, `channels`, `heartbeat`); they take `MC_ADMIN_TOKEN` as their token",
    ),
    Variable(
        "MC_SERVICE_TOKEN",
        "string",
        "none: `MC_ADMIN_TOKEN`",
        "token `mission-control heartbeat` sends with",
    ),
)


def settings_table() -> str:
    """The Markdown README.md keeps between its ``settings`` markers (without the markers)."""
    rows = [_row(name, field) for name, field in Settings.model_fields.items()]
    others = [_cells(f"`{v.name}`", v.type, v.default, v.meaning) for v in READ_ELSEWHERE]
    return "\n".join(
        [
            *_HEADER,
            *rows,
            "",
            "Read by other programs, not by the settings:",
            "",
            *_HEADER,
            *others,
        ]
    )


def replace_table(readme: str) -> str:
    """``readme`` with the text between the markers replaced by :func:`settings_table`."""
    start = readme.find(BEGIN)
    end = readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {BEGIN} ... {END}")
    return readme[: start + len(BEGIN)] + "\n" + settings_table() + "\n" + readme[end:]


def _row(name: str, field: FieldInfo) -> str:
    names = Settings.env_names(name)
    variable = f"`{names[0]}`"
    if len(names) > 1:
        variable += f" (alias{'es' if len(names) > 2 else ''} {', '.join(f'`{n}`' for n in names[1:])})"
    return _cells(variable, _type(field), _default(name, field.default), field.description or "")


def _cells(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _type(field: FieldInfo) -> str:
    kind = _kind(field.annotation)
    bounds = describe_bounds(field)
    return f"{kind} {bounds}" if bounds else kind


def _kind(annotation: Any) -> str:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])  # Optional: "none" is the default column's business
    if typing.get_origin(annotation) is Literal:
        return " or ".join(f"`{value}`" for value in args)
    if typing.get_origin(annotation) is tuple:
        return "comma-separated networks (CIDR)" if "Network" in str(args[0]) else "comma-separated list"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(name: str, value: Any) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, int | float):
        shown = plain_number(value)
        if name.endswith("_bytes") and value >= 1024 and value % 1024 == 0:
            size = f"{plain_number(value / 1024 / 1024)} MiB" if value % (1024 * 1024) == 0 else ""
            shown += f" ({size or plain_number(value / 1024) + ' KiB'})"
        return shown
    return f"`{value}`"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="default: ./README.md")
    args = parser.parse_args(argv)
    if not args.write:
        print(settings_table())
        return 0
    before = args.readme.read_text(encoding="utf-8")
    after = replace_table(before)
    if after != before:
        args.readme.write_text(after, encoding="utf-8")
    print(f"{args.readme}: {'updated' if after != before else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
