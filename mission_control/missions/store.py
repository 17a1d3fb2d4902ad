"""The durable mission engine's storage: definitions and missions in the registry database.

Every change to a mission is one short transaction that locks its row, applies one or more pure
transitions from :mod:`mission_control.missions.machine` and writes the document back with its
indexed columns, so a mission's state is committed before anything acts on it (a step message is
sent only after its commit) and any process may die at any moment without losing a change.

``wake_at`` makes the beat tick the engine's alarm clock: a mission that needs a look on its own
(a timer or retry due, a signal deadline, a lease that may expire, a step message that may have been
lost) carries the instant, and :func:`claim_due` hands due ones to workers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mission_control.base.clock import Clock
from mission_control.db.audit import AuditEntry
from mission_control.db.audit import write as write_audit
from mission_control.db.tables import mission_definitions, missions
from mission_control.missions import machine
from mission_control.missions.definition import MissionDefinition

T = TypeVar("T")
MISSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


# The validation context of a definition read back from the database (see jobspec._reading_stored).
STORED = {"stored": True}


class MissionNotFound(LookupError):
    pass


class DefinitionNotFound(LookupError):
    pass


class DuplicateMission(Exception):
    """A start named an id that exists, whatever state that mission is in."""


@dataclass(frozen=True)
class DefinitionRecord:
    definition: MissionDefinition
    version: int
    created_at: datetime


def digest_of(definition: MissionDefinition) -> str:
    return hashlib.sha256(json.dumps(definition.as_json(), sort_keys=True).encode()).hexdigest()


# Built once: these run on every step of every mission.
_READ = select(missions.c.doc, missions.c.definition, missions.c.version, missions.c.wake_at).where(
    missions.c.id == bindparam("mission_id")
)
# Compare-and-set on the revision: one statement, no lock held across a round trip.
_WRITE = (
    update(missions)
    .where(missions.c.id == bindparam("mission_id"), missions.c.revision == bindparam("old"))
    .values(
        status=bindparam("s"),
        doc=bindparam("d", type_=missions.c.doc.type),
        wake_at=bindparam("w", type_=missions.c.wake_at.type),
        updated_at=bindparam("u", type_=missions.c.updated_at.type),
        revision=bindparam("new"),
    )
)
_REARM = (
    update(missions)
    .where(missions.c.id == bindparam("mission_id"), missions.c.revision == bindparam("old"))
    .values(wake_at=bindparam("w", type_=missions.c.wake_at.type))
)
MAX_RACES = 100
_LATEST = (
    select(mission_definitions)
    .where(mission_definitions.c.name == bindparam("name"))
    .order_by(mission_definitions.c.version.desc())
    .limit(1)
)


class MissionStore:
    def __init__(self, engine: Engine, clock: Clock, *, requeue_after_s: float = 30.0) -> None:
        self.engine = engine
        self.clock = clock
        self.requeue_after_s = requeue_after_s
        # Versions never change once written, so a process may keep every one it has read.
        self._definitions: dict[tuple[str, int], DefinitionRecord] = {}
        self._lock = threading.Lock()

    # -- definitions -------------------------------------------------------------------------------

    def put_definition(
        self, definition: MissionDefinition, *, audit: AuditEntry | None = None
    ) -> tuple[DefinitionRecord, bool]:
        """Store a definition; an unchanged one keeps its version, a changed one gets the next.

        ``audit``: a new version is recorded in the same transaction (an unchanged one records nothing).

        Two concurrent PUTs of a changed definition race for the same version number; the loser's
        insert fails on the primary key and it reads again, so both end registered in some order.
        """
        digest = digest_of(definition)
        for _ in range(5):
            now = self.clock.now()
            try:
                with self.engine.begin() as conn:
                    latest = conn.execute(
                        select(mission_definitions)
                        .where(mission_definitions.c.name == definition.name)
                        .order_by(mission_definitions.c.version.desc())
                        .limit(1)
                        .with_for_update()
                    ).first()
                    if latest is not None and latest.digest == digest:
                        return DefinitionRecord(definition, latest.version, latest.created_at), False
                    version = 1 if latest is None else latest.version + 1
                    conn.execute(
                        insert(mission_definitions).values(
                            name=definition.name,
                            version=version,
                            body=definition.as_json(),
                            digest=digest,
                            created_at=now,
                        )
                    )
                    write_audit(
                        conn,
                        audit,
                        at=now,
                        subject_kind="definition",
                        subject_name=definition.name,
                        before=None if latest is None else {"version": latest.version},
                        after={"version": version, "definition": definition.as_json()},
                    )
                return DefinitionRecord(definition, version, now), True
            except IntegrityError:
                continue
        raise RuntimeError(f"definition {definition.name!r} kept changing under five attempts to store it")

    def definition(self, name: str, version: int | None = None) -> DefinitionRecord:
        """The latest version of ``name``, or that ``version``; raises DefinitionNotFound."""
        if version is None:
            query, params = _LATEST, {"name": name}
        else:
            with self._lock:
                cached = self._definitions.get((name, version))
            if cached is not None:
                return cached
            query = select(mission_definitions).where(
                mission_definitions.c.name == name, mission_definitions.c.version == version
            )
            params = {}
        with self.engine.connect() as conn:
            row = conn.execute(query, params).first()
        if row is None:
            raise DefinitionNotFound(name)
        return self._record(row)

    def list_definitions(self) -> list[DefinitionRecord]:
        latest = (
            select(mission_definitions.c.name, func.max(mission_definitions.c.version).label("version"))
            .group_by(mission_definitions.c.name)
            .subquery()
        )
        query = (
            select(mission_definitions)
            .join(
                latest,
                and_(
                    mission_definitions.c.name == latest.c.name,
                    mission_definitions.c.version == latest.c.version,
                ),
            )
            .order_by(mission_definitions.c.name)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._record(row) for row in rows]

    def _record(self, row: Any) -> DefinitionRecord:
        # Read under the rules it was stored with: a rule added later must not make it unreadable.
        key = (row.name, row.version)
        with self._lock:
            cached = self._definitions.get(key)
            if cached is None:
                definition = MissionDefinition.model_validate(row.body, strict=False, context=STORED)
                cached = self._definitions[key] = DefinitionRecord(definition, row.version, row.created_at)
            return cached

    # -- missions ----------------------------------------------------------------------------------

    def start(
        self,
        name: str,
        data: Any,
        mission_id: str | None = None,
        *,
        service: str | None = None,
        audit: AuditEntry | None = None,
    ) -> dict[str, Any]:
        """Create a mission on the latest version of ``name``; raises DefinitionNotFound,
        machine.PayloadInvalid or DuplicateMission, each before anything is written. ``service``: the
        service that started it (a token bound to it, or its job), whose tokens may then act on it."""
        record = self.definition(name)
        now = self.clock.now()
        mission_id = mission_id or uuid.uuid4().hex
        doc = machine.create(record.definition, record.version, mission_id, data, now)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(missions).values(
                        id=mission_id,
                        definition=name,
                        version=record.version,
                        status=doc["status"],
                        doc=doc,
                        wake_at=self._wake_at(doc, record.definition, now),
                        revision=doc["revision"],
                        created_at=now,
                        updated_at=now,
                        service=service,
                    )
                )
                write_audit(
                    conn,
                    audit,
                    at=now,
                    subject_kind="mission",
                    subject_name=mission_id,
                    service=service,
                    after={"definition": name, "version": record.version, "status": doc["status"]},
                )
        except IntegrityError:
            raise DuplicateMission(f"a mission with id {mission_id!r} already exists") from None
        return doc

    def get(self, mission_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            doc = conn.execute(select(missions.c.doc).where(missions.c.id == mission_id)).scalar()
        if doc is None:
            raise MissionNotFound(mission_id)
        return doc

    def list(
        self,
        *,
        status: str | None = None,
        definition: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        service: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, one page; each item is the mission's summary (no history). ``service``: only
        the missions that service started."""
        query = select(missions.c.id, missions.c.created_at, missions.c.doc)
        if service is not None:
            query = query.where(missions.c.service == service)
        if status is not None:
            query = query.where(missions.c.status == status)
        if definition is not None:
            query = query.where(missions.c.definition == definition)
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    missions.c.created_at < created_at,
                    and_(missions.c.created_at == created_at, missions.c.id < last_id),
                )
            )
        query = query.order_by(missions.c.created_at.desc(), missions.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        next_cursor = (
            encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        )
        return [summary(row.doc) for row in rows[:limit]], next_cursor

    def count_by_status(self, *, service: str | None = None) -> dict[str, int]:
        """Missions per status; ``service``: only those that service started."""
        query = select(missions.c.status, func.count()).group_by(missions.c.status)
        if service is not None:
            query = query.where(missions.c.service == service)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {status: count for status, count in rows}

    def prune(self, now: datetime, *, max_age_days: float, batch: int = 1000) -> int:
        """Delete finished missions last changed more than ``max_age_days`` ago; returns how many."""
        cutoff = now - timedelta(days=max_age_days)
        finished = missions.c.status.in_(sorted(machine.TERMINAL))
        removed = 0
        while True:
            with self.engine.begin() as conn:
                ids = (
                    conn.execute(
                        select(missions.c.id).where(finished, missions.c.updated_at < cutoff).limit(batch)
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    conn.execute(delete(missions).where(missions.c.id.in_(ids)))
            removed += len(ids)
            if len(ids) < batch:
                return removed

    def signal(
        self, mission_id: str, name: str, payload: Any, *, audit: AuditEntry | None = None
    ) -> dict[str, Any]:
        doc, _ = self.transition(
            mission_id,
            lambda doc, d, now: machine.signal(doc, d, name, payload, now),
            audit=audit,
            audit_change={"signal": name},
        )
        return doc

    def cancel(self, mission_id: str, reason: str, *, audit: AuditEntry | None = None) -> dict[str, Any]:
        doc, _ = self.transition(
            mission_id,
            lambda doc, d, now: machine.cancel(doc, reason, now),
            audit=audit,
            audit_change={"reason": reason},
        )
        return doc

    def transition(
        self,
        mission_id: str,
        change: Callable[[dict[str, Any], MissionDefinition, datetime], T],
        *,
        known: dict[str, Any] | None = None,
        audit: AuditEntry | None = None,
        audit_change: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], T]:
        """Apply ``change`` to the mission's document and store it, atomically.

        Optimistic: read the document (or start from ``known``, the one this process just wrote),
        apply the change, and write it only if the stored revision is still the one read, in one
        statement; a writer that lost the race reads again and re-applies. No lock is held across a
        round trip, and a worker moving one mission through its steps writes each step with one
        statement. An exception from ``change`` (a refused signal or cancel) writes nothing.
        """
        for _ in range(MAX_RACES):
            stored_wake_at: datetime | None = None
            if known is not None:
                doc, known = known, None
            else:
                with self.engine.connect() as conn:
                    row = conn.execute(_READ, {"mission_id": mission_id}).first()
                if row is None:
                    raise MissionNotFound(mission_id)
                doc, stored_wake_at = row.doc, row.wake_at
            definition = self.definition(doc["definition"], doc["version"]).definition
            now = self.clock.now()
            revision = doc.get("revision", 0)
            status_before = doc.get("status")
            result = change(doc, definition, now)
            if doc.get("revision", 0) == revision:
                if stored_wake_at is not None:
                    self._rearm(doc, definition, now, stored_wake_at)
                return doc, result
            params = {
                "mission_id": mission_id,
                "old": revision,
                "new": doc["revision"],
                "s": doc["status"],
                "d": doc,
                "w": self._wake_at(doc, definition, now),
                "u": now,
            }
            with self.engine.begin() as conn:
                if conn.execute(_WRITE, params).rowcount == 1:
                    if audit is not None:  # an operator's signal or cancel, recorded with it
                        write_audit(
                            conn,
                            audit,
                            at=now,
                            subject_kind="mission",
                            subject_name=mission_id,
                            service=conn.execute(
                                select(missions.c.service).where(missions.c.id == mission_id)
                            ).scalar(),
                            before={"status": status_before},
                            after={**(audit_change or {}), "status": doc["status"]},
                        )
                    return doc, result
        raise RuntimeError(f"mission {mission_id!r} changed under {MAX_RACES} attempts to change it")

    def _rearm(
        self, doc: dict[str, Any], definition: MissionDefinition, now: datetime, stored: datetime
    ) -> None:
        """Nothing was due after all: a beat whose clock runs a little ahead claimed the mission (and
        pushed wake_at on by the requeue delay). Put the real instant back, or a timer would fire up
        to that delay late."""
        due = self._wake_at(doc, definition, now)
        if due != stored:
            with self.engine.begin() as conn:
                conn.execute(_REARM, {"mission_id": doc["id"], "old": doc.get("revision", 0), "w": due})

    def _wake_at(self, doc: dict[str, Any], definition: MissionDefinition, now: datetime) -> datetime | None:
        due = machine.wake_at(doc)
        if due is None and machine.needs_worker(doc, definition, now):
            # Its step message goes out after this commit; should it be lost, look again then.
            due = now + timedelta(seconds=self.requeue_after_s)
        return due


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "definition",
        "version",
        "status",
        "cursor",
        "waiting",
        "error",
        "created_at",
        "updated_at",
        "finished_at",
    )
    return {key: doc.get(key) for key in keys}


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The inspection answer: the document without the engine's bookkeeping (lease, indexes)."""
    hidden = ("lease", "step_index", "attempt", "revision")
    view = {key: value for key, value in doc.items() if key not in hidden}
    if view.get("waiting"):
        view["waiting"] = {k: v for k, v in view["waiting"].items() if k != "attempt"}
    return view


def encode_cursor(created_at: datetime, mission_id: str) -> str:
    raw = json.dumps([machine.ts(created_at), mission_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a :func:`encode_cursor` cursor holds; ValueError for anything else.

    A cursor comes back from the client, so it may be anything: bad base64, bytes that are not
    JSON, JSON of the wrong shape or types, numbers too large to be a time, instants out of range.
    Every one of them is the same ValueError (answered 400), never an exception from deeper down;
    the instant must read back exactly as :func:`encode_cursor` wrote it.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        if not (
            isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(part, str) for part in decoded)
        ):
            raise ValueError("not a [created_at, id] pair")
        stamp, mission_id = decoded
        if not re.fullmatch(MISSION_ID_PATTERN, mission_id) or len(stamp) > 64:
            raise ValueError("not an id or an instant")
        created_at = machine.at(stamp).astimezone(UTC)
        if machine.ts(created_at) != stamp:  # only the exact form encode_cursor writes
            raise ValueError("not an instant as this API writes them")
        return created_at, mission_id
    except Exception:  # binascii, Unicode, JSON, recursion, overflow: all mean a cursor we did not give
        raise ValueError("cursor is not a next_cursor this API gave out") from None
