"""The Instagram professional-account endpoints of the Graph emulator (Instagram API with Facebook Login).

`docs/instagram-wire.md` is the contract. `sandbox.graph_api.GraphApiEmulator` hands a request here
(after the token check and the call budget) when the first id of its path is an Instagram object:
GET /{ig-user-id} with /media and /tags (newest first), /{ig-media-id} with /comments (top level,
chronological, `replies{...}` / `replies.limit(n){...}` expanded with a `paging.next` into
/{ig-comment-id}/replies), /{ig-comment-id} and /replies; POST /{ig-comment-id}/replies,
/{ig-media-id}/comments, /{ig-user-id}/mentions and /{ig-comment-id} with `hide`. The account node also
answers the mention lookups `mentioned_comment.comment_id(<id>){...}` and `mentioned_media.media_id(<id>){...}`
(docs/instagram-wire.md, "Mentions and webhooks"). Handlers return the JSON body or raise `GraphError`. Data
lives in `sandbox.instagram_store`; the `mentions` webhook in `sandbox.instagram_webhooks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlencode

from sandbox.graph_store import PageToken
from sandbox.graph_wire import (
    FieldSpec,
    GraphError,
    check_fields,
    encode_cursor,
    format_fields,
    gone,
    graph_time,
    invalid,
    limit_param,
    parse_fields,
    parse_time,
    require,
    slice_page,
    token_of,
    truthy,
)
from sandbox.httpserver import Request
from sandbox.instagram_store import IgAccount, IgComment, IgMedia, IgNode, InstagramStore
from sandbox.instagram_webhooks import MentionWebhooks

MAX_MESSAGE = 2200
MAX_MEDIA_LIMIT = 100
MAX_COMMENT_LIMIT = 50
READ_PERMISSIONS = ("instagram_basic", "instagram_manage_comments", "pages_read_engagement")
WRITE_PERMISSIONS = ("instagram_manage_comments",)
USER_FIELDS = ("id", "username", "name", "followers_count", "media_count", "mentioned_comment", "mentioned_media")
MEDIA_FIELDS = ("id", "caption", "timestamp", "comments_count", "like_count", "media_type", "media_product_type",
                "permalink", "shortcode", "username", "owner", "is_comment_enabled")
COMMENT_FIELDS = ("id", "text", "timestamp", "username", "from", "like_count", "hidden", "parent_id", "media",
                  "replies", "user")
NODE_TYPES = {IgAccount: "ShadowIGUser", IgMedia: "IGMedia", IgComment: "IGComment"}
_ALLOWED = {IgAccount: USER_FIELDS, IgMedia: MEDIA_FIELDS, IgComment: COMMENT_FIELDS}
_DEFAULTS = {IgAccount: "id", IgMedia: "id", IgComment: "id,text,timestamp"}
TAGGED = "Commenting on photos in which you were tagged is not supported"
COMMENTS_DISABLED = "Comments are disabled for this media"
# the mention lookups on the account node: field -> its required modifier
MENTION_LOOKUPS = {"mentioned_comment": "comment_id", "mentioned_media": "media_id"}
MENTIONED_COMMENT_FIELDS = ("id", "like_count", "media", "text", "timestamp")  # no author: Meta names none
MENTIONED_MEDIA_FIELDS = ("caption", "comments_count", "comments", "id", "like_count", "media_type", "media_url",
                          "owner", "permalink", "timestamp", "username")
MENTIONED_MEDIA_COMMENT_FIELDS = ("id", "like_count", "replies", "text", "timestamp", "username")
MENTIONED_MEDIA_REPLY_FIELDS = ("id", "like_count", "text", "timestamp", "username")
_MENTION_DEFAULTS = {"mentioned_comment": "id,text,timestamp", "mentioned_media": "id"}


class Host(Protocol):
    """What the Instagram routes use of the emulator that serves them."""

    @property
    def url(self) -> str: ...

    def take_vanishing(self, object_id: str) -> bool: ...

    def claim_write(self, info: PageToken, object_id: str, message: str, ig_user: str | None = None) -> None: ...


class InstagramHelpers:
    """The emulator's Instagram test and demo helpers (mixed into `GraphApiEmulator`)."""

    ig_store: InstagramStore
    ig_webhooks: MentionWebhooks

    def add_ig_media(self, caption: str, *, created: float | None = None, owner: str | None = None,
                     tagged: bool = False) -> str:
        """The account's own media (owner None), or `owner`'s media (tagging the account with `tagged`); its id."""
        return self.ig_store.add_media(caption, created=created, owner=owner, tagged=tagged).id

    def add_ig_comment(self, media_id: str, username: str, text: str, *, parent: str | None = None,
                       created: float | None = None) -> str:
        """A comment by `username` (the account's own for its username) on a media, or a reply under `parent`
        (a reply's reply joins the top-level comment); its id."""
        return self.ig_store.add_comment(media_id, username, text, parent=parent, created=created).id

    def hide_ig_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or show) a comment as the account would; it still reads it, with `hidden: true`."""
        if not self.ig_store.set_hidden(comment_id, hidden):
            raise KeyError(f"no Instagram comment {comment_id!r}")

    def disable_ig_comments(self, media_id: str, disabled: bool = True) -> None:
        """Turn comments off (or on) for a media, as its owner would (`is_comment_enabled`)."""
        if not self.ig_store.set_comments_enabled(media_id, not disabled):
            raise KeyError(f"no Instagram media {media_id!r}")

    def grow_ig(self, n: int, spread: bool = True) -> list[str]:
        """Add `n` generated Instagram comments and replies (and media they need), about one in eight an
        @mention on another account's media (notified when subscribed); returns all new ids."""
        made = [r.id for r in self.ig_store.grow(n, spread)]
        self._notify_mentions()
        return made

    # -- mentions and their webhook -------------------------------------------------------------

    def add_ig_mention_media(self, owner: str, caption: str, *, created: float | None = None) -> str:
        """`owner`'s media whose caption @mentions the account ("@acme_mobile" appended when missing); not in
        /tags or /media; notified to a subscribed webhook. Its id."""
        made = self.ig_store.add_mention_media(owner, caption, created=created).id
        self._notify_mentions()
        return made

    def add_ig_mention_comment(self, media_id: str, username: str, text: str, *,
                               created: float | None = None) -> str:
        """A comment by `username` @mentioning the account ("@acme_mobile " put first when missing) on another
        account's media; notified to a subscribed webhook. Its id."""
        made = self.ig_store.add_mention_comment(media_id, username, text, created=created).id
        self._notify_mentions()
        return made

    def subscribe_webhook(self, callback_url: str, app_secret: str) -> None:
        """POST every new @mention to `callback_url` as Meta's `mentions` notification, signed with `app_secret`."""
        self.ig_webhooks.subscribe(callback_url, app_secret)

    def unsubscribe_webhook(self) -> None:
        self.ig_webhooks.unsubscribe()

    def retry_webhooks(self) -> int:
        """Send the notifications whose delivery failed now; returns how many are still pending."""
        return self.ig_webhooks.retry()

    @property
    def webhook_failures(self) -> list[tuple[str, str]]:
        """(callback url, error text) of every failed delivery; the notification is sent again next time."""
        return self.ig_webhooks.failures

    def _notify_mentions(self) -> None:
        """Deliver the mentions made since the last call (outside the store's lock: the receiver may call back)."""
        made = self.ig_store.take_mentions()
        if made:
            self.ig_webhooks.notify(made)


class InstagramGraph:
    """GET and POST on Instagram objects; see the module doc."""

    def __init__(self, host: Host, store: InstagramStore) -> None:
        self.host, self.store = host, store

    def account_of(self, page_id: str) -> dict[str, str] | None:
        """A page's `instagram_business_account` field."""
        account = self.store.account
        return {"id": account.id} if account.page_id == page_id else None

    def _node(self, object_id: str, info: PageToken) -> IgNode:
        node = self.store.node(object_id)
        if node is None or info.page_id != self.store.account.page_id:
            raise gone(object_id)
        return node

    # -- reading --------------------------------------------------------------------------------

    def get(self, request: Request, info: PageToken, parts: list[str], params: dict[str, str]) -> dict[str, Any]:
        node = self._node(parts[0], info)
        require(info.permissions, 10, *READ_PERMISSIONS)
        if len(parts) == 1:
            return self.render(request, node, params.get("fields"))
        edge = parts[1]
        items: list[IgMedia] | list[IgComment]
        kind: type[IgMedia] | type[IgComment]
        if isinstance(node, IgAccount) and edge in ("media", "tags"):
            items = self.store.own_media() if edge == "media" else self.store.tagged_media()
            since, until = params.get("since"), params.get("until")
            if since or until:
                low = parse_time("since", since) if since else float("-inf")
                high = parse_time("until", until) if until else float("inf")
                items = [m for m in items if low <= int(m.created) < high]
            descending, cap, kind = True, MAX_MEDIA_LIMIT, IgMedia
        elif isinstance(node, IgMedia) and edge == "comments":
            if node.tagged:
                raise invalid(TAGGED)
            if self.host.take_vanishing(node.id):
                self.store.delete(node.id)
                raise gone(node.id)
            items, descending, cap, kind = self.store.top_level(node), False, MAX_COMMENT_LIMIT, IgComment
        elif isinstance(node, IgComment) and edge == "replies":
            items, descending, cap, kind = self.store.replies_of(node), False, MAX_COMMENT_LIMIT, IgComment
        else:
            raise invalid(f"Tried accessing nonexisting field ({edge}) on node type ({NODE_TYPES[type(node)]})")
        specs = parse_fields(params.get("fields") or _DEFAULTS[kind])
        check_fields(specs, _ALLOWED[kind], NODE_TYPES[kind])
        limit = min(limit_param(params.get("limit")), cap)
        query = {k: v[0] for k, v in request.query.items() if v and k not in ("after", "before")}
        return self._page(request, items, specs, limit, params, descending, f"{self.host.url}{request.path}", query)

    def _page(self, request: Request, items: list[IgMedia] | list[IgComment], specs: list[FieldSpec], limit: int,
              params: dict[str, str], descending: bool, base: str, query: dict[str, str],
              previous: bool = True) -> dict[str, Any]:
        """One page of `items` with Graph's cursor paging; links go to `base` with `query` and the token."""
        page, has_prev, has_next = slice_page(items, limit, params.get("after"), params.get("before"), descending)
        body: dict[str, Any] = {"data": [self.render(request, item, specs) for item in page]}
        if page:
            cursors = {"before": encode_cursor(*page[0].key), "after": encode_cursor(*page[-1].key)}
            paging: dict[str, Any] = {"cursors": cursors}
            if "access_token" not in query and (token := token_of(request)):
                query = {**query, "access_token": token}
            if has_next:
                paging["next"] = f"{base}?{urlencode({**query, 'after': cursors['after']})}"
            if has_prev and previous:
                paging["previous"] = f"{base}?{urlencode({**query, 'before': cursors['before']})}"
            body["paging"] = paging
        return body

    def render(self, request: Request, node: IgNode, fields: str | list[FieldSpec] | None) -> dict[str, Any]:
        """`node` with the requested fields (and, as Graph answers, its `id` always)."""
        specs = fields if isinstance(fields, list) else parse_fields(fields or _DEFAULTS[type(node)])
        check_fields(specs, _ALLOWED[type(node)], NODE_TYPES[type(node)])
        out: dict[str, Any] = {}
        for spec in specs:
            value = self._value(request, node, spec)
            if value is not None:
                out[spec.name] = value
        out.setdefault("id", node.id)
        return out

    def _value(self, request: Request, node: IgNode, spec: FieldSpec) -> Any:
        name, account = spec.name, self.store.account
        if isinstance(node, IgAccount):
            if name in MENTION_LOOKUPS:
                return self._mentioned(request, spec)
            return {"id": node.id, "username": node.username, "name": node.name, "followers_count": node.followers,
                    "media_count": len(self.store.own_media())}.get(name)
        if name == "id":
            return node.id
        if name == "timestamp":
            return graph_time(node.created)
        if name == "like_count":
            return node.like_count
        if isinstance(node, IgMedia):
            if name == "comments_count":
                return self.store.comments_count(node)
            if name == "owner":
                return {"id": account.id} if node.own else None
            return {"caption": node.caption, "media_type": node.media_type, "media_product_type": node.product_type,
                    "permalink": node.permalink, "shortcode": node.shortcode, "username": node.username,
                    "is_comment_enabled": node.comments_enabled}.get(name)
        if name == "text":
            return node.text
        if name == "username":
            return node.author.username
        if name == "from":
            return _only(spec, {"id": node.author.id, "username": node.author.username})
        if name == "hidden":
            return node.hidden
        if name == "parent_id":
            return node.parent.id if node.parent is not None else None
        if name == "media":
            return _only(spec, {"id": node.media.id, "media_product_type": node.media.product_type}, keep="id")
        if name == "user":
            return {"id": account.id} if node.author.id == account.id else None
        if name == "replies":
            return self._replies(request, node, spec)
        return None

    def _replies(self, request: Request, comment: IgComment, spec: FieldSpec) -> dict[str, Any]:
        """The `replies{...}` expansion: the first page, with `paging.next` into /{comment-id}/replies."""
        specs = spec.sub if spec.sub is not None else parse_fields(_DEFAULTS[IgComment])
        check_fields(specs, COMMENT_FIELDS, "IGComment")
        limit = min(limit_param(spec.modifiers.get("limit")), MAX_COMMENT_LIMIT)
        version = request.path.split("/")[1]
        query = {"fields": format_fields(specs), "limit": str(limit)}
        return self._page(request, self.store.replies_of(comment), specs, limit, {}, False,
                          f"{self.host.url}/{version}/{comment.id}/replies", query, previous=False)

    # -- mention lookups ------------------------------------------------------------------------

    def _mentioned(self, request: Request, spec: FieldSpec) -> dict[str, Any]:
        """`mentioned_comment.comment_id(X){...}` / `mentioned_media.media_id(X){...}` on the account node."""
        key = MENTION_LOOKUPS[spec.name]
        object_id = spec.modifiers.get(key, "").strip()
        if not object_id:
            raise invalid(f"The parameter {key} is required for the field {spec.name}: {spec.name}.{key}(<id>)")
        specs = spec.sub if spec.sub is not None else parse_fields(_MENTION_DEFAULTS[spec.name])
        if spec.name == "mentioned_comment":
            comment = self.store.mentioned_comment(object_id)
            if comment is None:
                raise gone(object_id)
            if not comment.media.comments_enabled:
                raise invalid(COMMENTS_DISABLED)
            check_fields(specs, MENTIONED_COMMENT_FIELDS, "IGComment")
            return _fields(comment.id, specs, lambda s: self._mentioned_comment_value(request, comment, s))
        media = self.store.mentioned_media(object_id)
        if media is None:
            raise gone(object_id)
        return self._mentioned_media(request, media, specs)

    def _mentioned_comment_value(self, request: Request, comment: IgComment, spec: FieldSpec) -> Any:
        if spec.name == "media":
            return {"id": comment.media.id} if spec.sub is None else \
                self._mentioned_media(request, comment.media, spec.sub)
        return {"id": comment.id, "like_count": comment.like_count, "text": comment.text,
                "timestamp": graph_time(comment.created)}.get(spec.name)

    def _mentioned_media(self, request: Request, media: IgMedia, specs: list[FieldSpec]) -> dict[str, Any]:
        """Another account's media with the fields a mention lookup may read (`owner` is its owner's id)."""
        check_fields(specs, MENTIONED_MEDIA_FIELDS, "IGMedia")

        def value(spec: FieldSpec) -> Any:
            if spec.name == "comments":
                return self._mentioned_comments(request, media, spec)
            if spec.name == "owner":
                return _only(spec, {"id": self.store.person(media.username).id}, keep="id")
            if spec.name == "media_url":
                kind = "mp4" if media.media_type == "VIDEO" else "jpg"
                return f"https://scontent.cdninstagram.com/v/t51.2885-15/{media.id}_n.{kind}"
            return self._value(request, media, spec)

        return _fields(media.id, specs, value)

    def _mentioned_comments(self, request: Request, media: IgMedia, spec: FieldSpec) -> dict[str, Any]:
        """The `comments{...}` edge of a mentioned media: top level, chronological, the first page, with
        `paging.next` into /{media-id}/comments; `replies{...}` expand as elsewhere."""
        specs = spec.sub if spec.sub is not None else parse_fields(_DEFAULTS[IgComment])
        check_fields(specs, MENTIONED_MEDIA_COMMENT_FIELDS, "IGComment")
        for sub in specs:
            if sub.name == "replies":
                check_fields(sub.sub or [], MENTIONED_MEDIA_REPLY_FIELDS, "IGComment")
        limit = min(limit_param(spec.modifiers.get("limit")), MAX_COMMENT_LIMIT)
        version = request.path.split("/")[1]
        query = {"fields": format_fields(specs), "limit": str(limit)}
        return self._page(request, self.store.top_level(media), specs, limit, {}, False,
                          f"{self.host.url}/{version}/{media.id}/comments", query, previous=False)

    # -- writing --------------------------------------------------------------------------------

    def post(self, request: Request, info: PageToken, parts: list[str], params: dict[str, str]) -> dict[str, Any]:
        node = self._node(parts[0], info)
        edge = parts[1] if len(parts) == 2 else None
        if len(parts) == 1 and isinstance(node, IgComment) and "hide" in params:
            require(info.permissions, 10, *WRITE_PERMISSIONS)
            self.store.set_hidden(node.id, truthy(params["hide"]))
            return {"success": True}
        if len(parts) == 1:
            raise gone(parts[0], "post")
        if edge == "replies" and isinstance(node, IgComment):
            return self._reply(info, node.media, node, params)
        if edge == "comments" and isinstance(node, IgMedia):
            if not node.own:  # others' media: through /mentions, and never when only tagged
                raise invalid(TAGGED) if node.tagged else gone(node.id, "post")
            return self._reply(info, node, None, params)
        if edge == "mentions" and isinstance(node, IgAccount):
            return self._mention(info, params)
        raise GraphError(400, f"Unknown path components: /{'/'.join(parts)}", 2500)

    def _mention(self, info: PageToken, params: dict[str, str]) -> dict[str, Any]:
        """POST /{ig-user-id}/mentions: a comment on media (or a reply to a comment) that @mentions the account."""
        require(info.permissions, 10, *WRITE_PERMISSIONS)
        media_id, comment_id = params.get("media_id", ""), params.get("comment_id")
        if not media_id:
            raise invalid("The parameter media_id is required")
        media = self.store.node(media_id)
        if not isinstance(media, IgMedia):
            raise gone(media_id, "post")
        handle = f"@{self.store.account.username}"
        if comment_id:
            comment = self.store.node(comment_id)
            if not isinstance(comment, IgComment) or comment.media is not media:
                raise gone(comment_id, "post")
            if not self.store.mentions(comment.text):
                raise invalid(f"The comment {comment_id} does not mention {handle}")
            return self._reply(info, media, comment, params)
        if not self.store.mentions(media.caption):
            raise invalid(TAGGED if media.tagged else f"The media {media_id} does not mention {handle}")
        return self._reply(info, media, None, params)

    def _reply(self, info: PageToken, media: IgMedia, target: IgComment | None,
               params: dict[str, str]) -> dict[str, Any]:
        """The account's comment on `media` or reply to `target` (checks, refusals and duplicates first)."""
        require(info.permissions, 10, *WRITE_PERMISSIONS)
        if media.tagged and target is not None:
            raise invalid(TAGGED)
        message = params.get("message", "")
        if not message.strip():
            raise invalid("The parameter message is required")
        if len(message) > MAX_MESSAGE:
            raise invalid(f"Param message must be at most {MAX_MESSAGE} characters long")
        if target is not None and (target.hidden or (target.parent is not None and target.parent.hidden)):
            raise invalid("Cannot reply to a hidden comment")
        if not media.comments_enabled:
            raise invalid(COMMENTS_DISABLED)
        account = self.store.account
        self.host.claim_write(info, target.id if target is not None else media.id, message, ig_user=account.id)
        parent = target.id if target is not None else None
        return {"id": self.store.add_comment(media.id, account.username, message, parent=parent).id}


def _fields(object_id: str, specs: list[FieldSpec], value: Callable[[FieldSpec], Any]) -> dict[str, Any]:
    """An object with the requested fields that have a value (and, as Graph answers, its `id` always)."""
    out: dict[str, Any] = {}
    for spec in specs:
        found = value(spec)
        if found is not None:
            out[spec.name] = found
    out.setdefault("id", object_id)
    return out


def _only(spec: FieldSpec, value: dict[str, str], keep: str | None = None) -> dict[str, str]:
    """A struct field cut to the requested sub-fields (`from{username}`), `keep` always."""
    if spec.sub is None:
        return value
    wanted = {s.name for s in spec.sub} | ({keep} if keep else set())
    return {k: v for k, v in value.items() if k in wanted}
