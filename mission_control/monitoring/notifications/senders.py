"""Delivering one notice and classifying the result: sent, transient (retry) or permanent (give up).

No sender logs or returns the destination URL (Slack webhook URLs are credentials) or the body.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

import requests

from mission_control.outbound.policy import DestinationRefused
from mission_control.outbound.signing import SIGNATURE_HEADER, sign

Outcome = Literal["sent", "transient", "permanent"]
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    detail: str
    duration_ms: float


def post_json(
    session: requests.Session, url: str, body: dict[str, Any], *, secret: str | None = None
) -> Delivery:
    """POST a JSON document (signed like a trigger when ``secret`` is given); redirects not followed.

    A signed document carries an ``Idempotency-Key`` derived from its bytes, so a redelivery of the
    same message has the same key and the signature binds it as a trigger's does.
    """
    started = time.monotonic()
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "mission-control"}
    if secret:
        key = "notices:" + hashlib.sha256(raw).hexdigest()[:32]
        headers["Idempotency-Key"] = key
        headers[SIGNATURE_HEADER] = sign(
            secret, method="POST", url=url, idempotency_key=key, body=raw, timestamp=int(time.time())
        )
    try:
        response = session.post(url, data=raw, headers=headers, timeout=TIMEOUT_S, allow_redirects=False)
        response.close()
    except DestinationRefused as exc:  # the outbound policy (SSRF guard); its message names no URL
        return Delivery("permanent", str(exc), elapsed_ms(started))
    except requests.Timeout:
        return Delivery("transient", "timed out", elapsed_ms(started))
    except requests.ConnectionError as exc:
        return Delivery("transient", f"connection failed ({type(exc).__name__})", elapsed_ms(started))
    except requests.RequestException as exc:
        return Delivery("permanent", f"request refused ({type(exc).__name__})", elapsed_ms(started))
    status = response.status_code
    if 200 <= status < 300:
        return Delivery("sent", f"HTTP {status}", elapsed_ms(started))
    if status == 429 or status >= 500 or status == 408:
        return Delivery("transient", f"HTTP {status}", elapsed_ms(started))
    return Delivery("permanent", f"HTTP {status}", elapsed_ms(started))


@dataclass(frozen=True)
class SmtpServer:
    host: str | None
    port: int
    user: str | None
    password: str | None = field(repr=False)  # MC_SMTP_PASSWORD: never in a repr, log or traceback
    starttls: bool = False


def send_email(server: SmtpServer, message: EmailMessage) -> Delivery:
    """Hand the message to the configured SMTP server; SMTP 4xx is transient, 5xx permanent."""
    started = time.monotonic()
    if not server.host:
        return Delivery("permanent", "no SMTP server configured (MC_SMTP_HOST)", elapsed_ms(started))
    try:
        with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_S) as smtp:
            if server.starttls:
                smtp.starttls()
            if server.user and server.password:
                smtp.login(server.user, server.password)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        transient = all(400 <= code < 500 for code in codes)
        return Delivery(
            "transient" if transient else "permanent", f"recipients refused ({codes})", elapsed_ms(started)
        )
    except smtplib.SMTPResponseException as exc:
        kind: Outcome = "transient" if 400 <= exc.smtp_code < 500 else "permanent"
        return Delivery(kind, f"SMTP {exc.smtp_code}", elapsed_ms(started))
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
        return Delivery("transient", f"connection failed ({type(exc).__name__})", elapsed_ms(started))
    except smtplib.SMTPException as exc:
        return Delivery("permanent", f"SMTP error ({type(exc).__name__})", elapsed_ms(started))
    if refused:
        return Delivery("sent", f"sent; refused for {len(refused)} recipient(s)", elapsed_ms(started))
    return Delivery("sent", "accepted by the SMTP server", elapsed_ms(started))


def elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
