"""The X API v2 wire format for the emulator: fields, errors, page tokens, post and user JSON.

Stdlib only; used by `sandbox.x_api`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sandbox.httpserver import Request, Response
from sandbox.x_store import TweetRecord, UserRecord

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
                   "end_time")
INVALID = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
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


def tweet_json(t: TweetRecord, fields: set[str], escape: bool = True) -> dict[str, Any]:
    """A post as the API shows it with `tweet.fields` = `fields`."""
    out: dict[str, Any] = {"id": str(t.id), "text": escape_text(t.text, escape),
                           "edit_history_tweet_ids": [str(t.id)]}
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


def not_found(kind: str, parameter: str, value: str, detail: str) -> Response:
    """X's 200 answer with a "Not Found Error" in `errors` (how lookups report missing users and posts)."""
    return Response.json({"errors": [{"value": value, "detail": detail, "title": "Not Found Error",
                                      "resource_type": kind, "parameter": parameter, "resource_id": value,
                                      "type": NOT_FOUND}]})
