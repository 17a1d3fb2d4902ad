"""Request signatures: what they bind, what they refuse, and that receivers rebuild the same URL.

The attack this answers (issue 13, item 5): the old signature covered only the timestamp and the
body, so a captured bodiless trigger replayed to another endpoint verified.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from flask import Flask, request
from hypothesis import given
from hypothesis import strategies as st

from mission_control.outbound.signing import (
    SIGNATURE_HEADER,
    canonical_url,
    sign,
    signature_headers,
    verify,
    verify_standard_webhooks,
)

SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret"
T = 1_700_000_000


def _sign(
    method: str = "POST", url: str = "https://a.test/tasks/report", key: str = "41", body: bytes = b""
) -> str:
    return sign(SECRET, method=method, url=url, idempotency_key=key, body=body, timestamp=T)


def _verify(header: str, method: str = "POST", url: str = "https://a.test/tasks/report", key: str = "41",
            body: bytes = b"", now: int = T, secret: str = SECRET) -> bool:  # fmt: skip
    return verify(secret, header, method=method, url=url, idempotency_key=key, body=body, now=now)


def test_the_signature_is_hmac_sha256_of_time_method_url_key_and_body():
    header = _sign(body=b'{"a":1}')
    text = b'1700000000\nPOST\nhttps://a.test/tasks/report\n41\n{"a":1}'
    assert header == f"t={T},v2={hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()}"


def test_a_bodiless_trigger_replayed_to_another_endpoint_does_not_verify():
    captured = _sign(url="https://a.test/tasks/report")
    assert _verify(captured, url="https://a.test/tasks/report")
    assert not _verify(captured, url="https://a.test/tasks/refund-everyone")
    assert not _verify(captured, url="https://b.test/tasks/report")
    assert not _verify(captured, url="https://a.test/tasks/report?all=1")
    assert not _verify(captured, method="DELETE")
    assert not _verify(captured, key="42")


def test_freshness_tampering_and_several_secrets():
    header = _sign(body=b"body")
    assert _verify(header, body=b"body", now=T + 300) and not _verify(header, body=b"body", now=T + 301)
    assert not _verify(header, body=b"bodY") and not _verify(header, body=b"body", secret="other")
    both = sign(["new-secret", SECRET], method="POST", url="https://a.test/tasks/report",
                idempotency_key="41", body=b"body", timestamp=T)  # fmt: skip
    assert _verify(both, body=b"body") and _verify(both, body=b"body", secret="new-secret")
    assert not _verify(header.replace("v2=", "v1="), body=b"body")  # the old scheme is not accepted


@pytest.mark.parametrize(
    "header",
    ["", "t=¹,v2=00", "t=١٢٣,v2=00", "t=,v2=", "v2=abc", "t=1700000000", "t=99999999999999999999,v2=aa",
     "t=1700000000,v2=é", "=,=,=", "t=1700000000,v2=" + "a" * 5000, "\x00", "t=1700000000;v2=aa"],
)  # fmt: skip
def test_a_malformed_header_is_false_never_an_exception(header):
    assert _verify(header) is False


def test_a_missing_secret_is_false_not_an_exception():
    assert verify(None, _sign(), method="POST", url="https://a.test/tasks/report", idempotency_key="41",  # type: ignore[arg-type]
                  body=b"", now=T) is False  # fmt: skip


@given(st.text(max_size=200), st.text(max_size=100))
def test_verify_never_raises(header, url):
    assert verify(SECRET, header, method="POST", url=url, idempotency_key="k", body=b"", now=T) in (
        True,
        False,
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTP://Example.COM:80", "http://example.com/"),
        ("https://a.test:443/x", "https://a.test/x"),
        ("https://a.test:8443/x", "https://a.test:8443/x"),
        ("http://a.test/%7euser/a%2fb", "http://a.test/~user/a/b"),
        ("http://a.test/p?q=%2c&r=%3d", "http://a.test/p?q=,&r=%3D"),
        ("http://a.test/p?q=a b", "http://a.test/p?q=a%20b"),
        ("http://a.test/p#fragment", "http://a.test/p"),
        ("http://[::1]:8080/p", "http://[::1]:8080/p"),
        ("http://a.test/a/../b", "http://a.test/b"),  # as urllib3 sends it
        ("http://a.test/a/./b/.", "http://a.test/a/b/"),
    ],
)
def test_canonical_urls(a, b):
    assert canonical_url(a) == canonical_url(b) == canonical_url(canonical_url(a))


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/plain",
        "http://localhost/",
        "http://localhost:8443/a/b?x=1&y=2",
        "http://localhost/caf%C3%A9/%7Euser?name=caf%C3%A9&q=a%2Cb%3Dc%26d&plus=a+b&sp=a%20b",
        "http://localhost/with%20space/%25percent?empty=&flag",
        "http://localhost/a;b,c@d:e!$'()*?k=%2F%3F%40",
    ],
)
def test_a_flask_receiver_rebuilds_the_url_that_was_signed(url):
    app = Flask(__name__)
    seen: list[bool] = []

    @app.route("/", defaults={"path": ""}, methods=["POST"])
    @app.route("/<path:path>", methods=["POST"])
    def receive(path: str) -> str:
        seen.append(
            verify(SECRET, request.headers.get(SIGNATURE_HEADER), method=request.method, url=request.url,
                   idempotency_key=request.headers["Idempotency-Key"], body=request.get_data(), now=T)
        )  # fmt: skip
        return ""

    header = sign(SECRET, method="POST", url=url, idempotency_key="9", body=b"x", timestamp=T)
    app.test_client().post(url, data=b"x", headers={SIGNATURE_HEADER: header, "Idempotency-Key": "9"})
    assert seen == [True]


def test_standard_webhooks_headers_follow_the_specification():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = signature_headers(
        secret, "standard-webhooks", method="POST", url="https://a.test/x", idempotency_key="run-7",
        body=b'{"a":1}', timestamp=T,
    )  # fmt: skip
    expected = base64.b64encode(hmac.new(b"k" * 32, b'run-7.1700000000.{"a":1}', hashlib.sha256).digest())
    assert headers == {
        "webhook-id": "run-7",
        "webhook-timestamp": str(T),
        "webhook-signature": "v1," + expected.decode(),
    }
    assert verify_standard_webhooks(secret, headers, b'{"a":1}', now=T)
    assert not verify_standard_webhooks(secret, headers, b'{"a":2}', now=T)
    assert not verify_standard_webhooks(secret, {**headers, "webhook-timestamp": "¹"}, b'{"a":1}', now=T)
    assert not verify_standard_webhooks(secret, headers, b'{"a":1}', now=T + 301)
