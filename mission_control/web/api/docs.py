"""``GET /api/docs``: the OpenAPI document of ``/api/v1/openapi.json`` rendered as one HTML page.

Rendered on the server from the very document the API serves (so the page cannot disagree with it),
with no script and no asset from elsewhere: the page keeps a Content-Security-Policy that allows only
its own inline stylesheet, by hash. Public, like the document it shows (it holds no data, only shapes).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from flask import Blueprint, Response, current_app, render_template

from mission_control.web.api.openapi import openapi_document_of

bp = Blueprint("docs", __name__, template_folder="templates")

STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:72rem;margin:0 auto;padding:1rem;color:#1b1f24}"
    "h2{border-bottom:1px solid #ccc;margin-top:2.5rem}h3{margin:1.5rem 0 .3rem}"
    "code{font:13px ui-monospace,monospace}.method{text-transform:uppercase;font-weight:700}"
    "table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;"
    "text-align:left;vertical-align:top}th{background:#f4f4f4}.muted{color:#666}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_METHODS = ("get", "put", "post", "patch", "delete")


@bp.get("/api/docs")
def api_page() -> Response:
    document = openapi_document_of(current_app)
    operations = [
        {"method": method, "path": path, **operation}
        for path, item in document["paths"].items()
        for method in _METHODS
        if (operation := item.get(method)) is not None
    ]
    html = render_template(
        "api_docs.html",
        info=document["info"],
        operations=operations,
        schemas=document["components"]["schemas"],
        type_of=type_of,
        style=STYLE,
    )
    return Response(html, mimetype="text/html", headers=HEADERS)


def type_of(schema: dict[str, Any]) -> str:
    """A schema in a few words: ``string (pattern ...)``, ``array of Run``, ``Job | null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_of(option) for option in schema[key])
    if "enum" in schema:
        return " | ".join(repr(value) for value in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array" and "items" in schema:
        kind = f"array of {type_of(schema['items'])}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        kind = f"object of {type_of(schema['additionalProperties'])}"
    limits = [
        f"{word} {schema[key]}"
        for key, word in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
            ("pattern", "matching"),
            ("format", "format"),
        )
        if key in schema
    ]
    return f"{kind} ({', '.join(limits)})" if limits else str(kind)
