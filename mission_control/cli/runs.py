"""``mission-control runs``: the run history over the HTTP API (MC_URL, MC_ADMIN_TOKEN).

There is no ``runs cancel``: the API has no route to cancel a run yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mission_control.cli.common import ApiGroup, api_client, output, table


def _listing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--job", help="Only runs of this job."),
            click.option(
                "--status",
                help="Only runs in this status (queued, running, retrying, succeeded, failed, ...).",
            ),
            click.option("--limit", type=int, default=20, show_default=True),
        ]
    ):
        command = option(command)
    return command


@click.group(cls=ApiGroup, invoke_without_command=True)
@_listing_options
@click.pass_context
def runs(ctx: click.Context, job: str | None, status: str | None, limit: int) -> None:
    """List recent runs, newest first (as `runs list`); `runs show ID` shows one with its attempts."""
    if ctx.invoked_subcommand is None:
        _list_runs(job, status, limit)


@runs.command("list")
@_listing_options
def list_runs(job: str | None, status: str | None, limit: int) -> None:
    """List recent runs, newest first."""
    _list_runs(job, status, limit)


def _list_runs(job: str | None, status: str | None, limit: int) -> None:
    found = api_client().runs(job=job, status=status, limit=limit)
    rows = [
        (
            str(run["id"]),
            run["job"],
            run["scheduled_for"],
            run["trigger"],
            run["status"] + (f" ({run['reason']})" if run["reason"] else ""),
            str(run["attempt_count"]),
            "-" if run["duration_ms"] is None else f"{run['duration_ms']:.0f} ms",
        )
        for run in found
    ]
    output(
        found, lambda: table(("ID", "JOB", "SLOT (UTC)", "TRIGGER", "STATUS", "ATTEMPTS", "DURATION"), rows)
    )


@runs.command()
@click.argument("run_id", type=int)
def show(run_id: int) -> None:
    """Show one run and every attempt."""
    run = api_client().run(run_id)
    output(run, lambda: _run_text(run))


def _run_text(run: dict[str, Any]) -> str:
    lines = [
        f"run {run['id']} of {run['job']}: {run['status']}"
        + (f" ({run['reason']})" if run["reason"] else "")
        + f", slot {run['scheduled_for']}, {run['trigger']}"
        + (f", stands for {run['missed_count']} missed slots" if run["missed_count"] else "")
    ]
    for attempt in run["attempts"]:
        outcome = (
            f"HTTP {attempt['http_status']}" if attempt["http_status"] else attempt["error_class"] or "-"
        )
        duration = "-" if attempt["duration_ms"] is None else f"{attempt['duration_ms']:.0f} ms"
        lines.append(f"  attempt {attempt['number']}: {attempt['status']} {outcome} in {duration}")
        detail = attempt["error_message"] or (attempt["response_excerpt"] or "")[:200]
        if detail:
            lines.append(f"    {detail}")
    return "\n".join(lines)
