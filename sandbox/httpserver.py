"""A small base for in-process HTTP emulators: routes, JSON answers and scripted faults.

Stdlib only. An emulator subclasses `EmulatorServer`, registers routes with `route()` and may
override `error_response()` / `rate_limited_response()` to speak its platform's error dialect.

Faults are scripted with `server.faults.inject(spec, path_prefix=..., times=..., after=...)` and
consumed, in order, by the next requests whose path starts with the prefix (after letting `after`
matching requests through first, e.g. to break the second page of a paginated read):

- ``http_500`` / ``http_503``: answer that status with the emulator's error body;
- ``slow:SECONDS``: wait that long before answering normally (cut short by `stop()`);
- ``malformed_json``: answer 200 with a body that is not JSON;
- ``truncated_json``: answer normally but cut the body in half (Content-Length matches the cut);
- ``rate_limit_burst:N``: answer the next N matching requests with the rate-limit answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

FAULT_KINDS = ("http_500", "http_503", "slow", "malformed_json", "truncated_json", "rate_limit_burst")


@dataclass
class Request:
    """One incoming request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Response:
    """An answer: status, body bytes and headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON answer (ASCII-escaped, so lone surrogates survive the trip)."""
        body = json.dumps(payload, separators=(",", ":")).encode("ascii")
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


Handler = Callable[[Request], Response]
Hook = Callable[[Request], None]


@dataclass
class Fault:
    """One scripted fault; `remaining` requests still to hit."""

    kind: str
    arg: float | None
    path_prefix: str
    remaining: int
    after: int = 0  # matching requests still to let through before the fault starts


class FaultQueue:
    """Scripted faults, consumed in order by the next matching requests. Thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(self, spec: str, path_prefix: str = "", times: int = 1, after: int = 0) -> Fault:
        """Queue `spec` (e.g. "http_503", "slow:2.5", "rate_limit_burst:3") for matching requests."""
        kind, _, raw_arg = spec.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        arg = float(raw_arg) if raw_arg else None
        if kind == "slow" and arg is None:
            raise ValueError("slow needs seconds, e.g. 'slow:1.5'")
        if kind == "rate_limit_burst":
            times = int(arg) if arg is not None else times
        fault = Fault(kind, arg, path_prefix, max(1, times), max(0, after))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, path: str) -> Fault | None:
        """Consume one hit of the first fault matching `path`, if any."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, slow faults, stop()) are normal here; log the rest."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # broken pipes, resets, timeouts
            log.debug("client %s went away: %s", client_address, exc)
            return
        log.exception("emulator request from %s failed", client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections close after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, add=False)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.emulator._dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class EmulatorServer:
    """A threaded HTTP server on 127.0.0.1 with a route table and fault injection."""

    LIVE_CATCH_UP_S = 5.0  # the live feed makes up for at most this many seconds of missed ticks

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._stopping = threading.Event()
        self._live_stop = threading.Event()
        self._live_thread: threading.Thread | None = None
        self.live_ticks = 0
        self.faults = FaultQueue()
        self.hooks: list[Hook] = []
        self.log: deque[tuple[str, str, dict[str, list[str]]]] = deque(maxlen=10_000)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self._host, self._port), _RequestHandler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}-http", daemon=True)
        self._thread.start()
        return self

    def live_tick(self) -> None:
        """One step of the live feed (an emulator adds one generated post or comment here)."""
        raise NotImplementedError

    def start_live(self, rate: float = 1.0) -> None:
        """Call live_tick() `rate` times per second in a background thread until stop_live() or stop().

        Ticks keep to a fixed timetable (tick n at start + n / rate), so the time a tick takes does not
        lower the rate: a late feed catches up, on at most `LIVE_CATCH_UP_S` of missed ticks (a laptop
        waking from sleep gets no flood). `live_ticks` counts the ticks made.
        """
        if self._live_thread is not None:
            return
        self._live_stop.clear()
        interval = 1.0 / rate

        def run() -> None:
            due = time.monotonic() + interval
            while not self._live_stop.wait(max(0.0, due - time.monotonic())):
                self.live_tick()
                self.live_ticks += 1
                due = max(due + interval, time.monotonic() - self.LIVE_CATCH_UP_S)

        self._live_thread = threading.Thread(target=run, name=f"{type(self).__name__}-live", daemon=True)
        self._live_thread.start()

    def stop_live(self) -> None:
        self._live_stop.set()
        if self._live_thread is not None:
            self._live_thread.join(timeout=5)
            self._live_thread = None

    def stop(self) -> None:
        """Stop the live feed and serving, close open connections and wake up slow faults."""
        self.stop_live()
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    # -- routing --------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler` for `method` and a full-match regex on the path (named groups -> params)."""
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def add_hook(self, hook: Hook) -> None:
        """Call `hook(request)` before every routed request (tests use it to act between pages)."""
        self.hooks.append(hook)

    def decorate_response(self, request: Request, response: Response) -> Response:
        """Override to add headers every answer carries (faults included), e.g. usage headers."""
        return response

    def _dispatch(self, request: Request) -> Response:
        return self.decorate_response(request, self._answer(request))

    def _answer(self, request: Request) -> Response:
        self.log.append((request.method, request.path, request.query))
        fault = self.faults.take(request.path)
        if fault is not None:
            early = self._apply_fault_before(fault, request)
            if early is not None:
                return early
        response = self._route(request)
        if fault is not None and fault.kind == "malformed_json":
            response = Response(200, b'{"data": [{"id": "1", <html>Bad Gateway</html>',
                                {"Content-Type": "application/json"})
        elif fault is not None and fault.kind == "truncated_json":
            response = Response(response.status, response.body[: len(response.body) // 2], response.headers)
        return response

    def _apply_fault_before(self, fault: Fault, request: Request) -> Response | None:
        if fault.kind == "http_500":
            return self.error_response(500, request)
        if fault.kind == "http_503":
            return self.error_response(503, request)
        if fault.kind == "rate_limit_burst":
            return self.rate_limited_response(request)
        if fault.kind == "slow":
            self._stopping.wait(fault.arg or 0.0)
        return None

    def _route(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            request.params = {k: v for k, v in match.groupdict().items() if v is not None}
            try:
                for hook in list(self.hooks):
                    hook(request)
                return handler(request)
            except Exception:
                log.exception("emulator handler failed for %s %s", request.method, request.path)
                return self.error_response(500, request)
        return self.error_response(405 if allowed else 404, request)

    # -- platform dialect (override) ------------------------------------------------------------

    def error_response(self, status: int, request: Request) -> Response:
        """The body of a plain HTTP error; emulators override this with their platform's shape."""
        title = {404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
                 503: "Service Unavailable"}.get(status, "Error")
        return Response.json({"title": title, "detail": title, "type": "about:blank", "status": status},
                             status)

    def rate_limited_response(self, request: Request) -> Response:
        """The answer to a rate-limited request; emulators override this."""
        return Response.json({"title": "Too Many Requests", "detail": "Too Many Requests",
                              "type": "about:blank", "status": 429}, 429, {"Retry-After": "900"})
