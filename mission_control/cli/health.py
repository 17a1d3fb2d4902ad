"""``mission-control health``: is this machine's web, worker, beat or Flower alive? For a container's
HEALTHCHECK (docker/compose.yaml) or a Kubernetes exec probe, where the image has no curl.

One process image runs five kinds of process, and each answers a different question, so each has its
own probe: ``web`` and ``flower`` are asked over HTTP on the loopback, a ``worker`` is pinged through
the broker by its node name (the one Celery derives from this machine's hostname, as ``celery
inspect ping -d celery@$HOSTNAME`` would, without loading Celery's command line and its plugins at every
probe), and ``beat``, which listens on nothing, is judged by the mark it leaves after each registry
pass (:mod:`mission_control.runtime.liveness`). Each exits 0 when healthy (one line on stdout) and 1
when not, with one line on stderr saying why; each gives up within its ``--timeout``.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

import click

HEALTHY, UNHEALTHY = 0, 1


def _verdict(kind: str, healthy: bool, reason: str) -> NoReturn:
    click.echo(f"{kind}: {reason}", err=not healthy)
    sys.exit(HEALTHY if healthy else UNHEALTHY)


def _get(url: str, timeout_s: float) -> tuple[int, bytes]:
    # No proxy: an HTTP_PROXY in a container's environment must not carry a loopback probe elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return response.status, response.read(256)
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _probe_http(kind: str, url: str, timeout_s: float, expect: bytes | None = None) -> NoReturn:
    started = time.monotonic()
    try:
        status, body = _get(url, timeout_s)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        _verdict(kind, False, f"{url}: no answer ({reason})")
    elapsed_ms = (time.monotonic() - started) * 1000
    if status != 200 or (expect is not None and body.strip() != expect):
        _verdict(kind, False, f"{url} answered {status} {body[:60]!r}")
    _verdict(kind, True, f"{url} answered {status} in {elapsed_ms:.0f} ms")


_TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=3.0,
    show_default=True,
    help="Seconds to wait for an answer",
)


@click.group()
def health() -> None:
    """Probe a process on this machine, for a container's HEALTHCHECK: exit 0 healthy, 1 not (with one
    line on stderr saying why)."""


@health.command()
@click.option(
    "--port",
    envvar="PORT",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port `web` listens on (PORT)",
)
@_TIMEOUT
def web(port: int, timeout: float) -> None:
    """GET /healthz of the web process on 127.0.0.1: it serves requests."""
    _probe_http("web", f"http://127.0.0.1:{port}/healthz", timeout)


@health.command()
@click.option(
    "--port",
    envvar="FLOWER_PORT",
    type=click.IntRange(1, 65535),
    default=5555,
    show_default=True,
    help="Port Flower listens on (FLOWER_PORT)",
)
@click.option("--url-prefix", default="", help="Flower's --url_prefix, if it runs under one")
@_TIMEOUT
def flower(port: int, url_prefix: str, timeout: float) -> None:
    """GET Flower's /healthcheck on 127.0.0.1 (it needs no credentials)."""
    prefix = f"/{url_prefix.strip('/')}" if url_prefix.strip("/") else ""
    _probe_http("flower", f"http://127.0.0.1:{port}{prefix}/healthcheck", timeout, expect=b"OK")


@health.command()
@click.option(
    "-d",
    "--destination",
    "node",
    default="celery@%h",
    show_default=True,
    help="The worker's node name (its -n); %h is this machine's hostname, as in Celery",
)
@_TIMEOUT
def worker(node: str, timeout: float) -> None:
    """Ping the worker named after this machine through the broker (`celery inspect ping -d`): its
    consumer loop answers."""
    from celery.utils.nodenames import host_format

    node = host_format(node)
    outcome: dict[str, Any] = {}

    def ping() -> None:
        try:
            from mission_control.runtime.app import app

            with app.connection_for_write() as connection:
                # One attempt: a broker that refuses is an answer; Celery would retry for seconds.
                connection.ensure_connection(max_retries=0, timeout=timeout)
                outcome["replies"] = app.control.ping(
                    destination=[node], timeout=timeout, connection=connection
                )
        except SystemExit as exc:  # the app refuses settings it cannot use: one line, already worded
            outcome["error"] = str(exc.code)
        except Exception as exc:  # any failure to ask is an unhealthy answer, named
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    started = time.monotonic()
    # A broker that does not answer may hold a connection attempt longer than any probe should last:
    # the ping runs aside, and the probe ends at its deadline whatever it is doing.
    asking = threading.Thread(target=ping, name="health-ping", daemon=True)
    asking.start()
    asking.join(timeout + 5.0)  # importing the app and connecting come on top of the ping's own wait
    elapsed_s = time.monotonic() - started
    if asking.is_alive():
        _verdict("worker", False, f"{node}: the broker did not answer within {elapsed_s:.0f} s")
    if "error" in outcome:
        _verdict("worker", False, f"{node}: cannot ask the broker ({outcome['error']})")
    answered = [reply[node] for reply in outcome.get("replies") or [] if node in reply]
    if not answered:
        _verdict("worker", False, f"{node}: no pong within {timeout:g} s")
    _verdict("worker", True, f"{node}: {answered[0]} in {elapsed_s * 1000:.0f} ms")


@health.command()
@click.option(
    "--liveness-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The mark beat leaves (beat's own --liveness-file) "
    "[default: mission-control-beat.alive in the temporary directory]",
)
@click.option(
    "--max-age",
    type=click.FloatRange(1, 86400),
    default=30.0,
    show_default=True,
    help="Seconds since beat's last registry pass after which it is not alive",
)
@click.option(
    "--require-registry",
    is_flag=True,
    help="Also unhealthy when beat's passes have failed against the database for longer than "
    "--max-age (by default an outage alone leaves beat healthy: a restart does not fix a database)",
)
def beat(liveness_file: Path | None, max_age: float, require_registry: bool) -> None:
    """Read beat's liveness mark: its scheduler loop passed over the registry within --max-age."""
    from mission_control.runtime.liveness import default_path, judge

    verdict = judge(
        liveness_file or default_path(),
        now=time.time(),
        max_age_s=max_age,
        require_registry=require_registry,
    )
    _verdict("beat", verdict.healthy, verdict.reason)
