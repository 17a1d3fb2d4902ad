"""A status badge's key (its credential, in the URL's path) is masked in JSON log lines: in the
message and in the access line's ``path``."""

from __future__ import annotations

import json
import logging

from mission_control.runtime.logs import JsonFormatter, mask_query_tokens

KEY = "q3Vx-9_ZkLmN0pQrStUvWxYz01234567"


def test_badge_keys_are_masked_and_the_rest_of_the_line_kept() -> None:
    assert mask_query_tokens(f"GET /badge/{KEY}.svg 200") == "GET /badge/***.svg 200"
    assert mask_query_tokens(f"/badge/{KEY}.json") == "/badge/***.json"
    assert mask_query_tokens("/api/v1/badges/12") == "/api/v1/badges/12"


def test_the_access_lines_path_is_masked_too() -> None:
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%s %s %s",
                               ("GET", f"/badge/{KEY}.svg", 200), None)  # fmt: skip
    record.path = f"/badge/{KEY}.svg"
    line = JsonFormatter().format(record)
    assert KEY not in line
    entry = json.loads(line)
    assert (entry["message"], entry["path"]) == ("GET /badge/***.svg 200", "/badge/***.svg")
