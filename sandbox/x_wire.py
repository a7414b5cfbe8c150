"""The X API v2 wire format for the emulator: fields, errors, page tokens, post and user JSON.

Stdlib only (and `sandbox.x_text`); used by `sandbox.x_api`. Shapes follow X's answers: problem
bodies (RFC 7807) for errors, `edit_history_tweet_ids` on every post, `note_tweet` only when asked
for, the usage-cap 429 body (`usage_capped`) as X sends it:
{"account_id", "product_name", "title": "UsageCapExceeded", "period": "Monthly", "scope": "Product",
"detail": "Usage cap exceeded: Monthly product cap", "type": ".../2/problems/usage-capped"}
(github.com/xdevplatform/xdk issue 25).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.httpserver import Request, Response
from sandbox.x_store import (
    EDIT_WINDOW_S,
    MAX_EDITS,
    TweetRecord,
    UserRecord,
    XStore,
    snowflake_floor,
    snowflake_time,
)
from sandbox.x_text import cut_long_post

TWEET_FIELDS = ("attachments", "author_id", "context_annotations", "conversation_id", "created_at",
                "edit_controls", "edit_history_tweet_ids", "entities", "geo", "id", "in_reply_to_user_id",
                "lang", "possibly_sensitive", "public_metrics", "referenced_tweets", "reply_settings",
                "source", "text", "withheld", "note_tweet")
USER_FIELDS = ("created_at", "description", "entities", "id", "location", "name", "pinned_tweet_id",
               "profile_image_url", "protected", "public_metrics", "url", "username", "verified",
               "verified_type", "withheld")
EXPANSIONS = ("author_id", "in_reply_to_user_id", "referenced_tweets.id")
COMMON_PARAMS = ("tweet.fields", "user.fields", "expansions", "media.fields", "place.fields", "poll.fields")
SEARCH_PARAMS = (*COMMON_PARAMS, "query", "max_results", "since_id", "until_id", "next_token", "start_time",
                 "end_time", "sort_order")
MENTIONS_PARAMS = (*COMMON_PARAMS, "max_results", "since_id", "until_id", "pagination_token", "start_time",
                   "end_time", "exclude")
TIMELINE_PARAMS = MENTIONS_PARAMS  # GET /2/users/:id/tweets
EXCLUDE_VALUES = ("replies", "retweets")
INVALID = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
USAGE_CAPPED = "https://api.twitter.com/2/problems/usage-capped"
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG = ("Your Tweet text is too long. For more information on how Twitter determines text length see "
            "https://github.com/twitter/twitter-text.")
UNSUPPORTED_AUTH = ("Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint. "
                    "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].")
_TOKEN_PREFIX = "7140dibdnow9c"
ID_RE = "^[0-9]{1,19}$"


class BadRequest(Exception):
    """A parameter is invalid: answered as X's 400 "Invalid Request" problem."""

    def __init__(self, parameter: str, value: str, message: str) -> None:
        super().__init__(message)
        self.parameter, self.value, self.message = parameter, value, message


def problem(status: int, title: str, detail: str, type_: str = "about:blank",
            headers: dict[str, str] | None = None) -> Response:
    """An RFC 7807 problem body, as X v2 answers errors."""
    return Response.json({"title": title, "detail": detail, "type": type_, "status": status}, status, headers)


def iso(epoch: float) -> str:
    """X's timestamp format: 2026-11-20T09:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(param: str, value: str) -> float:
    """An RFC 3339 parameter as epoch seconds."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        message = f"Invalid '{param}':'{value}'. '{param}' must be a RFC3339 date."
        raise BadRequest(param, value, message) from None


def encode_token(post_id: int) -> str:
    """An opaque page token meaning "continue below `post_id`"."""
    digits, n = "", post_id
    while True:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
        if n == 0:
            return _TOKEN_PREFIX + digits


def decode_token(param: str, token: str) -> int:
    """The post id inside a page token; BadRequest when it is not one of ours."""
    bad = BadRequest(param, token, f"The `{param}` query parameter value [{token}] is not valid")
    if not token.startswith(_TOKEN_PREFIX):
        raise bad
    try:
        return int(token[len(_TOKEN_PREFIX):], 36)
    except ValueError:
        raise bad from None


def check_params(request: Request, allowed: tuple[str, ...]) -> None:
    """BadRequest for any query parameter the endpoint does not know (X refuses those)."""
    for name in request.query:
        if name not in allowed:
            raise BadRequest(name, request.arg(name) or "",
                             f"The query parameter [{name}] is not one of [{','.join(allowed)}]")


def list_param(request: Request, name: str, allowed: tuple[str, ...]) -> set[str]:
    """A comma-separated parameter such as tweet.fields, checked against `allowed`."""
    raw = request.arg(name)
    if not raw:
        return set()
    values = set(raw.split(","))
    for value in values:
        if value not in allowed:
            raise BadRequest(name, value, f"The `{name}` query parameter value [{value}] is not one of "
                                          f"[{','.join(allowed)}]")
    return values


def id_param(request: Request, name: str) -> int | None:
    """A post-id parameter (since_id, until_id) as int."""
    raw = request.arg(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise BadRequest(name, raw, f"The `{name}` query parameter value [{raw}] must match {ID_RE}")
    return int(raw)


def max_results_param(request: Request, low: int, high: int) -> int:
    """max_results within the endpoint's bounds (default 10)."""
    raw = request.arg("max_results")
    if raw is None:
        return 10
    if not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
        raise BadRequest("max_results", raw, f"The `max_results` query parameter value [{raw}] is not "
                                             f"between {low} and {high}")
    return int(raw)


def escape_text(text: str, escape: bool = True) -> str:
    """X's entity escaping of post texts."""
    if escape:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def usage_capped(period: str, scope: str, account_id: int) -> Response:
    """X's 429 for a spent usage cap (period "Daily"/"Monthly", scope "Product"/"Account")."""
    return Response.json({"account_id": account_id, "product_name": "standard-basic", "title": "UsageCapExceeded",
                          "period": period, "scope": scope,
                          "detail": f"Usage cap exceeded: {period} {scope.lower()} cap", "type": USAGE_CAPPED}, 429)


def shown_text(t: TweetRecord, long_posts: bool) -> str:
    """`text` as X shows it: with `long_posts`, a post over 280 is cut (the whole is in note_tweet)."""
    if not long_posts or len(t.text) <= 140:  # nothing of 140 code points or fewer weighs over 280
        return t.text
    if t.cut_text is None:
        t.cut_text = cut_long_post(t.text)
    return t.cut_text


def tweet_json(t: TweetRecord, fields: set[str], escape: bool = True, long_posts: bool = False) -> dict[str, Any]:
    """A post as the API shows it with `tweet.fields` = `fields`."""
    text = shown_text(t, long_posts)
    out: dict[str, Any] = {"id": str(t.id), "text": escape_text(text, escape),
                           "edit_history_tweet_ids": [str(i) for i in t.edit_history]}
    if "note_tweet" in fields and text != t.text:
        out["note_tweet"] = {"text": escape_text(t.text, escape)}
    if "edit_controls" in fields:
        chain = t.edit_history
        first_at = t.created_at if chain[0] == t.id else snowflake_time(chain[0])
        eligible = not t.is_retweet and t.in_reply_to_user_id in (None, t.author.id)
        out["edit_controls"] = {"edits_remaining": max(0, MAX_EDITS + 1 - len(chain)) if eligible else 0,
                                "is_edit_eligible": eligible, "editable_until": iso(first_at + EDIT_WINDOW_S)}
    if "author_id" in fields:
        out["author_id"] = str(t.author.id)
    if "created_at" in fields:
        out["created_at"] = iso(t.created_at)
    if "conversation_id" in fields:
        out["conversation_id"] = str(t.conversation_id)
    if "lang" in fields:
        out["lang"] = t.lang
    if "public_metrics" in fields:
        out["public_metrics"] = {"retweet_count": t.retweet_count, "reply_count": t.reply_count,
                                 "like_count": t.like_count, "quote_count": 0, "bookmark_count": 0,
                                 "impression_count": t.like_count * 20 + t.author.followers // 10}
    if "referenced_tweets" in fields:
        refs = []
        if t.in_reply_to_tweet_id is not None:
            refs.append({"type": "replied_to", "id": str(t.in_reply_to_tweet_id)})
        if t.retweet_of is not None:
            refs.append({"type": "retweeted", "id": str(t.retweet_of)})
        if refs:
            out["referenced_tweets"] = refs
    if "in_reply_to_user_id" in fields and t.in_reply_to_user_id is not None:
        out["in_reply_to_user_id"] = str(t.in_reply_to_user_id)
    if "possibly_sensitive" in fields:
        out["possibly_sensitive"] = False
    if "reply_settings" in fields:
        out["reply_settings"] = "everyone"
    if "entities" in fields:
        entities: dict[str, Any] = {}
        mentions = [{"start": m.start(), "end": m.end(), "username": m.group(1)}
                    for m in re.finditer(r"@(\w{1,15})", t.text)]
        tags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)}
                for m in re.finditer(r"#(\w+)", t.text)]
        if mentions:
            entities["mentions"] = mentions
        if tags:
            entities["hashtags"] = tags
        if entities:
            out["entities"] = entities
    return out


def includes_of(store: XStore, records: list[TweetRecord], expansions: set[str], tweet_fields: set[str],
                user_fields: set[str], escape: bool, long_posts: bool) -> dict[str, Any]:
    """An answer's `includes`: the users and posts the `expansions` ask for."""
    users: dict[int, UserRecord] = {}
    for t in records:
        if "author_id" in expansions:
            users.setdefault(t.author.id, t.author)
        if "in_reply_to_user_id" in expansions and t.in_reply_to_user_id is not None:
            replied = store.user(t.in_reply_to_user_id)
            if replied is not None:
                users.setdefault(replied.id, replied)
    includes: dict[str, Any] = {}
    if users:
        includes["users"] = [user_json(u, user_fields) for u in users.values()]
    if "referenced_tweets.id" in expansions:
        refs = {r for t in records for r in (t.in_reply_to_tweet_id, t.retweet_of) if r is not None}
        found = [rec for r in sorted(refs, reverse=True) if (rec := store.tweet(r)) is not None]
        if found:
            includes["tweets"] = [tweet_json(rec, tweet_fields, escape, long_posts) for rec in found]
    return includes


def user_json(u: UserRecord, fields: set[str]) -> dict[str, Any]:
    """A user as the API shows it with `user.fields` = `fields`."""
    out: dict[str, Any] = {"id": str(u.id), "name": u.name, "username": u.username}
    if "created_at" in fields:
        out["created_at"] = iso(u.created_at)
    if "public_metrics" in fields:
        out["public_metrics"] = {"followers_count": u.followers, "following_count": u.following,
                                 "tweet_count": u.tweet_count, "listed_count": u.followers // 100,
                                 "like_count": u.tweet_count * 3}
    if "description" in fields:
        out["description"] = u.description
    if "protected" in fields:
        out["protected"] = False
    if "verified" in fields:
        out["verified"] = False
    if "profile_image_url" in fields:
        out["profile_image_url"] = f"https://pbs.twimg.com/profile_images/{u.id}/avatar_normal.jpg"
    return out


def missing(kind: str, parameter: str, value: str, detail: str) -> dict[str, Any]:
    """One "Not Found Error" of an answer's `errors`."""
    return {"value": value, "detail": detail, "title": "Not Found Error", "resource_type": kind,
            "parameter": parameter, "resource_id": value, "type": NOT_FOUND}


def not_found(kind: str, parameter: str, value: str, detail: str) -> Response:
    """X's 200 answer with a "Not Found Error" in `errors` (how lookups report missing users and posts)."""
    return Response.json({"errors": [missing(kind, parameter, value, detail)]})


def invalid_request(bad: BadRequest) -> Response:
    """X's 400 "Invalid Request" problem naming the parameter."""
    return Response.json({"errors": [{"parameters": {bad.parameter: [bad.value]}, "message": bad.message}],
                          "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                          "type": INVALID}, 400)


def time_bounds(request: Request, until_id: int | None) -> tuple[int, int | None]:
    """start_time/end_time (and until_id) as the lowest id and the id bound below which posts lie."""
    min_id, upper = 0, until_id
    start, end = request.arg("start_time"), request.arg("end_time")
    if start:
        min_id = snowflake_floor(parse_time("start_time", start))
    if end:
        end_id = snowflake_floor(parse_time("end_time", end))
        upper = end_id if upper is None else min(upper, end_id)
    return min_id, upper


# -- limits beyond the 15-minute windows -------------------------------------------------------------

def _period_key(period: str, epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%d") if period == "Daily" else moment.strftime("%Y-%m")


@dataclass
class UsageCap:
    """A usage cap on posts read (Post consumption) per UTC day or month, for the product or account."""

    posts: int
    period: str = "Monthly"  # "Daily" | "Monthly"
    scope: str = "Product"  # "Product" | "Account"
    used: int = 0
    key: str = ""

    def spent(self, now: float) -> bool:
        self._roll(now)
        return self.used >= self.posts

    def bill(self, posts: int, now: float) -> None:
        self._roll(now)
        self.used += posts

    def _roll(self, now: float) -> None:
        key = _period_key(self.period, now)
        if key != self.key:
            self.key, self.used = key, 0


@dataclass
class DailyPostLimit:
    """POST /2/tweets' 24-hour limits, per user and per app, and the headers X reports them in:
    x-user-limit-24hour-limit/-remaining/-reset and x-app-limit-24hour-limit/-remaining/-reset."""

    user: int = 100  # Basic: 100 / 24 h per user, 1667 / 24 h per app (tweepy discussion 2129)
    app: int = 1667
    windows: dict[str, list[float]] = field(default_factory=dict)  # "user"/"app" -> [reset, used]

    def _window(self, who: str, now: float) -> list[float]:
        window = self.windows.get(who)
        if window is None or now >= window[0]:
            window = self.windows[who] = [float(int(now) + 24 * 3600), 0]
        return window

    def exhausted(self, now: float) -> bool:
        return (self._window("user", now)[1] >= self.user) or (self._window("app", now)[1] >= self.app)

    def count(self, now: float) -> None:
        for who in ("user", "app"):
            self._window(who, now)[1] += 1

    def headers(self, now: float) -> dict[str, str]:
        out: dict[str, str] = {}
        for who, limit in (("user", self.user), ("app", self.app)):
            reset, used = self._window(who, now)
            out.update({f"x-{who}-limit-24hour-limit": str(limit),
                        f"x-{who}-limit-24hour-remaining": str(max(0, int(limit - used))),
                        f"x-{who}-limit-24hour-reset": str(int(reset))})
        return out
