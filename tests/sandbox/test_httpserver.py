"""The generic emulator base: routing, hooks, lifecycle and fault injection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from sandbox.httpserver import EmulatorServer, Request, Response


class Echo(EmulatorServer):
    def __init__(self) -> None:
        super().__init__()
        self.route("GET", r"/items/(?P<item>\w+)", lambda r: Response.json({"item": r.params["item"],
                                                                           "q": r.arg("q")}))
        self.route("POST", r"/items", lambda r: Response.json({"got": r.json()}, 201, {"X-Extra": "1"}))
        self.route("GET", r"/boom", self._boom)

    @staticmethod
    def _boom(request: Request) -> Response:
        raise RuntimeError("handler bug")


@pytest.fixture
def server() -> Iterator[Echo]:
    with Echo() as running:
        yield running


def test_routes_json_and_headers(server: Echo) -> None:
    resp = requests.get(f"{server.url}/items/abc", params={"q": "x y"}, timeout=5)
    assert resp.json() == {"item": "abc", "q": "x y"}
    assert resp.headers["Content-Type"].startswith("application/json")
    resp = requests.post(f"{server.url}/items", json={"a": 1}, timeout=5)
    assert resp.status_code == 201 and resp.json() == {"got": {"a": 1}} and resp.headers["X-Extra"] == "1"
    assert requests.get(f"{server.url}/nope", timeout=5).status_code == 404
    assert requests.delete(f"{server.url}/items", timeout=5).status_code == 405
    assert requests.get(f"{server.url}/boom", timeout=5).status_code == 500
    assert server.log[0][:2] == ("GET", "/items/abc")


def test_hooks_see_requests(server: Echo) -> None:
    seen: list[str] = []
    server.add_hook(lambda r: seen.append(r.path))
    requests.get(f"{server.url}/items/1", timeout=5)
    assert seen == ["/items/1"]


def test_two_servers_get_their_own_ports() -> None:
    with Echo() as a, Echo() as b:
        assert a.port != b.port and a.url.startswith("http://127.0.0.1:")


def test_unknown_fault_is_refused(server: Echo) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        server.faults.inject("explode")
    with pytest.raises(ValueError, match="seconds"):
        server.faults.inject("slow")


def test_faults_match_by_prefix_in_order(server: Echo) -> None:
    server.faults.inject("http_500", path_prefix="/items", times=2)
    server.faults.inject("http_503", path_prefix="/items")
    codes = [requests.get(f"{server.url}/items/1", timeout=5).status_code for _ in range(4)]
    assert codes == [500, 500, 503, 200]
    server.faults.inject("rate_limit_burst:1")
    resp = requests.get(f"{server.url}/items/1", timeout=5)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "900"


def test_stop_interrupts_slow_requests() -> None:
    server = Echo().start()
    server.faults.inject("slow:30")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            requests.get(f"{server.url}/items/1", timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    started = time.perf_counter()
    server.stop()
    thread.join(timeout=5)
    assert time.perf_counter() - started < 3 and not thread.is_alive()


class SlowStart(EmulatorServer):
    """A live feed whose first tick takes 0.4 s (as a tick does when the emulator is busy)."""

    def __init__(self) -> None:
        super().__init__()
        self.made = 0

    def live_tick(self) -> None:
        if self.made == 0:
            time.sleep(0.4)
        self.made += 1


def test_the_live_feed_keeps_its_rate_when_a_tick_is_slow() -> None:
    with SlowStart() as emu:
        emu.start_live(100)
        time.sleep(0.9)
        emu.stop_live()
    # on the timetable, the ticks missed during the slow one follow at once (about 90 in all);
    # a feed that waits 1/rate after each tick would make about 50
    assert emu.made == emu.live_ticks and emu.made >= 70


def test_the_live_feed_makes_up_for_a_few_seconds_at_most() -> None:
    with SlowStart() as emu:
        emu.LIVE_CATCH_UP_S = 0.1
        emu.start_live(100)
        time.sleep(0.9)
        emu.stop_live()
    # the 40 ticks due during the slow one are dropped but for 0.1 s of them: about 60 in all
    assert 20 <= emu.made <= 75
