"""The X (Twitter) adapter: recent search, account mentions and the accounts' own posts through tweepy,
replies as the brand.

Only `tweepy.Client` talks to the API. With `base_url` set (the sandbox emulator, a recording proxy)
a `RewritingAdapter` on the client's session sends tweepy's requests there instead of
api.twitter.com; it also gives every request a timeout, which tweepy does not.

No tweepy type leaves this package: fetch returns `MentionData` (reading.py: long posts, retweets,
edits), errors are the `PlatformError` family of `listener.platforms.base` (errors.py: which 403 is
which, which limit a 429 is). Error messages name the config key to fix, never a token.

Sources, per brand: one per search query (`x:<brand>:search:<i>`); per own account (accounts.x)
its mentions (`x:<brand>:mentions:<handle>`, GET /2/users/:id/mentions) and its own posts
(`x:<brand>:own:<handle>`, GET /2/users/:id/tweets, replies included, retweets excluded). The own
source is the brand's voice: every answer the brand posts, from openear or any other client, comes
back `is_own` with `in_reply_to_id`, so the intake closes what it answers. Search alone would miss
them: an answer starts with the customer's handle and rarely names the brand, and queries usually
exclude `-from:` the brand. The timeline reaches back 3,200 posts and needs no search indexing.

Polling (the cursor is x/cursor.py):
- since_id polling, newest first; a backlog beyond one poll's read budget (`read_per_poll`,
  platforms.x.read_budget.per_poll) or MAX_PAGES pages is drained downwards with until_id over the
  next polls; a day budget per source (`read_per_day`) counts in the cursor and, once spent, stops
  the poll with `interrupted` = RateLimited(next 00:00 UTC, scope "read budget per day"); a 429
  after some pages keeps what was read (`FetchResult.interrupted`).
- Search indexing delay: X's search finds a post some 10-30 s after it was written, so a post can
  turn up below a since_id already stored and would never be read. Search sources therefore move
  their since_id (the watermark) only up to posts older than `settle` (30 s); the younger posts
  above it are read again by the next poll and not returned twice (the cursor's `recent`). Those
  re-reads are not counted against the read budget, and X counts a post returned twice in a UTC
  day once against its Post cap ("Posts are deduplicated daily", docs.x.com tweet cap). Over
  RECENT_MAX young posts the watermark moves to the newest (logged). A post search indexes more
  than `settle` late can still be missed. (The other design, end_time = now - 30 s, delays every
  post by 30 s and moves each poll's window with the clock.)
- A since_id older than the search window (X answers 400 naming since_id, e.g. after a week without
  a matching post or a long outage) is dropped and the whole window read. The cursor returned is
  then never the refused one: with no post in the window it is a since_id made from the time
  STALE_FLOOR_AGE (5 min) ago (`snowflake_at`), which X takes for the next 7 days.
- Mentions ask for exclude=retweets (shown in docs.x.com's mentions quickstart; X's OpenAPI spec
  2.159 lists no `exclude` there, so a 400 naming it turns it off for the adapter's life), and
  retweets are skipped on every source (a share is not a customer speaking; reading.py).

Replies: local weighted-length check (twitter-text via SPECS, URLs count 23) -> ContentRejected;
the reply goes to the newest revision of an edited post. `find_reply` reads the brand accounts'
own timelines (GET /2/users/:id/tweets since the mention), which need no search indexing.
`preflight` looks up the configured accounts with the bearer token (one users/by request; nothing
when no account is configured) and, with user-context keys, checks GET /2/users/me is one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
import tweepy

from listener.platforms import SPECS
from listener.platforms.base import (
    AuthFailed,
    ContentRejected,
    FetchResult,
    PlatformError,
    RateLimited,
    Source,
    TargetGone,
    Transient,
)
from listener.platforms.http import DEFAULT_TIMEOUT, mount_rewriter
from listener.platforms.x.cursor import XCursor
from listener.platforms.x.errors import next_utc_day, translate
from listener.platforms.x.reading import (
    Batch,
    comparable,
    newest_per_chain,
    read_pages,
    replied_to,
    snowflake_at,
    snowflake_time,
    to_mention,
)
from models.config import Config
from models.domain import MentionData

log = logging.getLogger(__name__)
T = TypeVar("T")
NAME = "x"  # its key in listener.platforms.SPECS
_SDK_ERRORS = (tweepy.TweepyException, requests.RequestException, ValueError, KeyError, TypeError, AttributeError)


class _QuietExclude(logging.Filter):
    """tweepy 4.17 does not list `exclude` for get_users_mentions, which X accepts (docs.x.com user
    mention quickstart); it sends it anyway and logs "Unexpected parameter: exclude" each time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Unexpected parameter: exclude"


logging.getLogger("tweepy.client").addFilter(_QuietExclude())


@dataclass
class XBrand:
    """One brand on X: search queries to run and the brand's own accounts (handles without "@")."""

    name: str
    queries: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)


class _StaleCursor(Exception):
    """X refused a since_id older than the search window."""


class _NoExclude(Exception):
    """X refused `exclude` on the mentions timeline (its OpenAPI spec lists none there)."""


@dataclass(frozen=True)
class _Plan:
    """How to read one source: the SDK method and its arguments, X's page bounds."""

    method: Callable[..., Any]
    args: tuple[Any, ...]
    fields: dict[str, Any]
    what: str
    page_size: int
    min_page: int
    token_param: str
    settles: bool  # search: the watermark waits out the indexing delay
    kind: str  # the source's kind: "search", "mentions" or "own"


class XPlatform:
    """PlatformAdapter for X API v2."""

    platform = NAME
    MAX_TEXT = SPECS[NAME].reply_limit  # the one home of the limit: listener.platforms.SPECS
    PAGE_SIZE = 100  # search/recent: 10-100
    MENTIONS_PAGE_SIZE = 100  # users/:id/mentions and /tweets: 5-100
    # Pages per fetch at most (besides the read budget). Below the 450 requests of a search window,
    # so one poll never rate-limits itself; a larger backlog is drained over the next polls.
    MAX_PAGES = 300
    SETTLE = timedelta(seconds=30)  # search finds a post within this long after it was written
    # After X refused a since_id as older than its search window and the whole window was read: the
    # since_id stored is at least this old (a margin for clock skew), and X takes it for 7 days.
    STALE_FLOOR_AGE = timedelta(minutes=5)
    RECENT_MAX = 500  # unsettled posts a search cursor remembers at most
    FIND_PAGES = 10  # timeline pages (of 100) find_reply reads per account at most
    HOSTS = ("https://api.twitter.com", "https://api.x.com")
    TWEET_FIELDS = ["created_at", "author_id", "conversation_id", "lang", "public_metrics",
                    "referenced_tweets", "in_reply_to_user_id", "edit_history_tweet_ids", "note_tweet"]
    USER_FIELDS = ["username", "name", "public_metrics", "created_at"]
    USER_CONTEXT_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")

    def __init__(self, brands: list[XBrand], *, bearer_token: str, consumer_key: str = "",
                 consumer_secret: str = "", access_token: str = "", access_token_secret: str = "",
                 base_url: str | None = None, session: requests.Session | None = None,
                 clock: Callable[[], datetime] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 page_size: int | None = None, read_per_poll: int = 1000, read_per_day: int | None = None,
                 settle: timedelta | None = None) -> None:
        self.brands = {b.name: b for b in brands}
        self._user_keys = {"consumer_key": consumer_key, "consumer_secret": consumer_secret,
                           "access_token": access_token, "access_token_secret": access_token_secret}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.page_size = page_size or self.PAGE_SIZE
        self.read_per_poll = read_per_poll
        self.read_per_day = read_per_day
        self.settle = self.SETTLE if settle is None else settle
        self._client = tweepy.Client(
            bearer_token=bearer_token, consumer_key=consumer_key or None,
            consumer_secret=consumer_secret or None, access_token=access_token or None,
            access_token_secret=access_token_secret or None,
            return_type=dict, wait_on_rate_limit=False)
        if session is not None:
            self._client.session = session
        mount_rewriter(self._client.session, list(self.HOSTS), base_url, timeout)
        self._user_ids: dict[str, str] = {}
        self._me: str | None = None  # the handle of the user-context account, once preflight saw it
        self._mentions_exclude = True  # until X refuses exclude=retweets on the mentions timeline

    # -- PlatformAdapter ------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Per brand: one source per search query; per own account its mentions and its own posts."""
        out: list[Source] = []
        for brand in self.brands.values():
            for i, query in enumerate(brand.queries):
                out.append(Source(f"x:{brand.name}:search:{i}", NAME, brand.name, "search", query))
            handles: dict[str, str] = {}
            for account in brand.accounts:  # each account once, as first written
                handles.setdefault(account.lstrip("@").casefold(), account.lstrip("@"))
            for handle in handles.values():
                for kind in ("mentions", "own"):
                    out.append(Source(f"x:{brand.name}:{kind}:{handle}", NAME, brand.name, kind, handle))
        return out

    def preflight(self) -> None:
        """Check the credentials before the first poll (see the module doc for what is asked)."""
        try:
            self._preflight()
        except RateLimited as exc:
            raise Transient(f"X cannot be asked now ({exc}); the polls will report") from exc

    def _preflight(self) -> None:
        handles = list(dict.fromkeys(a.lstrip("@").casefold() for b in self.brands.values() for a in b.accounts))
        if handles:
            self._lookup_users(handles)
        given = [key for key in self.USER_CONTEXT_KEYS if self._user_keys[key]]
        if not given:
            return
        self._require_user_context("checking the user-context credentials")
        answer = self._call("checking the user-context credentials (GET /2/users/me)",
                            lambda: self._client.get_me(user_auth=True), user_context=True)
        data = answer.get("data") if isinstance(answer, dict) else None
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str):
            raise Transient("X answered GET /2/users/me without a username")
        if handles and username.casefold() not in handles:
            raise AuthFailed(f"platforms.x.access_token belongs to @{username}, which is none of the brands' X "
                             f"accounts ({', '.join('@' + h for h in handles)}): replies would be posted as "
                             f"@{username}. Generate the access token and secret while logged in as the brand's "
                             "support account")
        if not handles:
            log.warning("X: no brand names an X account; replies will be posted as @%s", username)
        self._me = username

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """Posts newer than `cursor`, oldest first, and the cursor to store once they are saved."""
        state = XCursor.parse(cursor)
        brand = self._brand(source.brand)
        plan = self._plan(source)
        now = self.clock()
        today = now.astimezone(UTC).date().isoformat() if self.read_per_day is not None else None
        read_today = state.read if today is not None and state.day == today else 0
        day_left = None if self.read_per_day is None else self.read_per_day - read_today
        if day_left is not None and day_left < plan.min_page:
            kept = XCursor(state.since, state.until, state.newest, state.recent, today, read_today)
            return FetchResult([], kept.dump(), self._day_spent(source, now))
        allowance = self.read_per_poll if day_left is None else min(self.read_per_poll, day_left)
        floor: str | None = None  # after a refused since_id: where the window read from scratch starts
        try:
            batch = self._read(plan, state, allowance)
        except _NoExclude:
            log.warning("X refuses exclude=retweets on the mentions timeline; %s reads retweets and skips them",
                        source.name)
            self._mentions_exclude = False
            plan = self._plan(source)
            batch = self._read(plan, state, allowance)
        except _StaleCursor:
            log.warning("X: cursor %s of %s is older than the search window; reading the whole window",
                        state.since, source.name)
            state = XCursor(recent=state.recent)
            floor = snowflake_at(now - max(self.settle, self.STALE_FLOOR_AGE))
            batch = self._read(plan, state, allowance)
        read_today += batch.read
        recent = set(state.recent)
        fresh = [t for t in batch.tweets if t["id"] not in recent]
        mentions = [to_mention(t, batch.users, brand=brand.name, accounts=brand.accounts, source=source,
                               clock=self.clock, own_post=plan.kind == "own") for t in newest_per_chain(fresh)]
        top = state.newest or batch.first_newest
        if batch.more and batch.tweets:  # pages left: drain on from the oldest post read
            keep = recent | {t["id"] for t in batch.tweets} if plan.settles else set()
            newest_kept = tuple(sorted(keep, key=int)[-self.RECENT_MAX:])
            nxt = XCursor(state.since, batch.tweets[-1]["id"], top, newest_kept, today, read_today)
            stopped = batch.stopped
            if stopped is None and day_left is not None and day_left - batch.read < plan.min_page:
                stopped = self._day_spent(source, now)
            log.info("X: %s has more to read than this poll took; the next polls read on below %s", source.name,
                     nxt.until)
            return FetchResult(mentions, nxt.dump(), stopped)
        # the window was read whole after a refused since_id: everything up to `floor` is read, so a
        # window without posts still gives a since_id X takes (None would keep the refused one stored)
        if plan.settles:
            since, unsettled = self._settled(state.since or floor, top, batch, recent, now)
        else:
            since, unsettled = top or state.since or floor, ()
        return FetchResult(mentions, XCursor(since, None, None, unsettled, today, read_today).dump())

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Reply publicly to `mention` (its newest revision) as the authenticated account; the new post's id."""
        length = SPECS[NAME].reply_length(text)
        if length > self.MAX_TEXT:
            raise ContentRejected(f"The reply is {length} characters long as X counts them (links count 23, emoji "
                                  f"and CJK characters 2); X allows {self.MAX_TEXT}. Shorten the reply")
        self._require_user_context("posting a reply")
        target = mention.revision or mention.external_id
        what = f"replying to post {target}"
        answer = self._call(what, lambda: self._client.create_tweet(
            text=text, in_reply_to_tweet_id=target, user_auth=True), user_context=True)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise Transient(f"X answered {what} without a post id; the reply may exist: call find_reply "
                            "before trying again")
        return str(data["id"])

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        """Our reply to `mention` (or to its revision) with `text`, from the brand accounts' own timelines."""
        brand = self._brand(mention.brand)
        targets = {i for i in (mention.external_id, mention.revision) if i}
        since = min(targets, key=int)
        handles = list(dict.fromkeys(h.lstrip("@").casefold() for h in [*([self._me] if self._me else []),
                                                                            *brand.accounts]))
        wanted = comparable(text)
        base = {"since_id": since, "tweet_fields": ["referenced_tweets", "conversation_id", "created_at"],
                "exclude": ["retweets"]}
        for handle in handles:
            user_id = self._user_id(handle)
            what = f"looking for our reply to post {mention.external_id} in @{handle}'s posts"

            def call(params: dict[str, Any], user_id: str = user_id, what: str = what) -> Any:
                return self._call(what, lambda: self._client.get_users_tweets(user_id, **base, **params))

            batch = read_pages(call, token_param="pagination_token", page_size=self.MENTIONS_PAGE_SIZE, min_page=5,
                               allowance=self.FIND_PAGES * self.MENTIONS_PAGE_SIZE, max_pages=self.FIND_PAGES)
            if batch.stopped is not None:
                raise batch.stopped
            for tweet in batch.tweets:
                if targets & set(replied_to(tweet)) and comparable(tweet["text"]) == wanted:
                    return str(tweet["id"])
        return None

    # -- reading --------------------------------------------------------------------------------

    def _plan(self, source: Source) -> _Plan:
        fields: dict[str, Any] = {"tweet_fields": self.TWEET_FIELDS, "expansions": ["author_id"],
                                  "user_fields": self.USER_FIELDS}
        if source.kind == "search":
            return _Plan(self._client.search_recent_tweets, (source.target,), fields,
                         f"searching {source.target!r}", self.page_size, 10, "next_token",
                         self.settle > timedelta(0), source.kind)
        if source.kind == "mentions":
            if self._mentions_exclude:  # docs.x.com shows it; X's OpenAPI spec does not: see _NoExclude
                fields["exclude"] = ["retweets"]
            return _Plan(self._client.get_users_mentions, (self._user_id(source.target),),
                         fields, f"reading the mentions of @{source.target}",
                         min(self.page_size, self.MENTIONS_PAGE_SIZE), 5, "pagination_token", False, source.kind)
        if source.kind == "own":  # the account's own posts, replies included (GET /2/users/:id/tweets)
            fields["exclude"] = ["retweets"]  # in X's OpenAPI spec for this timeline
            return _Plan(self._client.get_users_tweets, (self._user_id(source.target),),
                         fields, f"reading @{source.target}'s own posts",
                         min(self.page_size, self.MENTIONS_PAGE_SIZE), 5, "pagination_token", False, source.kind)
        raise ValueError(f"X has no source kind {source.kind!r}")

    def _read(self, plan: _Plan, state: XCursor, allowance: int) -> Batch:
        base = dict(plan.fields)
        if state.since:
            base["since_id"] = state.since
        if state.until:
            base["until_id"] = state.until

        def page(params: dict[str, Any]) -> Any:
            def go() -> Any:
                try:
                    return plan.method(*plan.args, **base, **params)
                except tweepy.BadRequest as exc:
                    named = {name for e in exc.api_errors if isinstance(e, dict)
                             for name in (e.get("parameters") or {})}
                    if "since_id" in base and "since_id" in named:
                        raise _StaleCursor() from exc
                    if "exclude" in base and "exclude" in named and plan.kind == "mentions":
                        raise _NoExclude() from exc
                    raise
            return self._call(plan.what, go)

        return read_pages(page, token_param=plan.token_param, page_size=plan.page_size, min_page=plan.min_page,
                          allowance=allowance, max_pages=self.MAX_PAGES, skip=frozenset(state.recent))

    def _settled(self, since: str | None, top: str | None, batch: Batch, recent: set[str],
                 now: datetime) -> tuple[str | None, tuple[str, ...]]:
        """The new watermark (the newest post read that search has surely indexed) and the posts above it."""
        known = {t["id"] for t in batch.tweets} | recent | ({top} if top else set())
        horizon = now - self.settle
        candidates = [i for i in known if snowflake_time(i) <= horizon] + ([since] if since else [])
        watermark = max(candidates, key=int, default=None)
        above = sorted((i for i in known if watermark is None or int(i) > int(watermark)), key=int)
        if len(above) > self.RECENT_MAX:
            log.info("X: over %d posts in the last %s; the search cursor moves to the newest", self.RECENT_MAX,
                     self.settle)
            return above[-1], ()
        return watermark, tuple(above)

    def _day_spent(self, source: Source, now: datetime) -> RateLimited:
        retry_at = next_utc_day(now)
        return RateLimited(f"{source.name} has read its {self.read_per_day} posts for today "
                           f"(platforms.x.read_budget.per_day); it reads on at {retry_at:%Y-%m-%d %H:%M} UTC",
                           retry_at, scope="read budget per day")

    # -- calls and accounts ---------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], user_context: bool = False) -> T:
        """Run one SDK interaction and translate its failures into PlatformError subclasses."""
        try:
            return fn()
        except (PlatformError, _StaleCursor, _NoExclude):
            raise
        except _SDK_ERRORS as exc:
            raise translate(exc, what, self.clock(), user_context) from exc

    def _require_user_context(self, what: str) -> None:
        missing = [key for key in self.USER_CONTEXT_KEYS if not self._user_keys[key]]
        if missing:
            keys = ", ".join(f"platforms.x.{key}" for key in missing)
            raise AuthFailed(f"{what} on X needs user-context credentials; set {keys}")

    def _brand(self, name: str) -> XBrand:
        try:
            return self.brands[name]
        except KeyError:
            raise ValueError(f"no X brand {name!r} is configured") from None

    def _lookup_users(self, handles: list[str]) -> None:
        """Resolve the accounts' ids in one request per 100 (GET /2/users/by); missing ones are logged."""
        for i in range(0, len(handles), 100):
            chunk = handles[i:i + 100]
            answer = self._call("looking up the brands' X accounts",
                                lambda chunk=chunk: self._client.get_users(usernames=chunk))  # type: ignore[misc]
            for user in (answer.get("data") if isinstance(answer, dict) else None) or []:
                if isinstance(user, dict) and isinstance(user.get("id"), str) and isinstance(user.get("username"), str):
                    self._user_ids[user["username"].casefold()] = user["id"]
            for handle in chunk:
                if handle not in self._user_ids:
                    log.warning("X account @%s does not exist or is suspended; fix the accounts under platforms.x",
                                handle)

    def _user_id(self, handle: str) -> str:
        handle = handle.lstrip("@").casefold()
        if handle not in self._user_ids:
            answer = self._call(f"looking up @{handle}", lambda: self._client.get_user(username=handle))
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise TargetGone(f"X account @{handle} does not exist or is suspended; fix the accounts of "
                                 "this brand under platforms.x")
            self._user_ids[handle] = data["id"]
        return self._user_ids[handle]


def from_config(config: Config, *, clock: Callable[[], datetime] | None = None,
                session_factory: Callable[[], requests.Session] | None = None) -> XPlatform | None:
    """The adapter for the brands' `queries.x` and `accounts.x` with `platforms.x`'s credentials and read
    budget; None when X is not configured or not enabled."""
    x = config.platforms.x
    if x is None or not x.enabled:
        return None

    def secret(value: Any) -> str:
        return value.get_secret_value() if value is not None else ""

    brands = [XBrand(b.name, list(b.queries.x), list(b.accounts.x)) for b in config.brands]
    return XPlatform(brands, bearer_token=secret(x.bearer_token), consumer_key=secret(x.consumer_key),
                     consumer_secret=secret(x.consumer_secret), access_token=secret(x.access_token),
                     access_token_secret=secret(x.access_token_secret), base_url=x.base_url,
                     session=session_factory() if session_factory else None, clock=clock,
                     read_per_poll=x.read_budget.per_poll, read_per_day=x.read_budget.per_day)
