"""A small Svix-compatible API server for tests (stdlib HTTP on 127.0.0.1), for the real
``svix`` SDK:

    with SvixTestServer() as server:
        svix = Svix(server.token, SvixOptions(server_url=server.url))

Endpoints (JSON, camelCase like Svix): ``POST /api/v1/app`` (``?get_if_exists=true`` returns the
application with that ``uid``; without it a taken ``uid`` answers 409), ``GET
/api/v1/app/{app}`` (id or uid), ``GET|POST /api/v1/app/{app}/endpoint``, ``GET
/api/v1/app/{app}/endpoint/{ep}/secret``, ``GET|POST /api/v1/event-type`` (409 for a taken
name), ``GET|PUT|PATCH /api/v1/event-type/{name}``, ``GET|POST /api/v1/app/{app}/msg``
(``eventId`` already used in the application: 409; with ``validate_payloads`` a payload that
does not match its event type's latest schema: 422). Requests without the Bearer token: 401.

Delivery: each accepted message is POSTed once to every enabled endpoint of its application,
signed by the official ``svix.webhooks.Webhook`` with the endpoint's secret and a ``msg_``
``svix-id`` of its own (as Svix does); see ``dispatched``. ``deliver=False`` turns it off.

Faults: ``inject(status=429, times=2, path_prefix="/api/v1/app/", method="POST")`` answers the
next matching requests with that status and a Svix error body; ``after_commit=True`` processes
the request first (the message is created, the answer is lost). Every request lands in
``request_log`` as (method, path, status).
"""

from __future__ import annotations

import base64
import json
import queue
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from svix.webhooks import Webhook

DEFAULT_TOKEN = "testsk_meterworks_svix_local"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class Fault:
    status: int
    times: int | None
    path_prefix: str
    method: str | None
    after_commit: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        svix = self.server.svix
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("authorization") != f"Bearer {svix.token}":
            return self._send(
                method,
                parts.path,
                401,
                {"code": "authentication_failed", "detail": "bad token"},
            )
        fault = svix.take_fault(method, parts.path)
        if fault is not None and not fault.after_commit:
            return self._send(method, parts.path, fault.status, svix.error_body(fault.status))
        try:
            body = json.loads(raw) if raw else {}
            status, out = svix.route(method, parts.path, query, body)
        except _ApiError as exc:
            status, out = exc.status, {"code": exc.code, "detail": exc.detail}
            if exc.status == 422:  # Svix's validation error body
                out = {"detail": [{"loc": ["body"], "msg": exc.detail, "type": exc.code}]}
        if fault is not None:
            status, out = fault.status, svix.error_body(fault.status)
        self._send(method, parts.path, status, out)

    def _send(self, method: str, path: str, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.server.svix.log(method, path, status)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    svix: SvixTestServer


class _ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class SvixTestServer:
    def __init__(
        self, token: str = DEFAULT_TOKEN, *, deliver: bool = True, validate_payloads: bool = True
    ) -> None:
        self.token = token
        self.deliver = deliver
        self.validate_payloads = validate_payloads
        self.lock = threading.RLock()
        self.apps: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, list[dict[str, Any]]] = {}
        self.secrets: dict[str, str] = {}
        self.event_types: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.dispatched: list[tuple[str, str, int | None]] = []  # (msg id, endpoint id, status)
        self.request_log: list[tuple[str, str, int]] = []
        self._faults: list[Fault] = []
        self._queue: queue.Queue[tuple[str, dict[str, Any], str] | None] = queue.Queue()
        self._server: _Server | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SvixTestServer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.svix = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, daemon=True)
        self._dispatcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._dispatcher.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_dispatched(self, timeout: float = 10.0) -> None:
        """Block until every accepted message has been POSTed to its endpoints."""
        done = threading.Event()
        self._queue.put(("__flush__", {}, done))  # type: ignore[arg-type]
        done.wait(timeout)

    # -- faults and logs ---------------------------------------------------------------------
    def inject(
        self,
        status: int,
        times: int | None = 1,
        path_prefix: str = "/",
        method: str | None = None,
        after_commit: bool = False,
    ) -> None:
        with self.lock:
            self._faults.append(Fault(status, times, path_prefix, method, after_commit))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    @staticmethod
    def error_body(status: int) -> dict[str, str]:
        codes = {429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "busy"}
        return {"code": codes.get(status, "error"), "detail": f"injected {status}"}

    def log(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.request_log.append((method, path, status))

    # -- the API -----------------------------------------------------------------------------
    def _app(self, key: str) -> dict[str, Any]:
        for app in self.apps.values():
            if key in (app["id"], app["uid"]):
                return app
        raise _ApiError(404, "not_found", f"application {key} not found")

    def route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        with self.lock:
            if path == "/api/v1/app" and method == "POST":
                return self._create_app(body, query.get("get_if_exists") == "true")
            if path == "/api/v1/app" and method == "GET":
                return 200, _page(list(self.apps.values()))
            if path == "/api/v1/event-type":
                if method == "GET":
                    return 200, _page(list(self.event_types.values()))
                if body.get("name") in self.event_types:
                    raise _ApiError(409, "conflict", "event type exists")
                return 201, self._put_event_type(body["name"], body)
            m = re.fullmatch(r"/api/v1/event-type/([^/]+)", path)
            if m:
                name = m.group(1)
                if method == "GET":
                    if name not in self.event_types:
                        raise _ApiError(404, "not_found", name)
                    return 200, self.event_types[name]
                if method == "PATCH" and name not in self.event_types:
                    raise _ApiError(404, "not_found", name)
                created = name not in self.event_types
                return (201 if created else 200), self._put_event_type(name, body)
            m = re.fullmatch(r"/api/v1/app/([^/]+)(/.*)?", path)
            if not m:
                raise _ApiError(404, "not_found", path)
            app = self._app(m.group(1))
            rest = m.group(2) or ""
            if rest == "" and method == "GET":
                return 200, app
            if rest == "/endpoint":
                if method == "GET":
                    return 200, _page(self.endpoints.get(app["id"], []))
                return 201, self._create_endpoint(app, body)
            m2 = re.fullmatch(r"/endpoint/([^/]+)/secret", rest)
            if m2 and method == "GET":
                endpoint = self._endpoint(app, m2.group(1))
                return 200, {"key": self.secrets[endpoint["id"]]}
            if rest == "/msg":
                if method == "GET":
                    return 200, _page(self.messages.get(app["id"], []))
                return 202, self._create_message(app, body)
            raise _ApiError(404, "not_found", path)

    def _create_app(self, body: dict[str, Any], get_if_exists: bool) -> tuple[int, Any]:
        uid = body.get("uid")
        if uid:
            for app in self.apps.values():
                if app["uid"] == uid:
                    if get_if_exists:
                        return 200, app
                    raise _ApiError(409, "conflict", f"uid {uid} taken")
        now = _now()
        app = {
            "id": _id("app"),
            "uid": uid,
            "name": body["name"],
            "metadata": body.get("metadata") or {},
            "createdAt": now,
            "updatedAt": now,
        }
        self.apps[app["id"]] = app
        return 201, app

    def _endpoint(self, app: dict[str, Any], key: str) -> dict[str, Any]:
        for endpoint in self.endpoints.get(app["id"], []):
            if key in (endpoint["id"], endpoint["uid"]):
                return endpoint
        raise _ApiError(404, "not_found", f"endpoint {key} not found")

    def _create_endpoint(self, app: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        uid = body.get("uid")
        if uid and any(e["uid"] == uid for e in self.endpoints.get(app["id"], [])):
            raise _ApiError(409, "conflict", f"endpoint uid {uid} taken")
        secret = body.get("secret") or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        if not re.fullmatch(r"(whsec_)?[A-Za-z0-9+/=]{32,100}", secret):
            raise _ApiError(422, "validation", "bad secret")
        now = _now()
        endpoint = {
            "id": _id("ep"),
            "uid": uid,
            "url": body["url"],
            "description": body.get("description") or "",
            "metadata": body.get("metadata") or {},
            "disabled": bool(body.get("disabled")),
            "eventTypes": body.get("eventTypes"),
            "createdAt": now,
            "updatedAt": now,
        }
        self.endpoints.setdefault(app["id"], []).append(endpoint)
        self.secrets[endpoint["id"]] = secret
        return endpoint

    def _put_event_type(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        current = self.event_types.get(name, {"name": name, "createdAt": now})
        current.update(
            {
                "description": body.get("description", current.get("description", "")),
                "archived": body.get("archived", current.get("archived", False)),
                "deprecated": body.get("deprecated", current.get("deprecated", False)),
                "schemas": body.get("schemas", current.get("schemas")),
                "updatedAt": now,
            }
        )
        self.event_types[name] = current
        return current

    def _create_message(self, app: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        event_id = body.get("eventId")
        existing = self.messages.setdefault(app["id"], [])
        if event_id and any(m["eventId"] == event_id for m in existing):
            raise _ApiError(409, "conflict", f"a message with eventId {event_id} exists")
        event_type = body["eventType"]
        if self.validate_payloads:
            self._validate(event_type, body["payload"])
        message = {
            "id": _id("msg"),
            "eventId": event_id,
            "eventType": event_type,
            "payload": body["payload"],
            "channels": body.get("channels"),
            "timestamp": _now(),
        }
        existing.append(message)
        if self.deliver:
            for endpoint in self.endpoints.get(app["id"], []):
                if not endpoint["disabled"]:
                    self._queue.put((message["id"], message["payload"], endpoint["id"]))
        return message

    def _validate(self, event_type: str, payload: dict[str, Any]) -> None:
        import jsonschema

        schemas = (self.event_types.get(event_type) or {}).get("schemas") or {}
        if not schemas:
            return
        latest = schemas[max(schemas, key=int)]
        errors = sorted(
            jsonschema.Draft202012Validator(
                latest, format_checker=jsonschema.FormatChecker()
            ).iter_errors(payload),
            key=str,
        )
        if errors:
            raise _ApiError(422, "validation", f"payload does not match: {errors[0].message}")

    # -- delivery to endpoints ---------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        client = httpx.Client(timeout=5.0, trust_env=False)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                msg_id, payload, endpoint_id = item
                if msg_id == "__flush__":
                    endpoint_id.set()  # type: ignore[attr-defined]
                    continue
                with self.lock:
                    url = next(
                        e["url"]
                        for eps in self.endpoints.values()
                        for e in eps
                        if e["id"] == endpoint_id
                    )
                    secret = self.secrets[endpoint_id]
                data = json.dumps(payload)
                now = datetime.now(UTC)
                signature = Webhook(secret).sign(msg_id, now, data)
                headers = {
                    "content-type": "application/json",
                    "svix-id": msg_id,
                    "svix-timestamp": str(int(now.timestamp())),
                    "svix-signature": signature,
                }
                try:
                    status: int | None = client.post(url, content=data, headers=headers).status_code
                except httpx.HTTPError:
                    status = None
                with self.lock:
                    self.dispatched.append((msg_id, endpoint_id, status))
        finally:
            client.close()


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": items, "iterator": None, "prevIterator": None, "done": True}
