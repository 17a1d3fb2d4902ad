"""The index of tags: ``subject_tags`` rows kept beside each object's own ``tags`` column.

A service's or job's tags are answered from its own row (``tags``, a JSON list); this module keeps
``subject_tags`` (one row per kind, tag and name) in step with it, in the same transaction, and builds
the filter a list uses. Stores call :func:`replace` whenever they write an object's tags and
:func:`forget` when they delete the object. Living in ``db``, it serves both the job registry
(``jobs``) and the service registry (``monitoring``), which may not import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, insert, select
from sqlalchemy.engine import Connection

from mission_control.db.tables import subject_tags


def replace(conn: Connection, kind: str, name: str, tags: Sequence[str]) -> None:
    """Make ``name``'s indexed tags exactly ``tags`` (``kind``: ``job`` or ``service``)."""
    forget(conn, kind, name)
    if tags:
        conn.execute(insert(subject_tags), [{"kind": kind, "tag": tag, "name": name} for tag in tags])


def forget(conn: Connection, kind: str, name: str) -> None:
    """Drop every indexed tag of ``name`` (the object is gone, or its tags are being replaced)."""
    conn.execute(delete(subject_tags).where(subject_tags.c.kind == kind, subject_tags.c.name == name))


def filtered(statement: Select[Any], kind: str, name_column: Any, tags: Sequence[str]) -> Select[Any]:
    """``statement`` (a list of ``kind`` objects ordered by ``name_column``) kept to those carrying
    every one of ``tags``.

    The first tag is a join on the (kind, tag, name) primary key: ordered by name and limited, the
    list is a range scan of that key from the cursor on, whatever share of the objects carries it.
    The others are EXISTS probes of the same key per row found.
    """
    if not tags:
        return statement
    first = subject_tags.alias("first_tag")
    statement = statement.join(
        first, and_(first.c.kind == kind, first.c.tag == tags[0], first.c.name == name_column)
    )
    return statement.where(carrying(kind, name_column, tags[1:])) if len(tags) > 1 else statement


def carrying(kind: str, name_column: Any, tags: Sequence[str]) -> ColumnElement[bool]:
    """A WHERE clause: the object whose name is ``name_column`` carries every one of ``tags``.

    Each tag is an EXISTS on the (kind, tag, name) primary key, so the planner reads it as an index
    probe per row or, for a selective tag, walks the key in name order and joins the object by name.
    """
    return and_(
        *(
            exists(
                select(subject_tags.c.name).where(
                    subject_tags.c.kind == kind,
                    subject_tags.c.tag == tag,
                    subject_tags.c.name == name_column,
                )
            )
            for tag in tags
        )
    )


def names_with(conn: Connection, kind: str, tag: str) -> list[str]:
    """The names of every ``kind`` object carrying ``tag``, in name order."""
    statement = (
        select(subject_tags.c.name)
        .where(subject_tags.c.kind == kind, subject_tags.c.tag == tag)
        .order_by(subject_tags.c.name)
    )
    return list(conn.execute(statement).scalars())
