"""The badge renderer: a well-formed flat "label | status" SVG, sized to its text, coloured by status,
with every user string escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mission_control.base.badge_svg import COLORS, PADDING, render, text_width, worst

SVG = "{http://www.w3.org/2000/svg}"


def parse(document: str) -> ET.Element:
    return ET.fromstring(document)


@pytest.mark.parametrize(("status", "color"), [("up", "#4c1"), ("late", "#fe7d37"), ("down", "#e05d44"),
                                               ("paused", "#9f9f9f"), ("new", "#9f9f9f")])  # fmt: skip
def test_each_status_has_its_colour_and_both_halves_their_text(status: str, color: str) -> None:
    root = parse(render("billing", status))
    assert root.tag == f"{SVG}svg" and root.get("height") == "20"
    rects = root.findall(f"{SVG}g/{SVG}rect")
    assert rects[0].get("fill") == "#555" and rects[1].get("fill") == color
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert texts == ["billing", "billing", status, status]  # shadow, then text, for each half
    assert root.find(f"{SVG}title").text == f"billing: {status}"  # type: ignore[union-attr]


def test_the_halves_are_as_wide_as_their_text_plus_padding() -> None:
    root = parse(render("team:billing", "down"))
    label_w = text_width("team:billing") + 2 * PADDING
    status_w = text_width("down") + 2 * PADDING
    assert int(root.get("width")) == label_w + status_w  # type: ignore[arg-type]
    rects = root.findall(f"{SVG}g/{SVG}rect")
    assert (rects[0].get("width"), rects[1].get("x"), rects[1].get("width")) == (
        str(label_w), str(label_w), str(status_w))  # fmt: skip
    assert COLORS["down"] == "#e05d44"


def test_text_widths_follow_verdana_roughly() -> None:
    assert text_width("") == 0
    assert text_width("iii") < text_width("mmm")  # narrow and wide letters differ
    assert text_width("up") == 14 and text_width("down") == 30
    assert text_width("\u2603") >= 8  # an unknown character counts as a wide one, never as nothing
    assert text_width("a" * 128) > 800


def test_every_user_string_is_xml_escaped() -> None:
    hostile = 'pay<script>alert(1)</script>&"x"'
    document = render(hostile, "up")
    assert "<script>" not in document and "&amp;" in document and "&lt;script&gt;" in document
    root = parse(document)  # still well-formed
    assert [text.text for text in root.iter(f"{SVG}text")][:2] == [hostile, hostile]
    assert root.get("aria-label") == f"{hostile}: up"
    assert root.find(f"{SVG}script") is None and not list(root.iter(f"{SVG}script"))


def test_the_worst_status_wins() -> None:
    assert worst(["up", "late", "down", "paused"]) == "down"
    assert worst(["up", "late", "new"]) == "late"
    assert worst(["up", "new", "paused"]) == "up"
    assert worst(["paused", "new"]) == "new"
    assert worst([]) == "unknown"
