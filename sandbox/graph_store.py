"""The Graph emulator's data: pages, people, access tokens, posts, comments and replies, generated activity.

Stdlib only. Object numbers come from one growing counter, so ids grow with creation (as Graph ids
roughly do). Post ids are `{page-or-author-id}_{post-number}`, comment ids `{post-number}_{number}`.
Comments are kept per post in stream order (created, seq); replies hang under their top-level
comment (Facebook threads are two levels deep: a reply to a reply joins the top-level thread).
Posts' `updated` moves with every comment or reply, as on Facebook. Every public method takes the lock.

People come from `sandbox.feed.customer_pool` (those with a `facebook_name`), so the same seed gives
the same people as the X emulator under their Facebook names ("Jana Becker" here, @jana_b on X).
"""

from __future__ import annotations

import bisect
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.feed import BRAND_NAME, Customer, FeedGenerator, FeedPost, customer_pool

PAGE_ID = "100000000000001"
LOOKBACK_S = 14 * 24 * 3600
_PERSON_ID_BASE = 61_550_000_000_000
_FIRST_NUMBER = 122_100_000_000_000_001
_PAGE_POSTS = {
    "en": ["New: the Acme Unlimited 5G plan, now with EU roaming included 🚀",
           "Our shops in London and Manchester open late this weekend. Come say hi!",
           "Planned network maintenance tonight 01:00-03:00 in parts of Leeds. Sorry for the trouble.",
           "The Pixel 10 is here! Order today, delivered tomorrow.",
           "Tell us: what should our next plan include?",
           "Black Friday: 30% off all smartwatches until Sunday."],
    "de": ["Neu: der Acme Unlimited 5G Tarif, jetzt mit EU-Roaming inklusive 🚀",
           "Geplante Wartungsarbeiten heute Nacht 01:00-03:00 in Teilen von Hamburg.",
           "Das iPhone 17 ist da! Heute bestellen, morgen geliefert.",
           "Was wünscht ihr euch für unseren nächsten Tarif?"],
}
_HANDLE_RE = re.compile(r"^(@\w+\s+)+")
PERMISSIONS = ("pages_show_list", "pages_read_engagement", "pages_read_user_content", "pages_manage_engagement",
               "pages_manage_metadata", "instagram_basic", "instagram_manage_comments")


@dataclass(slots=True)
class Profile:
    """A person or a page as `from` shows it."""

    id: str
    name: str
    is_page: bool = False


@dataclass
class PageToken:
    """An access token: its page, granted permissions, whether it has expired, and for a user access
    token (of someone who manages the page) the user it belongs to."""

    page_id: str
    permissions: set[str] = field(default_factory=lambda: set(PERMISSIONS))
    expired: bool = False
    user: Profile | None = None


@dataclass(slots=True)
class CommentRecord:
    id: str
    number: int
    post: PostRecord
    author: Profile
    message: str
    created: float
    seq: int
    parent: CommentRecord | None = None
    hidden: bool = False
    deleted: bool = False
    replies: list[CommentRecord] = field(default_factory=list)

    @property
    def key(self) -> tuple[float, int]:
        return (self.created, self.seq)

    @property
    def permalink(self) -> str:
        base = f"{self.post.permalink}?comment_id={(self.parent or self).number}"
        return base + (f"&reply_comment_id={self.number}" if self.parent is not None else "")


@dataclass(slots=True)
class PostRecord:
    id: str
    number: int
    page_id: str
    author: Profile
    message: str
    created: float
    seq: int
    kind: str  # "page" (by the page), "visitor" (by a person on the page), "tagged" (elsewhere, tags the page)
    updated: float = 0.0
    deleted: bool = False
    hidden: bool = False
    comments: list[CommentRecord] = field(default_factory=list)  # stream order, replies included

    @property
    def key(self) -> tuple[float, int]:
        return (self.created, self.seq)

    @property
    def permalink(self) -> str:
        owner = self.author.id if self.kind == "tagged" else self.page_id
        return f"https://www.facebook.com/{owner}/posts/{self.number}"


class GraphStore:
    """Pages, people, posts and comments of the emulated Graph API. Thread-safe."""

    def __init__(self, clock: Callable[[], float], seed: int = 0, customers: list[Customer] | None = None,
                 page_id: str = PAGE_ID, page_name: str = BRAND_NAME) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.customers = customers if customers is not None else customer_pool(seed)
        on_facebook = [c for c in self.customers if c.facebook_name and not c.is_spammer]
        self.feed = FeedGenerator(seed, on_facebook or self.customers)
        self._rng = random.Random(f"graph-{seed}")
        self._number = _FIRST_NUMBER
        self._seq = 0
        self.pages: dict[str, Profile] = {}
        self.posts: dict[str, PostRecord] = {}
        self.comments: dict[str, CommentRecord] = {}
        self._by_seq: list[PostRecord | CommentRecord] = []  # everything ever added, in seq order
        self._feeds: dict[tuple[str, str], list[PostRecord]] = {}  # (page id, kind) -> posts by key
        self._people: dict[str, Profile] = {}  # by name
        self._feed_objects: dict[int, PostRecord | CommentRecord] = {}  # FeedPost.seq -> object
        self._spam_names = [c.display_name for c in self.customers if c.is_spammer] or ["Free Phones 4U"]
        self.page_id = page_id
        self.add_page(page_id, page_name)

    # -- identities -----------------------------------------------------------------------------

    def add_page(self, page_id: str, name: str) -> Profile:
        with self.lock:
            return self.pages.setdefault(page_id, Profile(page_id, name, is_page=True))

    def person(self, name: str) -> Profile:
        """The person called `name` (created on first use; pool customers keep a stable id)."""
        with self.lock:
            found = self._people.get(name)
            if found is None:
                index = next((c.index for c in self.customers if c.facebook_name == name), None)
                number = _PERSON_ID_BASE + (index if index is not None else 100_000 + len(self._people))
                found = self._people[name] = Profile(str(number), name)
            return found

    def customer_profile(self, customer: Customer) -> Profile:
        return self.person(customer.facebook_name or customer.display_name)

    def profile(self, author: str | Profile) -> Profile:
        """A page (by id or name) or a person (by name)."""
        if isinstance(author, Profile):
            return author
        with self.lock:
            page = self.pages.get(author) or next((p for p in self.pages.values() if p.name == author), None)
            return page or self.person(author)

    # -- writes ---------------------------------------------------------------------------------

    def _next(self) -> tuple[int, int]:
        self._number += self._rng.randrange(1, 97)
        self._seq += 1
        return self._number, self._seq

    def add_post(self, author: str | Profile | None, message: str, *, page_id: str | None = None,
                 kind: str | None = None, created: float | None = None) -> PostRecord:
        """A post on `page_id`'s feed: by the page (author None or the page), a visitor, or tagging the page."""
        with self.lock:
            page_id = page_id or self.page_id
            profile = self.pages[page_id] if author is None else self.profile(author)
            kind = kind or ("page" if profile.id == page_id else "visitor")
            if kind not in ("page", "visitor", "tagged"):
                raise ValueError(f"unknown post kind {kind!r}")
            number, seq = self._next()
            owner = profile.id if kind == "tagged" else page_id
            at = self.clock() if created is None else created
            post = PostRecord(f"{owner}_{number}", number, page_id, profile, message, at, seq, kind, at)
            self.posts[post.id] = post
            self._by_seq.append(post)
            bisect.insort(self._feeds.setdefault((page_id, kind), []), post, key=lambda p: p.key)
            return post

    def add_comment(self, target_id: str, author: str | Profile, message: str, *, parent: str | None = None,
                    created: float | None = None) -> CommentRecord:
        """A comment on post `target_id`, or a reply when `parent` (or `target_id`) names a comment."""
        with self.lock:
            target: PostRecord | CommentRecord | None = self.posts.get(target_id) or self.comments.get(target_id)
            if parent is not None:
                target = self.comments.get(parent)
            if target is None or target.deleted:
                raise KeyError(f"no post or comment {parent or target_id!r}")
            post = target if isinstance(target, PostRecord) else target.post
            top = None if isinstance(target, PostRecord) else (target.parent or target)
            number, seq = self._next()
            at = self.clock() if created is None else created
            comment = CommentRecord(f"{post.number}_{number}", number, post, self.profile(author), message, at,
                                    seq, top)
            bisect.insort(post.comments, comment, key=lambda c: c.key)
            if top is not None:
                bisect.insort(top.replies, comment, key=lambda c: c.key)
            post.updated = max(post.updated, at)
            self.comments[comment.id] = comment
            self._by_seq.append(comment)
            return comment

    def delete(self, object_id: str) -> bool:
        """Delete a post or comment (lookups then answer "does not exist")."""
        with self.lock:
            found = self.posts.get(object_id) or self.comments.get(object_id)
            if found is None:
                return False
            found.deleted = True
            return True

    def set_hidden(self, comment_id: str, hidden: bool = True) -> bool:
        """Hide (or show again) a comment, as the page does; False when there is no such comment."""
        with self.lock:
            found = self.comments.get(comment_id)
            if found is None or found.deleted:
                return False
            found.hidden = hidden
            return True

    # -- reads ----------------------------------------------------------------------------------

    def node(self, object_id: str) -> PostRecord | CommentRecord | Profile | None:
        with self.lock:
            found = self.posts.get(object_id) or self.comments.get(object_id) or self.pages.get(object_id)
            if isinstance(found, PostRecord | CommentRecord) and (found.deleted or _parent_gone(found)):
                return None
            return found

    def feed_of(self, page_id: str, kinds: tuple[str, ...]) -> list[PostRecord]:
        """The page's posts of `kinds`, newest first."""
        with self.lock:
            found = [p for kind in dict.fromkeys(kinds) for p in self._feeds.get((page_id, kind), ())
                     if not p.deleted]
            return sorted(found, key=lambda p: p.key, reverse=True)

    def comments_of(self, node: PostRecord | CommentRecord, stream: bool) -> list[CommentRecord]:
        """Comments in chronological order: all of a post's (stream) or the top level; a comment's replies."""
        with self.lock:
            if isinstance(node, CommentRecord):
                return [c for c in node.replies if not c.deleted]
            return [c for c in node.comments if not c.deleted and not _parent_gone(c)
                    and (stream or c.parent is None)]

    # -- generated activity ---------------------------------------------------------------------

    def seed_page_posts(self, n: int, days: float = 21.0) -> list[PostRecord]:
        """`n` page posts spread over the past `days` (the oldest outside the 14-day look-back)."""
        with self.lock:
            now = self.clock()
            out = []
            for i in range(n):
                lang = "de" if self._rng.random() < 0.3 else "en"
                at = now - days * 86400 * (n - i) / (n + 1)
                out.append(self.add_post(None, self._rng.choice(_PAGE_POSTS[lang]), created=at))
            return out

    def grow(self, n: int, spread: bool = True) -> list[PostRecord | CommentRecord]:
        """Add `n` generated items (and the page posts they need); returns all that was added, oldest first.

        With `spread`, their times lead up to now.
        """
        with self.lock:
            now, first_seq = self.clock(), self._seq
            posts = [self._next_feed_post() for _ in range(n)]
            at = now - sum(p.gap_s for p in posts) if spread else now
            for post in posts:
                at = min(now, at + post.gap_s) if spread else now
                self._add_feed_post(post, at)
            return self._by_seq[first_seq:]  # seq n sits at index n - 1

    def _next_feed_post(self) -> FeedPost:
        while True:
            post = self.feed.next_post()
            if post.category != "retweet":
                return post

    def _add_feed_post(self, post: FeedPost, at: float) -> PostRecord | CommentRecord:
        rng = self._rng
        text = _fb_text(post.text)
        target = self._feed_objects.get(post.reply_to) if post.reply_to is not None else None
        if target is not None and target.deleted:
            target = None
        record: PostRecord | CommentRecord
        if post.category == "brand_reply":
            page = self.pages[self.page_id]
            if target is None:
                record = self.add_post(page, text, created=at)
            else:
                name = target.author.name.split(" ")[0] if not target.author.is_page else "there"
                text = f"{'Hallo' if post.lang == 'de' else 'Hi'} {name}! {text}"
                record = self.add_comment(target.id, page, text, created=at)
        elif target is not None and post.customer is not None:
            record = self.add_comment(target.id, self.customer_profile(post.customer), text, created=at)
        else:
            author = (self.person(rng.choice(self._spam_names)) if post.category == "spam" or post.customer is None
                      else self.customer_profile(post.customer))
            record = self._new_thread(author, text, at)
        self._feed_objects[post.seq] = record
        return record

    def _new_thread(self, author: Profile, text: str, at: float) -> PostRecord | CommentRecord:
        rng = self._rng
        if rng.random() < 0.03 or not self._page_posts(at):
            lang = "de" if rng.random() < 0.3 else "en"
            self.add_post(None, rng.choice(_PAGE_POSTS[lang]), created=at)
        roll = rng.random()
        if roll < 0.12:
            return self.add_post(author, text, created=at)
        if roll < 0.17:
            return self.add_post(author, text, kind="tagged", created=at)
        recent = self._page_posts(at)
        # mostly the newest posts, but comments keep arriving on two-week-old ones too
        post = recent[-1 - min(int(rng.expovariate(0.6)), len(recent) - 1)] if rng.random() < 0.8 \
            else rng.choice(recent)
        return self.add_comment(post.id, author, text, created=at)

    def _page_posts(self, at: float) -> list[PostRecord]:
        """The page's own posts of the last 14 days before `at`, oldest first (the live feed's hot path)."""
        posts = self._feeds.get((self.page_id, "page"), [])
        start = bisect.bisect_right(posts, at - LOOKBACK_S, key=lambda p: p.created)
        return [p for p in posts[start:] if not p.deleted]


def _parent_gone(record: PostRecord | CommentRecord) -> bool:
    if isinstance(record, PostRecord):
        return False
    return record.post.deleted or (record.parent is not None and record.parent.deleted)


def _fb_text(text: str) -> str:
    """An X-style feed text as a Facebook comment: no leading @handles, the brand by name."""
    text = _HANDLE_RE.sub("", text)
    text = re.sub(r"@acme_help\b", "Acme", text)
    text = re.sub(r"@acme\b", "Acme Mobile", text)
    return re.sub(r"\s{2,}", " ", text).strip() or "Acme"
