"""The outbound policy (SSRF guard): which addresses it denies, how configuration changes that, and that
every sender turns a denied destination into a failure that is not retried, without opening a socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mission_control.base.clock import FrozenClock
from mission_control.base.config import ConfigError, Settings
from mission_control.missions.machine import StepRequest
from mission_control.missions.steps import StepRunner
from mission_control.monitoring.notifications.senders import post_json
from mission_control.outbound.policy import (
    DEFAULT_POLICY,
    DestinationRefused,
    OutboundPolicy,
    parse_networks,
    policy_from,
)
from mission_control.outbound.sender import make_session, send

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/?token=s3cret"


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # the metadata service of AWS, GCP and Azure
        "169.254.0.1",
        "fd00:ec2::254",  # AWS' IPv6 metadata service
        "fe80::1",
        "fe80::1%2",  # a zone index does not hide it
        "::ffff:169.254.169.254",  # IPv4-mapped: a dual-stack socket reaches the IPv4 address
    ],
)
def test_link_local_and_metadata_addresses_are_denied_by_default(address: str) -> None:
    assert not DEFAULT_POLICY.allows(address)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "fd00::1", "93.184.216.34", "0.0.0.0"],
)
def test_loopback_private_and_public_addresses_stay_allowed_by_default(address: str) -> None:
    assert DEFAULT_POLICY.allows(address)


def test_configured_denials_add_to_the_defaults_and_allowances_override_both() -> None:
    settings = Settings.from_env(
        {"MC_OUTBOUND_DENY": "127.0.0.0/8, ::1/128", "MC_OUTBOUND_ALLOW": "127.0.0.2/32,169.254.10.0/24"}
    )
    policy = policy_from(settings)

    assert not policy.allows("127.0.0.1")
    assert not policy.allows("::1")
    assert not policy.allows("::ffff:127.0.0.1")
    assert not policy.allows("0.0.0.0")  # the unspecified address reaches this host, i.e. loopback
    assert not policy.allows("169.254.169.254")  # the defaults still hold
    assert policy.allows("127.0.0.2")
    assert policy.allows("169.254.10.7")
    assert not policy.allows("::ffff:169.254.10.7")  # the IPv4-mapped range is denied by default too
    assert policy.allows("10.0.0.1")


# The policy's table: (address, MC_OUTBOUND_DENY, MC_OUTBOUND_ALLOW, allowed?). Pure: nothing is sent.
POLICY_TABLE = [
    # the other clouds' metadata services
    ("fd20:ce::254", "", "", False),  # GCP, IPv6
    ("100.100.100.200", "", "", False),  # Alibaba Cloud
    ("168.63.129.16", "", "", False),  # Azure WireServer
    ("192.0.0.192", "", "", False),  # Oracle Cloud
    ("fd20:ce::253", "", "", True),  # the neighbours stay allowed: single addresses, not ranges
    ("100.100.100.201", "", "", True),
    ("168.63.129.17", "", "", True),
    ("192.0.0.193", "", "", True),
    # IPv6 forms that embed an IPv4 address: denied as ranges, and judged as their IPv4 address
    ("64:ff9b::a9fe:a9fe", "", "", False),  # NAT64 of 169.254.169.254
    ("64:ff9b::a00:1", "", "", False),  # NAT64 of 10.0.0.1: the range is denied by default
    ("::ffff:10.0.0.1", "", "", False),  # IPv4-mapped
    ("::ffff:127.0.0.1", "", "", False),
    ("::ffff:0:0", "", "", False),
    ("::a9fe:a9fe", "", "", False),  # IPv4-compatible form of 169.254.169.254
    ("::7f00:1", "", "", False),  # IPv4-compatible form of 127.0.0.1
    ("::2", "", "", False),  # the first IPv4-compatible address
    ("::ffff:ffff", "", "", False),  # the last one
    ("::1:0:0", "", "", True),  # just past ::/96
    ("64:ff9b::1:a9fe:a9fe", "", "", True),  # just past 64:ff9b::/96
    ("64:ff9b:1::a9fe:a9fe", "", "", False),  # the local-use NAT64 prefix (RFC 8215), denied whole
    ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "", "", False),
    ("64:ff9b:2::1", "", "", True),  # just past it
    ("::ffff:0:a9fe:a9fe", "", "", False),  # SIIT's IPv4-translated form of 169.254.169.254
    ("::ffff:0:a00:1", "", "::ffff:0:0:0/96", True),  # opened: judged as 10.0.0.1, allowed
    ("::ffff:0:a9fe:a9fe", "", "::ffff:0:0:0/96", False),  # opened: still 169.254.169.254
    ("::1:ffff:0:0:0", "", "", True),  # outside ::ffff:0:0:0/96
    # ::1 and :: lie inside ::/96 but are not IPv4-compatible: they stay allowed as before
    ("::1", "", "", True),
    ("::", "", "", True),
    ("127.0.0.1", "", "", True),
    ("0.0.0.0", "", "", True),
    # an address the operator denies is denied in every spelling
    ("127.0.0.2", "127.0.0.2/32", "", False),
    ("::ffff:127.0.0.2", "127.0.0.2/32", "", False),
    ("64:ff9b::7f00:2", "127.0.0.2/32", "", False),
    ("::7f00:2", "127.0.0.2/32", "", False),
    ("::ffff:127.0.0.2", "127.0.0.2/32", "::ffff:0:0/96", False),  # opening the range does not open it
    ("64:ff9b::7f00:2", "127.0.0.2/32", "64:ff9b::/96", False),
    ("::7f00:2", "127.0.0.2/32", "::/96", False),
    ("::", "::1/128", "", False),  # the unspecified address reaches loopback
    # MC_OUTBOUND_ALLOW opens each of the new defaults
    ("fd20:ce::254", "", "fd20:ce::254/128", True),
    ("100.100.100.200", "", "100.100.100.200/32", True),
    ("168.63.129.16", "", "168.63.0.0/16", True),
    ("192.0.0.192", "", "192.0.0.192/32", True),
    ("64:ff9b::a00:1", "", "64:ff9b::/96", True),  # an IPv6-only network behind DNS64
    ("::ffff:10.0.0.1", "", "::ffff:0:0/96", True),
    ("::a00:1", "", "::/96", True),
    ("64:ff9b::a9fe:a9fe", "", "64:ff9b::/96", False),  # still 169.254.169.254 ...
    ("64:ff9b::a9fe:a9fe", "", "64:ff9b::/96,169.254.169.254/32", True),  # ... unless that is open too
    ("::ffff:127.0.0.2", "127.0.0.2/32", "::ffff:0:0/96,127.0.0.2/32", True),
]


@pytest.mark.parametrize(("address", "deny", "allow", "allowed"), POLICY_TABLE)
def test_the_policy_table(address: str, deny: str, allow: str, allowed: bool) -> None:
    policy = policy_from(Settings.from_env({"MC_OUTBOUND_DENY": deny, "MC_OUTBOUND_ALLOW": allow}))
    assert policy.allows(address) is allowed


def test_the_refusal_message_says_what_is_denied_by_default() -> None:
    message = str(DestinationRefused("h", ["64:ff9b::a9fe:a9fe"]))
    assert "IPv6 forms of IPv4 addresses" in message


def test_without_configuration_the_settings_give_the_default_policy() -> None:
    assert policy_from(Settings.from_env({})) == DEFAULT_POLICY
    assert policy_from(Settings()) == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MC_OUTBOUND_DENY", "10.0.0.0/8,not-a-network", "'not-a-network'"),
        ("MC_OUTBOUND_DENY", "10.1.2.3/8", "has host bits set"),
        ("MC_OUTBOUND_ALLOW", "169.254.0.0/33", "'169.254.0.0/33'"),
    ],
)
def test_an_invalid_network_stops_the_process_at_start_up(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert name in str(raised.value)
    assert fragment in str(raised.value)


def test_networks_parse_from_a_comma_separated_list_with_bare_addresses_as_hosts() -> None:
    assert [str(n) for n in parse_networks(" 10.0.0.0/8, ,fd00::/8,192.0.2.7", "X")] == [
        "10.0.0.0/8",
        "fd00::/8",
        "192.0.2.7/32",
    ]
    assert parse_networks(None, "X") == parse_networks("", "X") == ()


def test_the_refusal_names_the_host_and_its_addresses() -> None:
    assert "localhost resolves to 127.0.0.1, ::1, which are denied" in str(
        DestinationRefused("localhost", ["127.0.0.1", "::1"])
    )
    assert "169.254.169.254 is denied" in str(DestinationRefused("169.254.169.254", ["169.254.169.254"]))
    assert not isinstance(DestinationRefused("h", ["a"]), OSError)  # else urllib3 would retry it


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every address a Python socket tries to connect to while the test runs."""
    seen: list[Any] = []
    original = socket.socket.connect

    def spy(sock: socket.socket, address: Any) -> Any:
        seen.append(address)
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    yield seen


@pytest.mark.parametrize(
    "url",
    [
        METADATA_URL,
        "https://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest/meta-data",
        "http://[::ffff:169.254.169.254]/latest/meta-data",
    ],
)
def test_send_refuses_a_metadata_address_without_connecting(url: str, connects: list[Any]) -> None:
    session = make_session()  # no policy given: the default one guards it
    outcome = send(
        session, method="GET", url=url, headers={}, body=None, timeout_s=5, excerpt_bytes=100, now=NOW
    )
    session.close()

    assert outcome.kind == "refused"
    assert outcome.error_class == "DestinationRefused"
    assert outcome.error_message is not None
    assert "denied by the outbound policy" in outcome.error_message
    assert "meta-data" not in outcome.error_message  # the host is named, the URL (and its query) never
    assert connects == []


def test_a_webhook_to_a_metadata_address_fails_permanently_without_connecting(connects: list[Any]) -> None:
    session = make_session()
    delivery = post_json(session, METADATA_URL, {"notices": []}, secret="k" * 32)
    session.close()

    assert delivery.outcome == "permanent"
    assert "169.254.169.254 is denied" in delivery.detail
    assert "s3cret" not in delivery.detail
    assert connects == []


def test_a_mission_http_step_to_a_metadata_address_fails_without_retry(connects: list[Any]) -> None:
    session = make_session()
    runner = StepRunner(session=session, signing_secret="k" * 32, clock=FrozenClock(NOW), callables=dict)
    request = StepRequest(
        mission_id="m1",
        step="fetch",
        kind="http",
        attempt=1,
        timeout_s=5,
        idempotency_key="mission:m1:fetch",
        url=METADATA_URL,
        method="GET",
    )
    outcome = runner.run(request)
    session.close()

    assert (outcome.ok, outcome.retryable, outcome.code) == (False, False, "destination_refused")
    assert "169.254.169.254" in outcome.message
    assert connects == []


def test_a_policy_denying_nothing_lets_the_default_denials_go() -> None:
    assert OutboundPolicy(deny=()).allows("169.254.169.254")
    assert OutboundPolicy.with_defaults() == DEFAULT_POLICY
