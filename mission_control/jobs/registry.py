"""The job registry: durable storage of job specifications and their next due instant.

The registry owns one rule the scheduler depends on: ``next_run_at`` is NULL exactly when a job has
nothing to fire (paused, or a one-shot that has no future instant), and otherwise holds the next slot
computed from the job's schedule. Re-registering an unchanged schedule keeps ``next_run_at`` as it is,
so services can PUT their jobs on every deploy without shifting or re-firing a slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mission_control.base.clock import SYSTEM_CLOCK, Clock
from mission_control.db import tags as tag_index
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import jobs
from mission_control.jobs.secrets import redact_spec, seal_spec
from mission_control.jobs.spec import JobSpec, check_registrable
from mission_control.outbound.secretbox import SecretBox

# Stored specs were validated when written; a later, lower body limit must not make them unreadable.
_READ_CONTEXT = {"max_target_body_bytes": float("inf"), "stored": True}
# The jobs table keeps each JobSpec field in a column of the same name.
_SPEC_COLUMNS = tuple(JobSpec.model_fields)
# What a run needs of its job: every field but ``tags``, metadata for people, lists, routing and badges
# that the executor never reads, so reading and validating a spec per attempt costs nothing more.
_RUN_COLUMNS = tuple(name for name in _SPEC_COLUMNS if name != "tags")


class JobNotFound(LookupError):
    """No job has that name."""


class JobExists(Exception):
    """A job with that name is already registered."""


@dataclass(frozen=True)
class JobRecord:
    """A registered job: its specification plus what the registry keeps about it."""

    id: int
    spec: JobSpec
    next_run_at: datetime | None
    paused_at: datetime | None
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name


def next_run_for(spec: JobSpec, now: datetime) -> datetime | None:
    """The first slot strictly after ``now``, or None when the job has nothing to fire."""
    if not spec.enabled:
        return None
    return spec.to_schedule().next_after(now)


class JobRegistry:
    """Reads and writes jobs; every write is one short transaction."""

    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK, box: SecretBox | None = None) -> None:
        self.engine = engine
        self.clock = clock
        # Seals secret header values before they are stored (mission_control.jobs.secrets); without one
        # only writes that keep the stored secrets as they are (pause, resume) succeed.
        self.box = box

    def with_box(self, box: SecretBox) -> JobRegistry:
        """This registry, sealing secret header values with ``box``."""
        return JobRegistry(self.engine, self.clock, box)

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, name: str) -> JobRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.name == name)).first()
        if row is None:
            raise JobNotFound(name)
        return _record(row)

    def list(
        self,
        *,
        service: str | None = None,
        enabled: bool | None = None,
        after: str | None = None,
        limit: int = 100,
        tags: Sequence[str] = (),
    ) -> list[JobRecord]:
        """Jobs ordered by name; ``after`` is the last name of the previous page (keyset pagination);
        ``tags``: only jobs carrying every one of them."""
        query = tag_index.filtered(select(jobs), "job", jobs.c.name, tags).order_by(jobs.c.name).limit(limit)
        if service is not None:
            query = query.where(jobs.c.service == service)
        if enabled is not None:
            query = query.where(jobs.c.enabled == enabled)
        if after is not None:
            query = query.where(jobs.c.name > after)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    # -- writes --------------------------------------------------------------------------------------

    def put(self, spec: JobSpec, *, audit: AuditEntry | None = None) -> tuple[JobRecord, bool]:
        """Create or replace ``spec.name``; returns the record and whether it was created.

        Writing the spec that is already stored changes nothing (not even ``revision``, and no audit
        row), which is what makes registration idempotent. Every write method takes ``audit``: a change
        it makes is recorded in the same transaction, specs redacted (``redact_spec``).
        """
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    row = _select_for_update(conn, spec.name)
                    if row is None:
                        return self._insert(conn, spec, audit), True
                    return self._replace(conn, _record(row), spec, audit), False
            except IntegrityError:
                continue  # another writer inserted the name between our read and insert: retry as update
        raise RuntimeError(f"could not register job {spec.name!r}: the name kept changing under us")

    def create(self, spec: JobSpec, *, audit: AuditEntry | None = None) -> JobRecord:
        try:
            with self.engine.begin() as conn:
                return self._insert(conn, spec, audit)
        except IntegrityError:
            raise JobExists(spec.name) from None

    def update(
        self, name: str, change: Callable[[JobRecord], JobSpec], *, audit: AuditEntry | None = None
    ) -> JobRecord:
        """Read-modify-write ``name`` in one transaction; ``change`` derives the new spec from the record.

        ``change`` may raise (a validation error, say); nothing is written then.
        """
        with self.engine.begin() as conn:
            row = _select_for_update(conn, name)
            if row is None:
                raise JobNotFound(name)
            current = _record(row)
            spec = change(current)
            if spec.name != name:
                raise ValueError("a job cannot be renamed")
            return self._replace(conn, current, spec, audit)

    def set_enabled(self, name: str, enabled: bool, *, audit: AuditEntry | None = None) -> JobRecord:
        return self.update(
            name, lambda record: record.spec.model_copy(update={"enabled": enabled}), audit=audit
        )

    def delete(self, name: str, *, audit: AuditEntry | None = None) -> None:
        with self.engine.begin() as conn:
            row = _select_for_update(conn, name)
            if row is None:
                raise JobNotFound(name)
            current = _record(row)
            conn.execute(delete(jobs).where(jobs.c.id == current.id))
            tag_index.forget(conn, "job", name)
            write_audit(
                conn,
                audit,
                at=self.clock.now(),
                subject_kind="job",
                subject_name=name,
                service=current.spec.service,
                before=redact_spec(current.spec),
            )

    # -- helpers -------------------------------------------------------------------------------------

    def _insert(self, conn: Connection, spec: JobSpec, audit: AuditEntry | None) -> JobRecord:
        now = self.clock.now()
        check_registrable(spec, now, previous=None)
        spec = seal_spec(spec, None, self.box)
        values = {
            **_spec_columns(spec),
            "next_run_at": next_run_for(spec, now),
            "paused_at": None if spec.enabled else now,
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        result = conn.execute(insert(jobs).values(values).returning(jobs))
        record = _record(result.one())
        tag_index.replace(conn, "job", spec.name, spec.tags)
        write_audit(
            conn,
            audit,
            at=now,
            subject_kind="job",
            subject_name=spec.name,
            service=spec.service,
            after=redact_spec(record.spec),
        )
        return record

    def _replace(
        self, conn: Connection, current: JobRecord, spec: JobSpec, audit: AuditEntry | None
    ) -> JobRecord:
        spec = seal_spec(spec, current.spec, self.box)
        if spec == current.spec:
            return current
        now = self.clock.now()
        check_registrable(spec, now, previous=current.spec)
        keeps_slot = spec.enabled and current.spec.enabled and spec.schedule == current.spec.schedule
        next_run_at = current.next_run_at if keeps_slot else next_run_for(spec, now)
        result = conn.execute(
            update(jobs)
            .where(jobs.c.id == current.id)
            .values(
                **_spec_columns(spec),
                next_run_at=next_run_at,
                paused_at=_paused_at(current, spec, now),
                revision=current.revision + 1,
                updated_at=now,
            )
            .returning(jobs)
        )
        record = _record(result.one())
        if spec.tags != current.spec.tags:
            tag_index.replace(conn, "job", spec.name, spec.tags)
        write_audit(
            conn,
            audit,
            at=now,
            subject_kind="job",
            subject_name=spec.name,
            service=spec.service,
            before=redact_spec(current.spec),
            after=redact_spec(record.spec),
        )
        return record


def _paused_at(current: JobRecord, spec: JobSpec, now: datetime) -> datetime | None:
    if spec.enabled:
        return None
    return current.paused_at if not current.spec.enabled and current.paused_at else now


def _select_for_update(conn: Connection, name: str) -> Row[Any] | None:
    # FOR UPDATE on PostgreSQL; SQLite already holds the write lock from BEGIN IMMEDIATE.
    return conn.execute(select(jobs).where(jobs.c.name == name).with_for_update()).first()


def _spec_columns(spec: JobSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", include=set(_SPEC_COLUMNS))


def spec_from_row(mapping: Any, prefix: str = "", *, with_tags: bool = False) -> JobSpec:
    """The JobSpec stored in a jobs row (columns optionally selected as ``<prefix><field>``).

    Without ``with_tags`` (what a run reads) the spec's ``tags`` are left empty: a spec read so is
    never written back, only the registry writes, and it reads them.
    """
    columns = _SPEC_COLUMNS if with_tags else _RUN_COLUMNS
    return JobSpec.model_validate(
        {key: mapping[prefix + key] for key in columns}, strict=False, context=_READ_CONTEXT
    )


def spec_columns(prefix: str = "", *, with_tags: bool = False) -> list[Any]:
    """The jobs columns holding a JobSpec, labelled for :func:`spec_from_row` (``tags`` only
    ``with_tags``)."""
    return [jobs.c[name].label(prefix + name) for name in (_SPEC_COLUMNS if with_tags else _RUN_COLUMNS)]


def _record(row: Row[Any]) -> JobRecord:
    mapping = row._mapping
    spec = spec_from_row(mapping, with_tags=True)
    return JobRecord(
        id=mapping["id"],
        spec=spec,
        next_run_at=mapping["next_run_at"],
        paused_at=mapping["paused_at"],
        revision=mapping["revision"],
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
    )
