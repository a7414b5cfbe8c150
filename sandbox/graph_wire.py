"""The Graph API wire format for the emulator: field expansion, times, cursors, paging and error bodies.

Stdlib only; used by `sandbox.graph_api`. Field expansion follows the Graph syntax far enough for
the adapters: `id,message,from{id,name},comments.filter(stream).summary(true).limit(0){id}`, and any
`name(value)` modifier (`mentioned_comment.comment_id(17950000000000001){id,text}`).

Error messages as Graph words them (Meta's "Handling Errors" guide and reference pages, and answers
quoted in public SDK issues): 100/33 "Unsupported get request. Object with ID '...' does not exist,
cannot be loaded due to missing permissions, or does not support this operation. Please read the
Graph API documentation at https://developers.facebook.com/docs/graph-api" (GraphMethodException,
HTTP 400); "(#341) Feed action request limit reached"; "(#368) The action attempted has been deemed
abusive or is otherwise disallowed" (the User reference's error table); "(#506) Duplicate status
message"; "(#80002) There have been too many calls to this Instagram account. Wait a bit and try
again." (Instagram's business-use-case limit, docs/instagram-wire.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sandbox.httpserver import Request, Response

GRAPH_TIME = "%Y-%m-%dT%H:%M:%S+0000"
MAX_LIMIT = 100
DEFAULT_LIMIT = 25
RATE_MESSAGES = {4: "(#4) Application request limit reached", 17: "(#17) User request limit reached",
                 32: "(#32) Page request limit reached",
                 613: "(#613) Calls to this api have exceeded the rate limit.",
                 80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
                 80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again."}
# refusals of a write (POST): 341 "Application limit reached", 368 "Temporarily blocked for policies violations"
ACTION_MESSAGES = {341: "(#341) Feed action request limit reached",
                   368: "(#368) The action attempted has been deemed abusive or is otherwise disallowed"}


class GraphError(Exception):
    """An error the emulator answers with Graph's `{"error": {...}}` body."""

    def __init__(self, status: int, message: str, code: int, type_: str = "OAuthException",
                 subcode: int | None = None, transient: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type = status, message, code, type_
        self.subcode, self.transient, self.headers = subcode, transient, headers or {}


def trace_id(seed: str) -> str:
    """A Graph-looking fbtrace_id, deterministic for `seed`."""
    return base64.b64encode(hashlib.sha1(seed.encode()).digest()).decode()[:11].replace("/", "_")


def error_body(exc: GraphError, trace: str) -> Response:
    """Graph's error answer for `exc`."""
    error: dict[str, Any] = {"message": exc.message, "type": exc.type, "code": exc.code}
    if exc.subcode is not None:
        error["error_subcode"] = exc.subcode
    if exc.transient:
        error["is_transient"] = True
    error["fbtrace_id"] = trace
    return Response.json({"error": error}, exc.status, dict(exc.headers))


def gone(object_id: str, verb: str = "get") -> GraphError:
    """Code 100 / subcode 33: the object does not exist (deleted, hidden or never there)."""
    return GraphError(400, f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
                      "loaded due to missing permissions, or does not support this operation. Please read the "
                      "Graph API documentation at https://developers.facebook.com/docs/graph-api",
                      100, "GraphMethodException", 33)


def invalid(message: str) -> GraphError:
    """Code 100: an invalid parameter."""
    return GraphError(400, f"(#100) {message}", 100)


def duplicate() -> GraphError:
    """Code 506: the same message as the page's previous comment on that object ("Duplicate Post")."""
    return GraphError(400, "(#506) Duplicate status message", 506)


def require(granted: set[str], code: int, *permissions: str) -> None:
    """Code `code` (10 or 200), HTTP 403, naming the `permissions` missing from `granted`."""
    missing = [p for p in permissions if p not in granted]
    if missing:
        names = " and ".join(f"'{p}'" for p in missing)
        raise GraphError(403, f"(#{code}) This endpoint requires the {names} permission. Refer to "
                         "https://developers.facebook.com/docs/permissions for details.", code)


def permissions_error() -> GraphError:
    """Code 200, as Graph words it without details: what a user access token gets when it writes as a page."""
    return GraphError(403, "(#200) Permissions error", 200)


def form_params(request: Request) -> dict[str, str]:
    """Query and form-encoded body parameters (the body wins), first values."""
    params = {k: v[0] for k, v in request.query.items() if v}
    if request.body and "json" not in request.headers.get("content-type", ""):
        body = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k: v[0] for k, v in body.items() if v})
    return params


def token_of(request: Request) -> str | None:
    """The access token of a request: an `OAuth` / `Bearer` Authorization header or `access_token`."""
    auth = request.headers.get("authorization", "")
    if auth.startswith(("OAuth ", "Bearer ")):
        return auth.split(" ", 1)[1].strip()
    return form_params(request).get("access_token")


# -- times ----------------------------------------------------------------------------------------

def graph_time(epoch: float) -> str:
    """Graph's timestamp format: 2026-11-20T08:00:00+0000."""
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime(GRAPH_TIME)


def parse_time(param: str, value: str) -> float:
    """`since` / `until`: Unix seconds or ISO 8601 (naive means UTC)."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"The parameter {param} must be a Unix timestamp or an ISO 8601 time, got '{value}'") \
            from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def minutes_until(now: float, until: float) -> int:
    """Whole minutes (rounded up) from `now` to `until`, never negative."""
    return max(0, math.ceil((until - now) / 60))


# -- cursors --------------------------------------------------------------------------------------

def encode_cursor(created: float, seq: int) -> str:
    """An opaque cursor for the item at position (created, seq)."""
    raw = json.dumps([created, seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(param: str, cursor: str) -> tuple[float, int]:
    """The position inside a cursor; code 100 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, seq = json.loads(raw)
        return float(created), int(seq)
    except (ValueError, TypeError):
        raise invalid(f"The {param} cursor is invalid") from None


def slice_page(items: list[Any], limit: int, after: str | None, before: str | None,
               descending: bool) -> tuple[list[Any], bool, bool]:
    """The page of `items` (ordered by `.key`) after or before a cursor: (page, more before it, more after it)."""
    if after:
        key = decode_cursor("after", after)
        start = next((i for i, item in enumerate(items) if (item.key < key if descending else item.key > key)),
                     len(items))
    elif before:
        key = decode_cursor("before", before)
        end = next((i for i, item in enumerate(items) if not (item.key > key if descending else item.key < key)),
                   len(items))
        start = max(0, end - limit)
        return items[start:end], start > 0, end < len(items)
    else:
        start = 0
    end = start + limit
    return items[start:end], start > 0, end < len(items)


# -- fields ---------------------------------------------------------------------------------------

@dataclass
class FieldSpec:
    """One requested field: `name.mod(arg).mod(arg){sub,fields}`."""

    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    sub: list[FieldSpec] | None = None


def parse_fields(text: str) -> list[FieldSpec]:
    """Parse a `fields` parameter; code 100 on a syntax error."""
    specs, pos = _parse_list(text, 0)
    if pos != len(text):
        raise invalid(f"Syntax error in fields at character {pos}: '{text}'")
    return specs


def _parse_list(text: str, pos: int) -> tuple[list[FieldSpec], int]:
    specs: list[FieldSpec] = []
    while pos < len(text) and text[pos] != "}":
        spec, pos = _parse_field(text, pos)
        specs.append(spec)
        while pos < len(text) and text[pos] in ", ":
            pos += 1
    return specs, pos


def _parse_field(text: str, pos: int) -> tuple[FieldSpec, int]:
    start = pos
    while pos < len(text) and (text[pos].isalnum() or text[pos] == "_"):
        pos += 1
    if pos == start:
        raise invalid(f"Syntax error in fields at character {pos}: '{text}'")
    spec = FieldSpec(text[start:pos])
    while pos < len(text) and text[pos] == ".":  # modifiers: `.name(value)`, any name, any value without ")"
        open_at = pos + 1
        while open_at < len(text) and (text[open_at].isalnum() or text[open_at] == "_"):
            open_at += 1
        close_at = text.find(")", open_at)
        if open_at == pos + 1 or open_at >= len(text) or text[open_at] != "(" or close_at < 0:
            raise invalid(f"Syntax error in fields at character {pos}: '{text}'")
        spec.modifiers[text[pos + 1:open_at]] = text[open_at + 1:close_at]
        pos = close_at + 1
    if pos < len(text) and text[pos] == "{":
        spec.sub, pos = _parse_list(text, pos + 1)
        if pos >= len(text) or text[pos] != "}":
            raise invalid(f"Syntax error in fields: unbalanced braces in '{text}'")
        pos += 1
    return spec, pos


def format_fields(specs: list[FieldSpec]) -> str:
    """`specs` written back as a `fields` parameter (for `paging.next` links of expanded edges)."""
    out = []
    for spec in specs:
        text = spec.name + "".join(f".{k}({v})" for k, v in spec.modifiers.items())
        out.append(text + (f"{{{format_fields(spec.sub)}}}" if spec.sub is not None else ""))
    return ",".join(out)


def check_fields(specs: list[FieldSpec], allowed: tuple[str, ...], node_type: str) -> None:
    """Code 100 for a field the node type does not have."""
    for spec in specs:
        if spec.name not in allowed:
            raise invalid(f"Tried accessing nonexisting field ({spec.name}) on node type ({node_type})")


def limit_param(value: str | None, default: int = DEFAULT_LIMIT) -> int:
    """The `limit` parameter, capped at MAX_LIMIT."""
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise invalid(f"The parameter limit must be an integer, got '{value}'") from None
    if limit < 0:
        raise invalid("The parameter limit must not be negative")
    return min(limit, MAX_LIMIT)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")
