"""A channel's URL is a credential: the API shows it only to its host and port, whatever its shape."""

from __future__ import annotations

import pytest

from mission_control.monitoring.notifications.notices import destination, redacted_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com/…"),
        ("https://hooks.example.com?token=SECRET", "https://hooks.example.com/…"),  # no path
        ("https://h.example?x=SECRET#frag", "https://h.example/…"),
        ("https://h.example#SECRET", "https://h.example/…"),  # a fragment, no path
        ("https://h.example/#SECRET", "https://h.example/…"),
        ("https://h.example", "https://h.example/…"),
        ("https://user:SECRET@h.example/path", "https://h.example/…"),  # user information
        ("https://user:SECRET@h.example?q=SECRET", "https://h.example/…"),
        ("https://user:SEC@RET@h.example/x", "https://h.example/…"),  # an unescaped @ in the password
        ("https://h.example:8443/hook?SECRET", "https://h.example:8443/…"),  # the port is kept
        ("https://h.example:8443?SECRET", "https://h.example:8443/…"),
        ("http://[::1]:8080/hook?t=SECRET", "http://[::1]:8080/…"),  # an IPv6 host
        ("http://[2001:db8::1]?t=SECRET", "http://[2001:db8::1]/…"),
        ("http://user:SECRET@[2001:db8::1]:9000#SECRET", "http://[2001:db8::1]:9000/…"),
        ("https://h.example\\SECRET", "https://h.example/…"),  # a backslash ends the host for browsers
        ("https://h.example?next=https://x@SECRET/", "https://h.example/…"),  # an @ past the host
        ("no-scheme-SECRET", "…"),
    ],
)
def test_redacted_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
    assert "SECRET" not in redacted_url(url)


def test_destination_shows_urls_redacted_and_email_recipients_as_they_are() -> None:
    assert destination({"url": "https://h.example?token=SECRET"}) == "https://h.example/…"
    assert destination({"to": ["a@example.test", "b@example.test"]}) == "a@example.test, b@example.test"
