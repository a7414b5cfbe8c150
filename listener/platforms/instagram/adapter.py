"""The Instagram adapter: comments and replies on a brand's professional account, media that tag it;
replies as the account.

Host and token: the Instagram API with Facebook login, on graph.facebook.com, with the page access
token of the Facebook page the Instagram account is connected to (Meta's other host,
graph.instagram.com with an Instagram user token from Business Login for Instagram, is not
supported yet). Only `facebook.GraphAPI` (facebook-sdk 3.1) talks to Graph, one instance per account,
on an injected `requests.Session` with a `RewritingAdapter` (timeout; `base_url` for the sandbox) and
a response hook that keeps the status and usage headers facebook-sdk drops. Graph errors become
the `PlatformError` family through the Facebook package's table (codes are shared; 80002 is
Instagram's business-use-case limit, and `X-Business-Use-Case-Usage` says when access comes back).

Token check (`preflight`, and once per account before its first call): GET /me?fields=id,
instagram_business_account must answer a page whose connected Instagram account is the configured
one; anything else (a user token, another page's token, a page without this account) is AuthFailed
saying which token to get.

Polling (one source per account; see reading.py for the walk and cursor.py for what is kept):
comments and replies on the account's media of the look-back window, late ones on old media
included, found by the media's comment counts and a periodic sweep; media by others that tag the
account. Hidden comments come as `MentionData.hidden`.

@mentions in captions and comments on other accounts' media: Instagram reports those only by
webhook. With `platforms.instagram.webhooks` set, each account gets a second source
(`instagram:<brand>:mentions:<id>`) that reads what the web app's /webhooks/instagram recorded and
looks each one up (mentions.py); replies to them go through POST /{ig-user-id}/mentions.

What no source can hear: stories and story mentions, direct messages, comments on ads (a different
object), comments by accounts the brand restricted (Instagram withholds them until approved).

Replies: to a top-level comment through POST /{comment-id}/replies; to a reply, on its top-level
comment (Instagram threads are one level deep, and that is where Instagram would put it anyway).
Hidden comments cannot be answered, nor media that tag the account: both are ContentRejected before
any request. No SDK type leaves this module; messages name the account and the config key, never a
token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import facebook
import requests

from listener.platforms import SPECS
from listener.platforms.base import AuthFailed, ContentRejected, FetchResult, Inbox, PlatformError, Source, Transient
from listener.platforms.facebook import errors
from listener.platforms.facebook.adapter import SDK_ACCEPTED_VERSION, normalize_version
from listener.platforms.facebook.calls import GraphCalls
from listener.platforms.facebook.mapping import epoch, norm
from listener.platforms.http import DEFAULT_TIMEOUT, mount_rewriter
from listener.platforms.instagram import mentions as at_mentions
from listener.platforms.instagram.cursor import InstagramCursor
from listener.platforms.instagram.mapping import NAME, Mapper, number
from listener.platforms.instagram.reading import REPLY_FIELDS, PollRead, pages
from models.config import Config
from models.domain import MentionData

log = logging.getLogger(__name__)
T = TypeVar("T")
SERVICE = errors.Service(
    "Instagram", "Instagram account", 'platforms.instagram.account_tokens["{id}"]',
    "instagram_basic, instagram_manage_comments and pages_read_engagement", "instagram_manage_comments",
    ("instagram_basic", "instagram_manage_comments", "pages_read_engagement", "pages_show_list"),
    "Generate a new long-lived page access token of the Facebook page the Instagram account is connected to "
    "(Graph API Explorer or Meta Business Suite)", "OPENEAR_IG_PAGE_TOKEN")


@dataclass(frozen=True)
class InstagramAccount:
    """One Instagram professional account of a brand and the access token of its connected page."""

    brand: str
    account_id: str
    token: str = field(default="", repr=False)


class InstagramPlatform:
    """PlatformAdapter for Instagram professional accounts (Graph API through facebook-sdk)."""

    platform = NAME
    MAX_TEXT = SPECS[NAME].reply_limit  # the one home of the limits: listener.platforms.SPECS
    USAGE_HEADER = SPECS[NAME].usage_header
    PAGE_SIZE = 100  # media and tags: Graph's largest `limit`
    COMMENT_PAGE_SIZE = 50  # comments: Instagram's largest `limit`
    MAX_PAGES = 100  # per listing
    LOOKBACK_DAYS = 14
    SWEEP = timedelta(hours=6)  # every media's comments are read again at least this often

    def __init__(self, accounts: list[InstagramAccount], *, base_url: str | None = None,
                 api_version: str = "v25.0", lookback_days: int = LOOKBACK_DAYS,
                 clock: Callable[[], datetime] | None = None,
                 session_factory: Callable[[], requests.Session] | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, page_size: int | None = None,
                 inbox: Inbox | None = None) -> None:
        self.inbox = inbox  # webhook notifications of @mentions; None: no mentions sources
        self.accounts = {(a.brand, a.account_id): a for a in accounts}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lookback = timedelta(days=lookback_days)
        self.page_size = max(1, min(page_size or self.PAGE_SIZE, self.PAGE_SIZE))
        self.comment_page_size = max(1, min(page_size or self.COMMENT_PAGE_SIZE, self.COMMENT_PAGE_SIZE))
        self.api_version = normalize_version(api_version)
        self.calls = GraphCalls(SERVICE, lambda: self.clock(), (a.token for a in accounts))
        self._usernames: dict[str, str | None] = {}  # accounts whose token passed the check -> username
        parts = urlsplit(facebook.FACEBOOK_GRAPH_URL)
        host = f"{parts.scheme}://{parts.netloc}"
        self._graphs: dict[str, Any] = {}
        for account in accounts:
            if account.account_id in self._graphs:
                continue
            session = session_factory() if session_factory is not None else requests.Session()
            mount_rewriter(session, [host], base_url, timeout)
            session.hooks["response"].append(self.calls.remember)
            graph = facebook.GraphAPI(access_token=account.token or None, session=session,
                                      version=SDK_ACCEPTED_VERSION)
            graph.version = self.api_version  # facebook-sdk validates only 2.8-3.1; paths use the attribute
            self._graphs[account.account_id] = graph

    # -- PlatformAdapter ------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Per configured account of each brand: its media and comments, and (with an inbox) its @mentions."""
        kinds = ("account", "mentions") if self.inbox is not None else ("account",)
        return [Source(f"instagram:{a.brand}:{kind}:{a.account_id}", NAME, a.brand, kind, a.account_id)
                for a in self.accounts.values() for kind in kinds]

    def preflight(self) -> None:
        """Check every account's token; AuthFailed names all that are refused, Transient when Graph
        cannot be asked now."""
        refused: list[str] = []
        trouble: PlatformError | None = None
        for account in {a.account_id: a for a in self.accounts.values()}.values():
            try:
                self._verify(account)
            except AuthFailed as exc:
                refused.append(str(exc))
            except PlatformError as exc:
                trouble = trouble or exc
        if refused:
            raise AuthFailed(" | ".join(refused))
        if trouble is not None:
            raise Transient(f"could not check the Instagram tokens now: {trouble}") from trouble

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """New comments, replies, own media and tagging media of the look-back window, oldest first; or,
        for a mentions source, the @mentions the webhook recorded since the cursor."""
        if source.kind not in ("account", "mentions") or (source.kind == "mentions" and self.inbox is None):
            raise ValueError(f"Instagram has no source kind {source.kind!r} here")
        account = self._account(source.brand, source.target)
        username = self._verify(account)
        if source.kind == "mentions":
            return self._fetch_mentions(source, account, username, cursor)
        state = InstagramCursor.parse(cursor, source.name)
        now = self.clock()
        graph = self._graphs[account.account_id]

        def request(object_id: str, edge: str, args: dict[str, Any]) -> Any:
            return self._call(f"reading {object_id}/{edge} of Instagram account {account.account_id}", account,
                              lambda: graph.get_connections(object_id, edge, **args))

        read = PollRead(request, Mapper(account.brand, account.account_id, username, source.name),
                        now=int(now.timestamp()), sweep_s=int(self.SWEEP.total_seconds()),
                        page_size=self.page_size, comment_page_size=self.comment_page_size,
                        max_pages=self.MAX_PAGES)
        since = int((now - self.lookback).timestamp())
        mentions, new_state = self._call(f"reading Instagram account {account.account_id}", account,
                                         lambda: read.run(state, since))
        if read.stopped is not None and not mentions and new_state.media == state.media:
            raise read.stopped  # nothing read before the limit
        mentions.sort(key=lambda m: (m.created_at, m.external_id != m.conversation_id, number(m.external_id)))
        if read.stopped is not None:
            log.warning("Instagram account %s: the poll stopped at a rate limit after %d items; it goes on after %s",
                        account.account_id, len(mentions), f"{read.stopped.retry_at:%Y-%m-%d %H:%M:%S} UTC")
        return FetchResult(mentions, new_state.dump(), read.stopped)

    def _fetch_mentions(self, source: Source, account: InstagramAccount, username: str | None,
                        cursor: str | None) -> FetchResult:
        assert self.inbox is not None
        graph = self._graphs[account.account_id]
        state = at_mentions.MentionsCursor.parse(cursor, source.name)
        found, new_state, stopped = at_mentions.read_mentions(
            self.inbox, self._lookup(account, graph), Mapper(account.brand, account.account_id, username,
                                                             source.name), state)
        if stopped is not None and new_state == state:
            raise stopped  # nothing read before the limit
        found.sort(key=lambda m: (m.created_at, number(m.external_id)))
        return FetchResult(found, new_state.dump(), stopped)

    def _lookup(self, account: InstagramAccount, graph: Any) -> at_mentions.Lookup:
        """GET /{ig-user-id}?fields=<fields> as the account, errors translated."""
        def lookup(fields: str) -> Any:
            return self._call(f"looking up an @mention of Instagram account {account.account_id}", account,
                              lambda: graph.get_object(account.account_id, fields=fields))
        return lookup

    @staticmethod
    def is_mention(mention: MentionData) -> bool:
        """Whether `mention` came from a mentions source (another account's media or comment)."""
        return mention.source.split(":")[-2:-1] == ["mentions"]

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Reply to the mentioned comment (a reply: on its top-level comment) as the account; the new id."""
        length = SPECS[NAME].reply_length(text)
        if length > self.MAX_TEXT:
            raise ContentRejected(f"the reply is {length} characters long; Instagram allows {self.MAX_TEXT}")
        if not text.strip():
            raise ContentRejected("the reply is empty")
        if mention.hidden:
            raise ContentRejected("Instagram does not take replies to hidden comments: unhide the comment in the "
                                  "Instagram app first, or answer the customer another way")
        target = self.reply_target(mention)
        account = self._account_of(mention)
        self._verify(account)
        graph = self._graphs[account.account_id]
        what = f"replying to {mention.external_id} as Instagram account {account.account_id}"
        if self.is_mention(mention):
            args = at_mentions.reply_args(mention, text)
            answer = self._call(what, account, lambda: graph.put_object(account.account_id, "mentions", **args),
                                writing=True)
        else:
            answer = self._call(what, account, lambda: graph.put_object(target, "replies", message=text),
                                writing=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) or not answer["id"]:
            raise Transient(f"Instagram answered {what} without an id; the reply may exist: call find_reply "
                            "before trying again")
        return str(answer["id"])

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        """The account's reply with `text` under the mention's top-level comment, newer than the mention."""
        target = self.reply_target(mention)
        account = self._account_of(mention)
        username = self._verify(account)
        graph = self._graphs[account.account_id]
        if self.is_mention(mention):
            return at_mentions.find_reply(self._lookup(account, graph), mention, text, username)
        created = mention.created_at if mention.created_at.tzinfo else mention.created_at.replace(tzinfo=UTC)
        wanted, oldest = norm(text), int(created.timestamp())
        args = {"fields": REPLY_FIELDS, "limit": self.comment_page_size}

        def request(object_id: str, edge: str, args: dict[str, Any]) -> Any:
            return graph.get_connections(object_id, edge, **args)

        def search() -> str | None:
            for batch, _ in pages(request, target, "replies", args, self.MAX_PAGES):
                for item in batch:
                    author = item.get("from")
                    ours = isinstance(author, dict) and author.get("id") == account.account_id
                    if ours and norm(item.get("text")) == wanted and \
                            epoch(item.get("timestamp"), f"reply {item['id']}") >= oldest:
                        return str(item["id"])
            return None

        return self._call(f"looking for our reply to {mention.external_id} as Instagram account "
                          f"{account.account_id}", account, search)

    def hide(self, mention: MentionData, hidden: bool = True) -> None:
        """Hide (or show) a comment on the account's own media: POST /{ig-comment-id} with `hide`."""
        hideable = SPECS[NAME].hideable
        if hideable is None or not hideable(mention.external_id, mention.conversation_id, mention.is_own,
                                            mention.source):
            raise ContentRejected("Instagram lets the account hide only other people's comments on its own media")
        account = self._account_of(mention)
        self._verify(account)
        graph = self._graphs[account.account_id]
        what = f"{'hiding' if hidden else 'showing'} comment {mention.external_id} as Instagram account " \
               f"{account.account_id}"
        answer = self._call(what, account, lambda: graph.request(
            f"{graph.version}/{mention.external_id}", post_args={"hide": "true" if hidden else "false"}),
            writing=True)
        if not isinstance(answer, dict) or answer.get("success") is not True:
            raise Transient(f"Instagram did not confirm {what}")

    @staticmethod
    def reply_target(mention: MentionData) -> str:
        """The comment a reply to `mention` goes under: the comment itself, or a reply's top-level comment.
        ContentRejected for what cannot be answered this way (media that tag the account, its own media)."""
        refusal = SPECS[NAME].reply_refusal(mention.external_id, mention.conversation_id, mention.is_own,
                                            mention.source)
        if refusal:
            raise ContentRejected(refusal)
        parent = mention.in_reply_to_id
        is_reply = parent not in (None, mention.conversation_id, mention.external_id)
        return parent if is_reply and parent else mention.external_id

    # -- the token check ------------------------------------------------------------------------

    def _verify(self, account: InstagramAccount) -> str | None:
        """Once per account (until it passes): the token must be that of the page the account is connected
        to. Returns the account's username (for telling its own comments)."""
        if account.account_id in self._usernames:
            return self._usernames[account.account_id]
        graph = self._graphs[account.account_id]
        what = f"checking the access token of Instagram account {account.account_id}"
        me = self._call(what, account, lambda: graph.get_object("me", fields="id,name,instagram_business_account"))
        if not isinstance(me, dict) or not isinstance(me.get("id"), str):
            raise Transient(f"Instagram answered {what} with a malformed body")
        linked = me.get("instagram_business_account")
        linked_id = linked.get("id") if isinstance(linked, dict) else None
        if linked_id != account.account_id:
            key = SERVICE.key.format(id=account.account_id)
            found = f"belongs to {me['id']}, which is connected to Instagram account {linked_id}" if linked_id \
                else f"belongs to {me['id']}, which is not a page connected to an Instagram professional account"
            raise AuthFailed(
                f"The token in {key} is not the page access token of the Facebook page connected to Instagram "
                f"account {account.account_id}: Graph says it {found}. Get the page access token of the page "
                "that Instagram account is connected to (Meta Business Suite -> Settings -> Instagram accounts "
                f"shows the connection; GET /me/accounts lists page tokens) and put it into the variable {key} "
                "references in config.yaml")
        about = self._call(what, account, lambda: graph.get_object(account.account_id, fields="id,username"))
        username = about.get("username") if isinstance(about, dict) else None
        self._usernames[account.account_id] = username if isinstance(username, str) and username else None
        return self._usernames[account.account_id]

    # -- calls and errors -----------------------------------------------------------------------

    def _call(self, what: str, account: InstagramAccount, fn: Callable[[], T], writing: bool = False) -> T:
        """Run SDK interactions and translate their failures into PlatformError subclasses."""
        if not account.token:
            raise AuthFailed(f"no access token for Instagram account {account.account_id} (brand "
                             f"{account.brand!r}): set {SERVICE.key.format(id=account.account_id)} in config.yaml "
                             "to ${A_VARIABLE} holding the page access token of its connected Facebook page")
        return self.calls.run(what, account.account_id, fn, writing)

    def _account(self, brand: str, account_id: str) -> InstagramAccount:
        try:
            return self.accounts[(brand, account_id)]
        except KeyError:
            raise ValueError(f"no Instagram account {account_id} is configured for brand {brand!r}") from None

    def _account_of(self, mention: MentionData) -> InstagramAccount:
        account_id = mention.source.rsplit(":", 1)[-1]
        raw = mention.raw.get("account_id") if isinstance(mention.raw, dict) else None
        for candidate in (account_id, str(raw)):
            if (mention.brand, candidate) in self.accounts:
                return self.accounts[(mention.brand, candidate)]
        found = next((a for a in self.accounts.values() if a.account_id in (account_id, raw)), None)
        if found is None:
            raise ValueError(f"mention {mention.external_id} belongs to no configured Instagram account")
        return found


def from_config(config: Config, *, clock: Callable[[], datetime] | None = None,
                session_factory: Callable[[], requests.Session] | None = None,
                inbox: Inbox | None = None) -> InstagramPlatform | None:
    """The adapter for the brands' `accounts.instagram` with `platforms.instagram.account_tokens`; None
    when Instagram is not configured or not enabled. `inbox` serves the mentions sources, which exist
    only when `platforms.instagram.webhooks` is set."""
    ig = config.platforms.instagram
    if ig is None or not ig.enabled:
        return None
    tokens = {account_id: secret.get_secret_value() for account_id, secret in ig.account_tokens.items()}
    accounts = [InstagramAccount(brand.name, account_id, tokens.get(account_id, ""))
                for brand in config.brands for account_id in brand.accounts.instagram]
    for account in accounts:
        if not account.token:
            log.warning('Instagram account %s of brand %r has no token: add platforms.instagram.account_tokens["%s"]',
                        account.account_id, account.brand, account.account_id)
    unused = sorted(set(tokens) - {a.account_id for a in accounts})
    if unused:
        log.warning("Instagram tokens for accounts no brand lists under accounts.instagram: %s", ", ".join(unused))
    return InstagramPlatform(accounts, base_url=ig.base_url, api_version=ig.api_version,
                             lookback_days=ig.lookback_days, clock=clock, session_factory=session_factory,
                             inbox=inbox if ig.webhooks is not None else None)
