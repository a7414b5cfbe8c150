"""The X (Twitter) adapter: recent search and account mentions through tweepy, replies as the brand.

Only `tweepy.Client` talks to the API. With `base_url` set (the sandbox emulator, a recording proxy)
a `RewritingAdapter` on the client's session sends tweepy's requests there instead of
api.twitter.com; it also gives every request a timeout, which tweepy does not.

No tweepy type leaves this module: fetch returns `MentionData`, errors are the `PlatformError`
family of `listener.platforms.base`. Error messages name the config key to fix, never a token.
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
    FetchResult,
    PlatformError,
    RateLimited,
    Source,
    TargetGone,
    Transient,
)
from listener.platforms.http import DEFAULT_TIMEOUT, mount_rewriter
from listener.platforms.x.cursor import XCursor
from models.config import Config
from models.domain import AuthorData, MentionData, clean_json, clean_text

log = logging.getLogger(__name__)
T = TypeVar("T")
NAME = "x"  # its key in listener.platforms.SPECS


@dataclass
class XBrand:
    """One brand on X: search queries to run and the brand's own accounts (handles without "@")."""

    name: str
    queries: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)


class _StaleCursor(Exception):
    """X refused a since_id older than the search window."""


def _unescape(text: str) -> str:
    """Undo the entity escaping X applies to post texts (only &amp; &lt; &gt;)."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _strip_leading_mentions(text: str) -> str:
    words = text.split(" ")
    while words and words[0].startswith("@"):
        words.pop(0)
    return " ".join(words).strip()


class XPlatform:
    """PlatformAdapter for X API v2."""

    platform = NAME
    MAX_TEXT = SPECS[NAME].reply_limit  # the one home of the limit: listener.platforms.SPECS
    PAGE_SIZE = 100  # search/recent: 10-100
    MENTIONS_PAGE_SIZE = 100  # users/:id/mentions: 5-100
    # Pages per fetch. Below the 450 requests of a search window, so one poll never rate-limits itself;
    # a larger backlog is drained over the next polls (see `fetch`), never skipped.
    MAX_PAGES = 300
    RATE_LIMIT_FALLBACK = timedelta(minutes=15)
    HOSTS = ("https://api.twitter.com", "https://api.x.com")
    TWEET_FIELDS = ["created_at", "author_id", "conversation_id", "lang", "public_metrics",
                    "referenced_tweets", "in_reply_to_user_id"]
    USER_FIELDS = ["username", "name", "public_metrics", "created_at"]
    USER_CONTEXT_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")

    def __init__(self, brands: list[XBrand], *, bearer_token: str, consumer_key: str = "",
                 consumer_secret: str = "", access_token: str = "", access_token_secret: str = "",
                 base_url: str | None = None, session: requests.Session | None = None,
                 clock: Callable[[], datetime] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 page_size: int | None = None) -> None:
        self.brands = {b.name: b for b in brands}
        self._user_keys = {"consumer_key": consumer_key, "consumer_secret": consumer_secret,
                           "access_token": access_token, "access_token_secret": access_token_secret}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.page_size = page_size or self.PAGE_SIZE
        self._client = tweepy.Client(
            bearer_token=bearer_token, consumer_key=consumer_key or None,
            consumer_secret=consumer_secret or None, access_token=access_token or None,
            access_token_secret=access_token_secret or None,
            return_type=dict, wait_on_rate_limit=False)
        if session is not None:
            self._client.session = session
        mount_rewriter(self._client.session, list(self.HOSTS), base_url, timeout)
        self._user_ids: dict[str, str] = {}

    # -- PlatformAdapter ------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Per brand: one source per search query, one per own account's mentions."""
        out: list[Source] = []
        for brand in self.brands.values():
            for i, query in enumerate(brand.queries):
                out.append(Source(f"x:{brand.name}:search:{i}", NAME, brand.name, "search", query))
            for handle in brand.accounts:
                handle = handle.lstrip("@")
                name = f"x:{brand.name}:mentions:{handle}"
                out.append(Source(name, NAME, brand.name, "mentions", handle))
        return out

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """Posts newer than `cursor`, oldest first, and the cursor to store once they are saved.

        The cursor (x/cursor.py) is a since_id. X answers newest first, so a backlog larger than
        MAX_PAGES pages is drained newest part first: the cursor then also holds `until` and
        `newest`, and the next polls read on downwards with `until_id` until nothing is left.
        """
        parsed = XCursor.parse(cursor)
        since, until, pending_newest = parsed.since, parsed.until, parsed.newest
        brand = self._brand(source.brand)
        fields: dict[str, Any] = {"tweet_fields": self.TWEET_FIELDS, "expansions": ["author_id"],
                                  "user_fields": self.USER_FIELDS}
        if source.kind == "search":
            method: Callable[..., Any] = self._client.search_recent_tweets
            args: tuple[Any, ...] = (source.target,)
            fields["max_results"] = self.page_size
            what = f"searching {source.target!r}"
        elif source.kind == "mentions":
            method = self._client.get_users_mentions
            args = (self._user_id(source.target),)
            fields["max_results"] = min(self.page_size, self.MENTIONS_PAGE_SIZE)
            what = f"reading the mentions of @{source.target}"
        else:
            raise ValueError(f"X has no source kind {source.kind!r}")
        if until:
            fields["until_id"] = until
        try:
            tweets, users, newest, more = self._call(what, lambda: self._collect(method, args, fields, since))
        except _StaleCursor:
            log.warning("X: cursor %s of %s is older than the search window; reading the whole window",
                        since, source.name)
            since = None
            tweets, users, newest, more = self._call(what, lambda: self._collect(method, args, fields, None))
        mentions = [self._to_mention(brand, source, t, users) for t in reversed(tweets)]
        top = pending_newest or newest
        if more and tweets:
            log.info("X: %s has a backlog beyond %d pages; the next polls read on below %s", source.name,
                     self.MAX_PAGES, tweets[-1]["id"])
            return FetchResult(mentions, XCursor(since, tweets[-1]["id"], top).dump())
        return FetchResult(mentions, XCursor(top or since).dump())

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Reply publicly to `mention` as the authenticated account; returns the new post's id."""
        length = SPECS[NAME].reply_length(text)
        if length > self.MAX_TEXT:
            raise PlatformError(f"the reply is {length} characters long; X allows {self.MAX_TEXT}")
        self._require_user_context("posting a reply")
        what = f"replying to post {mention.external_id}"
        answer = self._call(what, lambda: self._client.create_tweet(
            text=text, in_reply_to_tweet_id=mention.external_id, user_auth=True), user_context=True)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise Transient(f"X answered {what} without a post id; the reply may exist: call find_reply "
                            "before trying again")
        return str(data["id"])

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        """Our reply to `mention` with `text`, found by searching its conversation (crash recovery)."""
        brand = self._brand(mention.brand)
        conversation = mention.conversation_id or mention.external_id
        handles = " OR ".join(f"from:{h.lstrip('@')}" for h in brand.accounts)
        if not handles:
            return None
        query = f"conversation_id:{conversation} ({handles})"
        fields: dict[str, Any] = {"tweet_fields": ["author_id", "referenced_tweets", "conversation_id"],
                                  "max_results": 100}
        what = f"looking for our reply to post {mention.external_id}"
        method = self._client.search_recent_tweets
        try:
            tweets, _, _, _ = self._call(what, lambda: self._collect(method, (query,), fields,
                                                                  mention.external_id))
        except _StaleCursor:
            tweets, _, _, _ = self._call(what, lambda: self._collect(method, (query,), fields, None))
        wanted = _strip_leading_mentions(clean_text(text)[0])
        for tweet in tweets:
            refs = tweet.get("referenced_tweets") or []
            replied_to = [r.get("id") for r in refs if isinstance(r, dict) and r.get("type") == "replied_to"]
            if replied_to and mention.external_id not in replied_to:
                continue
            found = _strip_leading_mentions(clean_text(_unescape(tweet["text"]))[0])
            if found == wanted:
                return str(tweet["id"])
        return None

    # -- calls and errors -----------------------------------------------------------------------

    def _collect(self, method: Callable[..., Any], args: tuple[Any, ...], fields: dict[str, Any],
                 since_id: str | None) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], str | None, bool]:
        """Read up to MAX_PAGES pages: posts newest first, authors by id, the first page's newest_id, more left."""
        tweets: list[dict[str, Any]] = []
        users: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()
        newest: str | None = None
        pages = 0
        more = False
        try:
            for page in tweepy.Paginator(method, *args, limit=self.MAX_PAGES, since_id=since_id, **fields):
                if not isinstance(page, dict):
                    raise Transient("X answered with something that is not a JSON object")
                meta = page.get("meta") or {}
                data = page.get("data") or []
                if not isinstance(meta, dict) or not isinstance(data, list):
                    raise Transient("X answered with a malformed page (meta/data of the wrong type)")
                if pages == 0 and data:
                    newest = str(meta.get("newest_id") or data[0].get("id"))
                pages += 1
                more = bool(meta.get("next_token"))
                for tweet in data:
                    if not isinstance(tweet, dict) or not isinstance(tweet.get("id"), str) \
                            or not isinstance(tweet.get("text"), str):
                        raise Transient("X answered with a malformed post (no id or text)")
                    if tweet["id"] not in seen:
                        seen.add(tweet["id"])
                        tweets.append(tweet)
                for user in (page.get("includes") or {}).get("users") or []:
                    if isinstance(user, dict) and isinstance(user.get("id"), str):
                        users[user["id"]] = user
        except tweepy.BadRequest as exc:
            if since_id is not None and any("since_id" in (e.get("parameters") or {})
                                            for e in exc.api_errors if isinstance(e, dict)):
                raise _StaleCursor() from exc
            raise
        return tweets, users, newest, more

    def _call(self, what: str, fn: Callable[[], T], user_context: bool = False) -> T:
        """Run one SDK interaction and translate its failures into PlatformError subclasses."""
        try:
            return fn()
        except (PlatformError, _StaleCursor):
            raise
        except tweepy.TooManyRequests as exc:
            now = self.clock()
            reset = getattr(exc, "reset_time", None)
            retry_at = (datetime.fromtimestamp(reset, UTC) if reset else now + self.RATE_LIMIT_FALLBACK)
            retry_at = max(retry_at, now + timedelta(seconds=1))
            message = f"X rate limit reached while {what}; retry after {retry_at:%Y-%m-%d %H:%M:%S} UTC"
            raise RateLimited(message, retry_at) from exc
        except tweepy.Unauthorized as exc:
            raise AuthFailed(self._auth_message(what, user_context)) from exc
        except tweepy.Forbidden as exc:
            detail = "; ".join(str(m) for m in exc.api_messages) or "403 Forbidden"
            if "deleted or not visible" in detail:
                raise TargetGone(f"X: the post is gone while {what} ({detail})") from exc
            raise AuthFailed(f"X refused {what} (403): {detail}. The app or account lacks access: check the "
                             "app's access level and permissions (Read and Write for replies) in the X "
                             "developer portal, then regenerate platforms.x.access_token/access_token_secret"
                             ) from exc
        except tweepy.NotFound as exc:
            raise TargetGone(f"X: not found while {what}") from exc
        except tweepy.TwitterServerError as exc:
            raise Transient(f"X server error (HTTP {exc.response.status_code}) while {what}") from exc
        except tweepy.BadRequest as exc:
            detail = "; ".join(str(m) for m in exc.api_messages) or "400 Bad Request"
            raise PlatformError(f"X rejected the request while {what}: {detail} (check the queries and "
                                "accounts under platforms.x)") from exc
        except tweepy.HTTPException as exc:
            raise Transient(f"X answered HTTP {exc.response.status_code} while {what}") from exc
        except requests.Timeout as exc:
            raise Transient(f"X did not answer in time while {what}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON decode errors included
            raise Transient(f"X answered with a malformed body while {what}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:  # connection errors, broken or truncated bodies
            raise Transient(f"X request failed while {what}: {type(exc).__name__}") from exc
        except tweepy.TweepyException as exc:
            raise Transient(f"X client error while {what}: {type(exc).__name__}") from exc

    def _auth_message(self, what: str, user_context: bool) -> str:
        if user_context:
            return (f"X rejected the user-context credentials (401) while {what}: check "
                    "platforms.x.consumer_key, platforms.x.consumer_secret, platforms.x.access_token and "
                    "platforms.x.access_token_secret "
                    "(X developer portal > your app > Keys and tokens; the access token must belong to the "
                    "brand's support account)")
        return (f"X rejected the app bearer token (401) while {what}: set platforms.x.bearer_token to the "
                "Bearer Token of your X app (developer portal > your app > Keys and tokens)")

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

    def _user_id(self, handle: str) -> str:
        handle = handle.lstrip("@")
        if handle not in self._user_ids:
            answer = self._call(f"looking up @{handle}", lambda: self._client.get_user(username=handle))
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise TargetGone(f"X account @{handle} does not exist or is suspended; fix the accounts of "
                                 "this brand under platforms.x")
            self._user_ids[handle] = data["id"]
        return self._user_ids[handle]

    # -- mapping --------------------------------------------------------------------------------

    def _to_mention(self, brand: XBrand, source: Source, tweet: dict[str, Any],
                    users: dict[str, dict[str, Any]]) -> MentionData:
        post_id = tweet["id"]
        author_id = str(tweet.get("author_id") or "")
        user = users.get(author_id) or {}
        username = user.get("username") if isinstance(user.get("username"), str) else None
        text, reasons = clean_text(_unescape(tweet["text"]))
        if reasons:
            log.warning("X post %s: text changed for storage: %s", post_id, "; ".join(reasons))
        metrics = user.get("public_metrics")
        followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
        refs = tweet.get("referenced_tweets")
        in_reply_to = next((str(r["id"]) for r in refs or [] if isinstance(r, dict)
                            and r.get("type") == "replied_to" and r.get("id")), None)
        own = {a.lstrip("@").casefold() for a in brand.accounts}
        lang = tweet.get("lang")
        name = user.get("name")
        author = AuthorData(
            platform=NAME, external_id=author_id, handle=username,
            display_name=clean_text(name)[0] if isinstance(name, str) else None,
            followers=followers if isinstance(followers, int) else None,
            profile_url=f"https://x.com/{username}" if username else None)
        conversation = tweet.get("conversation_id")
        return MentionData(
            platform=NAME, external_id=post_id, text=text, created_at=self._created_at(tweet),
            author=author, brand=brand.name, source=source.name,
            language=lang if isinstance(lang, str) and lang != "und" else None,
            conversation_id=str(conversation) if conversation else None, in_reply_to_id=in_reply_to,
            permalink=f"https://x.com/{username or 'i/web'}/status/{post_id}",
            is_own=username is not None and username.casefold() in own,
            raw=clean_json({"tweet": tweet, "author": user}))

    def _created_at(self, tweet: dict[str, Any]) -> datetime:
        raw = tweet.get("created_at")
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                log.warning("X post %s: unreadable created_at %r", tweet.get("id"), raw)
        return self.clock()


def from_config(config: Config, *, clock: Callable[[], datetime] | None = None,
                session_factory: Callable[[], requests.Session] | None = None) -> XPlatform | None:
    """The adapter for the brands' `queries.x` and `accounts.x` with `platforms.x`'s credentials;
    None when X is not configured or not enabled."""
    x = config.platforms.x
    if x is None or not x.enabled:
        return None

    def secret(value: Any) -> str:
        return value.get_secret_value() if value is not None else ""

    brands = [XBrand(b.name, list(b.queries.x), list(b.accounts.x)) for b in config.brands]
    return XPlatform(brands, bearer_token=secret(x.bearer_token), consumer_key=secret(x.consumer_key),
                     consumer_secret=secret(x.consumer_secret), access_token=secret(x.access_token),
                     access_token_secret=secret(x.access_token_secret), base_url=x.base_url,
                     session=session_factory() if session_factory else None, clock=clock)
