"""``rediss://`` with a self-signed certificate, as Heroku Redis and similar add-ons serve it.

A redis-server of our own listens with TLS only, on a certificate generated here. With
``MC_REDIS_TLS_VERIFY=false`` every Redis client Mission Control opens (the Celery broker through
kombu, Flower's broker page, the web's queue-depth metric through redis-py) must connect; before, the
metric and Flower verified the certificate and failed (``mc_queue_depth`` silently disappeared) while
the broker skipped verification. With the default (verify) none trusts a certificate nobody vouches for.
"""

from __future__ import annotations

import ast
import asyncio
import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kombu import Connection, Exchange, Queue

from mission_control.base.config import Settings, redis_ssl_options
from mission_control.runtime import redis_transport
from mission_control.runtime.metrics import _queue_depth
from tests.conftest import free_port, stop, wait_until
from tests.servers import redis_server_binary

REPO = Path(__file__).resolve().parents[2]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis-addon")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[int]:
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("no redis-server")
    cert, key = _self_signed(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp_path,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none")

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"redis-server exited: {process.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers, 10, "redis-server to answer over TLS")
        client.close()
        yield port
    finally:
        stop(process)


def _broker_url(port: int, **env: str) -> str:
    return Settings.from_env({"REDIS_URL": f"rediss://127.0.0.1:{port}/0", **env}).broker_url


def test_the_queue_depth_metric_reads_a_self_signed_rediss_broker(tls_redis):
    url = _broker_url(tls_redis, MC_REDIS_TLS_VERIFY="false")
    with redis.Redis(host="127.0.0.1", port=tls_redis, ssl=True, ssl_cert_reqs="none") as client:
        client.rpush("triggers", "a", "b")
    assert _queue_depth(url) == {"triggers": 2, "default": 0}


def test_the_broker_sends_and_receives_over_a_self_signed_rediss_url(tls_redis):
    redis_transport.install()
    url = _broker_url(tls_redis, MC_REDIS_TLS_VERIFY="false")
    queue = Queue("default", Exchange("default"), routing_key="default")
    with Connection(url, connect_timeout=2) as conn:
        conn.Producer().publish(
            {"hello": "tls"}, exchange=queue.exchange, routing_key="default", declare=[queue]
        )
        message = conn.SimpleQueue(queue).get(timeout=5)
        assert message.payload == {"hello": "tls"}
        message.ack()


def test_by_default_no_client_trusts_a_certificate_nobody_vouches_for(tls_redis):
    url = _broker_url(tls_redis)
    assert "ssl_cert_reqs=required" in url
    assert _queue_depth(url) is None
    redis_transport.install()
    with Connection(url, connect_timeout=2) as conn, pytest.raises(Exception, match=r"(?i)certificate"):
        conn.ensure_connection(max_retries=1)


def test_flowers_broker_page_reads_a_self_signed_rediss_broker(tls_redis):
    """Flower builds its own redis-py client from Celery's ``broker_use_ssl`` (never the URL's query)."""
    broker = pytest.importorskip("flower.utils.broker")
    url = f"rediss://127.0.0.1:{tls_redis}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MC_") and k != "REDIS_URL"}
    env.update(REDIS_URL=url, MC_REDIS_TLS_VERIFY="false")
    program = "import celeryconfig as c; print(repr((c.broker_url, int(c.broker_use_ssl['ssl_cert_reqs']))))"
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    broker_url, cert_reqs = ast.literal_eval(done.stdout.strip())
    assert cert_reqs == ssl.CERT_NONE
    flower_broker = broker.Broker(broker_url, broker_options={}, broker_use_ssl={"ssl_cert_reqs": cert_reqs})

    async def ping() -> bool:
        try:
            return bool(await flower_broker.redis.ping())
        finally:
            await flower_broker.redis.aclose()

    assert asyncio.run(ping())


def test_celery_sends_over_a_self_signed_rediss_broker_with_the_settings_of_celeryconfig(tls_redis):
    from celery import Celery

    redis_transport.install()
    url = _broker_url(tls_redis, MC_REDIS_TLS_VERIFY="false")
    app = Celery("tls-check", broker=url)
    app.conf.broker_use_ssl = redis_ssl_options(url)
    app.conf.broker_connection_retry_on_startup = False
    app.send_task("mission_control.trigger", args=[1], queue="triggers")
    with redis.Redis(host="127.0.0.1", port=tls_redis, ssl=True, ssl_cert_reqs="none") as client:
        assert client.llen("triggers") == 1
