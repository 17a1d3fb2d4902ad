"""``mission-control jobs``: manage the registry over the HTTP API (MC_URL, MC_ADMIN_TOKEN)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from mission_control.client import MissionControl, MissionControlError

DEFAULT_URL = "http://127.0.0.1:8001"


def _client(ctx: click.Context) -> MissionControl:
    return ctx.obj  # type: ignore[no-any-return]


@click.group()
@click.option(
    "--url", envvar="MC_URL", default=DEFAULT_URL, show_default=True, help="API base URL [env: MC_URL]"
)
@click.option("--token", envvar="MC_ADMIN_TOKEN", required=True, help="Admin token [env: MC_ADMIN_TOKEN]")
@click.pass_context
def jobs(ctx: click.Context, url: str, token: str) -> None:
    """List, show, register, pause, resume and remove jobs."""
    ctx.obj = MissionControl(url, token)


@jobs.command("list")
@click.option("--service", help="Only jobs of this service.")
@click.option("--enabled/--paused", "enabled", default=None, help="Only enabled or only paused jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array) instead of a table.")
@click.pass_context
def list_jobs(ctx: click.Context, service: str | None, enabled: bool | None, as_json: bool) -> None:
    """List registered jobs."""
    found = list(_api(lambda: list(_client(ctx).jobs(service=service, enabled=enabled))))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [
        (
            job["name"],
            job["service"],
            job["schedule_description"],
            job["next_run_at"] or "-",
            "yes" if job["enabled"] else "paused",
        )
        for job in found
    ]
    click.echo(_table(("NAME", "SERVICE", "SCHEDULE", "NEXT RUN (UTC)", "ENABLED"), rows))


@jobs.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one job."""
    job = _api(lambda: _client(ctx).job(name))
    if as_json:
        click.echo(json.dumps(job, indent=2))
        return
    target = job["target"]
    retry = job["retry"]
    lines = [
        ("name", job["name"]),
        ("service", job["service"]),
        (
            "target",
            f"{target['method']} {target['url']}"
            if target.get("url")
            else f"starts mission {target['mission']['definition']}",
        ),
        ("schedule", job["schedule_description"]),
        ("next run", job["next_run_at"] or "-"),
        ("enabled", "yes" if job["enabled"] else "paused"),
        ("timeout", f"{job['timeout_s']:g} s"),
        (
            "expected runtime",
            "-" if job["expected_runtime_s"] is None else f"{job['expected_runtime_s']:g} s",
        ),
        (
            "retry",
            f"{retry['max_attempts']} attempts, backoff {retry['backoff_s']:g} s "
            f"up to {retry['backoff_max_s']:g} s, jitter {retry['jitter']:g}",
        ),
        ("concurrency", job["concurrency"]),
        ("misfire", job["misfire"]),
        ("revision", str(job["revision"])),
        ("updated", job["updated_at"]),
    ]
    width = max(len(label) for label, _ in lines)
    click.echo("\n".join(f"{label:<{width}}  {value}" for label, value in lines))


@jobs.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the stored jobs as JSON.")
@click.pass_context
def put(ctx: click.Context, files: Sequence[str], as_json: bool) -> None:
    """Register or update the jobs in FILES (YAML or JSON; '-' reads stdin).

    A file holds one job, a list of jobs, or a mapping with a `jobs` list. Each job is one idempotent
    PUT, so running this on every deploy is safe: unchanged jobs keep their next slot.
    """
    specs = [spec for path in files for spec in _load_specs(path)]
    client = _client(ctx)
    stored, failed = [], 0
    for spec in specs:
        try:
            job, created = client.put_job(spec)
        except MissionControlError as exc:
            failed += 1
            click.echo(f"{spec.get('name', '?')}: {exc.message}", err=True)
            continue
        stored.append(job)
        if not as_json:
            outcome = "created" if created else "registered"
            click.echo(f"{job['name']}: {outcome} (next run {job['next_run_at'] or '-'})")
    if as_json:
        click.echo(json.dumps(stored, indent=2))
    if failed:
        raise click.ClickException(f"{failed} of {len(specs)} jobs were not registered")


@jobs.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, names: Sequence[str]) -> None:
    """Remove jobs."""
    for name in names:
        _api(lambda name=name: _client(ctx).delete_job(name))
        click.echo(f"{name}: removed")


@jobs.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def pause(ctx: click.Context, names: Sequence[str]) -> None:
    """Pause jobs: nothing fires until they are resumed."""
    for name in names:
        _api(lambda name=name: _client(ctx).pause_job(name))
        click.echo(f"{name}: paused")


@jobs.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def resume(ctx: click.Context, names: Sequence[str]) -> None:
    """Resume jobs at their next slot."""
    for name in names:
        job = _api(lambda name=name: _client(ctx).resume_job(name))
        click.echo(f"{name}: resumed (next run {job['next_run_at'] or '-'})")


@jobs.command()
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait until the run ends; exit 1 unless it succeeded.")
@click.option("--timeout", "timeout_s", type=float, default=300, show_default=True, help="Seconds to wait.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.pass_context
def trigger(ctx: click.Context, name: str, wait: bool, timeout_s: float, as_json: bool) -> None:
    """Run a job now."""
    run = _api(lambda: _client(ctx).trigger(name, wait=wait, timeout_s=timeout_s))
    if as_json:
        click.echo(json.dumps(run, indent=2))
    else:
        click.echo(
            f"{name}: run {run['id']} {run['status']}" + (f" ({run['reason']})" if run.get("reason") else "")
        )
    if wait and run["status"] != "succeeded":
        ctx.exit(1)


def _api(call: Any) -> Any:
    try:
        return call()
    except MissionControlError as exc:
        raise click.ClickException(exc.message) from None


def _load_specs(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot parse: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        data = data["jobs"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise click.ClickException(f"{path}: expected a job, a list of jobs, or a mapping with a 'jobs' list")
    return data


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in rows]) for i, header in enumerate(headers)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [tuple(headers), *rows]
    ]
    return "\n".join(lines)
