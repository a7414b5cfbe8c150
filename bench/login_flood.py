"""Login flood benchmark: does /healthz stay fast while sign-ins are hammered?

Serves the real web app (uvicorn on a local port, SQLite in a temporary folder, production argon2
cost) and measures GET /healthz latency twice: idle, and while FLOODERS threads send wrong-password
logins as fast as they can (every attempt a different username, so the per-account lock never
short-cuts the hashing; the per-address lock is raised for the run so the flood stays a flood).
Prints p50/p95/max per phase plus the flood's outcome counts and writes bench/results/login_flood.json.
Target: /healthz p95 < 100 ms under the flood (argon2 runs behind responders.auth.HashingGate).

    .venv/bin/python bench/login_flood.py                 # 16 flooders, 20 s
    .venv/bin/python bench/login_flood.py --flooders 32 --seconds 30
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the standard library's `queue`: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from models.config import BrandConfig, Config, LoginConfig, WebConfig  # noqa: E402
from models.db import make_engine, session_factory, upgrade  # noqa: E402
from models.orm import utcnow  # noqa: E402
from responders import auth  # noqa: E402
from responders.ops import ops_router  # noqa: E402
from responders.web import create_app  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "login_flood.json"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    bf16 = "avx512_bf16" in flags
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")),
                 platform.processor())
    return f"{model} ({os.cpu_count()} cores, {'native' if bf16 else 'no'} AVX512-BF16)"


def _probe(base: str, seconds: float, interval: float = 0.02) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base, timeout=10) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            client.get("/healthz").raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(interval)
    return latencies


def _flood(base: str, stop: threading.Event, worker: int, outcomes: collections.Counter[str],
           lock: threading.Lock) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        token = CSRF_RE.search(client.get("/login").text)
        assert token, "no CSRF token on /login"
        attempt = 0
        while not stop.is_set():
            attempt += 1
            response = client.post("/login", data={"username": f"guess{worker}x{attempt}", "password": "wrong-guess",
                                                   "csrf_token": token.group(1)}, follow_redirects=False)
            with lock:
                outcomes[str(response.status_code)] += 1


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2), "max_ms": round(ordered[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description="/healthz latency while logins are flooded.")
    parser.add_argument("--flooders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/flood.db")
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            auth.create_user(session, "alice", "a-long-enough-password", "agent", now=utcnow())
        config = Config(brands=[BrandConfig(name="Acme")],
                        web=WebConfig(secret_key=SecretStr("bench-secret-key-0123456789abcdef"),
                                      login=LoginConfig(max_failures_per_address=100000)))
        app = create_app(config, sessions)
        app.include_router(ops_router(sessions, engine, utcnow))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False, log_config=None))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        while not server.started:
            time.sleep(0.05)

        idle = _probe(base, min(args.seconds, 10.0))
        stop, lock = threading.Event(), threading.Lock()
        outcomes: collections.Counter[str] = collections.Counter()
        flooders = [threading.Thread(target=_flood, args=(base, stop, i, outcomes, lock), daemon=True)
                    for i in range(args.flooders)]
        for flooder in flooders:
            flooder.start()
        time.sleep(1.0)  # let the flood reach its steady state
        loaded = _probe(base, args.seconds)
        stop.set()
        for flooder in flooders:
            flooder.join(timeout=35)
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()

    report: dict[str, Any] = {
        "cpu": _cpu(), "flooders": args.flooders, "seconds": args.seconds,
        "hashing_gate": {"workers": auth.HashingGate.WORKERS, "queue": auth.HashingGate.QUEUE},
        "idle": _summary(idle), "flood": _summary(loaded),
        "login_outcomes": dict(sorted(outcomes.items())),
        "login_attempts_per_s": round(sum(outcomes.values()) / (args.seconds + 1.0), 1),
        "target_p95_ms": 100, "meets_target": _summary(loaded)["p95_ms"] < 100,
    }
    print(f"cpu: {report['cpu']}")
    print(f"{'phase':10}{'n':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for phase in ("idle", "flood"):
        row = report[phase]
        print(f"{phase:10}{row['n']:>8}{row['p50_ms']:>10.1f}{row['p95_ms']:>10.1f}{row['max_ms']:>10.1f}")
    print(f"logins: {report['login_attempts_per_s']}/s, outcomes {report['login_outcomes']} "
          f"(401 wrong password, 503 refused by the hashing gate, 429 throttled)")
    print(f"/healthz p95 under flood {'meets' if report['meets_target'] else 'MISSES'} the 100 ms target")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
