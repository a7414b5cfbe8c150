"""Graph API errors as `PlatformError`s: one table from error code to what it means for openear.

Codes and their recovery are Meta's "Handling Errors" guide
(https://developers.facebook.com/docs/graph-api/guides/error-handling): 1 / 2 temporary (wait and
retry), 4 / 17 / 32 / 613 and 80001-80014 rate limits (the usage headers estimate when access comes
back), 102 / 190 the token, 10 and 200-299 a permission, 341 "Application limit reached" (wait and
retry), 368 "Temporarily blocked for policies violations" (wait and retry), 506 "Duplicate Post"
("duplicate posts cannot be published consecutively"); 100 with subcode 33 / GraphMethodException
"Unsupported get request. Object with ID '...' does not exist, cannot be loaded due to missing
permissions, or does not support this operation" is a deleted or hidden object.

341 and 368 are `RateLimited`, not `Transient`: Meta says "wait and retry", and both are limits on
*actions* (posting) that a quick retry does not lift. `Transient` would retry the reply within
seconds, on an exponential backoff capped at the dispatcher's attempts, so every retry inside the
block is one more refused action and the reply finally fails for good; `RateLimited` parks the
reply until `retry_at` (the usage headers' `estimated_time_to_regain_access`, else an hour) without
using up its attempts, and the agent reads which limit applies (`scope`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from listener.platforms.base import (
    AuthFailed,
    ContentRejected,
    Duplicate,
    PlatformError,
    RateLimited,
    TargetGone,
    Transient,
)

USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage")
PERMISSIONS = ("pages_read_engagement", "pages_read_user_content", "pages_manage_engagement")
RATE_LIMIT_FALLBACK = timedelta(minutes=15)
ACTION_BLOCK_FALLBACK = timedelta(hours=1)  # 341 / 368: Meta gives no duration; an hourly retry is cheap
_TOO_LONG = re.compile(r"too long|at most \d+ characters|longer than", re.IGNORECASE)


@dataclass(frozen=True)
class Service:
    """Who speaks Graph here, for the messages: Facebook pages, or Instagram accounts through their page."""

    name: str  # "Facebook"
    owner: str  # "page": what the token belongs to, in messages
    key: str  # the config key of the token, with {id}
    read_needs: str  # the permissions reading needs, in words
    write_needs: str  # the permissions writing needs, in words
    permissions: tuple[str, ...]  # every permission openear uses
    token_help: str  # how to get a new token
    env_example: str  # an environment variable name for it


FACEBOOK = Service("Facebook", "page", 'platforms.facebook.page_tokens["{id}"]',
                   "pages_read_engagement and pages_read_user_content", "pages_manage_engagement", PERMISSIONS,
                   "Generate a new long-lived page access token (Graph API Explorer or Meta Business Suite, by "
                   "someone who can moderate the page)", "OPENEAR_FB_PAGE_TOKEN")


@dataclass(frozen=True)
class Rule:
    """What one Graph error code means: `kind` names the exception; rate limits carry their scope."""

    kind: str  # "rate" | "token" | "permission" | "gone" | "duplicate" | "transient"
    scope: str = ""
    fallback: timedelta = RATE_LIMIT_FALLBACK


CODES: dict[int, Rule] = {
    1: Rule("transient"),
    2: Rule("transient"),
    4: Rule("rate", "app rate limit (code 4)"),
    17: Rule("rate", "user rate limit (code 17)"),
    32: Rule("rate", "page rate limit (code 32)"),
    613: Rule("rate", "call-rate limit (code 613)"),
    **{code: Rule("rate", f"business use case rate limit (code {code})") for code in range(80001, 80015)},
    341: Rule("rate", "application action limit (code 341)", ACTION_BLOCK_FALLBACK),
    368: Rule("rate", "temporary block for policy violations (code 368)", ACTION_BLOCK_FALLBACK),
    506: Rule("duplicate"),
    102: Rule("token"),
    190: Rule("token"),
    10: Rule("permission"),
    **{code: Rule("permission") for code in range(200, 300)},
    100: Rule("gone"),  # only with subcode 33 or GraphMethodException; otherwise an invalid parameter
}
TOKEN_SUBCODES = {463: "it has expired", 460: "its user changed the password", 467: "it is invalid"}


def retry_at(headers: Mapping[str, str] | None, now: datetime, fallback: timedelta = RATE_LIMIT_FALLBACK) -> datetime:
    """now + the largest estimated_time_to_regain_access (minutes) in the usage headers, else now + fallback."""
    minutes = 0.0
    for name in USAGE_HEADERS:
        try:
            usage = json.loads((headers or {}).get(name) or "null")
        except ValueError:
            continue
        entries = [usage] if isinstance(usage, dict) else []
        if isinstance(usage, dict):
            for value in usage.values():
                entries.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict))
        for entry in entries:
            value = entry.get("estimated_time_to_regain_access")
            if isinstance(value, int | float) and not isinstance(value, bool):
                minutes = max(minutes, float(value))
    return now + (timedelta(minutes=minutes) if minutes > 0 else fallback)


def translate(exc: Any, what: str, page_id: str, *, writing: bool, status: int | None,
              headers: Mapping[str, str] | None, now: datetime, scrub: Callable[[str], str],
              service: Service = FACEBOOK) -> PlatformError:
    """The PlatformError for a `facebook.GraphAPIError` raised while `what` (messages name the config key);
    `page_id` is the id of the token's owner (a page, or an Instagram account)."""
    result: dict[str, Any] = exc.result if isinstance(exc.result, dict) else {}
    error: dict[str, Any] = result["error"] if isinstance(result.get("error"), dict) else {}
    code = exc.code if isinstance(exc.code, int) and not isinstance(exc.code, bool) else None
    subcode = error.get("error_subcode")
    kind = str(error.get("type") or "")
    message = str(exc.message if isinstance(exc.message, str) else exc)
    detail = scrub(message)[:300]
    said = f"(code {code}{f', subcode {subcode}' if subcode else ''}: {detail})"
    key, name = service.key.format(id=page_id), service.name
    rule = CODES.get(code) if code is not None else None
    if rule is not None and rule.kind == "rate":
        at = retry_at(headers, now, rule.fallback)
        return RateLimited(f"{name} {rule.scope} reached while {what} {said}; retry after "
                           f"{at:%Y-%m-%d %H:%M:%S} UTC", at, scope=rule.scope)
    if rule is not None and rule.kind == "token":
        why = TOKEN_SUBCODES.get(subcode if isinstance(subcode, int) else 0, "it is invalid or expired")
        return AuthFailed(f"{name} rejected the access token of {service.owner} {page_id} while {what}: {why} "
                          f"{said}. {service.token_help} and put it into the environment variable that {key} "
                          f"references in config.yaml (for example {service.env_example})")
    if rule is not None and rule.kind == "permission":
        needed = service.write_needs if writing else service.read_needs
        return AuthFailed(f"{name} refused {what}: the token lacks a permission {said}. This needs "
                          f"{needed} (openear uses {', '.join(service.permissions)}): grant them to the app, "
                          f"generate a new token and update {key}")
    if rule is not None and rule.kind == "duplicate":
        return Duplicate(f"{name} refused {what} as a duplicate of the {service.owner}'s previous comment there "
                         f"{said}")
    if rule is not None and rule.kind == "gone" and (subcode == 33 or kind == "GraphMethodException"):
        return TargetGone(f"{name}: the object is gone (deleted, hidden or never there) while {what} {said}")
    if code == 100 and writing and _TOO_LONG.search(message):
        return ContentRejected(f"{name} refused the text as too long while {what} {said}")
    if code is None or (rule is not None and rule.kind == "transient") or error.get("is_transient") \
            or (status or 0) >= 500:
        return Transient(f"{name} server trouble (HTTP {status or '?'}) while {what} {said}")
    return PlatformError(f"{name} refused {what} {said}")
