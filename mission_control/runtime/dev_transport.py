"""Kombu's SQL transport, polling faster: the serverless broker behind ``mission-control dev``.

It carries Celery messages through a SQLite file, so a first look needs no Redis. The stock transport
polls once a second, which makes every trigger in the demo visibly late; its ``broker_transport_options``
are handed to SQLAlchemy's ``create_engine`` and cannot carry a polling interval, so this subclass sets
one on the class. Production uses Redis (``MC_BROKER_URL=redis://...``).
"""

from __future__ import annotations

from kombu.transport.sqlalchemy import Transport as SqlAlchemyTransport


class Transport(SqlAlchemyTransport):
    polling_interval = 0.1
