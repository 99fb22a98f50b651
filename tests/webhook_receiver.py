"""Customer webhook receivers for tests and the benchmark (stdlib HTTP server on 127.0.0.1).

    with WebhookReceiver() as rx:
        url = rx.add_endpoint("/acme", secret)         # verified with svix.webhooks.Webhook
        ...
        rx.received["/acme"]                           # every verified delivery, in order

Every request is verified with the official ``svix.webhooks.Webhook`` (signature over the raw
body, timestamp within 5 minutes); a message that fails verification is answered 400 and kept in
``rejected``. Faults per endpoint: ``fail_first=N`` (answer ``fail_status`` to the first N
requests), ``fail_rate=p`` with ``seed`` (answer 500 to a request when a hash of
(seed, svix-id, how many times this id was seen) falls under p: reproducible whatever the
order of arrival), ``delay=s`` (sleep before answering). ``down()``/``up()`` stop and restart the
listening socket on the same port (connection refused meanwhile).

``python tests/webhook_receiver.py --secret whsec_...`` serves one endpoint ``/hook`` in the
foreground and prints its URL on the first line (the benchmark runs it as a child process); it
prints ``received=<n> rejected=<n>`` on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from svix.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    msg_id: str
    timestamp: int
    payload: dict[str, Any]
    received_at: float


@dataclass
class EndpointConfig:
    secret: str
    fail_first: int = 0
    fail_status: int = 503
    fail_rate: float = 0.0
    seed: int = 0
    delay: float = 0.0
    requests: int = 0
    seen: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    webhook: Webhook | None = None


def seeded_failure(seed: int, msg_id: str, nth: int, rate: float) -> bool:
    """Whether the ``nth`` (1-based) request for ``msg_id`` fails (reproducible)."""
    digest = hashlib.sha256(f"{seed}:{msg_id}:{nth}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        rx = self.server.receiver
        config = rx.endpoints.get(self.path)
        if config is None:
            return self._answer(404)
        headers = {k.lower(): v for k, v in self.headers.items()}
        msg_id = headers.get("svix-id", "")
        with rx.lock:
            config.requests += 1
            config.seen[msg_id] += 1
            nth_request, nth_for_id = config.requests, config.seen[msg_id]
        if config.delay:
            time.sleep(config.delay)
        if nth_request <= config.fail_first:
            return self._answer(config.fail_status)
        if config.fail_rate and seeded_failure(config.seed, msg_id, nth_for_id, config.fail_rate):
            return self._answer(500)
        try:
            assert config.webhook is not None
            config.webhook.verify(body, headers)
        except WebhookVerificationError as exc:
            with rx.lock:
                rx.rejected[self.path].append((msg_id, str(exc)))
            return self._answer(400)
        delivery = Delivery(
            msg_id=msg_id,
            timestamp=int(headers.get("svix-timestamp", "0")),
            payload=json.loads(body),
            received_at=time.time(),
        )
        with rx.lock:
            rx.received[self.path].append(delivery)
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    receiver: WebhookReceiver


class WebhookReceiver:
    """Customer endpoints on one local port, each with its own secret and faults."""

    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.endpoints: dict[str, EndpointConfig] = {}
        self.received: dict[str, list[Delivery]] = defaultdict(list)
        self.rejected: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self) -> WebhookReceiver:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.receiver = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- endpoints ---------------------------------------------------------------------------
    def add_endpoint(self, path: str, secret: str, **faults: Any) -> str:
        config = EndpointConfig(secret=secret, **faults)
        config.webhook = Webhook(secret)
        self.endpoints[path] = config
        return self.base_url + path

    def set_secret(self, path: str, secret: str) -> None:
        self.endpoints[path].secret = secret
        self.endpoints[path].webhook = Webhook(secret)

    def ids(self, path: str) -> list[str]:
        return [d.msg_id for d in self.received[path]]

    def total(self) -> int:
        return sum(len(v) for v in self.received.values())


def main() -> None:  # pragma: no cover - run by the benchmark
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    rx = WebhookReceiver(args.port)
    rx.add_endpoint("/hook", args.secret)
    server = _Server(("127.0.0.1", args.port), _Handler)
    server.receiver = rx
    rx._port = server.server_address[1]
    rx.endpoints["/hook"].webhook = Webhook(args.secret)

    def stop(*_: Any) -> None:
        print(f"received={rx.total()} rejected={len(rx.rejected['/hook'])}", flush=True)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"http://127.0.0.1:{rx._port}/hook", flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
