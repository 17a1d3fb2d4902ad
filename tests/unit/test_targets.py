"""The target server is the yardstick for the executor's tests, so it has to be right itself first."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.targets import METHODS, TargetServer, read_log

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[TargetServer]:
    with TargetServer() as running:
        yield running


def raw_request(server: TargetServer, path: str) -> socket.socket:
    """A bare socket, for routes where a client library would hide the timing or the hang-up."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: targets\r\n\r\n".encode())
    return sock


@pytest.mark.parametrize("method", METHODS)
def test_ok_answers_every_method(server: TargetServer, method: str) -> None:
    response = requests.request(method, server.url + "/ok", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert server.requests[-1].method == method


def test_status_and_retry_after(server: TargetServer) -> None:
    response = requests.post(server.url + "/status/503", timeout=5)
    assert response.status_code == 503
    assert response.json() == {"status": 503}
    assert "Retry-After" not in response.headers

    response = requests.get(server.url + "/status/429?retry_after=7", timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"

    assert requests.get(server.url + "/status/204", timeout=5).status_code == 204
    assert requests.get(server.url + "/status/100", timeout=5).status_code == 404


def test_sequence_counts_per_key_across_methods(server: TargetServer) -> None:
    def status(method: str, key: str) -> int:
        return requests.request(method, f"{server.url}/sequence/{key}/500,503,200", timeout=5).status_code

    assert [status("GET", "a"), status("POST", "a")] == [500, 503]
    assert status("PUT", "b") == 500  # another key starts from the beginning
    assert [status("DELETE", "a"), status("GET", "a"), status("PATCH", "a")] == [200, 200, 200]

    server.reset()
    assert status("GET", "a") == 500
    assert len(server.requests) == 1


def test_sleep_does_not_block_other_requests(server: TargetServer) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        slow = pool.submit(requests.get, server.url + "/sleep/1", timeout=5)
        server.wait_for(1, "/sleep")
        assert requests.get(server.url + "/ok", timeout=5).status_code == 200
        assert time.monotonic() - started < 0.9
        assert slow.result().status_code == 200
        assert time.monotonic() - started >= 0.95


def test_never_does_not_answer_and_stop_is_prompt() -> None:
    server = TargetServer().start()
    try:
        with pytest.raises(requests.ReadTimeout):
            requests.post(server.url + "/never", data=b"payload", timeout=(2, 0.5))
        assert server.requests_to("/never")[0].body == b"payload"

        # More slow requests, all still in flight when the server stops.
        in_flight = [
            raw_request(server, path)
            for path in ["/never", "/sleep/30", "/trickle-headers/5", "/trickle-body/100"]
        ]
        server.wait_for(5)
    finally:
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 2
    assert server.open_connections == 0
    assert in_flight[0].recv(1) == b""  # /never was released without an answer
    for sock in in_flight:
        sock.close()


def test_stop_releases_idle_keep_alive_connections() -> None:
    server = TargetServer().start()
    with requests.Session() as session:
        assert session.get(server.url + "/ok", timeout=5).status_code == 200
        assert server.open_connections == 1
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        assert server.open_connections == 0


def test_keep_alive_reuses_one_connection(server: TargetServer) -> None:
    with requests.Session() as session:
        for path in ["/ok", "/status/500", "/redirect", "/nope", "/big/10", "/echo"]:
            session.post(server.url + path, data=b"x", timeout=5, allow_redirects=False)
    assert len({r.client for r in server.requests}) == 1


def test_trickle_body_sends_one_byte_per_second(server: TargetServer) -> None:
    with requests.get(server.url + "/trickle-body/3", stream=True, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["Content-Length"] == "3"
        started = time.monotonic()
        assert response.raw.read(2) == b"xx"
        assert time.monotonic() - started >= 0.9


def test_trickle_body_gives_up_when_the_client_hangs_up(server: TargetServer) -> None:
    sock = raw_request(server, "/trickle-body/60")
    assert b"Content-Length: 60" in sock.recv(4096)
    sock.close()
    server.wait_for_idle(timeout_s=3)


def test_trickle_headers_sends_the_head_one_byte_per_second(server: TargetServer) -> None:
    sock = raw_request(server, "/trickle-headers/5")
    assert sock.recv(100) == b"H"
    started = time.monotonic()
    assert sock.recv(100) == b"T"
    assert time.monotonic() - started >= 0.9
    sock.close()
    server.wait_for_idle(timeout_s=3)


def test_big_streams_every_byte(server: TargetServer) -> None:
    n = 5_000_000
    received = 0
    with requests.get(server.url + f"/big/{n}", stream=True, timeout=10) as response:
        assert response.headers["Content-Length"] == str(n)
        for chunk in response.iter_content(chunk_size=100_000):
            expected = bytes((received + i) % 256 for i in range(min(len(chunk), 256)))
            assert chunk[:256] == expected[: len(chunk)]
            assert chunk[-1] == (received + len(chunk) - 1) % 256
            received += len(chunk)
    assert received == n


def test_redirect_is_a_302_to_ok(server: TargetServer) -> None:
    response = requests.get(server.url + "/redirect", timeout=5, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/ok"


def test_unknown_paths_are_404(server: TargetServer) -> None:
    for path in ["/", "/okay", "/status/abc", "/sequence/a/", "/big/-1"]:
        assert requests.delete(server.url + path, timeout=5).status_code == 404, path


def test_echo_and_recorder_capture_the_request(server: TargetServer) -> None:
    before = time.time()
    response = requests.put(
        server.url + "/echo?run=42",
        data="héllo".encode(),
        headers={"X-MC-Signature": "sig", "Content-Type": "text/plain; charset=utf-8"},
        timeout=5,
    )
    body = response.json()
    assert body["method"] == "PUT"
    assert body["path"] == "/echo?run=42"
    assert body["headers"]["X-MC-Signature"] == "sig"
    assert body["body"] == "héllo"

    [recorded] = server.requests_to("/echo")
    assert recorded.path == "/echo?run=42"
    assert recorded.headers["X-MC-Signature"] == "sig"  # case as sent
    assert recorded.body == "héllo".encode()
    assert before <= recorded.received_at <= time.time()
    assert recorded.received_at_monotonic <= time.monotonic()


def test_recorder_reads_chunked_bodies(server: TargetServer) -> None:
    requests.post(server.url + "/ok", data=iter([b"ab", b"cd"]), timeout=5)
    assert server.requests[-1].body == b"abcd"


def test_wait_for_sees_hundreds_of_concurrent_requests(server: TargetServer) -> None:
    def fire(i: int) -> int:
        return requests.post(f"{server.url}/status/{200 + i % 3}", timeout=10).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(fire, range(300)))
    assert sorted(set(results)) == [200, 201, 202]
    assert len(server.wait_for(300, "/status/")) == 300


def test_wait_for_times_out_with_what_it_saw(server: TargetServer) -> None:
    requests.get(server.url + "/ok", timeout=5)
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"2 request\(s\) under '/ok'.*got 1.*GET /ok"):
        server.wait_for(2, "/ok", timeout_s=0.2)
    assert time.monotonic() - started < 2


def test_wait_for_returns_as_soon_as_a_request_lands(server: TargetServer) -> None:
    timer = threading.Timer(0.1, requests.get, args=(server.url + "/ok",), kwargs={"timeout": 5})
    timer.start()
    try:
        [recorded] = server.wait_for(1, "/ok", timeout_s=5)
    finally:
        timer.join()
    assert recorded.method == "GET"


def test_subprocess_mode_prints_its_url_and_logs_requests(tmp_path: Path) -> None:
    log = tmp_path / "targets.jsonl"
    command = [sys.executable, "-m", "tests.targets", "--port", "0", "--log", str(log)]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 10)
            assert ready, "the target server printed nothing within 10 s"
            line = process.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            url = line.removeprefix("listening on ")
            response = requests.post(url + "/echo", data=b"from afar", headers={"X-Run": "7"}, timeout=5)
            assert response.status_code == 200
            assert len(read_log(log)) == 1  # flushed per line, readable while the server still runs
        finally:
            process.terminate()
            returncode = process.wait(timeout=10)
    assert returncode == 0
    [entry] = read_log(log)
    assert entry["method"] == "POST"
    assert entry["path"] == "/echo"
    assert entry["headers"]["X-Run"] == "7"
    assert entry["body"] == "from afar"
    assert isinstance(entry["received_at"], float)
