"""Status badges as SVG: a flat, shields.io-style "label | status" image for READMEs and wikis.

Pure: a label and a status in, an SVG document out, so the look can be tested without a server. The
look follows what Healthchecks and shields.io serve (two rounded halves, a dark label and a coloured
status, white 11 px Verdana with a faint shadow), so a Mission Control badge sits in a row of others
without standing out. Text is measured with a per-character table of Verdana's advance widths at
11 px (shields measures the same font), rounded up; a character the table does not know counts as a
wide one, so an unexpected label is never clipped.

Every string that reaches the document is XML-escaped (text and attributes alike), whatever the
caller promises about its charset: names and tags are validated elsewhere, but a badge must stay an
inert image even if a name that was never validated (a row written by hand) reaches it.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

# Status -> colour of the right half: Healthchecks' up/late/down, grey for the rest.
COLORS = {
    "up": "#4c1",
    "late": "#fe7d37",
    "down": "#e05d44",
    "new": "#9f9f9f",
    "paused": "#9f9f9f",
    "unknown": "#9f9f9f",
}
# Worst first: what a badge over several subjects (a tag's) shows is the worst of theirs.
SEVERITY = ("down", "late", "up", "new", "paused")

HEIGHT = 20
PADDING = 5  # each side of each half's text
_WIDE = 8.0  # an unknown character: as wide as the widest common ones

# Verdana's advance widths at 11 px (units per em scaled, to a tenth of a pixel).
_WIDTHS: dict[str, float] = {
    **dict(zip("abcdefghijklmnopqrstuvwxyz", (
        6.7, 6.9, 5.8, 6.9, 6.6, 3.9, 6.9, 7.0, 3.0, 3.8, 6.5, 3.0, 10.7,
        7.0, 6.7, 6.9, 6.9, 4.7, 5.7, 4.3, 7.0, 6.5, 8.9, 6.5, 6.5, 5.8), strict=True)),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (
        7.5, 7.6, 7.7, 8.5, 7.0, 6.3, 8.5, 8.3, 4.6, 5.0, 7.6, 6.1, 9.4,
        8.2, 8.7, 6.6, 8.7, 7.7, 7.5, 6.8, 8.1, 7.5, 10.9, 7.5, 6.8, 7.5), strict=True)),
    **dict.fromkeys("0123456789", 7.0),
    " ": 3.9, ".": 3.9, ",": 3.9, ":": 4.7, ";": 4.7, "-": 5.0, "_": 7.0, "/": 4.9,
    "(": 5.0, ")": 5.0, "!": 4.3, "'": 3.0, '"': 5.0, "&": 7.8, "<": 9.2, ">": 9.2,
}  # fmt: skip


def text_width(text: str) -> int:
    """The width of ``text`` in 11 px Verdana, in whole pixels (rounded up)."""
    return math.ceil(sum(_WIDTHS.get(char, _WIDE) for char in text))


def worst(statuses: list[str]) -> str:
    """The status a badge over these subjects shows: the most severe, ``unknown`` for none."""
    for status in SEVERITY:
        if status in statuses:
            return status
    return "unknown"


def render(label: str, status: str) -> str:
    """The SVG document of a "label | status" badge."""
    color = COLORS.get(status, COLORS["unknown"])
    label_w = text_width(label) + 2 * PADDING
    status_w = text_width(status) + 2 * PADDING
    width = label_w + status_w
    label_x = label_w / 2
    status_x = label_w + status_w / 2
    text_label, text_status = escape(label), escape(status)
    title = escape(f"{label}: {status}", {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" role="img" '
        f'aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/>'
        "</linearGradient>"
        f'<clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#r)">'
        f'<rect width="{label_w}" height="{HEIGHT}" fill="#555"/>'
        f'<rect x="{label_w}" width="{status_w}" height="{HEIGHT}" fill="{color}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s)"/>'
        "</g>"
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{label_x:g}" y="15" fill="#010101" fill-opacity=".3">{text_label}</text>'
        f'<text x="{label_x:g}" y="14">{text_label}</text>'
        f'<text x="{status_x:g}" y="15" fill="#010101" fill-opacity=".3">{text_status}</text>'
        f'<text x="{status_x:g}" y="14">{text_status}</text>'
        "</g></svg>"
    )
