"""The Facebook adapter: every comment under a brand's pages, visitor posts and tagged posts; replies as the page.

Only `facebook.GraphAPI` (facebook-sdk 3.1) talks to the Graph API, one instance per page with that
page's access token. facebook-sdk takes its host from `facebook.FACEBOOK_GRAPH_URL` and sends no
timeout: a `RewritingAdapter` mounted on the injected `requests.Session` adds a timeout and, with
`base_url` set (the sandbox emulator, a recording proxy), sends the requests there. A response hook
on the same session remembers the last answer's status and usage headers, which facebook-sdk drops
(`RateLimited.retry_at` comes from `estimated_time_to_regain_access`; facebook/errors.py holds the
table from Graph error code to exception).

Token check (`preflight`, and once per page before its first fetch, reply or lookup): GET
/me?fields=id,name with the page's token must answer the page itself. A user access token answers
its user (and reads every post's /comments as an empty list, without an error), another page's
token another page: both are AuthFailed, saying how to get the page token.

Cursor design (one cursor per page source; its dataclasses and stored text are in facebook/cursor.py,
the walk in facebook/reading.py): per post of the look-back window, its updated_time, comment count,
a watermark and the ids read at it.

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
(or were deleted) leave the cursor. An unreadable cursor means a fresh start (the store deduplicates
on (platform, external id)).

When Graph refuses part of a poll: a post deleted or hidden between listing and reading its comments
(code 100, subcode 33) is skipped, logged and dropped from the cursor, and the poll goes on; a rate
limit keeps what was read (`FetchResult.interrupted`, a `Gap` for a post read part way, old marks for
the posts not reached, new posts not reached left out so they come again); a rate limit before
anything was read (while listing the posts, or at the first comment read) raises RateLimited. Any
other failure raises; the caller keeps the old cursor, so nothing is half-read.

Comments the page hid (`is_hidden`) come as `MentionData.hidden`. Posts by people that tag the page
come from /tagged without `from` (Graph withholds it; the /feed copy is used when it names the
author): they are kept under one labelled author, "Facebook user (hidden by Facebook)"
(facebook/mapping.py), so such a post cannot be linked to its author; its comments keep theirs.

No SDK type leaves this module: fetch returns `MentionData`, errors are the `PlatformError` family of
`listener.platforms.base`. Messages name the page and the config key to fix, never a token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import facebook
import requests

from listener.platforms import SPECS
from listener.platforms.base import AuthFailed, ContentRejected, FetchResult, PlatformError, Source, Transient
from listener.platforms.facebook import errors
from listener.platforms.facebook.calls import GraphCalls
from listener.platforms.facebook.cursor import FacebookCursor
from listener.platforms.facebook.mapping import NAME, Mapper, epoch, norm, tail
from listener.platforms.facebook.reading import PollRead, pages
from listener.platforms.http import DEFAULT_TIMEOUT, mount_rewriter
from models.config import Config
from models.domain import MentionData

log = logging.getLogger(__name__)
T = TypeVar("T")
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
    RATE_LIMIT_FALLBACK = errors.RATE_LIMIT_FALLBACK
    PERMISSIONS = errors.PERMISSIONS

    def __init__(self, pages: list[FacebookPage], *, base_url: str | None = None, api_version: str = "v25.0",
                 lookback_days: int = LOOKBACK_DAYS, clock: Callable[[], datetime] | None = None,
                 session_factory: Callable[[], requests.Session] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, page_size: int | None = None) -> None:
        self.pages = {(p.brand, p.page_id): p for p in pages}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lookback = timedelta(days=lookback_days)
        self.page_size = max(1, min(page_size or self.PAGE_SIZE, self.PAGE_SIZE))
        self.api_version = normalize_version(api_version)
        self.calls = GraphCalls(errors.FACEBOOK, lambda: self.clock(), (p.token for p in pages))
        self._verified: set[str] = set()  # pages whose token answered /me as the page itself
        parts = urlsplit(facebook.FACEBOOK_GRAPH_URL)
        host = f"{parts.scheme}://{parts.netloc}"
        self._graphs: dict[str, Any] = {}
        for page in pages:
            if page.page_id in self._graphs:
                continue
            session = session_factory() if session_factory is not None else requests.Session()
            mount_rewriter(session, [host], base_url, timeout)
            session.hooks["response"].append(self.calls.remember)
            graph = facebook.GraphAPI(access_token=page.token or None, session=session,
                                      version=SDK_ACCEPTED_VERSION)
            graph.version = self.api_version  # see SDK_ACCEPTED_VERSION
            self._graphs[page.page_id] = graph

    # -- PlatformAdapter ------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """One source per configured page of each brand."""
        return [Source(f"facebook:{p.brand}:page:{p.page_id}", NAME, p.brand, "page", p.page_id)
                for p in self.pages.values()]

    def preflight(self) -> None:
        """Check every page's token (GET /me must answer the page itself). AuthFailed names all pages
        whose token is missing, invalid or of the wrong kind; Transient when Graph cannot be asked now."""
        refused: list[str] = []
        trouble: PlatformError | None = None
        for page in {p.page_id: p for p in self.pages.values()}.values():
            try:
                self._verify(page)
            except AuthFailed as exc:
                refused.append(str(exc))
            except PlatformError as exc:  # Transient, RateLimited: the polls will report it
                trouble = trouble or exc
        if refused:
            raise AuthFailed(" | ".join(refused))
        if trouble is not None:
            raise Transient(f"could not check the Facebook page tokens now: {trouble}") from trouble

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """New posts, comments and replies of the page's look-back window, oldest first (see the module doc)."""
        if source.kind != "page":
            raise ValueError(f"Facebook has no source kind {source.kind!r}")
        page = self._page(source.brand, source.target)
        self._verify(page)
        state = FacebookCursor.parse(cursor, source.name)
        since = int((self.clock() - self.lookback).timestamp())
        graph = self._graphs[page.page_id]

        def request(object_id: str, edge: str, args: dict[str, Any]) -> Any:
            return self._call(f"reading {object_id}/{edge} of Facebook page {page.page_id}", page,
                              lambda: graph.get_connections(object_id, edge, **args))

        read = PollRead(request, Mapper(page.brand, page.page_id, source.name), page_size=self.page_size,
                        max_pages=self.MAX_PAGES)
        mentions, new_state = self._call(f"reading Facebook page {page.page_id}", page,
                                         lambda: read.run(state, since))
        if read.stopped is not None and not mentions and new_state == state:
            raise read.stopped  # nothing read before the limit
        mentions.sort(key=lambda m: (m.created_at, m.external_id != m.conversation_id, tail(m.external_id)))
        if read.stopped is not None:
            log.warning("Facebook page %s: the poll stopped at a rate limit after %d items; it goes on after %s",
                        page.page_id, len(mentions), f"{read.stopped.retry_at:%Y-%m-%d %H:%M:%S} UTC")
        return FetchResult(mentions, new_state.dump(), read.stopped)

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Comment on the mentioned post, or reply to the mentioned comment, as the page; returns the new id."""
        length = SPECS[NAME].reply_length(text)
        if length > self.MAX_TEXT:
            raise ContentRejected(f"the reply is {length} characters long; Facebook allows {self.MAX_TEXT}")
        if not text.strip():
            raise ContentRejected("the reply is empty")
        page = self._page_of(mention)
        self._verify(page)
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
        self._verify(page)
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
        wanted, oldest = norm(text), int(created.timestamp())

        def request(object_id: str, edge: str, args: dict[str, Any]) -> Any:
            return graph.get_connections(object_id, edge, **args)

        def search() -> str | None:
            for batch, _ in pages(request, root, "comments", args, self.MAX_PAGES):
                for item in batch:
                    if epoch(item.get("created_time"), f"comment {item['id']}") < oldest:
                        return None
                    author = item.get("from")
                    if isinstance(author, dict) and author.get("id") == page.page_id \
                            and norm(item.get("message")) == wanted:
                        return str(item["id"])
            return None

        return self._call(f"looking for our reply to {mention.external_id} on page {page.page_id}", page, search)

    # -- the token check ------------------------------------------------------------------------

    def _verify(self, page: FacebookPage) -> None:
        """Once per page (until it passes): its token must be the page's own (GET /me answers the page)."""
        if page.page_id in self._verified:
            return
        graph = self._graphs[page.page_id]
        what = f"checking the access token of Facebook page {page.page_id}"
        me = self._call(what, page, lambda: graph.get_object("me", fields="id,name"))
        if not isinstance(me, dict) or not isinstance(me.get("id"), str):
            raise Transient(f"Facebook answered {what} with a malformed body")
        if me["id"] != page.page_id:
            key = f'platforms.facebook.page_tokens["{page.page_id}"]'
            raise AuthFailed(
                f"The token in {key} is not the page access token of page {page.page_id}: Facebook says it "
                f"belongs to {me['id']} — a user access token (or another page's token). With it Facebook "
                "answers every post's comments with an empty list and openear cannot reply as the page. Get "
                f"the page token: GET /me/accounts?fields=id,name,access_token with that user token (the "
                f"entry with id {page.page_id}), or Meta Business Suite; put it into the environment variable "
                f"that {key} references in config.yaml")
        self._verified.add(page.page_id)

    # -- calls and errors -----------------------------------------------------------------------

    def _call(self, what: str, page: FacebookPage, fn: Callable[[], T], writing: bool = False) -> T:
        """Run SDK interactions and translate their failures into PlatformError subclasses."""
        if not page.token:
            raise AuthFailed(f"no access token for Facebook page {page.page_id} (brand {page.brand!r}): set "
                             f'platforms.facebook.page_tokens["{page.page_id}"] in config.yaml to ${{A_VARIABLE}} '
                             "holding the page access token")
        return self.calls.run(what, page.page_id, fn, writing)

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
