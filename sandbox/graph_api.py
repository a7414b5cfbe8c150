"""An in-process Facebook Graph API emulator (pages, posts, comments) that unmodified facebook-sdk 3.1 talks to.

Versioned paths (`/v25.0/...`, any `vNN.N`): GET /{page-id} and /me (page token -> the page),
/{page-id}/feed (the page's posts, visitor posts and posts tagging the page), /{page-id}/tagged,
/{page-id}/posts, /{page-id}/visitor_posts, /{post-or-comment-id}, /{post-id}/comments and
/{comment-id}/comments (replies); POST /{post-or-comment-id}/comments (a reply as the page) and
POST /{comment-id} with is_hidden. Reading supports `fields` with field expansion (`from{id,name}`,
`comments.filter(stream).summary(true).limit(0)`), `limit` (25 by default, 100 at most), `filter`
(toplevel | stream), `order` (chronological | reverse_chronological), `since` <= created_time <
`until` (Unix or ISO 8601) and cursor paging (`paging.cursors`, `paging.next` / `previous` pointing
back here with the access token, as Graph does).

Page access tokens (`page_token()`), Graph error bodies (190 bad or expired token, 10 / 200 missing
permission, 100 object gone, 4 / 17 / 32 / 613 rate limits, 2500 unknown path), hourly call budgets
per app and per page on an injectable clock with `X-App-Usage` and `X-Business-Use-Case-Usage` on
every answer, and the fault injection of `sandbox.httpserver`. Data lives in `sandbox.graph_store`.

What the real Graph API does that a happy path never shows, each off until a test turns it on:
`user_token()` (a user access token: /me answers the user, a post's /comments answer `data: []`
without an error, as the Object Comments reference says of user tokens), `vanish_after_listing()`
(a listed post is deleted before its comments are read: 100/33), `refuse_comments()` (341 or 368 on
the next replies), `reject_duplicates` (506 for the page's same message twice in a row on one object),
`hide_tagged_authors()` (posts by people that tag the page come without `from`, as the Page Tagged
reference says) and `hide_comment()` (`is_hidden` true; the page still reads the comment).

Instagram (docs/instagram-wire.md): an Instagram professional account is connected to the default
page; requests whose first id is an Instagram object go to `sandbox.instagram_graph`, count against
the account's hourly budget (`limits["instagram"]`, code 80002) and carry its usage header.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sandbox.feed import BRAND_NAME, Customer
from sandbox.graph_store import PAGE_ID, CommentRecord, GraphStore, PageToken, PostRecord, Profile
from sandbox.graph_wire import (
    ACTION_MESSAGES,
    RATE_MESSAGES,
    FieldSpec,
    GraphError,
    check_fields,
    duplicate,
    encode_cursor,
    error_body,
    form_params,
    gone,
    graph_time,
    invalid,
    limit_param,
    minutes_until,
    parse_fields,
    parse_time,
    permissions_error,
    require,
    slice_page,
    token_of,
    trace_id,
    truthy,
)
from sandbox.httpserver import EmulatorServer, Request, Response
from sandbox.instagram_graph import InstagramGraph, InstagramHelpers
from sandbox.instagram_store import InstagramStore
from sandbox.instagram_webhooks import MentionWebhooks

MAX_MESSAGE = 8000
WINDOW_S = 3600
DEFAULT_LIMITS = {"app": 200_000, "page": 4_800, "instagram": 4_800}  # calls per hour
PAGE_FIELDS = ("id", "name", "link", "category", "fan_count", "instagram_business_account")
POST_FIELDS = ("id", "message", "created_time", "updated_time", "from", "permalink_url", "comments", "is_hidden",
               "status_type")
COMMENT_FIELDS = ("id", "message", "created_time", "from", "parent", "permalink_url", "comment_count",
                  "is_hidden", "like_count", "comments")
_DEFAULTS = {"Page": "name,id", "Post": "created_time,message,id", "Comment": "created_time,from,message,id"}
_PAGE_EDGES = {"feed": ("page", "visitor", "tagged"), "posts": ("page",), "tagged": ("tagged",),
               "visitor_posts": ("visitor",)}
Node = PostRecord | CommentRecord | Profile
_FIRST_ID = re.compile(r"/v\d+\.\d+/(\d+)(?:/|$)")


class GraphApiEmulator(InstagramHelpers, EmulatorServer):
    """Graph API on 127.0.0.1. Use as a context manager or call start()/stop()."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time, port: int = 0,
                 page_id: str = PAGE_ID, page_name: str = BRAND_NAME, page_posts: int = 8,
                 customers: list[Customer] | None = None, limits: dict[str, int] | None = None,
                 ig_media: int = 6) -> None:
        super().__init__(port=port)
        self.clock = clock
        self.store = GraphStore(clock, seed, customers, page_id, page_name)
        self.ig_store = InstagramStore(clock, seed, self.store.customers, page_id)
        self.ig_user_id, self.ig_username = self.ig_store.account.id, self.ig_store.account.username
        self._instagram = InstagramGraph(self, self.ig_store)
        self.ig_webhooks = MentionWebhooks(self.ig_user_id, clock)
        self._ig_ticks = 0
        self.page_id = page_id
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.tokens: dict[str, PageToken] = {}
        self.burst_code = 32  # what a `rate_limit_burst` fault answers
        self.burst_regain_minutes = 10
        self._lock = threading.Lock()
        self._trace = 0
        self._window_start: float | None = None
        self._calls: dict[str, int] = {}  # "app", page ids and IG user ids -> calls in the current window
        self._throttle: tuple[int, float, str | None] | None = None  # (code, until, page id or None)
        self.reject_duplicates = False  # 506 for the page's same message twice in a row on one object
        self.tagged_authors_hidden_on: frozenset[str] = frozenset()  # edges whose tagged posts lack `from`
        self._vanishing: set[str] = set()  # posts whose next /comments read deletes them (100/33)
        self._refusals: list[tuple[int, int | None]] = []  # (code, regain minutes) for the next replies
        self._last_written: dict[tuple[str, str], str] = {}  # (page id, object id) -> its last message there
        self.add_page(page_id, page_name)
        self.store.seed_page_posts(page_posts)
        self.ig_store.seed_media(ig_media)
        self.route("GET", r"/v\d+\.\d+/(?P<rest>.*)", self._get)
        self.route("POST", r"/v\d+\.\d+/(?P<rest>.*)", self._post)

    # -- test and demo helpers ------------------------------------------------------------------

    def add_page(self, page_id: str, name: str) -> str:
        """Create a page (if new); returns its access token."""
        self.store.add_page(page_id, name)
        token = f"sandbox-page-token-{page_id}"
        self.tokens.setdefault(token, PageToken(page_id))
        return token

    def page_token(self, page_id: str | None = None) -> str:
        return f"sandbox-page-token-{page_id or self.page_id}"

    def page_tokens(self) -> dict[str, str]:
        """page id -> token, as `platforms.facebook.page_tokens` wants it."""
        return {info.page_id: token for token, info in self.tokens.items() if info.user is None}

    def user_token(self, page_id: str | None = None, name: str = "Pat Admin") -> str:
        """A user access token of `name`, who manages the page: /me answers the user, a post's /comments
        answer an empty list (no error) and replies are refused (200), as Graph treats user tokens."""
        profile = self.store.person(name)
        token = f"sandbox-user-token-{profile.id}"
        self.tokens[token] = PageToken(page_id or self.page_id, user=profile)
        return token

    def vanish_after_listing(self, post_id: str) -> None:
        """Let `post_id` be listed as usual, but delete it when its /comments are read next: that read
        answers 100/33, as for a post deleted or hidden between a poll's listing and its comment reads."""
        with self._lock:
            self._vanishing.add(post_id)

    def refuse_comments(self, code: int, times: int = 1, regain_minutes: int | None = None) -> None:
        """Answer the next `times` replies (POST /{id}/comments; on Instagram /replies, /comments, /mentions) with
        341 (action limit) or 368 (blocked for policy violations); `regain_minutes` goes in the usage headers."""
        if code not in ACTION_MESSAGES:
            raise ValueError(f"not a write refusal: {code}; known: {sorted(ACTION_MESSAGES)}")
        with self._lock:
            self._refusals.extend([(code, regain_minutes)] * times)

    def hide_tagged_authors(self, edges: tuple[str, ...] = ("tagged",)) -> None:
        """Posts by people that tag the page come without `from` on `edges` (the Page Tagged reference:
        "For user posts, the from field will only be returned if the user making the request is the
        same user who created the post"). `()` turns it off."""
        self.tagged_authors_hidden_on = frozenset(edges)

    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide a comment as the page would (`is_hidden` true); the page's token still reads it."""
        if not self.store.set_hidden(comment_id, hidden):
            raise KeyError(f"no comment {comment_id!r}")

    def revoke(self, permission: str, page_id: str | None = None) -> None:
        """Take `permission` away from the page's token."""
        self.tokens[self.page_token(page_id)].permissions.discard(permission)

    def expire_token(self, page_id: str | None = None) -> None:
        self.tokens[self.page_token(page_id)].expired = True

    def throttle(self, code: int, minutes: float = 15.0, page_id: str | None = None) -> None:
        """Answer every request (of `page_id`'s token, or all) with rate-limit `code` for `minutes`."""
        if code not in RATE_MESSAGES:
            raise ValueError(f"not a rate-limit code: {code}; known: {sorted(RATE_MESSAGES)}")
        with self._lock:
            self._throttle = (code, self.clock() + minutes * 60, page_id)

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._throttle, self._window_start, self._calls = None, None, {}

    def add_post(self, author: str | None, message: str, *, page_id: str | None = None, kind: str | None = None,
                 created: float | None = None) -> str:
        """A post on the page's feed: by the page (author None), a visitor, or `kind="tagged"`; returns its id."""
        return self.store.add_post(author, message, page_id=page_id, kind=kind, created=created).id

    def add_comment(self, post_id: str, author: str, text: str, parent: str | None = None,
                    created: float | None = None) -> str:
        """A comment by `author` (a person's name, or a page id/name) on `post_id`, or a reply under `parent`."""
        return self.store.add_comment(post_id, author, text, parent=parent, created=created).id

    def delete(self, object_id: str) -> bool:
        return self.store.delete(object_id) or self.ig_store.delete(object_id)

    def grow(self, n: int, spread: bool = True) -> list[str]:
        """Add `n` generated Facebook posts, comments and replies and `n // 2` Instagram items (a third of
        all; deterministic for the seed); returns the Facebook ids (`grow_ig` returns Instagram ones)."""
        made = [r.id for r in self.store.grow(n, spread)]
        self.grow_ig(n // 2, spread)
        return made

    def live_tick(self) -> None:
        """The live feed's step: one generated item, now (every third one on Instagram)."""
        self._ig_ticks += 1
        if self._ig_ticks % 3 == 0:
            self.grow_ig(1, spread=False)
        else:
            self.store.grow(1, spread=False)

    def requests_to(self, suffix: str, method: str = "GET") -> int:
        """How many requests so far had a path ending in `suffix` (e.g. "/comments")."""
        return sum(1 for m, path, _ in list(self.log) if m == method and path.endswith(suffix))

    # -- dialect --------------------------------------------------------------------------------

    def _next_trace(self) -> str:
        with self._lock:
            self._trace += 1
            return trace_id(f"{self.page_id}-{self._trace}")

    def error_response(self, status: int, request: Request) -> Response:
        if status >= 500:
            exc = (GraphError(503, "(#2) Service temporarily unavailable", 2, transient=True) if status == 503 else
                   GraphError(500, "An unknown error has occurred.", 1, transient=True))
        else:
            exc = GraphError(400, f"Unknown path components: {request.path}", 2500)
        return error_body(exc, self._next_trace())

    def rate_limited_response(self, request: Request) -> Response:
        """A scripted rate-limit answer (fault `rate_limit_burst`)."""
        page_id, ig_user = self._page_of(request), self._ig_of(request)
        code = 80002 if ig_user is not None else self.burst_code
        exc = GraphError(400, RATE_MESSAGES[code], code,
                         headers=self._usage_headers(page_id, self.burst_regain_minutes, ig_user=ig_user))
        return error_body(exc, self._next_trace())

    def decorate_response(self, request: Request, response: Response) -> Response:
        version = request.path.split("/")[1] if request.path.startswith("/v") else "v25.0"
        response.headers.setdefault("facebook-api-version", version)
        for name, value in self._usage_headers(self._page_of(request), ig_user=self._ig_of(request)).items():
            response.headers.setdefault(name, value)
        return response

    # -- auth, budgets, usage -------------------------------------------------------------------

    def _page_of(self, request: Request) -> str | None:
        token = token_of(request)
        info = self.tokens.get(token) if token else None
        return info.page_id if info else None

    def _ig_of(self, request: Request) -> str | None:
        """The Instagram account whose object the request's path names first, else None."""
        match = _FIRST_ID.match(request.path)
        return self.ig_user_id if match and self.ig_store.is_ig(match.group(1)) else None

    def _auth(self, request: Request) -> PageToken:
        token = token_of(request)
        if not token:
            raise GraphError(400, "An access token is required to request this resource.", 104)
        info = self.tokens.get(token)
        if info is None:
            raise GraphError(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if info.expired:
            raise GraphError(401, "Error validating access token: Session has expired. The current time is "
                             f"{graph_time(self.clock())}.", 190, subcode=463)
        return info

    def _spend(self, info: PageToken, ig_user: str | None = None) -> None:
        """Count a call against the app's and the page's (or IG account's) hourly budget; raise when spent."""
        with self._lock:
            now = self.clock()
            if self._throttle is not None:
                code, until, page = self._throttle
                if now >= until:
                    self._throttle = None
                elif page in (None, info.page_id) and (code != 80002 or ig_user is not None):
                    raise GraphError(400, RATE_MESSAGES[code], code, subcode=2446079 if code == 17 else None,
                                     headers=self._usage_headers(info.page_id, minutes_until(now, until), True,
                                                                 ig_user))
            if self._window_start is None or now >= self._window_start + WINDOW_S:
                self._window_start, self._calls = now, {}
            regain = minutes_until(now, self._window_start + WINDOW_S)
            if self._calls.get("app", 0) >= self.limits["app"]:
                raise GraphError(400, RATE_MESSAGES[4], 4, headers=self._usage_headers(info.page_id, 0, True, ig_user))
            key, limit, code = (ig_user, self.limits["instagram"], 80002) if ig_user is not None else \
                (info.page_id, self.limits["page"], 32)
            if self._calls.get(key, 0) >= limit:
                raise GraphError(400, RATE_MESSAGES[code], code,
                                 headers=self._usage_headers(info.page_id, regain, True, ig_user))
            self._calls["app"] = self._calls.get("app", 0) + 1
            self._calls[key] = self._calls.get(key, 0) + 1

    def _usage_headers(self, page_id: str | None, regain: int | None = None, locked: bool = False,
                       ig_user: str | None = None) -> dict[str, str]:
        """X-App-Usage and X-Business-Use-Case-Usage (of the IG account, else the page) in % of the budgets."""
        if not locked:
            with self._lock:
                return self._usage_headers(page_id, regain, True, ig_user)
        app = min(100, round(100 * self._calls.get("app", 0) / max(1, self.limits["app"])))
        headers = {"X-App-Usage": json.dumps({"call_count": app, "total_cputime": app // 2, "total_time": app // 2})}
        key, limit, kind = (ig_user, self.limits["instagram"], "instagram") if ig_user is not None else \
            (page_id, self.limits["page"], "pages")
        if key is not None:
            used = min(100, round(100 * self._calls.get(key, 0) / max(1, limit)))
            if regain is None:
                regain = 0
                if used >= 100 and self._window_start is not None:
                    regain = minutes_until(self.clock(), self._window_start + WINDOW_S)
            usage = {"type": kind, "call_count": used, "total_cputime": used // 2, "total_time": used // 2,
                     "estimated_time_to_regain_access": regain}
            headers["X-Business-Use-Case-Usage"] = json.dumps({key: [usage]})
        return headers

    # -- handlers -------------------------------------------------------------------------------

    def _get(self, request: Request) -> Response:
        try:
            info, ig_user = self._auth(request), self._ig_of(request)
            self._spend(info, ig_user)
            parts = [p for p in request.params["rest"].split("/") if p]
            if not parts or len(parts) > 2:
                raise GraphError(400, f"Unknown path components: /{'/'.join(parts)}", 2500)
            params = form_params(request)
            if ig_user is not None:
                return Response.json(self._instagram.get(request, info, parts, params))
            node = self._node(parts[0], info)
            if len(parts) == 1:
                if not isinstance(node, Profile):
                    require(info.permissions, 10, "pages_read_engagement")
                return Response.json(self._render(request, node, params.get("fields")))
            require(info.permissions, 10, "pages_read_engagement")
            if parts[1] == "comments" and not isinstance(node, Profile):
                require(info.permissions, 10, "pages_read_user_content")
                if self.take_vanishing(node.id):
                    self.store.delete(node.id)
                    raise gone(node.id)
                if info.user is not None and isinstance(node, PostRecord):
                    return Response.json({"data": []})  # user tokens read posts' comments as empty
            return Response.json(self._edge(request, node, parts[1], params, top_level=True))
        except GraphError as exc:
            return error_body(exc, self._next_trace())

    def _post(self, request: Request) -> Response:
        try:
            info, ig_user = self._auth(request), self._ig_of(request)
            self._spend(info, ig_user)
            parts = [p for p in request.params["rest"].split("/") if p]
            params = form_params(request)
            if ig_user is not None and 1 <= len(parts) <= 2:
                return Response.json(self._instagram.post(request, info, parts, params))
            if len(parts) == 2 and parts[1] == "comments":
                require(info.permissions, 200, "pages_manage_engagement")
                if info.user is not None:
                    raise permissions_error()
                node = self.store.node(parts[0])
                if not isinstance(node, PostRecord | CommentRecord):
                    raise gone(parts[0], "post")
                message = params.get("message", "")
                if not message.strip():
                    raise invalid("Missing message or attachment")
                if len(message) > MAX_MESSAGE:
                    raise invalid(f"Param message must be at most {MAX_MESSAGE} characters long")
                return Response.json({"id": self._write_comment(info, node, message)})
            if len(parts) == 1 and "is_hidden" in params:
                require(info.permissions, 200, "pages_manage_engagement")
                if not isinstance(self.store.node(parts[0]), CommentRecord):
                    raise gone(parts[0], "post")
                self.store.set_hidden(parts[0], truthy(params["is_hidden"]))
                return Response.json({"success": True})
            if len(parts) == 1:
                raise gone(parts[0], "post")
            raise GraphError(400, f"Unknown path components: /{'/'.join(parts)}", 2500)
        except GraphError as exc:
            return error_body(exc, self._next_trace())

    def _write_comment(self, info: PageToken, node: PostRecord | CommentRecord, message: str) -> str:
        """The page's comment on `node` (refusals and the duplicate rule first); returns its id."""
        self.claim_write(info, node.id, message)
        return self.store.add_comment(node.id, self.store.pages[info.page_id], message).id

    def claim_write(self, info: PageToken, object_id: str, message: str, ig_user: str | None = None) -> None:
        """Before a write on `object_id`: a scripted refusal, or 506 for the writer's last message there."""
        with self._lock:
            refusal = self._refusals.pop(0) if self._refusals else None
            key = (ig_user or info.page_id, object_id)
            if refusal is None and self.reject_duplicates and self._last_written.get(key) == message.strip():
                raise duplicate()
            if refusal is None:
                self._last_written[key] = message.strip()
        if refusal is not None:
            code, regain = refusal
            raise GraphError(400, ACTION_MESSAGES[code], code,
                             headers=self._usage_headers(info.page_id, regain, ig_user=ig_user)
                             if regain is not None else None)

    def take_vanishing(self, object_id: str) -> bool:
        """Whether `object_id` was to vanish on its next comments read (and no longer is)."""
        with self._lock:
            found = object_id in self._vanishing
            self._vanishing.discard(object_id)
            return found

    def _node(self, object_id: str, info: PageToken) -> Node:
        if object_id == "me":
            return info.user if info.user is not None else self.store.pages[info.page_id]
        node = self.store.node(object_id)
        if node is None:
            raise gone(object_id)
        return node

    # -- rendering ------------------------------------------------------------------------------

    def _render(self, request: Request, node: Node, fields: str | list[FieldSpec] | None) -> dict[str, Any]:
        kind = "Page" if isinstance(node, Profile) else "Post" if isinstance(node, PostRecord) else "Comment"
        specs = parse_fields(fields or _DEFAULTS[kind]) if not isinstance(fields, list) else fields
        check_fields(specs, PAGE_FIELDS if kind == "Page" else POST_FIELDS if kind == "Post" else COMMENT_FIELDS,
                     kind)
        out: dict[str, Any] = {}
        for spec in specs:
            value = self._value(request, node, spec)
            if value is not None:
                out[spec.name] = value
        if "instagram_business_account" in out:
            out.setdefault("id", node.id)
        return out

    def _value(self, request: Request, node: Node, spec: FieldSpec) -> Any:
        name = spec.name
        if isinstance(node, Profile):
            if name == "instagram_business_account":
                return self._instagram.account_of(node.id) if node.is_page else None
            return {"id": node.id, "name": node.name, "link": f"https://www.facebook.com/{node.id}",
                    "category": "Telecommunication Company", "fan_count": 48_200}.get(name)
        if name == "id":
            return node.id
        if name == "message":
            return node.message
        if name == "created_time":
            return graph_time(node.created)
        if name == "from":
            author = {"id": node.author.id, "name": node.author.name}
            return {k: v for k, v in author.items() if spec.sub is None or k in {s.name for s in spec.sub}}
        if name == "permalink_url":
            return node.permalink
        if name == "is_hidden":
            return node.hidden
        if name == "comments":
            return self._edge(request, node, "comments", spec.modifiers, top_level=False, specs=spec.sub)
        if isinstance(node, PostRecord):
            return {"updated_time": graph_time(node.updated), "status_type": "mobile_status_update"}.get(name)
        if name == "parent":
            return self._render(request, node.parent, spec.sub) if node.parent is not None else None
        if name == "comment_count":
            return len(self.store.comments_of(node, stream=False))
        if name == "like_count":
            return 0
        return None

    def _edge(self, request: Request, node: Node, edge: str, params: dict[str, str], *, top_level: bool,
              specs: list[FieldSpec] | None = None) -> dict[str, Any]:
        """One page of an edge (`feed`, `comments`, ...) with its paging and, when asked, its summary."""
        descending = True
        items: list[PostRecord] | list[CommentRecord]
        if isinstance(node, Profile) and edge in _PAGE_EDGES:
            items = self.store.feed_of(node.id, _PAGE_EDGES[edge])
        elif isinstance(node, PostRecord | CommentRecord) and edge == "comments":
            stream = params.get("filter", "toplevel") == "stream"
            if params.get("filter", "toplevel") not in ("stream", "toplevel"):
                raise invalid("filter must be one of the following values: toplevel, stream")
            order = params.get("order", "chronological")
            if order not in ("chronological", "reverse_chronological", "ranked"):
                raise invalid("order must be one of the following values: chronological, reverse_chronological,"
                              " ranked")
            items = self.store.comments_of(node, stream)
            descending = order == "reverse_chronological"
            if descending:
                items = items[::-1]
        else:
            kind = "Page" if isinstance(node, Profile) else type(node).__name__.removesuffix("Record")
            raise invalid(f"Tried accessing nonexisting field ({edge}) on node type ({kind})")
        total = len(items)
        since, until = params.get("since"), params.get("until")
        if since or until:
            low = parse_time("since", since) if since else float("-inf")
            high = parse_time("until", until) if until else float("inf")
            items = [i for i in items if low <= int(i.created) < high]  # type: ignore[assignment]
        item_type = "Comment" if edge == "comments" else "Post"
        item_specs = specs if specs is not None else parse_fields(params.get("fields") or _DEFAULTS[item_type])
        check_fields(item_specs, COMMENT_FIELDS if edge == "comments" else POST_FIELDS, item_type)
        limit = limit_param(params.get("limit"))
        page, has_prev, has_next = slice_page(items, limit, params.get("after"), params.get("before"), descending)
        body: dict[str, Any] = {"data": [self._render(request, item, item_specs) for item in page]}
        if edge in self.tagged_authors_hidden_on:
            for item, rendered in zip(page, body["data"], strict=True):
                if isinstance(item, PostRecord) and item.kind == "tagged":
                    rendered.pop("from", None)
        if page:
            cursors = {"before": encode_cursor(*page[0].key), "after": encode_cursor(*page[-1].key)}
            paging: dict[str, Any] = {"cursors": cursors}
            if top_level:
                query = {k: v[0] for k, v in request.query.items() if v and k not in ("after", "before")}
                if "access_token" not in query and (token := token_of(request)):
                    query["access_token"] = token
                base = f"{self.url}{request.path}?"
                if has_next:
                    paging["next"] = base + urlencode({**query, "after": cursors["after"]})
                if has_prev:
                    paging["previous"] = base + urlencode({**query, "before": cursors["before"]})
            body["paging"] = paging
        if edge == "comments" and truthy(params.get("summary")):
            order = params.get("order", "ranked" if params.get("filter", "toplevel") == "toplevel" else "chronological")
            body["summary"] = {"order": order, "total_count": total, "can_comment": True}
        return body

