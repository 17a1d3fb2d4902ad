"""Request signatures under the path receivers import: ``from mission_control.signing import verify``.

The implementation is :mod:`mission_control.outbound.signing`, the low part every outgoing request
(jobs, missions, notices) is signed with; this module re-exports its public names so code written
against the documented path keeps working.
"""

from mission_control.outbound.signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
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
    "SignatureScheme",
    "canonical_url",
    "sign",
    "signature_headers",
    "signed_text",
    "standard_webhooks_headers",
    "verify",
    "verify_standard_webhooks",
]
