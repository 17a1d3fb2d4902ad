"""``mission-control runs``: the run history over the HTTP API (MC_URL, MC_ADMIN_TOKEN)."""

from __future__ import annotations

import json

import click

from mission_control.cli.jobs import DEFAULT_URL, _api, _table
from mission_control.client import MissionControl


@click.group(invoke_without_command=True)
@click.option(
    "--url", envvar="MC_URL", default=DEFAULT_URL, show_default=True, help="API base URL [env: MC_URL]"
)
@click.option("--token", envvar="MC_ADMIN_TOKEN", required=True, help="Admin token [env: MC_ADMIN_TOKEN]")
@click.option("--job", help="Only runs of this job.")
@click.option(
    "--status", help="Only runs in this status (queued, running, retrying, succeeded, failed, ...)."
)
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def runs(
    ctx: click.Context, url: str, token: str, job: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List recent runs, newest first; `runs show ID` shows one with its attempts."""
    ctx.obj = MissionControl(url, token)
    if ctx.invoked_subcommand is not None:
        return
    found = _api(lambda: ctx.obj.runs(job=job, status=status, limit=limit))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
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
    click.echo(_table(("ID", "JOB", "SLOT (UTC)", "TRIGGER", "STATUS", "ATTEMPTS", "DURATION"), rows))


@runs.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Show one run and every attempt."""
    run = _api(lambda: ctx.obj.run(run_id))
    if as_json:
        click.echo(json.dumps(run, indent=2))
        return
    click.echo(
        f"run {run['id']} of {run['job']}: {run['status']}"
        + (f" ({run['reason']})" if run["reason"] else "")
        + f", slot {run['scheduled_for']}, {run['trigger']}"
        + (f", stands for {run['missed_count']} missed slots" if run["missed_count"] else "")
    )
    for attempt in run["attempts"]:
        outcome = (
            f"HTTP {attempt['http_status']}" if attempt["http_status"] else attempt["error_class"] or "-"
        )
        duration = "-" if attempt["duration_ms"] is None else f"{attempt['duration_ms']:.0f} ms"
        click.echo(f"  attempt {attempt['number']}: {attempt['status']} {outcome} in {duration}")
        detail = attempt["error_message"] or (attempt["response_excerpt"] or "")[:200]
        if detail:
            click.echo(f"    {detail}")
