"""The Instagram side of the Graph emulator's data: the brand's professional account, media, comments.

Stdlib only. Ids come from growing counters (media 17 digits, comments 17 digits, people's
Instagram-scoped ids 17 digits), so they grow with creation, also within one second. Media are kept
newest last by (created, seq); comments per media in chronological order, replies under their
top-level comment (threads are two levels deep: a reply to a reply joins the top-level comment).
Every public method takes the lock.

Generated activity (`grow`) reads its own `FeedGenerator` stream (so the Facebook side of the same
seed stays as it was): customers, under their `Customer.handle`, comment in English and German on the
brand's recent media, the account answers some of them and customers follow up. About one item in eight
is an @mention of the account on another account's media instead: a customer's own media whose
caption mentions it, or a customer's comment mentioning it on someone else's media. Mentions made
through `add_mention_media` / `add_mention_comment` (the feed's included) are queued for the
`mentions` webhook (`take_mentions`).
"""

from __future__ import annotations

import bisect
import random
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.feed import BRAND_NAME, Customer, FeedGenerator, FeedPost

IG_USER_ID = "17841400000000001"
IG_USERNAME = "acme_mobile"
LOOKBACK_S = 14 * 24 * 3600
_FIRST_MEDIA = 17_880_000_000_000_001
_FIRST_COMMENT = 17_950_000_000_000_001
_PERSON_BASE = 17_841_450_000_000_000
_FEED_SEED_OFFSET = 100_003  # the IG stream of seed s is FeedGenerator(s + offset) on the same customers
_SHORTCODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# (media_type, media_product_type) of the account's own media, by creation
_KINDS = (("IMAGE", "FEED"), ("CAROUSEL_ALBUM", "FEED"), ("VIDEO", "REELS"), ("IMAGE", "FEED"), ("VIDEO", "FEED"))
_CAPTIONS = {
    "en": ["Meet the Acme Unlimited 5G plan: EU roaming included 🚀 #AcmeMobile",
           "Late-night shopping in London and Manchester this weekend ✨ Come say hi!",
           "The Pixel 10 is here. Order today, delivered tomorrow 📦 #AcmeMobile",
           "Tell us in the comments: what should our next plan include? 👇",
           "Black Friday: 30% off all smartwatches until Sunday ⌚"],
    "de": ["Neu: der Acme Unlimited 5G Tarif, jetzt mit EU-Roaming inklusive 🚀 #AcmeMobile",
           "Das iPhone 17 ist da! Heute bestellen, morgen geliefert 📦",
           "Was wünscht ihr euch für unseren nächsten Tarif? Schreibt es in die Kommentare 👇"],
}
# captions of other accounts' media that a mentioning comment lands on (the captions themselves mention nobody)
_OTHER_CAPTIONS = {
    "en": ["New phone, who dis? 📱", "Sunday hike with the crew ⛰️", "Coffee first ☕", "Concert night 🎶",
           "Finally moved into the new flat 🏠", "Throwback to the summer 🌊"],
    "de": ["Neues Handy ist da 📱", "Sonntagsausflug mit der Familie ⛰️", "Erstmal Kaffee ☕",
           "Endlich in der neuen Wohnung 🏠", "Konzertabend 🎶", "Sommer, komm zurück 🌊"],
}
_MENTION_SHARE = 1 / 6  # of the feed's fresh customer posts (about three in four items): one item in eight
_BRAND_RE = re.compile(r"@acme(_help)?\b")


@dataclass(slots=True)
class IgPerson:
    """An Instagram user as a comment's `from` shows it (id: the Instagram-scoped id)."""

    id: str
    username: str


@dataclass(slots=True)
class IgAccount:
    """The brand's Instagram professional account, connected to a Facebook page."""

    id: str
    username: str
    name: str
    page_id: str
    followers: int = 23_400


@dataclass(slots=True)
class IgComment:
    id: str
    media: IgMedia
    author: IgPerson
    text: str
    created: float
    seq: int
    parent: IgComment | None = None
    hidden: bool = False
    deleted: bool = False
    like_count: int = 0
    replies: list[IgComment] = field(default_factory=list)  # chronological

    @property
    def key(self) -> tuple[float, int]:
        return (self.created, self.seq)

    @property
    def gone(self) -> bool:
        return self.deleted or self.media.deleted or (self.parent is not None and self.parent.deleted)


@dataclass(slots=True)
class IgMedia:
    id: str
    caption: str
    created: float
    seq: int
    username: str  # the owner's
    own: bool  # the account's own media (else someone else's)
    tagged: bool  # someone else's media tagging the account
    media_type: str
    product_type: str
    like_count: int = 0
    deleted: bool = False
    comments_enabled: bool = True
    comments: list[IgComment] = field(default_factory=list)  # top-level, chronological

    @property
    def key(self) -> tuple[float, int]:
        return (self.created, self.seq)

    @property
    def shortcode(self) -> str:
        number, out = int(self.id), ""
        while number:
            number, digit = divmod(number, 64)
            out = _SHORTCODE[digit] + out
        return "C" + out

    @property
    def permalink(self) -> str:
        return f"https://www.instagram.com/p/{self.shortcode}/"


IgNode = IgAccount | IgMedia | IgComment


class InstagramStore:
    """The account, its media, media tagging it, and comments. Thread-safe."""

    def __init__(self, clock: Callable[[], float], seed: int, customers: list[Customer], page_id: str,
                 *, user_id: str = IG_USER_ID, username: str = IG_USERNAME, name: str = BRAND_NAME) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.account = IgAccount(user_id, username, name, page_id)
        self.customers = customers
        self.feed = FeedGenerator(seed + _FEED_SEED_OFFSET, customers)
        self._rng = random.Random(f"instagram-{seed}")
        self._media_number, self._comment_number, self._seq = _FIRST_MEDIA, _FIRST_COMMENT, 0
        self._ids = random.Random(f"instagram-ids-{seed}")  # id steps, apart from the content's randomness
        self.media: dict[str, IgMedia] = {}
        self.comments: dict[str, IgComment] = {}
        self._own: list[IgMedia] = []  # by key
        self._tagged: list[IgMedia] = []  # by key
        self._others: list[IgMedia] = []  # other accounts' media not tagging the account, in creation order
        self._mention_re = re.compile(rf"@{re.escape(username)}(?!\w|\.\w)", re.IGNORECASE)
        self._mentions: deque[tuple[str, str | None]] = deque(maxlen=10_000)  # (media id, comment id) to notify
        self._mention_rng = random.Random(f"instagram-mentions-{seed}")
        self._added: list[IgMedia | IgComment] = []  # everything, in creation order
        self._people: dict[str, IgPerson] = {}  # by username
        self._handles = {c.handle: c.index for c in customers}
        self._feed_objects: dict[int, IgMedia | IgComment] = {}  # FeedPost.seq -> what it became

    # -- identities -----------------------------------------------------------------------------

    def person(self, username: str) -> IgPerson:
        """The Instagram user `username` (the account itself, a pool customer by handle, or anyone)."""
        with self.lock:
            if username == self.account.username:
                return IgPerson(self.account.id, username)
            found = self._people.get(username)
            if found is None:
                index = self._handles.get(username)
                number = _PERSON_BASE + (index if index is not None else 100_000 + len(self._people))
                found = self._people[username] = IgPerson(str(number), username)
            return found

    def mentions(self, text: str) -> bool:
        """Whether `text` @mentions the account (`@acme_mobile`, not `@acme_mobile_fan`)."""
        return self._mention_re.search(text) is not None

    def is_ig(self, object_id: str) -> bool:
        """Whether `object_id` is (or was) an Instagram object of this store."""
        with self.lock:
            return object_id == self.account.id or object_id in self.media or object_id in self.comments

    # -- writes ---------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_media(self, caption: str, *, created: float | None = None, owner: str | None = None,
                  tagged: bool = False) -> IgMedia:
        """The account's own media (owner None) or `owner`'s media (tagging the account when `tagged`)."""
        with self.lock:
            self._media_number += self._ids.randrange(1_000, 99_000)
            seq = self._next_seq()
            own = owner is None or owner == self.account.username
            kind = _KINDS[seq % len(_KINDS)] if own else ("IMAGE", "FEED")
            at = self.clock() if created is None else created
            media = IgMedia(str(self._media_number), caption, at, seq, self.account.username if own else owner or "",
                            own, tagged and not own, *kind, like_count=40 + self._media_number // 7 % 900)
            self.media[media.id] = media
            self._added.append(media)
            if own:
                bisect.insort(self._own, media, key=lambda m: m.key)
            elif media.tagged:
                bisect.insort(self._tagged, media, key=lambda m: m.key)
            else:
                self._others.append(media)
            return media

    def add_mention_media(self, owner: str, caption: str, *, created: float | None = None) -> IgMedia:
        """`owner`'s media whose caption @mentions the account (appended when missing); queued for the webhook."""
        with self.lock:
            if owner == self.account.username:
                raise ValueError("a mention is by another account")
            if not self.mentions(caption):
                caption = f"{caption} @{self.account.username}".strip()
            media = self.add_media(caption, created=created, owner=owner)
            self._mentions.append((media.id, None))
            return media

    def add_mention_comment(self, media_id: str, username: str, text: str, *,
                            created: float | None = None) -> IgComment:
        """A top-level comment by `username` @mentioning the account (prefixed when missing) on another
        account's media; queued for the webhook."""
        with self.lock:
            media = self.media.get(media_id)
            if media is None or media.deleted:
                raise KeyError(f"no media {media_id!r}")
            if media.own:
                raise ValueError(f"media {media_id!r} is the account's own: comments there are no mentions")
            if username == self.account.username:
                raise ValueError("a mention is by another account")
            if not self.mentions(text):
                text = f"@{self.account.username} {text}"
            comment = self.add_comment(media_id, username, text, created=created)
            self._mentions.append((media.id, comment.id))
            return comment

    def take_mentions(self) -> list[tuple[str, str | None]]:
        """The mentions made since the last call, oldest first: (media id, comment id or None)."""
        with self.lock:
            made = list(self._mentions)
            self._mentions.clear()
            return made

    def set_comments_enabled(self, media_id: str, enabled: bool) -> bool:
        """Turn comments on a media on or off (as its owner would); False when there is no such media."""
        with self.lock:
            media = self.media.get(media_id)
            if media is None or media.deleted:
                return False
            media.comments_enabled = enabled
            return True

    def add_comment(self, media_id: str, username: str, text: str, *, parent: str | None = None,
                    created: float | None = None) -> IgComment:
        """A comment by `username` on `media_id`, or a reply under `parent` (a reply's reply joins its top)."""
        with self.lock:
            media = self.media.get(media_id)
            if media is None or media.deleted:
                raise KeyError(f"no media {media_id!r}")
            top = None
            if parent is not None:
                found = self.comments.get(parent)
                if found is None or found.gone:
                    raise KeyError(f"no comment {parent!r}")
                if found.media is not media:
                    raise ValueError(f"comment {parent!r} is not on media {media_id!r}")
                top = found.parent or found
            self._comment_number += self._ids.randrange(1, 97)
            number = self._comment_number
            at = self.clock() if created is None else created
            comment = IgComment(str(number), media, self.person(username), text, at, self._next_seq(), top,
                                like_count=number % 5 if number % 3 == 0 else 0)
            bisect.insort(top.replies if top is not None else media.comments, comment, key=lambda c: c.key)
            self.comments[comment.id] = comment
            self._added.append(comment)
            return comment

    def delete(self, object_id: str) -> bool:
        """Delete a media or comment (reads then answer 100/33)."""
        with self.lock:
            found = self.media.get(object_id) or self.comments.get(object_id)
            if found is None:
                return False
            found.deleted = True
            return True

    def set_hidden(self, comment_id: str, hidden: bool = True) -> bool:
        """Hide (or show) a comment; False when there is no such comment."""
        with self.lock:
            found = self.comments.get(comment_id)
            if found is None or found.gone:
                return False
            found.hidden = hidden
            return True

    # -- reads ----------------------------------------------------------------------------------

    def node(self, object_id: str) -> IgNode | None:
        """The account, a media or a comment; None when unknown or deleted."""
        with self.lock:
            if object_id == self.account.id:
                return self.account
            media = self.media.get(object_id)
            if media is not None:
                return None if media.deleted else media
            comment = self.comments.get(object_id)
            return None if comment is None or comment.gone else comment

    def mentioned_comment(self, comment_id: str) -> IgComment | None:
        """A comment by someone else @mentioning the account (on any media, the account's own included); else None."""
        with self.lock:
            comment = self.comments.get(comment_id)
            if comment is None or comment.gone or comment.author.id == self.account.id:
                return None
            return comment if self.mentions(comment.text) else None

    def mentioned_media(self, media_id: str) -> IgMedia | None:
        """Another account's media whose caption @mentions the account; else None."""
        with self.lock:
            media = self.media.get(media_id)
            if media is None or media.deleted or media.own:
                return None
            return media if self.mentions(media.caption) else None

    def own_media(self) -> list[IgMedia]:
        """The account's media, newest first."""
        with self.lock:
            return [m for m in reversed(self._own) if not m.deleted]

    def tagged_media(self) -> list[IgMedia]:
        """Media of others that tag the account, newest first."""
        with self.lock:
            return [m for m in reversed(self._tagged) if not m.deleted]

    def top_level(self, media: IgMedia) -> list[IgComment]:
        with self.lock:
            return [c for c in media.comments if not c.deleted]

    def replies_of(self, comment: IgComment) -> list[IgComment]:
        with self.lock:
            return [c for c in comment.replies if not c.deleted]

    def comments_count(self, media: IgMedia) -> int:
        """All comments on `media`, replies included."""
        with self.lock:
            return sum(1 + len(self.replies_of(c)) for c in self.top_level(media))

    # -- generated activity ---------------------------------------------------------------------

    def seed_media(self, n: int, days: float = 21.0) -> list[IgMedia]:
        """`n` own media spread over the past `days`."""
        with self.lock:
            now = self.clock()
            return [self.add_media(self._caption(), created=now - days * 86400 * (n - i) / (n + 1)) for i in range(n)]

    def grow(self, n: int, spread: bool = True) -> list[IgMedia | IgComment]:
        """Add `n` generated items (and the media they need); returns all that was added, oldest first."""
        with self.lock:
            now, first = self.clock(), len(self._added)
            posts = [self._next_feed_post() for _ in range(n)]
            at = now - sum(p.gap_s for p in posts) if spread else now
            for post in posts:
                at = min(now, at + post.gap_s) if spread else now
                self._feed_objects[post.seq] = self._add_feed_post(post, at)
            return self._added[first:]

    def _next_feed_post(self) -> FeedPost:
        while True:
            post = self.feed.next_post()
            if post.category != "retweet":
                return post

    def _caption(self) -> str:
        return self._rng.choice(_CAPTIONS["de" if self._rng.random() < 0.3 else "en"])

    def _add_feed_post(self, post: FeedPost, at: float) -> IgMedia | IgComment:
        text = _BRAND_RE.sub("@" + self.account.username, post.text)
        target = self._feed_objects.get(post.reply_to) if post.reply_to is not None else None
        if not isinstance(target, IgComment) or target.gone or not target.media.own:  # threads stay on own media
            target = None
        if post.category == "brand_reply":
            if target is None:
                return self.add_media(self._caption(), created=at)
            return self.add_comment(target.media.id, self.account.username, text, parent=target.id, created=at)
        if post.customer is None:  # not made by FeedGenerator; kept for safety
            return self.add_media(self._caption(), created=at)
        if target is not None:
            return self.add_comment(target.media.id, post.customer.handle, text, parent=target.id, created=at)
        if post.reply_to is None and self._mention_rng.random() < _MENTION_SHARE:
            return self._feed_mention(post.customer, text, at)
        rng = self._rng
        if rng.random() < 0.03 or not self._recent_media(at):
            self.add_media(self._caption(), created=at)
        recent = self._recent_media(at)
        # mostly the newest media, but comments keep arriving on older ones too
        media = recent[-1 - min(int(rng.expovariate(0.6)), len(recent) - 1)] if rng.random() < 0.8 \
            else rng.choice(recent)
        return self.add_comment(media.id, post.customer.handle, text, created=at)

    def _feed_mention(self, customer: Customer, text: str, at: float) -> IgMedia | IgComment:
        """`customer`'s @mention of the account: their own media's caption, or a comment on someone else's media
        (a recent one of others, else a new post of another customer)."""
        rng = self._mention_rng
        if rng.random() < 0.5:
            return self.add_mention_media(customer.handle, text, created=at)
        others = [m for m in self._others[-20:] if not m.deleted and m.username != customer.handle and m.created <= at]
        if others and rng.random() < 0.6:
            media = rng.choice(others)
        else:
            pick = rng.randrange(len(self.customers))
            owner = self.customers[pick]
            if owner.handle == customer.handle:
                owner = self.customers[(pick + 1) % len(self.customers)]
            media = self.add_media(rng.choice(_OTHER_CAPTIONS[owner.lang]), created=at, owner=owner.handle)
        return self.add_mention_comment(media.id, customer.handle, text, created=at)

    def _recent_media(self, at: float) -> list[IgMedia]:
        """The account's media of the 14 days up to `at`, oldest first."""
        start = bisect.bisect_right(self._own, at - LOOKBACK_S, key=lambda m: m.created)
        return [m for m in self._own[start:] if not m.deleted and m.created <= at]
