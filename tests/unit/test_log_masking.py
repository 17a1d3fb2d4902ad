"""A ``token=`` in a logged query string is masked by the JSON formatter, whoever logged it.

gunicorn names the request URI when it fails to handle a request ("Error handling request
/api/v1/heartbeats/x?token=..."), and heartbeat URLs may carry a service token there.
"""

from __future__ import annotations

import json
import logging
import sys

from mission_control.runtime.logs import JsonFormatter, mask_query_tokens


def test_query_tokens_are_masked_and_the_rest_of_the_line_kept() -> None:
    assert mask_query_tokens("GET /api/v1/heartbeats/x?token=abc123&status=ok") == (
        "GET /api/v1/heartbeats/x?token=***&status=ok"
    )
    assert mask_query_tokens("/a?status=fail&TOKEN=abc /b?access_token=xyz") == (
        "/a?status=fail&TOKEN=*** /b?access_token=***"
    )
    assert mask_query_tokens("no query here, token: kept") == "no query here, token: kept"


def test_the_json_formatter_masks_messages_and_tracebacks() -> None:
    try:
        raise ValueError("bad request /x?token=in-the-exception")
    except ValueError:
        record = logging.LogRecord(
            "gunicorn.error", logging.ERROR, __file__, 1, "Error handling request %s", ("/x?token=s3cret",),
            sys.exc_info(),
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "s3cret" not in line and "in-the-exception" not in line
    entry = json.loads(line)
    assert entry["message"] == "Error handling request /x?token=***"
