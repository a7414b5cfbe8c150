"""A made-up third platform, "Board", to prove that a platform is one adapter plus one SPECS entry.

Board is a small forum with a JSON API: `GET /v1/search?q=&after=&cursor=` lists posts containing
`q` oldest first (50 per page, `next` names the following page), `POST /v1/posts` publishes a post
(optionally `reply_to` another) as the token's account, and `GET /v1/posts/{id}/replies` lists a
post's replies. Bearer tokens; 401 `{"error": ...}` for a bad one; 429 with `Retry-After` seconds.

`BoardEmulator` serves it over real HTTP (sandbox.httpserver, with its scripted faults), and
`BoardPlatform` is its adapter on a plain `requests.Session`, translating failures into the typed
errors of listener.platforms.base. `from_config` is what the SPECS entry names; since openear's
config has no Board section, it reads the emulator the test registered in `ACTIVE`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from listener.platforms import PlatformSpec
from listener.platforms.base import AuthFailed, FetchResult, PlatformError, RateLimited, Source, Transient
from models.domain import AuthorData, MentionData, clean_text
from sandbox.httpserver import EmulatorServer, Request, Response

NAME = "board"
SPEC = PlatformSpec(name=NAME, display_name="Board", badge="B", reply_limit=500, has_handles=True,
                    poll_seconds=45, factory="board_platform:from_config")
ACTIVE: dict[str, Any] = {}  # the test's emulator, brand, handle and token, for from_config


class BoardEmulator(EmulatorServer):
    PAGE = 50
    BRAND_ID = "u-brand"

    def __init__(self, clock: Callable[[], float], brand_handle: str = "acme_board") -> None:
        super().__init__()
        self.clock, self.brand_handle = clock, brand_handle
        self.token = "board-secret-token-123"
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.route("GET", r"/v1/search", self._search)
        self.route("POST", r"/v1/posts", self._publish)
        self.route("GET", r"/v1/posts/(?P<post_id>\d+)/replies", self._replies)

    def add_post(self, text: str, handle: str = "hannah", name: str = "Hannah H", reply_to: str | None = None,
                 author_id: str | None = None) -> str:
        with self._lock:
            post_id = str(1000 + len(self.posts))
            self.posts.append({"id": post_id, "text": text, "reply_to": reply_to,
                               "created_at": datetime.fromtimestamp(self.clock() + len(self.posts) * 1e-3, UTC)
                               .isoformat().replace("+00:00", "Z"),
                               "author": {"id": author_id or f"u-{handle}", "handle": handle, "name": name,
                                          "followers": 12}})
        return post_id

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def _search(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response.json({"error": "invalid token"}, 401)
        q = (request.arg("q") or "").lower()
        after = int(request.arg("after") or 0)
        start = int(request.arg("cursor") or 0)
        with self._lock:
            hits = [p for p in self.posts if q in p["text"].lower() and int(p["id"]) > after]
        page = hits[start:start + self.PAGE]
        more = start + self.PAGE < len(hits)
        return Response.json({"data": page, "next": str(start + self.PAGE) if more else None})

    def _publish(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response.json({"error": "invalid token"}, 401)
        body = request.json() or {}
        post_id = self.add_post(str(body.get("text", "")), handle=self.brand_handle, name="Acme",
                                reply_to=body.get("reply_to"), author_id=self.BRAND_ID)
        return Response.json({"id": post_id}, 201)

    def _replies(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response.json({"error": "invalid token"}, 401)
        with self._lock:
            found = [p for p in self.posts if p["reply_to"] == request.params["post_id"]]
        return Response.json({"data": found, "next": None})

    def error_response(self, status: int, request: Request) -> Response:
        return Response.json({"error": f"HTTP {status}"}, status)

    def rate_limited_response(self, request: Request) -> Response:
        return Response.json({"error": "slow down"}, 429, {"Retry-After": "120"})


class BoardPlatform:
    """PlatformAdapter for Board: one search source per brand; replies as the brand's account."""

    platform = NAME
    MAX_PAGES = 100
    RATE_LIMIT_FALLBACK = timedelta(minutes=15)

    def __init__(self, base_url: str, token: str, *, brand: str, keyword: str, handle: str,
                 clock: Callable[[], datetime] | None = None, timeout: float = 0.5) -> None:
        self.base_url, self.brand, self.keyword, self.handle = base_url, brand, keyword, handle
        self.clock = clock or (lambda: datetime.now(UTC))
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def sources(self) -> list[Source]:
        return [Source(f"{NAME}:{self.brand}:search:0", NAME, self.brand, "search", self.keyword)]

    def preflight(self) -> None:
        """Board has one kind of token: a wrong one shows on the first poll."""

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        posts: list[dict[str, Any]] = []
        page: str | None = None
        for _ in range(self.MAX_PAGES):
            params = {"q": source.target, "after": cursor or "0", **({"cursor": page} if page else {})}
            answer = self._call("GET", "/v1/search", params=params)
            data, page = answer.get("data"), answer.get("next")
            if not isinstance(data, list):
                raise Transient("Board answered with a malformed page")
            posts.extend(data)
            if not page:
                break
        mentions = [self._mention(source, p) for p in posts]
        return FetchResult(mentions, mentions[-1].external_id if mentions else cursor)

    def post_reply(self, mention: MentionData, text: str) -> str:
        if SPEC.reply_length(text) > SPEC.reply_limit:
            raise PlatformError(f"the reply is too long; Board allows {SPEC.reply_limit}")
        answer = self._call("POST", "/v1/posts", body={"text": text, "reply_to": mention.external_id})
        if not isinstance(answer.get("id"), str):
            raise Transient("Board answered without a post id; the reply may exist")
        return str(answer["id"])

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        answer = self._call("GET", f"/v1/posts/{mention.external_id}/replies")
        for post in answer.get("data") or []:
            if post["author"]["handle"] == self.handle and clean_text(post["text"])[0] == clean_text(text)[0]:
                return str(post["id"])
        return None

    def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.session.request(method, self.base_url + path, params=params, json=body,
                                            timeout=self.timeout)
            if response.status_code == 429:
                seconds = int(response.headers.get("Retry-After") or 0)
                retry_at = self.clock() + (timedelta(seconds=seconds) if seconds else self.RATE_LIMIT_FALLBACK)
                raise RateLimited(f"Board rate limit; retry after {retry_at:%H:%M:%S} UTC", retry_at)
            if response.status_code == 401:
                raise AuthFailed("Board rejected the token: set a valid Board API token")
            if response.status_code >= 500:
                raise Transient(f"Board server error (HTTP {response.status_code})")
            if response.status_code >= 400:
                raise PlatformError(f"Board refused the request (HTTP {response.status_code})")
            answer = response.json()
        except requests.Timeout as exc:
            raise Transient("Board did not answer in time") from exc
        except (ValueError, json.JSONDecodeError) as exc:
            raise Transient("Board answered with a malformed body") from exc
        except requests.RequestException as exc:
            raise Transient(f"Board request failed: {type(exc).__name__}") from exc
        if not isinstance(answer, dict):
            raise Transient("Board answered with something that is not an object")
        return answer

    def _mention(self, source: Source, post: dict[str, Any]) -> MentionData:
        author = post["author"]
        handle = author["handle"]
        return MentionData(
            platform=NAME, external_id=post["id"], text=clean_text(post["text"])[0],
            created_at=datetime.fromisoformat(post["created_at"].replace("Z", "+00:00")),
            author=AuthorData(NAME, author["id"], handle, author["name"], author["followers"],
                              f"https://board.example/@{handle}"),
            brand=source.brand, source=source.name, conversation_id=post["reply_to"] or post["id"],
            in_reply_to_id=post["reply_to"], permalink=f"https://board.example/p/{post['id']}",
            is_own=handle == self.handle)


def from_config(config: Any, *, clock: Callable[[], datetime],
                session_factory: Callable[[], requests.Session] | None = None) -> BoardPlatform | None:
    """What SPECS names: the adapter of the emulator the test registered (None without one)."""
    if not ACTIVE:
        return None
    return BoardPlatform(ACTIVE["url"], ACTIVE["token"], brand=ACTIVE["brand"], keyword=ACTIVE["keyword"],
                         handle=ACTIVE["handle"], clock=clock)
