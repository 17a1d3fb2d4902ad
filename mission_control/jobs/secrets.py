"""Write-only job headers: sealed before they are stored, opened only where a trigger is built.

A job's target headers often carry credentials. The values of its *secret* headers (Authorization,
Proxy-Authorization, Cookie, X-Api-Key, and any the job lists in ``target.secret_headers``) are kept in
the stored spec as envelopes (:mod:`mission_control.outbound.secretbox`), so the jobs row holds no
plaintext. Everything that shows a job (API answers, the CLI, exports, audit diffs) goes through
:func:`redact_spec` or :func:`redacted_target` and shows ``"****"``; only the executor calls
:func:`open_headers`.

``"****"`` sent back for a secret header keeps the value stored, so a client can PUT what it read.
Specs stored before sealing existed hold plaintext: they are answered ``"****"`` at once (redaction goes
by header name, not by the value's form), sealed on their next write, or by
``mission-control db reencrypt-secrets`` (:func:`reseal_all`), which also re-seals every envelope with
the newest key: the last step of a key rotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from mission_control.db.tables import jobs
from mission_control.jobs.spec import SECRET_PLACEHOLDER, JobSpec, SpecError, TargetSpec
from mission_control.outbound.secretbox import SecretBox, is_sealed


def _is_secret(target: TargetSpec, name: str, value: str) -> bool:
    # A sealed value is hidden whatever its name: a header dropped from secret_headers keeps its seal
    # until it is written again.
    return name.lower() in target.secret_header_names() or is_sealed(value)


def redacted_headers(target: TargetSpec) -> dict[str, str]:
    """The target's headers as they may be shown: secret values as ``"****"``."""
    return {
        name: SECRET_PLACEHOLDER if _is_secret(target, name, value) else value
        for name, value in target.headers.items()
    }


def redacted_target(target: TargetSpec) -> TargetSpec:
    """The target with its secret header values replaced by ``"****"`` (not revalidated)."""
    if not target.headers:
        return target
    return target.model_copy(update={"headers": redacted_headers(target)})


def redact_spec(spec: JobSpec) -> dict[str, Any]:
    """The job's JSON form with every secret header value as ``"****"``: what answers, exports and audit
    diffs may carry (never a secret, sealed or not)."""
    data = spec.model_dump(mode="json")
    if spec.target.headers:
        data["target"]["headers"] = redacted_headers(spec.target)
    return data


def seal_spec(spec: JobSpec, previous: JobSpec | None, box: SecretBox | None) -> JobSpec:
    """``spec`` as it is to be stored: each secret header's value sealed.

    ``"****"`` takes the value ``previous`` holds under that name (a :class:`SpecError` when it holds
    none). A plaintext equal to the stored value keeps the stored envelope, so re-registering an
    unchanged job writes nothing. Without a ``box`` (code that only pauses or resumes) values equal to
    the stored ones are kept as they are; a new secret value then raises ``RuntimeError``.
    """
    target = spec.target
    if not target.headers:
        return spec
    secret = target.secret_header_names()
    stored: Mapping[str, str] = (
        {name.lower(): value for name, value in previous.target.headers.items()} if previous else {}
    )
    headers: dict[str, str] = {}
    for name, value in target.headers.items():
        lowered = name.lower()
        if lowered not in secret and not is_sealed(value):
            headers[name] = value
            continue
        old = stored.get(lowered)
        if value == SECRET_PLACEHOLDER and lowered in secret:
            if old is None:
                raise SpecError(
                    f'header {name!r} is "****", which keeps the stored value, but none is stored; '
                    "send the value itself",
                    "target.headers",
                )
            value = old
        if value == old and (is_sealed(old) or box is None):
            headers[name] = old
        elif is_sealed(value):
            headers[name] = value
        elif box is None:
            raise RuntimeError("storing a secret header needs a SecretBox (JobRegistry(box=...))")
        elif old is not None and is_sealed(old) and box.open_value(old) == value:
            headers[name] = old
        else:
            headers[name] = box.seal_value(value)
    if headers == target.headers:
        return spec
    return spec.model_copy(update={"target": target.model_copy(update={"headers": headers})})


def open_headers(target: TargetSpec, box: SecretBox) -> dict[str, str]:
    """The headers a trigger sends: every envelope opened (cached by the box)."""
    return {
        name: box.open_value(value) if is_sealed(value) else value for name, value in target.headers.items()
    }


def reseal_target(target: dict[str, Any], box: SecretBox) -> dict[str, Any] | None:
    """A stored target (JSON) with every secret value sealed with the newest key; None if it has none."""
    headers = target.get("headers") or {}
    secret = TargetSpec.model_construct(
        secret_headers=target.get("secret_headers") or []
    ).secret_header_names()
    resealed = {
        name: box.reseal_value(value) if name.lower() in secret or is_sealed(value) else value
        for name, value in headers.items()
    }
    if not any(name.lower() in secret or is_sealed(value) for name, value in headers.items()):
        return None
    return {**target, "headers": resealed}


def reseal_all(engine: Engine, box: SecretBox) -> int:
    """Seal every job's plaintext secret values and re-seal every envelope with the newest key.

    Each job is rewritten in its own short transaction under a row lock; ``revision`` and
    ``updated_at`` stay as they are (the job did not change). Returns how many jobs were rewritten.
    """
    with engine.connect() as conn:
        ids = list(conn.execute(select(jobs.c.id).order_by(jobs.c.id)).scalars())
    rewritten = 0
    for job_id in ids:
        with engine.begin() as conn:
            row = conn.execute(select(jobs.c.target).where(jobs.c.id == job_id).with_for_update()).first()
            if row is None:
                continue
            resealed = reseal_target(dict(row.target), box)
            if resealed is None:
                continue
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(target=resealed))
            rewritten += 1
    return rewritten
