"""What X's errors mean: tweepy exceptions -> the `PlatformError` family, with messages that say what to do.

403s are told apart by X's `detail` (and `reason` / `type` of the problem body), never lumped into
AuthFailed:

- "You are not allowed to create a Tweet with duplicate content." (v1.1: code 187 "Status is a
  duplicate.") -> `Duplicate`: the account already posted that text; the reply may be ours;
- "Your Tweet text is too long. ..." (code 186) -> `ContentRejected`;
- "... a Tweet that is deleted or not visible to you." -> `TargetGone`;
- "Reply to this conversation is not allowed because you have not been mentioned or otherwise
  engaged by the author ..." -> `PlatformError` (X's reply restriction; nothing to retry or fix);
- real access problems -> `AuthFailed`: reason "client-not-enrolled" / type ".../client-forbidden"
  (the app is in no Project with v2 access), type ".../unsupported-authentication" (app-only token
  where user context is needed), ".../oauth1-permissions" ("Your client app is not configured with
  the appropriate oauth1 app permissions for this endpoint."), "You are not permitted to perform
  this action.";
- any other 403 -> `PlatformError` with X's words.

429s become `RateLimited` whose `retry_at` follows the limit that applies (`scope` names it): a
usage-cap problem body (title "UsageCapExceeded", period "Daily"/"Monthly", scope
"Product"/"Account") waits for the next UTC day or month; an exhausted 24-hour posting limit
(x-user-limit-24hour-remaining / x-app-limit-24hour-remaining "0") for its -reset; otherwise the
15-minute window's x-rate-limit-reset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy

from listener.platforms.base import (
    AuthFailed,
    ContentRejected,
    Duplicate,
    PlatformError,
    RateLimited,
    TargetGone,
    Transient,
)

RATE_LIMIT_FALLBACK = timedelta(minutes=15)
USER_KEYS_HINT = ("check platforms.x.consumer_key, platforms.x.consumer_secret, platforms.x.access_token and "
                  "platforms.x.access_token_secret (X developer portal > your app > Keys and tokens; the access "
                  "token must belong to the brand's support account)")
_ACCESS_TYPES = ("/client-forbidden", "/unsupported-authentication", "/oauth1-permissions")


def body_of(response: Any) -> dict[str, Any]:
    """The JSON object X answered, or {} (not JSON, not an object)."""
    try:
        body = response.json()
    except (ValueError, AttributeError):
        return {}
    return body if isinstance(body, dict) else {}


def auth_message(what: str, user_context: bool) -> str:
    if user_context:
        return f"X rejected the user-context credentials (401) while {what}: {USER_KEYS_HINT}"
    return (f"X rejected the app bearer token (401) while {what}: set platforms.x.bearer_token to the "
            "Bearer Token of your X app (developer portal > your app > Keys and tokens)")


def translate(exc: Exception, what: str, now: datetime, user_context: bool = False) -> PlatformError:
    """The PlatformError for a failed SDK interaction; non-SDK exceptions become Transient."""
    if isinstance(exc, tweepy.TooManyRequests):
        return rate_limited(exc.response, what, now)
    if isinstance(exc, tweepy.Unauthorized):
        return AuthFailed(auth_message(what, user_context))
    if isinstance(exc, tweepy.Forbidden):
        return forbidden(exc, what)
    if isinstance(exc, tweepy.NotFound):
        return TargetGone(f"X: not found while {what}")
    if isinstance(exc, tweepy.TwitterServerError):
        return Transient(f"X server error (HTTP {exc.response.status_code}) while {what}")
    if isinstance(exc, tweepy.BadRequest):
        detail = _detail(exc) or "400 Bad Request"
        if "text is too long" in detail.lower() or 186 in exc.api_codes:
            return ContentRejected(_too_long(what, detail))
        return PlatformError(f"X rejected the request while {what}: {detail} (check the queries and accounts "
                             "under platforms.x)")
    if isinstance(exc, tweepy.HTTPException):
        return Transient(f"X answered HTTP {exc.response.status_code} while {what}")
    if isinstance(exc, requests.Timeout):
        return Transient(f"X did not answer in time while {what}")
    if isinstance(exc, (ValueError, KeyError, TypeError, AttributeError)):  # JSON decode errors included
        return Transient(f"X answered with a malformed body while {what}: {type(exc).__name__}")
    if isinstance(exc, requests.RequestException):  # connection errors, broken or truncated bodies
        return Transient(f"X request failed while {what}: {type(exc).__name__}")
    return Transient(f"X client error while {what}: {type(exc).__name__}")


def _detail(exc: tweepy.HTTPException) -> str:
    return "; ".join(str(m) for m in exc.api_messages)


def _too_long(what: str, detail: str) -> str:
    return (f"X refused the reply as too long while {what} ({detail}). X counts links as 23 characters and "
            "emoji and CJK characters as 2; shorten the reply to 280 by that count and send it again")


def forbidden(exc: tweepy.Forbidden, what: str) -> PlatformError:
    """A 403, told apart by X's detail, reason and problem type."""
    body = body_of(exc.response)
    detail = _detail(exc) or str(body.get("title") or "403 Forbidden")
    low = detail.lower()
    reason = str(body.get("reason") or "")
    kind = str(body.get("type") or "")
    if "duplicate content" in low or "status is a duplicate" in low or 187 in exc.api_codes:
        return Duplicate(f"X refused the post as a duplicate while {what}: this account already posted the same "
                         "text. It may be our own reply from an earlier attempt (find_reply settles that); "
                         "otherwise word the reply differently")
    if "text is too long" in low or 186 in exc.api_codes:
        return ContentRejected(_too_long(what, detail))
    if "deleted or not visible" in low or "not visible to you" in low:
        return TargetGone(f"X: the post is gone while {what} ({detail})")
    if "reply to this conversation is not allowed" in low or "not been mentioned or otherwise engaged" in low:
        return PlatformError(f"X does not let this account reply to that post while {what}: its author has not "
                             "mentioned or otherwise engaged the account (X's reply restriction). Answer it "
                             "on x.com or by a new post that mentions them")
    if reason == "client-not-enrolled" or kind.endswith("/client-forbidden"):
        return AuthFailed(f"X refused {what} (403 {reason or 'client-forbidden'}): the X app of "
                          "platforms.x.bearer_token / platforms.x.consumer_key is not attached to a Project with "
                          f"access to this endpoint (X: {detail}). Attach the app to a Project in the X "
                          "developer portal, or use keys of an app that is")
    if kind.endswith("/unsupported-authentication") or "application-only is forbidden" in low:
        return AuthFailed(f"X refused {what} (403): this endpoint needs user-context credentials, not the app "
                          f"bearer token (X: {detail}); {USER_KEYS_HINT}")
    if kind.endswith("/oauth1-permissions") or "oauth1 app permissions" in low:
        return AuthFailed(f"X refused {what} (403): the app's permissions do not allow it (X: {detail}). Set "
                          "App permissions to 'Read and write' in the X developer portal (User authentication "
                          "settings), then regenerate platforms.x.access_token and platforms.x.access_token_secret")
    if "not permitted to perform this action" in low or any(kind.endswith(t) for t in _ACCESS_TYPES):
        return AuthFailed(f"X refused {what} (403): {detail}. The account behind platforms.x.access_token may be "
                          "locked, suspended or restricted, or the app lacks this access: check the account on "
                          "x.com and the app in the X developer portal")
    return PlatformError(f"X refused {what} (403): {detail}")


def next_utc_day(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def next_utc_month(now: datetime) -> datetime:
    moment = now.astimezone(UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def _reset(headers: Any, prefix: str) -> datetime | None:
    raw = headers.get(f"{prefix}-reset")
    if raw is None or not str(raw).strip().isdigit():
        return None
    return datetime.fromtimestamp(int(str(raw).strip()), UTC)


def rate_limited(response: Any, what: str, now: datetime) -> RateLimited:
    """The RateLimited for X's 429 `response`: retry_at is the reset of the limit that was hit."""
    body = body_of(response)
    if body.get("title") == "UsageCapExceeded" or str(body.get("type") or "").endswith("/usage-capped"):
        period = str(body.get("period") or "Monthly")
        level = str(body.get("scope") or "Product")
        retry_at = next_utc_day(now) if period.lower() == "daily" else next_utc_month(now)
        detail = body.get("detail") or "Usage cap exceeded"
        message = (f"X's {period.lower()} usage cap ({level.lower()} level) is used up while {what} (X: {detail}); "
                   f"X serves no more posts until {retry_at:%Y-%m-%d %H:%M} UTC. Raise the cap in the X developer "
                   "console, or lower platforms.x.read_budget so it lasts the period")
        return RateLimited(message, retry_at, scope=f"{period.lower()} usage cap ({level.lower()})")
    headers = getattr(response, "headers", None) or {}
    spent: list[tuple[datetime, str]] = []
    for prefix, name in (("x-rate-limit", "15-minute window"), ("x-user-limit-24hour", "24-hour posting limit (user)"),
                         ("x-app-limit-24hour", "24-hour posting limit (app)")):
        reset = _reset(headers, prefix)
        if reset is not None and str(headers.get(f"{prefix}-remaining", "")).strip() == "0":
            spent.append((reset, name))
    if spent:
        retry_at, scope = max(spent)
    else:
        window = _reset(headers, "x-rate-limit")
        retry_at, scope = (window or now + RATE_LIMIT_FALLBACK), "15-minute window"
    retry_at = max(retry_at, now + timedelta(seconds=1))
    message = f"X rate limit ({scope}) reached while {what}; retry after {retry_at:%Y-%m-%d %H:%M:%S} UTC"
    return RateLimited(message, retry_at, scope=scope)
