"""How much looking up the signing secrets of a request costs a worker, with many services.

Every trigger asks ``SigningKeys.for_service(job.service)`` for the secrets to sign with. The e2e
benchmark fires one service's jobs, so it cannot show what a fleet costs: this one looks up
``--services`` distinct services (``--own`` of them with their own secret) round-robin at ``--rate``
lookups a second (a worker's trigger rate) for ``--seconds``, against a throwaway PostgreSQL
database, through one per-process cache as a worker has it, and reports the SQL statements it cost
and the CPU time per lookup. One JSON line.

    .venv/bin/python bench/signing_keys_bench.py --services 2000 --own 200 --rate 200 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mission_control.base.clock import SYSTEM_CLOCK
from mission_control.base.config import Settings
from mission_control.db import migrate
from mission_control.db.engine import make_engine
from mission_control.outbound.secretbox import SecretBox
from mission_control.outbound.service_secrets import ServiceSigningSecrets, signing_keys
from tests.conftest import PG_ADMIN_URL, PostgresDatabases

SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--own", type=int, default=200, help="services with their own secret")
    parser.add_argument("--rate", type=float, default=200, help="lookups per second")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    databases = PostgresDatabases(PG_ADMIN_URL)
    try:
        engine = make_engine(databases.create("signing_keys"))
        migrate.upgrade(engine)
        settings = Settings(signing_secret=SIGNING_SECRET)
        keys = signing_keys(engine, SYSTEM_CLOCK, settings)
        store = ServiceSigningSecrets(engine, SYSTEM_CLOCK, SecretBox((), SIGNING_SECRET))
        for i in range(args.own):
            store.rotate(f"svc-{i}", overlap_s=0)
        statements = 0

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(engine, "before_cursor_execute", count)
        names = [f"svc-{i}" for i in range(args.services)]
        lookups = 0
        cpu = 0.0
        started = time.monotonic()
        while (now := time.monotonic()) < started + args.seconds:
            due = int((now - started) * args.rate)
            if lookups >= due:
                time.sleep(0.002)
                continue
            cpu_before = time.process_time()
            while lookups < due:
                keys.for_service(names[lookups % len(names)])
                lookups += 1
            cpu += time.process_time() - cpu_before
        elapsed = time.monotonic() - started
        print(
            json.dumps(
                {
                    "bench": "signing_keys",
                    "services": args.services,
                    "own": args.own,
                    "seconds": round(elapsed, 2),
                    "lookups": lookups,
                    "statements": statements,
                    "statements_per_1000_lookups": round(1000 * statements / lookups, 3),
                    "rate": args.rate,
                    "cpu_us_per_lookup": round(1e6 * cpu / lookups, 2),
                }
            )
        )
        engine.dispose()
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
