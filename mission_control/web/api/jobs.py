"""``/api/v1/jobs``: register, inspect, change, pause and remove jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app

from mission_control.jobs.history import get_run, last_runs
from mission_control.jobs.registry import JobExists, JobNotFound, JobRecord, JobRegistry
from mission_control.jobs.secrets import redact_spec
from mission_control.jobs.spec import JobSpec, SpecError, merge_patch
from mission_control.scheduling.claiming import RunInProgress, create_manual_run
from mission_control.web.api.audit import entry
from mission_control.web.api.bodies import json_object, query, reject_read_only, validate
from mission_control.web.api.errors import ApiError
from mission_control.web.api.openapi import ApiBlueprint
from mission_control.web.api.responses import check_name, json_response, keyset_page, secret_box
from mission_control.web.api.schemas import JobList, JobListQuery, JobOut, JobPatch, JobPut, RunOut
from mission_control.web.api.scopes import bound_service

bp = ApiBlueprint("jobs", __name__, tag="jobs")


def registry() -> JobRegistry:
    # Sealing secret header values (MC_SECRET_KEY) before they are stored: mission_control.jobs.secrets.
    state = current_app.extensions["mission_control"]
    return state.registry.with_box(secret_box(state.settings))


def _job(record: JobRecord, status: int = 200) -> Response:
    last = last_runs(current_app.extensions["mission_control"].engine, [record.id])
    return json_response(JobOut.of(record, last.get(record.id)), status)


def _lookup(name: str) -> JobRecord:
    check_name(name)
    try:
        return registry().get(name)
    except JobNotFound:
        raise _not_found(name) from None


def _not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"name: no job named {name!r}", "name")


def _spec_error(exc: SpecError) -> ApiError:
    return ApiError(422, "validation_error", f"{exc.field}: {exc}", exc.field)


@bp.operation(
    "GET", "/jobs", summary="List jobs, ordered by name", query=JobListQuery, responses={200: JobList}
)
def list_jobs() -> Response:
    params = query(JobListQuery)
    bound = bound_service()  # a service-bound token lists its service's jobs only
    if bound is not None and params.service not in (None, bound):
        return json_response(JobList(jobs=[], next_cursor=None))
    records = registry().list(
        service=bound or params.service,
        enabled=params.enabled,
        after=params.cursor,
        limit=params.limit + 1,
        tags=params.tag,
    )
    page, next_cursor = keyset_page(records, params.limit, lambda record: record.name)
    last = last_runs(current_app.extensions["mission_control"].engine, [record.id for record in page])
    return json_response(
        JobList(jobs=[JobOut.of(record, last.get(record.id)) for record in page], next_cursor=next_cursor)
    )


@bp.operation(
    "PUT",
    "/jobs/<name>",
    summary="Create or replace a job (idempotent)",
    body=JobPut,
    responses={200: JobOut, 201: JobOut},
)
def put_job(name: str) -> Response:
    check_name(name)
    body = json_object()
    reject_read_only(body)
    if body.get("name") is None:  # absent or null: the path names the job
        body["name"] = name
    if body["name"] != name:
        raise ApiError(
            422, "validation_error", f"name: the body names {body['name']!r} but the path {name!r}", "name"
        )
    spec = validate(JobSpec, body)
    try:
        record, created = registry().put(spec, audit=entry("job.put"))
    except SpecError as exc:
        raise _spec_error(exc) from None
    return _job(record, 201 if created else 200)


@bp.operation(
    "POST",
    "/jobs",
    summary="Create a job (409 if the name is taken)",
    body=JobSpec,
    responses={201: JobOut},
    errors=(409,),
)
def create_job() -> Response:
    body = json_object()
    reject_read_only(body)
    spec = validate(JobSpec, body)
    try:
        record = registry().create(spec, audit=entry("job.create"))
    except JobExists:
        raise ApiError(409, "conflict", f"name: a job named {spec.name!r} already exists", "name") from None
    except SpecError as exc:
        raise _spec_error(exc) from None
    return _job(record, 201)


@bp.operation("GET", "/jobs/<name>", summary="Get one job", responses={200: JobOut})
def get_job(name: str) -> Response:
    return _job(_lookup(name))


@bp.operation(
    "PATCH", "/jobs/<name>", summary="Change some fields of a job", body=JobPatch, responses={200: JobOut}
)
def patch_job(name: str) -> Response:
    check_name(name)
    patch = json_object()
    reject_read_only(patch)
    if patch.get("name") is None:  # absent or null: the path names the job
        patch.pop("name", None)
    elif patch["name"] != name:
        raise ApiError(422, "validation_error", "name: a job cannot be renamed; create a new one", "name")

    def change(record: JobRecord) -> JobSpec:
        current: dict[str, Any] = redact_spec(record.spec)  # "****" keeps each stored secret
        return validate(JobSpec, merge_patch(current, patch))

    return _job(_update(name, change, "job.patch"))


@bp.operation("DELETE", "/jobs/<name>", summary="Remove a job", responses={204: None})
def delete_job(name: str) -> Response:
    check_name(name)
    try:
        registry().delete(name, audit=entry("job.delete"))
    except JobNotFound:
        raise _not_found(name) from None
    return Response(status=204)


@bp.operation(
    "POST",
    "/jobs/<name>/pause",
    summary="Pause a job: nothing fires until it is resumed",
    responses={200: JobOut},
)
def pause_job(name: str) -> Response:
    return _job(_update(name, lambda record: record.spec.model_copy(update={"enabled": False}), "job.pause"))


@bp.operation(
    "POST",
    "/jobs/<name>/resume",
    summary="Resume a job at its next slot (missed slots are not fired)",
    responses={200: JobOut},
)
def resume_job(name: str) -> Response:
    return _job(_update(name, lambda record: record.spec.model_copy(update={"enabled": True}), "job.resume"))


@bp.operation(
    "POST",
    "/jobs/<name>/trigger",
    summary="Run a job now (202 with the queued run; 409 while one is unfinished and overlap is forbidden)",
    responses={202: RunOut},
    errors=(409,),
)
def trigger_job(name: str) -> Response:
    check_name(name)
    state = current_app.extensions["mission_control"]
    try:
        run_id = create_manual_run(state.engine, name, state.clock.now(), audit=entry("run.trigger"))
    except RunInProgress as exc:
        raise ApiError(
            409,
            "conflict",
            f"name: run {exc.run_id} of {name!r} is unfinished and the job forbids overlap",
            "name",
        ) from None
    if run_id is None:
        raise _not_found(name)
    state.enqueue([run_id])
    row = get_run(state.engine, run_id)
    assert row is not None
    return json_response(RunOut.of(row), 202)


def _update(name: str, change: Callable[[JobRecord], JobSpec], action: str) -> JobRecord:
    check_name(name)
    try:
        return registry().update(name, change, audit=entry(action))
    except JobNotFound:
        raise _not_found(name) from None
    except SpecError as exc:
        raise _spec_error(exc) from None
