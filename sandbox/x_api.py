"""An in-process X API v2 emulator that an unmodified `tweepy.Client` can talk to.

Endpoints: GET /2/tweets/search/recent, GET /2/users/:id/mentions, GET /2/users/:id/tweets,
GET /2/users/me, GET /2/users/by?usernames=, GET /2/users/by/username/:username, GET /2/tweets/:id,
POST /2/tweets. Bearer (app) and OAuth 1.0a user-context auth (the `oauth_consumer_key` and
`oauth_token` are checked, not the signature), per-endpoint 15-minute rate-limit windows on an
injectable clock with the `x-rate-limit-*` headers, X's problem bodies, and the fault injection of
`sandbox.httpserver`. Posts live in `sandbox.x_store`; `grow(n)` and a background "live" mode add
generated posts from `sandbox.feed`.

Like the real API, texts come back with `&`, `<`, `>` escaped as HTML entities (`escape_entities`).

Real-X behaviours, each off by default (see `XApiEmulator` for the switches): duplicate-content
403s, weighted-length 403s, the search indexing delay, daily/monthly usage caps, posting 24-hour
limits, long posts with `note_tweet`, truncated retweets, edits with `edit_history_tweet_ids`.
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
    XStore,
    snowflake_floor,
)
from sandbox.x_text import LIMIT, weighted_length
from sandbox.x_wire import (
    COMMON_PARAMS,
    DUPLICATE,
    EXCLUDE_VALUES,
    EXPANSIONS,
    ID_RE,
    INVALID,
    MENTIONS_PARAMS,
    SEARCH_PARAMS,
    TIMELINE_PARAMS,
    TOO_LONG,
    TWEET_FIELDS,
    UNSUPPORTED_AUTH,
    USER_FIELDS,
    BadRequest,
    DailyPostLimit,
    UsageCap,
    check_params,
    decode_token,
    encode_token,
    escape_text,
    id_param,
    includes_of,
    invalid_request,
    iso,
    list_param,
    max_results_param,
    missing,
    not_found,
    parse_time,
    problem,
    time_bounds,
    tweet_json,
    usage_capped,
    user_json,
)

WINDOW_S = 15 * 60
END_TIME_MARGIN_S = 10  # search's end_time must be at least this long before the request
DEFAULT_LIMITS = {"search": 450, "mentions": 450, "timeline": 1500, "tweet": 450, "user_by_username": 300,
                  "me": 75, "create_tweet": 100}
BILLED = ("search", "mentions", "timeline", "tweet")  # endpoints whose posts count towards usage caps



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
    """X API v2 on 127.0.0.1. Use as a context manager or call start()/stop().

    Switches for real-X behaviours (all off by default):

    - `refuse_duplicates(window_s)`: POST /2/tweets answers 403 "You are not allowed to create a
      Tweet with duplicate content." when the same account sent the same text within the window;
    - `weighted_length_check = True`: POST /2/tweets counts by twitter-text (URLs 23, CJK/emoji 2;
      sandbox.x_text) instead of code points, and answers 403 "Your Tweet text is too long..." over 280;
    - `search_delay_s = N`: search finds a post only N seconds after it was created (timelines and
      lookups at once); `add_tweet(..., index_delay_s=...)` sets one post's own delay;
    - `set_usage_cap(posts, period, scope)`: once that many posts were read in the UTC day/month,
      every post-reading endpoint answers X's 429 UsageCapExceeded problem;
    - `set_daily_post_limits(user, app)`: POST /2/tweets carries the x-user-limit-24hour-* and
      x-app-limit-24hour-* headers and answers 429 once a 24-hour limit is spent;
    - `long_posts = True`: a post over 280 comes back cut to 280 with "…" in `text`, the whole in
      `note_tweet.text` only when tweet.fields asks for note_tweet;
    - `truncated_retweets = True`: retweets get X's text, "RT @user: " + the original cut to 140;
    - `list_superseded_versions = True`: timelines and search list older versions of edited posts
      too (X lists only the newest); `edit_tweet(id, text)` makes an edit either way;
    - `mentions_exclude = False`: the mentions timeline refuses `exclude` with a 400, as X's OpenAPI
      spec (no `exclude` there) has it; by default it accepts it, as docs.x.com shows.
    """

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
        self.weighted_length_check = False
        self.long_posts = False
        self.duplicate_window_s: float | None = None
        self.usage_cap: UsageCap | None = None
        self.daily_post_limits: DailyPostLimit | None = None
        self.mentions_exclude = True
        self._sent: dict[tuple[int, str], float] = {}  # (account id, text) -> when POST /2/tweets took it
        self._windows: dict[tuple[str, str], list[float]] = {}  # (endpoint, principal) -> [reset, used]
        self._rl_lock = threading.Lock()
        self._setup_routes()

    # -- switches ---------------------------------------------------------------------------------

    def refuse_duplicates(self, window_s: float | None = 24 * 3600) -> None:
        """Answer 403 duplicate content when the account sent the same text within `window_s`
        (None: accept duplicates, the default)."""
        self.duplicate_window_s = window_s

    def set_usage_cap(self, posts: int | None, period: str = "Monthly", scope: str = "Product") -> None:
        """Cap the posts read per UTC `period` ("Daily"/"Monthly"); `scope` "Product" or "Account"
        is reported in the 429 body. None lifts the cap."""
        self.usage_cap = UsageCap(posts, period, scope) if posts is not None else None

    def set_daily_post_limits(self, user: int | None = 100, app: int = 1667) -> None:
        """POST /2/tweets' 24-hour limits per user and per app, with their headers (None: off)."""
        self.daily_post_limits = DailyPostLimit(user, app) if user is not None else None

    @property
    def search_delay_s(self) -> float:
        """Seconds before search finds a new post (X's indexing delay); 0 = at once."""
        return self.store.search_delay_s

    @search_delay_s.setter
    def search_delay_s(self, seconds: float) -> None:
        self.store.search_delay_s = seconds

    @property
    def truncated_retweets(self) -> bool:
        """Retweets stored from now on get X's "RT @user: ..." text cut to 140 characters."""
        return self.store.truncated_retweets

    @truncated_retweets.setter
    def truncated_retweets(self, on: bool) -> None:
        self.store.truncated_retweets = on

    @property
    def list_superseded_versions(self) -> bool:
        """Timelines and search also list the older versions of edited posts."""
        return self.store.list_superseded

    @list_superseded_versions.setter
    def list_superseded_versions(self, on: bool) -> None:
        self.store.list_superseded = on

    # -- test and demo helpers ------------------------------------------------------------------

    def add_tweet(self, author: str, text: str, *, lang: str = "en", in_reply_to: str | int | None = None,
                  retweet_of: str | int | None = None, index_delay_s: float | None = None) -> str:
        """Store a post now; returns its id. `index_delay_s`: when search finds it (default `search_delay_s`)."""
        record = self.store.add_tweet(author, text, lang=lang,
                                      in_reply_to=int(in_reply_to) if in_reply_to is not None else None,
                                      retweet_of=int(retweet_of) if retweet_of is not None else None,
                                      index_delay=index_delay_s)
        return str(record.id)

    def retweet(self, author: str, post_id: str | int) -> str:
        """`author` retweets a post, with the text X gives it ("RT @user: " + text, cut to 140)."""
        with self.store.lock:
            previous = self.store.truncated_retweets
            self.store.truncated_retweets = True
            try:
                return str(self.store.add_tweet(author, "", retweet_of=int(post_id)).id)
            finally:
                self.store.truncated_retweets = previous

    def edit_tweet(self, post_id: str | int, text: str) -> str:
        """Edit a post as its author would: returns the new version's id (ValueError where X refuses)."""
        return str(self.store.edit_tweet(int(post_id), text).id)

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
                    "timeline" if path.endswith("/tweets") and path.startswith("/2/users/") else
                    "create_tweet" if request.method == "POST" else "tweet")
        reset = int(self.clock()) + WINDOW_S
        return problem(429, "Too Many Requests", "Too Many Requests", headers={
            "x-rate-limit-limit": str(self.limits[endpoint]), "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset)})

    # -- plumbing ---------------------------------------------------------------------------------

    def _setup_routes(self) -> None:
        self.route("GET", r"/2/tweets/search/recent", self._guard("search", False, self._search))
        self.route("GET", r"/2/users/(?P<id>[^/]+)/mentions", self._guard("mentions", False, self._mentions))
        self.route("GET", r"/2/users/(?P<id>[^/]+)/tweets", self._guard("timeline", False, self._timeline))
        self.route("GET", r"/2/users/me", self._guard("me", True, self._me))
        self.route("GET", r"/2/users/by", self._guard("user_by_username", False, self._users_by))
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
            now = self.clock()
            cap = self.usage_cap
            if endpoint in BILLED and cap is not None and cap.spent(now):
                capped = usage_capped(cap.period, cap.scope, SUPPORT_USER_ID)
                capped.headers.update(headers)
                return capped
            daily = self.daily_post_limits if endpoint == "create_tweet" else None
            if daily is not None and daily.exhausted(now):
                return problem(429, "Too Many Requests", "Too Many Requests", headers={**headers,
                                                                                      **daily.headers(now)})
            try:
                response = handler(request, principal)
            except BadRequest as bad:
                response = invalid_request(bad)
            response.headers.update(headers)
            if daily is not None:
                if response.status == 201:
                    daily.count(now)
                response.headers.update(daily.headers(now))
            return response
        return guarded

    # -- parameters -------------------------------------------------------------------------------

    # -- serialisation ----------------------------------------------------------------------------

    def _tweet_json(self, t: TweetRecord, fields: set[str]) -> dict[str, Any]:
        return tweet_json(t, fields, self.escape_entities, self.long_posts)

    def _bill(self, posts: int) -> None:
        with self._rl_lock:
            self.posts_read += posts
            if self.usage_cap is not None:
                self.usage_cap.bill(posts, self.clock())

    def _page(self, request: Request, records: list[TweetRecord], more: bool) -> Response:
        tweet_fields = list_param(request, "tweet.fields", TWEET_FIELDS)
        user_fields = list_param(request, "user.fields", USER_FIELDS)
        expansions = list_param(request, "expansions", EXPANSIONS)
        meta: dict[str, Any] = {"result_count": len(records)}
        if not records:
            return Response.json({"meta": meta})
        body: dict[str, Any] = {"data": [self._tweet_json(t, tweet_fields) for t in records]}
        self._bill(len(records))
        includes = includes_of(self.store, records, expansions, tweet_fields, user_fields,
                               self.escape_entities, self.long_posts)
        if includes:
            body["includes"] = includes
        meta.update(newest_id=str(records[0].id), oldest_id=str(records[-1].id))
        if more:
            meta["next_token"] = encode_token(records[-1].id)
        body["meta"] = meta
        return Response.json(body)

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
        end = request.arg("end_time")
        if end and parse_time("end_time", end) > self.clock() - END_TIME_MARGIN_S:
            raise BadRequest("end_time", end, f"Invalid 'end_time':'{end}'. 'end_time' must be a minimum of "
                                              f"{END_TIME_MARGIN_S} seconds prior to the request time.")
        min_id, upper = time_bounds(request, until_id)
        token = request.arg("next_token")
        if token:
            before = decode_token("next_token", token)
            upper = before if upper is None else min(upper, before)
        records, more = self.store.search(predicate, max_results=max_results, since_id=since_id,
                                          before_id=upper, min_id=min_id)
        return self._page(request, records, more)

    def _mentions(self, request: Request, principal: str) -> Response:
        params = MENTIONS_PARAMS if self.mentions_exclude else tuple(p for p in MENTIONS_PARAMS if p != "exclude")
        return self._user_posts(request, params, mentions=True)

    def _timeline(self, request: Request, principal: str) -> Response:
        return self._user_posts(request, TIMELINE_PARAMS, mentions=False)

    def _user_posts(self, request: Request, params: tuple[str, ...], *, mentions: bool) -> Response:
        """GET /2/users/:id/mentions (posts mentioning the user) or /tweets (the user's own posts)."""
        check_params(request, params)
        raw_id = request.params["id"]
        if not raw_id.isdigit():
            raise BadRequest("id", raw_id, f"The `id` path parameter value [{raw_id}] must match {ID_RE}")
        user = self.store.user(int(raw_id))
        if user is None:
            return not_found("user", "id", raw_id, f"Could not find user with id: [{raw_id}].")
        max_results = max_results_param(request, 5, 100)
        since_id, until_id = id_param(request, "since_id"), id_param(request, "until_id")
        exclude = frozenset(list_param(request, "exclude", EXCLUDE_VALUES))
        min_id, upper = time_bounds(request, until_id)
        token = request.arg("pagination_token")
        if token:
            before = decode_token("pagination_token", token)
            upper = before if upper is None else min(upper, before)
        if mentions:
            records, more = self.store.mentions(user.username, max_results=max_results, since_id=since_id,
                                                before_id=upper, min_id=min_id, exclude=exclude)
        else:
            records, more = self.store.timeline(user.id, max_results=max_results, since_id=since_id,
                                                before_id=upper, min_id=min_id, exclude=exclude)
        return self._page(request, records, more)

    def _me(self, request: Request, principal: str) -> Response:
        check_params(request, ("user.fields", "expansions", "tweet.fields"))
        assert self.own_user is not None
        return Response.json({"data": user_json(self.own_user, list_param(request, "user.fields",
                                                                                     USER_FIELDS))})

    def _users_by(self, request: Request, principal: str) -> Response:
        """GET /2/users/by?usernames=a,b: the users found, and a Not Found error for each one missing."""
        check_params(request, ("usernames", "user.fields", "expansions", "tweet.fields"))
        names = [n for n in (request.arg("usernames") or "").split(",") if n]
        if not names:
            raise BadRequest("usernames", "", "The `usernames` query parameter can not be empty")
        fields = list_param(request, "user.fields", USER_FIELDS)
        body: dict[str, Any] = {}
        for name in names:
            user = self.store.user_by_username(name)
            if user is not None:
                body.setdefault("data", []).append(user_json(user, fields))
            else:
                body.setdefault("errors", []).append(missing("user", "usernames", name,
                                                             f"Could not find user with usernames: [{name}]."))
        return Response.json(body)

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
        includes = includes_of(self.store, [record], expansions, tweet_fields,
                               list_param(request, "user.fields", USER_FIELDS), self.escape_entities, self.long_posts)
        if includes:
            body["includes"] = includes
        self._bill(1)
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
        length = weighted_length(text) if self.weighted_length_check else len(text)
        if length > LIMIT:
            return problem(403, "Forbidden", TOO_LONG)
        assert self.own_user is not None
        now = self.clock()
        key = (self.own_user.id, text.strip())
        window = self.duplicate_window_s
        with self._rl_lock:
            sent_at = self._sent.get(key)
        if window is not None and sent_at is not None and now - sent_at < window:
            return problem(403, "Forbidden", DUPLICATE)
        reply = payload.get("reply") or {}
        parent_id = str(reply.get("in_reply_to_tweet_id", "")) if isinstance(reply, dict) else ""
        parent = self.store.tweet(int(parent_id)) if parent_id.isdigit() else None
        if reply and parent is None:
            return problem(403, "Forbidden",
                            "You attempted to reply to a Tweet that is deleted or not visible to you.")
        record = self.store.add_tweet(self.own_user.username, text, lang=parent.lang if parent else "en",
                                      in_reply_to=parent.id if parent else None)
        with self._rl_lock:
            self._sent[key] = now
        text = escape_text(record.text, self.escape_entities)
        return Response.json({"data": {"id": str(record.id), "text": text,
                                       "edit_history_tweet_ids": [str(record.id)]}}, 201)
