"""A tiny HTTP receiver for webhook notices: logs each POST's arrival time and JSON body, answers 204.

usage: python bench/webhook_receiver.py --port P --log FILE

One JSON line per request: ``{"t": <time.time() when the request line arrived>, "done": <when the body
was read>, "path": ..., "body": <the parsed JSON, or the text if it is not JSON>}``. Runs in its own
process so the notices' arrival is stamped outside the worker's GIL; keep-alive (HTTP/1.1) so the
worker's pooled session reuses its connections as it would with a real receiver.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, Any


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    log: IO[str]
    lock = threading.Lock()

    def handle_one_request(self) -> None:
        self.arrived = 0.0
        super().handle_one_request()

    def parse_request(self) -> bool:
        self.arrived = time.time()  # the request line has just been read
        return super().parse_request()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        done = time.time()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        line = json.dumps({"t": self.arrived, "done": done, "path": self.path, "body": body})
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSON log is the record


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", type=Path, required=True)
    args = p.parse_args()
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with args.log.open("a", encoding="utf-8") as log:
        Handler.log = log
        server = Server((args.host, args.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        print(f"listening on http://{args.host}:{args.port}", flush=True)
        while not done.wait(0.5):
            pass
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
