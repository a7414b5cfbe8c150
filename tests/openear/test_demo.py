"""`openear demo` end to end: start it, wait for the web app, log in, find classified mentions."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_demo_serves_a_queue_of_classified_mentions(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "openear.cli", "demo", "--dir", str(tmp_path / "demo"), "--port", str(port),
             "--backlog", "40", "--rate", "2", "--interval", "5"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # the first run builds the embedded model's encoder
        while True:
            assert demo.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        output = log.read_text()
        assert "login demo / demo-password" in output.replace("  ", " ")
        with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
            login_page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
            assert token, login_page.text[:500]
            queue = client.post("/login", data={"username": "demo", "password": "demo-password", "next": "/",
                                                "csrf_token": token.group(1)})
            assert queue.status_code == 200 and "Sign out" in queue.text
            # mentions from both emulators, classified (a sentiment label on each row)
            assert re.search(r">\s*(negative|neutral|positive)\s*<", queue.text)
            assert "negative" in queue.text
            digests = client.get("/digests")
            assert digests.status_code == 200 and "Acme Mobile" in digests.text
            status = client.get("/status").json()
            assert {s["source"].split(":")[0] for s in status["sources"]} == {"x", "facebook", "instagram"}
            assert any(s["source"].startswith("instagram:") and ":mentions:" in s["source"]
                       for s in status["sources"])  # @mentions by webhook, signed with the demo's app secret
            assert client.get("/webhooks/instagram", params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                                             "hub.challenge": "1"}).status_code == 403
            instagram = client.get("/", params={"platform": "instagram"})
            assert instagram.status_code == 200 and 'title="Instagram"' in instagram.text
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
    mails = sorted((tmp_path / "demo" / "mail").glob("digest-*.eml"))  # digests reached the local SMTP server
    assert mails and all(b"Content-Type: multipart/" in mail.read_bytes() for mail in mails)
