"""The Facebook adapter: every comment under a brand's pages, visitor posts and tagged posts; replies as the page.

Only `facebook.GraphAPI` (facebook-sdk 3.1) talks to the Graph API, one instance per page with that
page's access token. facebook-sdk takes its host from `facebook.FACEBOOK_GRAPH_URL` and sends no
timeout: a `RewritingAdapter` mounted on the injected `requests.Session` adds a timeout and, with
`base_url` set (the sandbox emulator, a recording proxy), sends the requests there. A response hook
on the same session remembers the last answer's status and usage headers, which facebook-sdk drops
(`RateLimited.retry_at` comes from `estimated_time_to_regain_access`).

Cursor design (one cursor per page source; its dataclasses and stored text are in facebook/cursor.py):
per post of the look-back window, its updated_time, comment count, a watermark and the ids read at it.

Comments arrive on old posts at any time, so a single "newest id" cannot be the cursor. Every poll
lists the posts of the look-back window (`/feed` and `/tagged` with `since` = now - lookback_days;
one or two requests) with their `updated_time` and stream comment count
(`comments.filter(stream).summary(true).limit(0)`). A post missing from the cursor is new: it is
returned itself. Comments are read only for posts whose `updated_time` or comment count moved
(Facebook bumps `updated_time` on every comment and reply; the count also catches a comment within
the same second): `/{post}/comments?filter=stream&order=reverse_chronological&since=watermark-1`,
newest first, stopping at the first comment older than the post's watermark (the second of the newest
comment seen) and skipping the ids already seen in that second, so late comments on a two-week-old
post are found, nothing is read twice and equal timestamps cause neither misses nor duplicates.
A post whose new comments run past MAX_PAGES pages keeps a `Gap` (the seconds and ids bounding what
is still unread); the next polls read on downwards with
`until` until it closes, as the X adapter drains a backlog. Posts that fell out of the look-back
(or were deleted) leave the cursor. Any failure raises; the caller keeps the old cursor, so nothing
is half-read. An unreadable cursor means a fresh start (the store deduplicates on (platform,
external id)).

No SDK type leaves this module: fetch returns `MentionData`, errors are the `PlatformError` family of
`listener.platforms.base`. Messages name the page and the config key to fix, never a token.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import facebook
import requests

from listener.platforms import SPECS
from listener.platforms.base import AuthFailed, FetchResult, PlatformError, RateLimited, Source, TargetGone, Transient
from listener.platforms.facebook.cursor import FacebookCursor, Gap, PostMark
from listener.platforms.http import DEFAULT_TIMEOUT, mount_rewriter
from models.config import Config
from models.domain import AuthorData, MentionData, clean_json, clean_text

log = logging.getLogger(__name__)
T = TypeVar("T")
NAME = "facebook"  # its key in listener.platforms.SPECS
# facebook-sdk 3.1 validates `version` against 2.8-3.1 and a one-digit-major pattern, but builds every
# request path from the `version` attribute: construct with a version it accepts, then set the real one.
SDK_ACCEPTED_VERSION = "3.1"
_VERSION_RE = re.compile(r"^v?(\d+\.\d+)$")


@dataclass(frozen=True)
class FacebookPage:
    """One Facebook page of a brand and its page access token."""

    brand: str
    page_id: str
    token: str = field(default="", repr=False)


def _norm(text: Any) -> str:
    return clean_text(text)[0].strip() if isinstance(text, str) else ""


def _tail(object_id: str) -> int:
    tail = object_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _moment(value: Any, what: str) -> datetime:
    """A Graph time (2026-11-20T08:00:00+0000) as an aware UTC datetime; Transient when unreadable."""
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
        except ValueError:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                pass
    raise Transient(f"Facebook answered with an unreadable time in {what}: {value!r}")


def _epoch(value: Any, what: str) -> int:
    return int(_moment(value, what).timestamp())


def normalize_version(value: str) -> str:
    """"v25.0" or "25.0" -> "v25.0"."""
    match = _VERSION_RE.match(value.strip())
    if match is None:
        raise ValueError(f"platforms.facebook.api_version must look like v25.0, got {value!r}")
    return f"v{match.group(1)}"


class FacebookPlatform:
    """PlatformAdapter for Facebook pages (Graph API through facebook-sdk)."""

    platform = NAME
    MAX_TEXT = SPECS[NAME].reply_limit  # the one home of the limit: listener.platforms.SPECS
    PAGE_SIZE = 100  # Graph's largest `limit`
    MAX_PAGES = 200  # per listing; a post's larger comment backlog is drained over the next polls
    LOOKBACK_DAYS = 14
    RATE_LIMIT_FALLBACK = timedelta(minutes=15)
    RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80001, 80015)})
    TRANSIENT_CODES = frozenset({1, 2})
    TOKEN_CODES = frozenset({102, 190})
    PERMISSIONS = ("pages_read_engagement", "pages_read_user_content", "pages_manage_engagement")
    POST_FIELDS = ("id,message,created_time,updated_time,from{id,name},permalink_url,"
                   "comments.filter(stream).summary(true).limit(0)")
    COMMENT_FIELDS = "id,message,created_time,from{id,name},parent{id},permalink_url,is_hidden"
    USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage")

    def __init__(self, pages: list[FacebookPage], *, base_url: str | None = None, api_version: str = "v25.0",
                 lookback_days: int = LOOKBACK_DAYS, clock: Callable[[], datetime] | None = None,
                 session_factory: Callable[[], requests.Session] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, page_size: int | None = None) -> None:
        self.pages = {(p.brand, p.page_id): p for p in pages}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lookback = timedelta(days=lookback_days)
        self.page_size = max(1, min(page_size or self.PAGE_SIZE, self.PAGE_SIZE))
        self.api_version = normalize_version(api_version)
        self._last = threading.local()  # status and headers of this thread's last answer
        self._secrets = sorted({p.token for p in pages if p.token}, key=len, reverse=True)
        parts = urlsplit(facebook.FACEBOOK_GRAPH_URL)
        host = f"{parts.scheme}://{parts.netloc}"
        self._graphs: dict[str, Any] = {}
        for page in pages:
            if page.page_id in self._graphs:
                continue
            session = session_factory() if session_factory is not None else requests.Session()
            mount_rewriter(session, [host], base_url, timeout)
            session.hooks["response"].append(self._remember)
            graph = facebook.GraphAPI(access_token=page.token or None, session=session,
                                      version=SDK_ACCEPTED_VERSION)
            graph.version = self.api_version  # see SDK_ACCEPTED_VERSION
            self._graphs[page.page_id] = graph

    # -- PlatformAdapter ------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """One source per configured page of each brand."""
        return [Source(f"facebook:{p.brand}:page:{p.page_id}", NAME, p.brand, "page", p.page_id)
                for p in self.pages.values()]

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """New posts, comments and replies of the page's look-back window, oldest first (see the module doc)."""
        if source.kind != "page":
            raise ValueError(f"Facebook has no source kind {source.kind!r}")
        page = self._page(source.brand, source.target)
        state = FacebookCursor.parse(cursor, source.name)
        since = int((self.clock() - self.lookback).timestamp())
        what = f"reading Facebook page {page.page_id}"
        mentions, new_state = self._call(what, page, lambda: self._read(page, source, state, since))
        mentions.sort(key=lambda m: (m.created_at, m.external_id != m.conversation_id, _tail(m.external_id)))
        return FetchResult(mentions, new_state.dump())

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Comment on the mentioned post, or reply to the mentioned comment, as the page; returns the new id."""
        length = SPECS[NAME].reply_length(text)
        if length > self.MAX_TEXT:
            raise PlatformError(f"the reply is {length} characters long; Facebook allows {self.MAX_TEXT}")
        if not text.strip():
            raise PlatformError("the reply is empty")
        page = self._page_of(mention)
        graph = self._graphs[page.page_id]
        what = f"replying to {mention.external_id} on page {page.page_id}"
        answer = self._call(what, page, lambda: graph.put_comment(mention.external_id, text), writing=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) or not answer["id"]:
            raise Transient(f"Facebook answered {what} without an id; the reply may exist: call find_reply "
                            "before trying again")
        return str(answer["id"])

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        """The page's reply with `text` in the mention's thread, newer than the mention (crash recovery)."""
        page = self._page_of(mention)
        graph = self._graphs[page.page_id]
        # the thread our reply joined: a reply's top-level comment, else the comment or post itself
        # (from the stored fields only: the dispatcher rebuilds mentions without `raw`)
        parent = mention.in_reply_to_id
        is_reply = mention.conversation_id not in (None, mention.external_id) and parent not in (
            None, mention.conversation_id)
        root = parent if is_reply and parent else mention.external_id
        args = {"fields": "id,message,created_time,from{id,name}", "filter": "toplevel",
                "order": "reverse_chronological", "limit": self.page_size}
        created = mention.created_at if mention.created_at.tzinfo else mention.created_at.replace(tzinfo=UTC)
        wanted, oldest = _norm(text), int(created.timestamp())

        def search() -> str | None:
            for batch, _ in self._pages(graph, root, "comments", args):
                for item in batch:
                    if _epoch(item.get("created_time"), f"comment {item['id']}") < oldest:
                        return None
                    author = item.get("from")
                    if isinstance(author, dict) and author.get("id") == page.page_id \
                            and _norm(item.get("message")) == wanted:
                        return str(item["id"])
            return None

        return self._call(f"looking for our reply to {mention.external_id} on page {page.page_id}", page, search)

    # -- reading --------------------------------------------------------------------------------

    def _read(self, page: FacebookPage, source: Source, cursor: FacebookCursor,
              since: int) -> tuple[list[MentionData], FacebookCursor]:
        graph = self._graphs[page.page_id]
        posts: dict[str, tuple[dict[str, Any], str]] = {}
        for edge in ("feed", "tagged"):
            args = {"fields": self.POST_FIELDS, "since": since, "limit": self.page_size}
            more = False
            for batch, more_posts in self._pages(graph, page.page_id, edge, args):
                more = more_posts
                for post in batch:
                    posts.setdefault(post["id"], (post, edge))
            if more:
                log.warning("Facebook: page %s has more than %d pages of %s posts in the look-back; the oldest "
                            "are skipped", page.page_id, self.MAX_PAGES, edge)
        mentions: list[MentionData] = []
        marks: dict[str, PostMark] = {}
        for post_id, (post, edge) in posts.items():
            created = _epoch(post.get("created_time"), f"post {post_id}")
            if created < since:
                continue
            updated = max(created, _epoch(post.get("updated_time") or post["created_time"], f"post {post_id}"))
            count = self._comment_count(post)
            known = cursor.posts.get(post_id)
            gaps = list(known.gaps) if known is not None else []
            if known is None:
                mentions.append(self._post_mention(page, source, post, edge))
            elif known.updated == updated and known.comments == count and not gaps:
                marks[post_id] = known
                continue
            still_open = []
            for gap in gaps:  # the backlog that earlier polls left
                older, complete = self._new_comments(graph, post_id, gap.bottom, set(gap.bottom_ids), gap.top,
                                                     set(gap.top_ids))
                mentions.extend(self._comment_mention(page, source, c, post_id) for c, _ in older)
                if not complete:
                    still_open.append(self._narrow(gap, older, post_id))
            gaps = still_open
            watermark, ids = (known.watermark, set(known.ids)) if known is not None else (0, set())
            if known is not None or count != 0 or updated > created:
                fresh, complete = self._new_comments(graph, post_id, watermark, ids)
                mentions.extend(self._comment_mention(page, source, c, post_id) for c, _ in fresh)
                if fresh and not complete:
                    gaps.append(self._narrow(Gap(watermark, tuple(ids), fresh[0][1], ()), fresh, post_id))
                if fresh:
                    newest = max(t for _, t in fresh)
                    seen_then = {c["id"] for c, t in fresh if t == newest}
                    ids = seen_then | ids if newest == watermark else seen_then
                    watermark = newest
            marks[post_id] = PostMark(updated, count, watermark, tuple(sorted(ids)), tuple(gaps))
        return mentions, FacebookCursor(marks)

    def _new_comments(self, graph: Any, post_id: str, watermark: int, ids: set[str], until: int | None = None,
                      until_ids: Collection[str] = ()) -> tuple[list[tuple[dict[str, Any], int]], bool]:
        """Comments and replies of `post_id` from second `watermark` (less `ids`) up to second `until`
        (less `until_ids`), newest first, with their times; and whether that was all (not cut at MAX_PAGES)."""
        args: dict[str, Any] = {"fields": self.COMMENT_FIELDS, "filter": "stream", "order": "reverse_chronological",
                                "limit": self.page_size}
        if watermark:
            args["since"] = watermark - 1  # inclusive or not, the watermark second is in
        if until is not None:
            args["until"] = until + 1  # and so is the top second
        fresh: list[tuple[dict[str, Any], int]] = []
        more = False
        for batch, has_next in self._pages(graph, post_id, "comments", args):
            more = has_next
            for comment in batch:
                at = _epoch(comment.get("created_time"), f"comment {comment['id']}")
                if at < watermark:
                    return fresh, True
                if at == watermark and comment["id"] in ids:
                    continue
                if until is not None and (at > until or (at == until and comment["id"] in until_ids)):
                    continue
                fresh.append((comment, at))
        return fresh, not more

    def _narrow(self, gap: Gap, read: list[tuple[dict[str, Any], int]], post_id: str) -> Gap:
        """The gap with its top moved down to the oldest comment just read (they come newest first)."""
        if not read:  # pages of nothing new: the server ignored `until`; the next poll tries again
            log.warning("Facebook: no progress on the comment backlog of %s", post_id)
            return gap
        oldest = read[-1][1]
        below = {c["id"] for c, t in read if t == oldest}
        log.info("Facebook: %s has comments beyond %d pages; the next polls read on below %s",
                 post_id, self.MAX_PAGES, read[-1][0]["id"])
        return Gap(gap.bottom, gap.bottom_ids, oldest,
                   tuple(sorted(below | set(gap.top_ids) if oldest == gap.top else below)))

    def _pages(self, graph: Any, object_id: str, edge: str,
               args: dict[str, Any]) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """The `data` of each page of an edge, following `paging.next` as facebook-sdk does, up to
        MAX_PAGES pages; with each, whether a next page exists."""
        for _ in range(self.MAX_PAGES):
            answer = graph.get_connections(object_id, edge, **args)
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str)
                                                     for i in data):
                raise Transient(f"Facebook answered with a malformed page of {object_id}/{edge}")
            paging = answer.get("paging")
            next_url = paging.get("next") if isinstance(paging, dict) else None
            yield data, isinstance(next_url, str) and bool(next_url)
            if not isinstance(next_url, str) or not next_url:
                return
            args = {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items() if k != "access_token"}

    @staticmethod
    def _comment_count(post: dict[str, Any]) -> int:
        comments = post.get("comments")
        summary = comments.get("summary") if isinstance(comments, dict) else None
        count = summary.get("total_count") if isinstance(summary, dict) else None
        return count if isinstance(count, int) else -1  # unknown: compare on updated_time alone

    # -- mapping --------------------------------------------------------------------------------

    def _author(self, raw: Any, object_id: str) -> AuthorData:
        author = raw if isinstance(raw, dict) else {}
        author_id, name = author.get("id"), author.get("name")
        if not isinstance(author_id, str) or not author_id:
            return AuthorData(NAME, f"anonymous:{object_id}")  # Graph may hide `from`
        return AuthorData(NAME, author_id, None,
                          clean_text(name)[0] if isinstance(name, str) else None, None,
                          f"https://www.facebook.com/{author_id}")

    def _post_mention(self, page: FacebookPage, source: Source, post: dict[str, Any], edge: str) -> MentionData:
        author = self._author(post.get("from"), post["id"])
        raw = {k: v for k, v in post.items() if k != "comments"}
        return MentionData(
            platform=NAME, external_id=post["id"], text=self._text(post, "post"),
            created_at=_moment(post.get("created_time"), f"post {post['id']}"), author=author, brand=page.brand,
            source=source.name, conversation_id=post["id"], permalink=_str(post.get("permalink_url")),
            is_own=author.external_id == page.page_id,
            raw=clean_json({"post": raw, "edge": edge, "page_id": page.page_id}))

    def _comment_mention(self, page: FacebookPage, source: Source, comment: dict[str, Any],
                         post_id: str) -> MentionData:
        author = self._author(comment.get("from"), comment["id"])
        parent = comment.get("parent")
        parent_id = parent.get("id") if isinstance(parent, dict) else None
        return MentionData(
            platform=NAME, external_id=comment["id"], text=self._text(comment, "comment"),
            created_at=_moment(comment.get("created_time"), f"comment {comment['id']}"), author=author,
            brand=page.brand, source=source.name, conversation_id=post_id,
            in_reply_to_id=parent_id if isinstance(parent_id, str) and parent_id else post_id,
            permalink=_str(comment.get("permalink_url")), is_own=author.external_id == page.page_id,
            raw=clean_json({"comment": comment, "post_id": post_id, "page_id": page.page_id}))

    @staticmethod
    def _text(item: dict[str, Any], kind: str) -> str:
        message = item.get("message")
        text, reasons = clean_text(message if isinstance(message, str) else "")
        if reasons:
            log.warning("Facebook %s %s: text changed for storage: %s", kind, item.get("id"), "; ".join(reasons))
        return text

    # -- calls and errors -----------------------------------------------------------------------

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session response hook: keep the status and usage headers facebook-sdk throws away."""
        self._last.status = response.status_code
        self._last.headers = response.headers

    def _call(self, what: str, page: FacebookPage, fn: Callable[[], T], writing: bool = False) -> T:
        """Run SDK interactions and translate their failures into PlatformError subclasses."""
        if not page.token:
            raise AuthFailed(f"no access token for Facebook page {page.page_id} (brand {page.brand!r}): set "
                             f'platforms.facebook.page_tokens["{page.page_id}"] in config.yaml to ${{A_VARIABLE}} '
                             "holding the page access token")
        self._last.status, self._last.headers = None, None
        try:
            return fn()
        except PlatformError:
            raise
        except facebook.GraphAPIError as exc:
            raise self._translate(exc, what, page, writing) from exc
        except requests.Timeout as exc:
            raise Transient(f"Facebook did not answer in time while {what}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON decode errors included
            raise Transient(f"Facebook answered with a malformed body while {what}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:  # connection errors, broken or truncated bodies
            raise Transient(f"Facebook request failed while {what}: {type(exc).__name__}") from exc

    def _translate(self, exc: Any, what: str, page: FacebookPage, writing: bool) -> PlatformError:
        result: dict[str, Any] = exc.result if isinstance(exc.result, dict) else {}
        error: dict[str, Any] = result["error"] if isinstance(result.get("error"), dict) else {}
        code = exc.code if isinstance(exc.code, int) else None
        subcode = error.get("error_subcode")
        kind = str(error.get("type") or "")
        status = getattr(self._last, "status", None)
        detail = self._scrub(str(exc.message if isinstance(exc.message, str) else exc))[:300]
        said = f"(code {code}{f', subcode {subcode}' if subcode else ''}: {detail})"
        key = f'platforms.facebook.page_tokens["{page.page_id}"]'
        if code in self.RATE_LIMIT_CODES:
            retry_at = self._retry_at()
            return RateLimited(f"Facebook rate limit reached while {what} {said}; retry after "
                               f"{retry_at:%Y-%m-%d %H:%M:%S} UTC", retry_at)
        if code in self.TOKEN_CODES:
            why = {463: "it has expired", 460: "its user changed the password", 467: "it is invalid"}.get(
                subcode if isinstance(subcode, int) else 0, "it is invalid or expired")
            return AuthFailed(f"Facebook rejected the access token of page {page.page_id} while {what}: {why} "
                              f"{said}. Generate a new long-lived page access token (Graph API Explorer or Meta "
                              f"Business Suite, by someone who can moderate the page) and put it into the "
                              f"environment variable that {key} references in config.yaml "
                              "(for example OPENEAR_FB_PAGE_TOKEN)")
        if code == 10 or (code is not None and 200 <= code <= 299):
            needed = "pages_manage_engagement" if writing else "pages_read_engagement and pages_read_user_content"
            return AuthFailed(f"Facebook refused {what}: the page token lacks a permission {said}. This needs "
                              f"{needed} (openear uses {', '.join(self.PERMISSIONS)}): grant them to the app, "
                              f"generate a new page token and update {key}")
        if code == 100 and (subcode == 33 or kind == "GraphMethodException"):
            return TargetGone(f"Facebook: the object is gone (deleted, hidden or never there) while {what} {said}")
        if code is None or code in self.TRANSIENT_CODES or error.get("is_transient") or (status or 0) >= 500:
            return Transient(f"Facebook server trouble (HTTP {status or '?'}) while {what} {said}")
        return PlatformError(f"Facebook refused {what} {said}")

    def _retry_at(self) -> datetime:
        """now + the largest estimated_time_to_regain_access (minutes) in the usage headers, else + 15 min."""
        now = self.clock()
        headers = getattr(self._last, "headers", None) or {}
        minutes = 0.0
        for name in self.USAGE_HEADERS:
            try:
                usage = json.loads(headers.get(name) or "null")
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
        return now + (timedelta(minutes=minutes) if minutes > 0 else self.RATE_LIMIT_FALLBACK)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _page(self, brand: str, page_id: str) -> FacebookPage:
        try:
            return self.pages[(brand, page_id)]
        except KeyError:
            raise ValueError(f"no Facebook page {page_id} is configured for brand {brand!r}") from None

    def _page_of(self, mention: MentionData) -> FacebookPage:
        page_id = mention.source.rsplit(":", 1)[-1]
        raw_page = mention.raw.get("page_id") if isinstance(mention.raw, dict) else None
        for candidate in (page_id, str(raw_page)):
            if (mention.brand, candidate) in self.pages:
                return self.pages[(mention.brand, candidate)]
        found = next((p for p in self.pages.values() if p.page_id in (page_id, raw_page)), None)
        if found is None:
            raise ValueError(f"mention {mention.external_id} belongs to no configured Facebook page")
        return found


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def from_config(config: Config, *, clock: Callable[[], datetime] | None = None,
                session_factory: Callable[[], requests.Session] | None = None) -> FacebookPlatform | None:
    """The adapter for the brands' `accounts.facebook` pages with `platforms.facebook.page_tokens`;
    None when Facebook is not configured or not enabled."""
    fb = config.platforms.facebook
    if fb is None or not fb.enabled:
        return None
    tokens = {page_id: secret.get_secret_value() for page_id, secret in fb.page_tokens.items()}
    pages = [FacebookPage(brand.name, page_id, tokens.get(page_id, ""))
             for brand in config.brands for page_id in brand.accounts.facebook]
    for page in pages:
        if not page.token:
            log.warning('Facebook page %s of brand %r has no token: add platforms.facebook.page_tokens["%s"]',
                        page.page_id, page.brand, page.page_id)
    unused = sorted(set(tokens) - {p.page_id for p in pages})
    if unused:
        log.warning("Facebook page tokens for pages no brand lists under accounts.facebook: %s", ", ".join(unused))
    return FacebookPlatform(pages, base_url=fb.base_url, api_version=fb.api_version,
                            lookback_days=fb.lookback_days, clock=clock, session_factory=session_factory)
