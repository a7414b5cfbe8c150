"""An in-process X API v2 emulator that an unmodified `tweepy.Client` can talk to.

Endpoints: GET /2/tweets/search/recent, GET /2/users/:id/mentions, GET /2/users/me,
GET /2/users/by/username/:username, GET /2/tweets/:id, POST /2/tweets. Bearer (app) and OAuth 1.0a
user-context auth (the `oauth_consumer_key` and `oauth_token` are checked, not the signature),
per-endpoint 15-minute rate-limit windows on an injectable clock with the `x-rate-limit-*` headers,
X's problem bodies, and the fault injection of `sandbox.httpserver`. Posts live in `sandbox.x_store`;
`grow(n)` and a background "live" mode add generated posts from `sandbox.feed`.

Like the real API, texts come back with `&`, `<`, `>` escaped as HTML entities (`escape_entities`).
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote

from sandbox.feed import SUPPORT_HANDLE, Customer
from sandbox.httpserver import EmulatorServer, Request, Response
from sandbox.x_query import QueryError, compile_query
from sandbox.x_store import (
    SEARCH_WINDOW_S,
    SUPPORT_USER_ID,
    TweetRecord,
    UserRecord,
    XStore,
    snowflake_floor,
)
from sandbox.x_wire import (
    COMMON_PARAMS,
    EXPANSIONS,
    ID_RE,
    INVALID,
    MENTIONS_PARAMS,
    SEARCH_PARAMS,
    TWEET_FIELDS,
    UNSUPPORTED_AUTH,
    USER_FIELDS,
    BadRequest,
    check_params,
    decode_token,
    encode_token,
    escape_text,
    id_param,
    iso,
    list_param,
    max_results_param,
    not_found,
    parse_time,
    problem,
    tweet_json,
    user_json,
)

WINDOW_S = 15 * 60
DEFAULT_LIMITS = {"search": 450, "mentions": 450, "tweet": 450, "user_by_username": 300, "me": 75,
                  "create_tweet": 100}
@dataclass(frozen=True)
class XCredentials:
    """The tokens the emulator accepts. The access token starts with the account id, as on X."""

    bearer_token: str = "sandbox-bearer-token"
    consumer_key: str = "sandbox-consumer-key"
    consumer_secret: str = "sandbox-consumer-secret"
    access_token: str = f"{SUPPORT_USER_ID}-sandbox-access-token"
    access_token_secret: str = "sandbox-access-token-secret"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class XApiEmulator(EmulatorServer):
    """X API v2 on 127.0.0.1. Use as a context manager or call start()/stop()."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time, port: int = 0,
                 credentials: XCredentials | None = None, limits: dict[str, int] | None = None,
                 customers: list[Customer] | None = None, escape_entities: bool = True) -> None:
        super().__init__(port=port)
        self.clock = clock
        self.credentials = credentials or XCredentials()
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.escape_entities = escape_entities
        self.store = XStore(clock, seed, customers)
        self.own_user = self.store.user_by_username(SUPPORT_HANDLE)
        self.posts_read = 0  # posts returned in `data` (X bills reads per post)
        self._windows: dict[tuple[str, str], list[float]] = {}  # (endpoint, principal) -> [reset, used]
        self._rl_lock = threading.Lock()
        self._setup_routes()

    # -- test and demo helpers ------------------------------------------------------------------

    def add_tweet(self, author: str, text: str, *, lang: str = "en", in_reply_to: str | int | None = None,
                  retweet_of: str | int | None = None) -> str:
        """Store a post now; returns its id."""
        record = self.store.add_tweet(author, text, lang=lang,
                                      in_reply_to=int(in_reply_to) if in_reply_to is not None else None,
                                      retweet_of=int(retweet_of) if retweet_of is not None else None)
        return str(record.id)

    def add_user(self, username: str, name: str | None = None, followers: int = 0) -> str:
        """Create a user; returns its id."""
        return str(self.store.add_user(username, name, followers).id)

    def delete_tweet(self, post_id: str | int) -> bool:
        return self.store.delete_tweet(int(post_id))

    def grow(self, n: int, spread: bool = True) -> list[str]:
        """Add `n` generated posts (deterministic for the seed); returns their ids."""
        return [str(r.id) for r in self.store.grow(n, spread)]

    def live_tick(self) -> None:
        """The live feed's step: one generated item, now."""
        self.store.grow(1, spread=False)

    def reset_rate_limits(self) -> None:
        with self._rl_lock:
            self._windows.clear()

    # -- dialect ----------------------------------------------------------------------------------

    def error_response(self, status: int, request: Request) -> Response:
        titles = {404: "Not Found Error", 405: "Method Not Allowed", 500: "Internal Server Error",
                  503: "Service Unavailable"}
        title = titles.get(status, "Error")
        return problem(status, title, title)

    def rate_limited_response(self, request: Request) -> Response:
        """A scripted 429 (fault `rate_limit_burst`): the window is spent until 15 minutes from now."""
        path = request.path
        endpoint = ("search" if path.startswith("/2/tweets/search") else
                    "mentions" if path.endswith("/mentions") else
                    "create_tweet" if request.method == "POST" else "tweet")
        reset = int(self.clock()) + WINDOW_S
        return problem(429, "Too Many Requests", "Too Many Requests", headers={
            "x-rate-limit-limit": str(self.limits[endpoint]), "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset)})

    # -- plumbing ---------------------------------------------------------------------------------

    def _setup_routes(self) -> None:
        self.route("GET", r"/2/tweets/search/recent", self._guard("search", False, self._search))
        self.route("GET", r"/2/users/(?P<id>[^/]+)/mentions", self._guard("mentions", False, self._mentions))
        self.route("GET", r"/2/users/me", self._guard("me", True, self._me))
        self.route("GET", r"/2/users/by/username/(?P<username>[^/]+)",
                   self._guard("user_by_username", False, self._user_by_username))
        self.route("GET", r"/2/tweets/(?P<id>[^/]+)", self._guard("tweet", False, self._tweet))
        self.route("POST", r"/2/tweets", self._guard("create_tweet", True, self._create_tweet))

    def _principal(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        creds = self.credentials
        if header.startswith("Bearer "):
            return "app" if hmac.compare_digest(header[7:].encode(), creds.bearer_token.encode()) else None
        if header.startswith("OAuth "):
            fields = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}
            key = fields.get("oauth_consumer_key", "").encode()
            token = fields.get("oauth_token", "").encode()
            key_ok = hmac.compare_digest(key, creds.consumer_key.encode())
            token_ok = hmac.compare_digest(token, creds.access_token.encode())
            return "user" if key_ok and token_ok else None
        return None

    def _take_rate(self, endpoint: str, principal: str) -> tuple[bool, dict[str, str]]:
        now = self.clock()
        limit = self.limits[endpoint]
        with self._rl_lock:
            window = self._windows.get((endpoint, principal))
            if window is None or now >= window[0]:
                window = self._windows[(endpoint, principal)] = [float(int(now) + WINDOW_S), 0]
            allowed = window[1] < limit
            if allowed:
                window[1] += 1
            headers = {"x-rate-limit-limit": str(limit),
                       "x-rate-limit-remaining": str(int(limit - window[1])),
                       "x-rate-limit-reset": str(int(window[0]))}
        return allowed, headers

    def _guard(self, endpoint: str, user_only: bool, handler: Callable[[Request, str], Response]
               ) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            principal = self._principal(request)
            if principal is None:
                return problem(401, "Unauthorized", "Unauthorized")
            if user_only and principal == "app":
                return problem(403, "Unsupported Authentication", UNSUPPORTED_AUTH,
                               "https://api.twitter.com/2/problems/unsupported-authentication")
            allowed, headers = self._take_rate(endpoint, principal)
            if not allowed:
                return problem(429, "Too Many Requests", "Too Many Requests", headers=headers)
            try:
                response = handler(request, principal)
            except BadRequest as bad:
                response = Response.json({
                    "errors": [{"parameters": {bad.parameter: [bad.value]}, "message": bad.message}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": INVALID}, 400)
            response.headers.update(headers)
            return response
        return guarded

    # -- parameters -------------------------------------------------------------------------------

    def _time_bounds(self, request: Request, until_id: int | None) -> tuple[int, int | None]:
        min_id, upper = 0, until_id
        start, end = request.arg("start_time"), request.arg("end_time")
        if start:
            min_id = snowflake_floor(parse_time("start_time", start))
        if end:
            end_id = snowflake_floor(parse_time("end_time", end))
            upper = end_id if upper is None else min(upper, end_id)
        return min_id, upper

    # -- serialisation ----------------------------------------------------------------------------

    def _tweet_json(self, t: TweetRecord, fields: set[str]) -> dict[str, Any]:
        return tweet_json(t, fields, self.escape_entities)

    def _page(self, request: Request, records: list[TweetRecord], more: bool) -> Response:
        tweet_fields = list_param(request, "tweet.fields", TWEET_FIELDS)
        user_fields = list_param(request, "user.fields", USER_FIELDS)
        expansions = list_param(request, "expansions", EXPANSIONS)
        meta: dict[str, Any] = {"result_count": len(records)}
        if not records:
            return Response.json({"meta": meta})
        body: dict[str, Any] = {"data": [self._tweet_json(t, tweet_fields) for t in records]}
        with self._rl_lock:
            self.posts_read += len(records)
        includes = self._includes(records, expansions, tweet_fields, user_fields)
        if includes:
            body["includes"] = includes
        meta.update(newest_id=str(records[0].id), oldest_id=str(records[-1].id))
        if more:
            meta["next_token"] = encode_token(records[-1].id)
        body["meta"] = meta
        return Response.json(body)

    def _includes(self, records: list[TweetRecord], expansions: set[str], tweet_fields: set[str],
                  user_fields: set[str]) -> dict[str, Any]:
        users: dict[int, UserRecord] = {}
        for t in records:
            if "author_id" in expansions:
                users.setdefault(t.author.id, t.author)
            if "in_reply_to_user_id" in expansions and t.in_reply_to_user_id is not None:
                replied = self.store.user(t.in_reply_to_user_id)
                if replied is not None:
                    users.setdefault(replied.id, replied)
        includes: dict[str, Any] = {}
        if users:
            includes["users"] = [user_json(u, user_fields) for u in users.values()]
        if "referenced_tweets.id" in expansions:
            refs = {r for t in records for r in (t.in_reply_to_tweet_id, t.retweet_of) if r is not None}
            found = [rec for r in sorted(refs, reverse=True) if (rec := self.store.tweet(r)) is not None]
            if found:
                includes["tweets"] = [self._tweet_json(rec, tweet_fields) for rec in found]
        return includes

    # -- endpoints --------------------------------------------------------------------------------

    def _search(self, request: Request, principal: str) -> Response:
        check_params(request, SEARCH_PARAMS)
        query = request.arg("query")
        if query is None:
            raise BadRequest("query", "", "The `query` query parameter can not be empty")
        try:
            predicate = compile_query(query)
        except QueryError as exc:
            raise BadRequest("query", query, f"There were errors processing your request: {exc}") from None
        max_results = max_results_param(request, 10, 100)
        since_id, until_id = id_param(request, "since_id"), id_param(request, "until_id")
        window_start = self.clock() - SEARCH_WINDOW_S
        if since_id is not None and since_id < snowflake_floor(window_start):
            message = (f"Invalid 'since_id':'{since_id}'. 'since_id' must be a tweet id created after "
                       f"{iso(window_start)[:19]}Z.")
            raise BadRequest("since_id", str(since_id), message)
        min_id, upper = self._time_bounds(request, until_id)
        token = request.arg("next_token")
        if token:
            before = decode_token("next_token", token)
            upper = before if upper is None else min(upper, before)
        records, more = self.store.search(predicate, max_results=max_results, since_id=since_id,
                                          before_id=upper, min_id=min_id)
        return self._page(request, records, more)

    def _mentions(self, request: Request, principal: str) -> Response:
        check_params(request, MENTIONS_PARAMS)
        raw_id = request.params["id"]
        if not raw_id.isdigit():
            raise BadRequest("id", raw_id, f"The `id` path parameter value [{raw_id}] must match {ID_RE}")
        user = self.store.user(int(raw_id))
        if user is None:
            return not_found("user", "id", raw_id, f"Could not find user with id: [{raw_id}].")
        max_results = max_results_param(request, 5, 100)
        since_id, until_id = id_param(request, "since_id"), id_param(request, "until_id")
        min_id, upper = self._time_bounds(request, until_id)
        token = request.arg("pagination_token")
        if token:
            before = decode_token("pagination_token", token)
            upper = before if upper is None else min(upper, before)
        records, more = self.store.mentions(user.username, max_results=max_results, since_id=since_id,
                                            before_id=upper, min_id=min_id)
        return self._page(request, records, more)

    def _me(self, request: Request, principal: str) -> Response:
        check_params(request, ("user.fields", "expansions", "tweet.fields"))
        assert self.own_user is not None
        return Response.json({"data": user_json(self.own_user, list_param(request, "user.fields",
                                                                                     USER_FIELDS))})

    def _user_by_username(self, request: Request, principal: str) -> Response:
        check_params(request, ("user.fields", "expansions", "tweet.fields"))
        name = request.params["username"]
        user = self.store.user_by_username(name)
        if user is None:
            return not_found("user", "username", name, f"Could not find user with username: [{name}].")
        fields = list_param(request, "user.fields", USER_FIELDS)
        return Response.json({"data": user_json(user, fields)})

    def _tweet(self, request: Request, principal: str) -> Response:
        check_params(request, COMMON_PARAMS)
        raw_id = request.params["id"]
        record = self.store.tweet(int(raw_id)) if raw_id.isdigit() else None
        if record is None:
            return not_found("tweet", "id", raw_id, f"Could not find tweet with id: [{raw_id}].")
        expansions = list_param(request, "expansions", EXPANSIONS)
        tweet_fields = list_param(request, "tweet.fields", TWEET_FIELDS)
        body: dict[str, Any] = {"data": self._tweet_json(record, tweet_fields)}
        includes = self._includes([record], expansions, tweet_fields,
                                  list_param(request, "user.fields", USER_FIELDS))
        if includes:
            body["includes"] = includes
        with self._rl_lock:
            self.posts_read += 1
        return Response.json(body)

    def _create_tweet(self, request: Request, principal: str) -> Response:
        try:
            payload = request.json()
        except ValueError:
            return problem(400, "Invalid Request", "The request body is not valid JSON.", INVALID)
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str) or not payload["text"]:
            return problem(400, "Invalid Request", "One or more parameters to your request was invalid: "
                            "text is required.", INVALID)
        text: str = payload["text"]
        if len(text) > 280:
            return problem(403, "Forbidden", "Your Tweet text is too long. For more information on how "
                            "X determines text length see https://github.com/twitter/twitter-text.")
        reply = payload.get("reply") or {}
        parent_id = str(reply.get("in_reply_to_tweet_id", "")) if isinstance(reply, dict) else ""
        parent = self.store.tweet(int(parent_id)) if parent_id.isdigit() else None
        if reply and parent is None:
            return problem(403, "Forbidden",
                            "You attempted to reply to a Tweet that is deleted or not visible to you.")
        assert self.own_user is not None
        record = self.store.add_tweet(self.own_user.username, text, lang=parent.lang if parent else "en",
                                      in_reply_to=parent.id if parent else None)
        text = escape_text(record.text, self.escape_entities)
        return Response.json({"data": {"id": str(record.id), "text": text,
                                       "edit_history_tweet_ids": [str(record.id)]}}, 201)
