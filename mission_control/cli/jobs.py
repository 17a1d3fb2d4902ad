"""``mission-control jobs``: manage the registry over the HTTP API (MC_URL, MC_ADMIN_TOKEN)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from mission_control.cli.common import (
    ApiGroup,
    CliFailure,
    ExitCode,
    api_client,
    exit_code_for,
    fields,
    output,
    read_document,
    table,
    wants_json,
)
from mission_control.client import MissionControlError


@click.group(cls=ApiGroup)
def jobs() -> None:
    """List, show, register, pause, resume, trigger and remove jobs."""


@jobs.command("list")
@click.option("--service", help="Only jobs of this service.")
@click.option("--enabled/--paused", "enabled", default=None, help="Only enabled or only paused jobs.")
@click.option("--tag", "tags", multiple=True, help="Only jobs carrying this tag (repeat: all of them).")
def list_jobs(service: str | None, enabled: bool | None, tags: tuple[str, ...]) -> None:
    """List registered jobs (--json: one array)."""
    found = list(api_client().jobs(service=service, enabled=enabled, tags=tags))
    output(found, lambda: _jobs_table(found))


def _jobs_table(found: list[dict[str, Any]]) -> str:
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
    return table(("NAME", "SERVICE", "SCHEDULE", "NEXT RUN (UTC)", "ENABLED"), rows)


@jobs.command()
@click.argument("name")
def show(name: str) -> None:
    """Show one job."""
    job = api_client().job(name)
    output(job, lambda: _job_fields(job))


def _job_fields(job: dict[str, Any]) -> str:
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
    return fields(lines)


@jobs.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
def put(files: Sequence[str]) -> None:
    """Register or update the jobs in FILES (YAML or JSON; '-' reads stdin).

    A file holds one job, a list of jobs, or a mapping with a `jobs` list. Each job is one idempotent
    PUT, so running this on every deploy is safe: unchanged jobs keep their next slot. Jobs that are
    refused are named on stderr and the others are still registered (--json: the stored ones).
    """
    specs = [spec for path in files for spec in _load_specs(path)]
    client = api_client()
    stored: list[dict[str, Any]] = []
    failures: list[tuple[str, MissionControlError]] = []
    for spec in specs:
        try:
            job, created = client.put_job(spec)
        except MissionControlError as exc:
            if exit_code_for(exc) in (ExitCode.UNREACHABLE, ExitCode.UNAUTHORIZED):
                raise  # no job would fare better
            failures.append((str(spec.get("name", "?")), exc))
            if not wants_json():
                click.echo(f"{spec.get('name', '?')}: {exc.message}", err=True)
            continue
        stored.append(job)
        if not wants_json():
            outcome = "created" if created else "registered"
            click.echo(f"{job['name']}: {outcome} (next run {job['next_run_at'] or '-'})")
    if wants_json():
        click.echo(json.dumps(stored, indent=2))
    if failures:
        codes = {exit_code_for(exc) for _, exc in failures}
        raise CliFailure(
            f"{len(failures)} of {len(specs)} jobs were not registered",
            codes.pop() if len(codes) == 1 else ExitCode.ERROR,
            code="not_registered",
            details=[
                {
                    "name": name,
                    "code": exc.code,
                    "message": exc.message,
                    "field": exc.field,
                    "status": exc.status,
                }
                for name, exc in failures
            ],
        )


@jobs.command()
@click.argument("names", nargs=-1, required=True)
def rm(names: Sequence[str]) -> None:
    """Remove jobs (--json: {"ok": true, "removed": [names]})."""
    client = api_client()
    for name in names:
        client.delete_job(name)
        if not wants_json():
            click.echo(f"{name}: removed")
    output({"ok": True, "removed": list(names)}, "")


@jobs.command()
@click.argument("names", nargs=-1, required=True)
def pause(names: Sequence[str]) -> None:
    """Pause jobs: nothing fires until they are resumed (--json: the jobs, one array)."""
    client = api_client()
    paused = []
    for name in names:
        paused.append(client.pause_job(name))
        if not wants_json():
            click.echo(f"{name}: paused")
    output(paused, "")


@jobs.command()
@click.argument("names", nargs=-1, required=True)
def resume(names: Sequence[str]) -> None:
    """Resume jobs at their next slot (--json: the jobs, one array)."""
    client = api_client()
    resumed = []
    for name in names:
        job = client.resume_job(name)
        resumed.append(job)
        if not wants_json():
            click.echo(f"{name}: resumed (next run {job['next_run_at'] or '-'})")
    output(resumed, "")


@jobs.command()
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait until the run ends; exit 1 unless it succeeded.")
@click.option("--timeout", "timeout_s", type=float, default=300, show_default=True, help="Seconds to wait.")
def trigger(name: str, wait: bool, timeout_s: float) -> None:
    """Run a job now (--json: the run)."""
    run = api_client().trigger(name, wait=wait, timeout_s=timeout_s)
    output(
        run,
        f"{name}: run {run['id']} {run['status']}" + (f" ({run['reason']})" if run.get("reason") else ""),
    )
    if wait and run["status"] != "succeeded":
        raise CliFailure(f"run {run['id']} of {name} ended {run['status']}", code=f"run_{run['status']}")


def _load_specs(path: str) -> list[dict[str, Any]]:
    data = read_document(path)
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        data = data["jobs"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CliFailure(
            f"{path}: expected a job, a list of jobs, or a mapping with a 'jobs' list",
            ExitCode.REFUSED,
            code="invalid_file",
        )
    return data
