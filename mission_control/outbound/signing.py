"""Request signatures: the one scheme every outgoing request (job triggers, mission steps, notices) is
signed with, and the check receivers run.

The code lives in :mod:`mission_control._client._signing`, because the client distribution
(``clients/python``, requests only) ships the same check for receivers and must not import the server;
keeping one copy there, re-exported here under the outbound part's name, means the server's signing and
the receivers' verification can never drift apart.
"""

from mission_control._client._signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    WHSEC_PREFIX,
    SignatureScheme,
    canonical_url,
    sign,
    signature_headers,
    signed_text,
    standard_webhooks_headers,
    verify,
    verify_standard_webhooks,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "WEBHOOK_ID",
    "WEBHOOK_SIGNATURE",
    "WEBHOOK_TIMESTAMP",
    "WHSEC_PREFIX",
    "SignatureScheme",
    "canonical_url",
    "sign",
    "signature_headers",
    "signed_text",
    "standard_webhooks_headers",
    "verify",
    "verify_standard_webhooks",
]
