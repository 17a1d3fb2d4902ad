"""Tags on services and jobs (``"tags": ["team:billing", "tier:1"]``): what one may be, and matching.

A tag is a short label an operator puts on a service or a job so lists can be filtered by it
(``?tag=team:billing``), channels can route by it (``tag_pattern``), silences can match it and a badge
can sum everything carrying it up. It lives in ``base`` because the job spec (``jobs``), the service
registry (``monitoring``), the routing of notices and the API all read the same rule.

The charset is deliberately small: lower-case letters, digits, ``_ . -`` and ``/`` after an optional
``key:``. Nothing a shell, a URL, an SVG or an fnmatch pattern treats specially (``* ? [ ] & < >``,
spaces, quotes), so a tag is safe to echo anywhere and a ``tag_pattern`` such as ``team:*`` matches
tags, never characters they cannot hold. Bounded in length and count, so a list of tags is a small,
fixed cost wherever it is stored or matched.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

MAX_TAG_LENGTH = 64
MAX_TAGS = 16
# "plain" or "key:value"; the value may also hold "/" (e.g. "repo:acme/billing").
TAG_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}(:[a-z0-9_./-]{1,63})?$"
TAG_HELP = (
    f"at most {MAX_TAGS} tags, each `key:value` or a plain word of at most {MAX_TAG_LENGTH} characters: "
    "lower-case letters, digits, `_`, `.`, `-` (and `/` in the value)"
)

Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN, max_length=MAX_TAG_LENGTH)]


def _no_repeats(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    for tag in tags:
        if tag in seen:
            raise ValueError(f"{tag!r} is given twice")
        seen.add(tag)
    return tags


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_no_repeats)]
"""A validated list of tags: each one a :data:`Tag`, at most :data:`MAX_TAGS`, none twice."""


def any_tag_matches(pattern: str, tags: Iterable[str]) -> bool:
    """Whether one of ``tags`` matches the fnmatch ``pattern`` (case-sensitive, as subject patterns)."""
    return any(fnmatchcase(tag, pattern) for tag in tags)
