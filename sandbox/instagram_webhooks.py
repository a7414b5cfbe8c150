"""Instagram `mentions` webhook notifications as Meta sends them (docs/instagram-wire.md, "Mentions and webhooks").

Stdlib only. `mention_webhook_body` and `sign_webhook` build a notification without a server (for tests);
`MentionWebhooks` is the emulator's subscription: it POSTs each notification synchronously with
`urllib.request` (5 s timeout, no proxies), records a failed delivery in `failures` and keeps it to send
again, in order, before the next notification (Meta retries); it never raises.

Body: `{"object": "instagram", "entry": [{"id": "<ig-user-id>", "time": <unix>, "changes": [{"field":
"mentions", "value": {"media_id": "...", "comment_id": "..."}}]}]}` (`comment_id` only for a comment
mention). Headers: `Content-Type: application/json`, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
raw body, keyed with the app secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable

TIMEOUT_S = 5.0
USER_AGENT = "facebookexternalua"


def mention_webhook_body(ig_user_id: str, media_id: str, comment_id: str | None = None,
                         at: float | None = None) -> bytes:
    """The raw JSON body of a `mentions` notification (`at`: Unix seconds it is sent, now by default)."""
    value = {"media_id": media_id} if comment_id is None else {"media_id": media_id, "comment_id": comment_id}
    entry = {"id": ig_user_id, "time": int(time.time() if at is None else at),
             "changes": [{"field": "mentions", "value": value}]}
    return json.dumps({"object": "instagram", "entry": [entry]}, separators=(",", ":")).encode()


def sign_webhook(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` header value of `body`: `sha256=` and the hex HMAC-SHA256 with `app_secret`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class MentionWebhooks:
    """One app's subscription to the account's `mentions` field: delivery, failures, retries. Thread-safe."""

    def __init__(self, ig_user_id: str, clock: Callable[[], float]) -> None:
        self.ig_user_id, self.clock = ig_user_id, clock
        self.callback_url: str | None = None
        self._secret = ""
        self.failures: list[tuple[str, str]] = []  # (callback url, error text), one per failed attempt
        self.delivered: list[bytes] = []  # bodies the callback accepted, in order
        self._pending: list[bytes] = []  # not yet accepted, oldest first
        self._lock = threading.Lock()  # one delivery run at a time, so notifications keep their order
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def subscribe(self, callback_url: str, app_secret: str) -> None:
        """Send from now on to `callback_url`, signed with `app_secret` (replaces an earlier subscription)."""
        with self._lock:
            self.callback_url, self._secret = callback_url, app_secret

    def unsubscribe(self) -> None:
        """Stop sending; notifications not delivered yet are dropped."""
        with self._lock:
            self.callback_url, self._pending = None, []

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def notify(self, mentions: list[tuple[str, str | None]]) -> None:
        """Notifications for `mentions` ((media id, comment id or None), oldest first), then a delivery run."""
        with self._lock:
            if self.callback_url is None:
                return
            now = self.clock()
            self._pending.extend(mention_webhook_body(self.ig_user_id, m, c, now) for m, c in mentions)
            self._deliver()

    def retry(self) -> int:
        """Try the notifications still pending now; returns how many are left."""
        with self._lock:
            if self.callback_url is not None:
                self._deliver()
            return len(self._pending)

    def _deliver(self) -> None:
        """Send pending bodies oldest first; the first failure is recorded and ends the run (lock held)."""
        url = self.callback_url
        while self._pending and url is not None:
            body = self._pending[0]
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": sign_webhook(body, self._secret),
                "User-Agent": USER_AGENT})
            try:
                with self._opener.open(request, timeout=TIMEOUT_S) as response:
                    response.read()
            except Exception as exc:  # refused, timed out, HTTP 4xx/5xx, a bad URL: Meta tries again later
                self.failures.append((url, f"{type(exc).__name__}: {exc}"))
                return
            self._pending.pop(0)
            self.delivered.append(body)
