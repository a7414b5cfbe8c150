"""The X emulator's data: users, posts with snowflake-like ids, conversations and fast id-range scans.

Stdlib only (and `sandbox.x_text`). Posts are kept in one list sorted by id (ids only grow), so
`since_id` / `until_id` / page tokens are bisections and a page scan touches only the posts it has
to look at. Mentions are indexed per mentioned username, posts per author (user timelines). Every
public method takes the store's lock.

Real X semantics kept here:
- edits (`edit_tweet`): a new post with a new id whose `edits` list is the chain's ids, oldest
  first, shared by every version; timelines and search list only a chain's newest version ("These
  endpoints will always return the most recent edit, along with any edit history", X search docs)
  unless `list_superseded` is set; deleting any version deletes the chain;
- search indexing delay: `search` does not see a post until `search_delay_s` (or the post's own
  `index_delay`) after it was created; timelines and lookups see it at once;
- retweets with `truncated_retweets`: "RT @user: " + the original, cut to 140 with "…".
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.feed import BRAND_HANDLE, BRAND_NAME, SUPPORT_HANDLE, Customer, FeedGenerator, FeedPost
from sandbox.x_query import HASHTAG_RE, MENTION_RE, Predicate, text_tokens
from sandbox.x_text import retweet_text

TWEPOCH_MS = 1288834974657  # X's snowflake epoch (2010-11-04)
SEARCH_WINDOW_S = 7 * 24 * 3600  # search/recent covers the last 7 days
MENTIONS_LIMIT = 800  # the mentions timeline reaches back this many posts
TIMELINE_LIMIT = 3200  # a user's post timeline reaches back this many posts (800 with exclude=replies)
EDIT_WINDOW_S = 30 * 60  # a post can be edited for 30 minutes after it was created ...
MAX_EDITS = 5  # ... up to five times
BRAND_USER_ID = 100001
SUPPORT_USER_ID = 100002
_CUSTOMER_ID_BASE = 1_400_000_000
_OTHER_ID_BASE = 1_900_000_000


def snowflake_floor(epoch_s: float) -> int:
    """The smallest post id that can be created at `epoch_s`."""
    return max(0, (int(epoch_s * 1000) - TWEPOCH_MS) << 22)


def snowflake_time(post_id: int) -> float:
    """Epoch seconds encoded in a post id."""
    return ((post_id >> 22) + TWEPOCH_MS) / 1000


@dataclass(slots=True)
class UserRecord:
    id: int
    username: str
    name: str
    followers: int = 0
    following: int = 0
    tweet_count: int = 0
    created_at: float = 1_400_000_000.0
    description: str = ""


@dataclass(slots=True)
class TweetRecord:
    """One stored post, with the case-folded features the query matcher reads."""

    id: int
    text: str
    author: UserRecord
    created_at: float
    lang: str
    conversation_id: int
    in_reply_to_tweet_id: int | None = None
    in_reply_to_user_id: int | None = None
    in_reply_to_username: str = ""
    retweet_of: int | None = None
    deleted: bool = False
    edits: list[int] | None = None  # the edit chain's ids, oldest first (shared by its versions)
    index_delay: float | None = None  # seconds until search sees it (None: the store's default)
    cut_text: str | None = None  # cache: `text` as X shows a long post (sandbox.x_text)
    reply_count: int = 0
    retweet_count: int = 0
    like_count: int = 0
    words: frozenset[str] = field(default_factory=frozenset)
    norm: str = " "
    mentions: frozenset[str] = field(default_factory=frozenset)
    hashtags: frozenset[str] = field(default_factory=frozenset)
    has_links: bool = False

    @property
    def author_id(self) -> int:
        return self.author.id

    @property
    def author_username(self) -> str:
        return self.author.username.casefold()

    @property
    def is_retweet(self) -> bool:
        return self.retweet_of is not None

    @property
    def is_reply(self) -> bool:
        return self.in_reply_to_tweet_id is not None

    @property
    def edit_history(self) -> list[int]:
        """Every version's id, oldest first (one id when never edited)."""
        return list(self.edits) if self.edits else [self.id]

    @property
    def superseded(self) -> bool:
        """An older version of an edited post."""
        return bool(self.edits) and self.edits[-1] != self.id  # type: ignore[index]


Keep = Callable[[TweetRecord], bool]


class XStore:
    """Users and posts of the emulated X. Thread-safe."""

    def __init__(self, clock: Callable[[], float], seed: int = 0,
                 customers: list[Customer] | None = None) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.feed = FeedGenerator(seed, customers)
        self._ids: list[int] = []
        self._tweets: list[TweetRecord] = []
        self._by_id: dict[int, TweetRecord] = {}
        self._mention_ids: dict[str, list[int]] = {}
        self._author_ids: dict[int, list[int]] = {}
        self.search_delay_s = 0.0  # search sees a post this many seconds after it was created
        self.list_superseded = False  # list the older versions of edited posts too
        self.truncated_retweets = False  # retweets get X's "RT @user: ..." text cut to 140
        self._users: dict[int, UserRecord] = {}
        self._by_name: dict[str, UserRecord] = {}
        self._feed_ids: dict[int, int] = {}  # FeedPost.seq -> post id
        self._customers = {c.handle: c for c in self.feed.customers}
        self._next_other_id = _OTHER_ID_BASE
        self.add_user(BRAND_HANDLE, BRAND_NAME, followers=48_200, user_id=BRAND_USER_ID)
        self.add_user(SUPPORT_HANDLE, f"{BRAND_NAME} Support", followers=12_400, user_id=SUPPORT_USER_ID)

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, username: str, name: str | None = None, followers: int = 0,
                 user_id: int | None = None) -> UserRecord:
        """Create (or return the existing) user `username`."""
        with self.lock:
            existing = self._by_name.get(username.casefold())
            if existing is not None:
                return existing
            if user_id is None:
                customer = self._customers.get(username)
                if customer is not None:
                    user_id = _CUSTOMER_ID_BASE + customer.index
                    name = name or customer.display_name
                    followers = followers or customer.followers
                else:
                    user_id = self._next_other_id
                    self._next_other_id += 1
            user = UserRecord(user_id, username, name or username, followers, followers // 3 + 17,
                              created_at=1_300_000_000.0 + (user_id % 300_000_000))
            self._users[user_id] = user
            self._by_name[username.casefold()] = user
            return user

    def user(self, user_id: int) -> UserRecord | None:
        with self.lock:
            return self._users.get(user_id)

    def user_by_username(self, username: str) -> UserRecord | None:
        with self.lock:
            return self._by_name.get(username.casefold())

    # -- posts ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tweets)

    def tweet(self, post_id: int) -> TweetRecord | None:
        with self.lock:
            found = self._by_id.get(post_id)
            return None if found is None or found.deleted else found

    def newest_id(self) -> int | None:
        with self.lock:
            return self._ids[-1] if self._ids else None

    def add_tweet(self, author: str, text: str, *, lang: str = "en", in_reply_to: int | None = None,
                  retweet_of: int | None = None, at: float | None = None,
                  index_delay: float | None = None) -> TweetRecord:
        """Store a new post by `author` (created if unknown), now or at `at` (not before the newest post).

        A reply gets the replied-to author's @handle prepended, as X does, unless the text starts with it.
        `index_delay` overrides `search_delay_s` for this post (a post that search finds late).
        """
        with self.lock:
            user = self.add_user(author)
            now = self.clock() if at is None else at
            if self._tweets:
                now = max(now, self._tweets[-1].created_at)
            post_id = max(snowflake_floor(now), (self._ids[-1] + 1) if self._ids else 0)
            parent = self._by_id.get(in_reply_to) if in_reply_to is not None else None
            record = TweetRecord(post_id, text, user, now, lang, post_id)
            if parent is not None:
                prefix = f"@{parent.author.username}"
                if parent.author is not user and not text.casefold().startswith(prefix.casefold()):
                    record.text = text = f"{prefix} {text}"
                record.in_reply_to_tweet_id = parent.id
                record.in_reply_to_user_id = parent.author.id
                record.in_reply_to_username = parent.author.username.casefold()
                record.conversation_id = parent.conversation_id
                parent.reply_count += 1
            record.index_delay = index_delay
            original = self._by_id.get(retweet_of) if retweet_of is not None else None
            if original is not None:
                record.retweet_of = original.id
                original.retweet_count += 1
                if self.truncated_retweets:
                    record.text = text = retweet_text(original.author.username, original.text)
            tokens = text_tokens(text)
            folded = text.casefold()
            record.words = frozenset(tokens)
            record.norm = f" {' '.join(tokens)} "
            record.mentions = frozenset(MENTION_RE.findall(folded))
            record.hashtags = frozenset(HASHTAG_RE.findall(folded))
            record.has_links = "http://" in folded or "https://" in folded or "bit.ly/" in folded
            self._ids.append(post_id)
            self._tweets.append(record)
            self._by_id[post_id] = record
            for name in record.mentions:
                self._mention_ids.setdefault(name, []).append(post_id)
            self._author_ids.setdefault(user.id, []).append(post_id)
            user.tweet_count += 1
            return record

    def edit_tweet(self, post_id: int, text: str) -> TweetRecord:
        """Edit a post as its author does on X: a new version with a new id joins the chain.

        ValueError where X refuses: not the newest version, over 30 minutes after the original, five
        edits made, a retweet, or a reply to someone else (only self-thread replies are editable).
        """
        with self.lock:
            current = self._by_id.get(post_id)
            if current is None or current.deleted:
                raise ValueError(f"no post {post_id}")
            chain = current.edits if current.edits is not None else [current.id]
            if chain[-1] != current.id:
                raise ValueError(f"post {post_id} is not the newest version of its chain")
            first = self._by_id[chain[0]]
            if self.clock() - first.created_at > EDIT_WINDOW_S:
                raise ValueError(f"post {post_id} is past its 30-minute edit window")
            if len(chain) > MAX_EDITS:
                raise ValueError(f"post {post_id} has been edited {MAX_EDITS} times already")
            if current.is_retweet:
                raise ValueError("retweets cannot be edited")
            if current.in_reply_to_user_id not in (None, current.author.id):
                raise ValueError("replies to others cannot be edited")
            parent = current.in_reply_to_tweet_id
            record = self.add_tweet(current.author.username, text, lang=current.lang, in_reply_to=parent)
            record.conversation_id = current.conversation_id
            if parent is not None and parent in self._by_id:
                self._by_id[parent].reply_count -= 1  # a new version, not another reply
            chain.append(record.id)
            for version in chain:
                self._by_id[version].edits = chain
            return record

    def delete_tweet(self, post_id: int) -> bool:
        """Hide a post from every lookup (as if its author deleted it); an edit chain goes whole."""
        with self.lock:
            found = self._by_id.get(post_id)
            if found is None:
                return False
            for version in found.edit_history:
                self._by_id[version].deleted = True
            return True

    def add_feed_post(self, post: FeedPost, at: float | None = None) -> TweetRecord:
        """Store a generated post, linking replies and retweets to the posts they refer to."""
        with self.lock:
            reply_to = self._feed_ids.get(post.reply_to) if post.reply_to is not None else None
            retweet_of = self._feed_ids.get(post.retweet_of) if post.retweet_of is not None else None
            record = self.add_tweet(post.author, post.text, lang=post.lang, in_reply_to=reply_to,
                                    retweet_of=retweet_of, at=at)
            self._feed_ids[post.seq] = record.id
            return record

    def grow(self, n: int, spread: bool = True) -> list[TweetRecord]:
        """Add the next `n` generated posts; with `spread`, their times lead up to now (never later)."""
        with self.lock:
            posts = self.feed.posts(n)
            now = self.clock()
            if not spread:
                return [self.add_feed_post(p, now) for p in posts]
            start = now - sum(p.gap_s for p in posts)
            if self._tweets:
                start = max(start, self._tweets[-1].created_at)
            records = []
            at = start
            for post in posts:
                at = min(now, at + post.gap_s)
                records.append(self.add_feed_post(post, at))
            return records

    # -- scans ----------------------------------------------------------------------------------

    @staticmethod
    def _bounds(ids: list[int], since_id: int | None, upper: int | None, lower_floor: int) -> tuple[int, int]:
        low_id = max(since_id + 1 if since_id is not None else 0, lower_floor)
        lo = bisect.bisect_left(ids, low_id)
        hi = bisect.bisect_left(ids, upper) if upper is not None else len(ids)
        return lo, hi

    def _listed(self, record: TweetRecord) -> bool:
        return not record.deleted and (self.list_superseded or not record.superseded)

    def _scan(self, ids: list[int], keep: Keep, *, max_results: int, since_id: int | None,
              before_id: int | None, floor: int) -> tuple[list[TweetRecord], bool]:
        lo, hi = self._bounds(ids, since_id, before_id, floor)
        found: list[TweetRecord] = []
        for i in range(hi - 1, lo - 1, -1):
            record = self._by_id[ids[i]]
            if self._listed(record) and keep(record):
                if len(found) == max_results:
                    return found, True
                found.append(record)
        return found, False

    def search(self, predicate: Predicate, *, max_results: int, since_id: int | None = None,
               before_id: int | None = None, min_id: int = 0) -> tuple[list[TweetRecord], bool]:
        """Matches, newest first, with since_id < id < before_id and id >= min_id; and whether more match.

        Only posts search has indexed by now (`search_delay_s`, a post's `index_delay`) are seen."""
        with self.lock:
            now = self.clock()
            floor = max(min_id, snowflake_floor(now - SEARCH_WINDOW_S))
            default_delay = self.search_delay_s

            def indexed(t: TweetRecord) -> bool:
                delay = default_delay if t.index_delay is None else t.index_delay
                return (delay <= 0 or t.created_at + delay <= now) and predicate(t)

            return self._scan(self._ids, indexed, max_results=max_results, since_id=since_id,
                              before_id=before_id, floor=floor)

    def mentions(self, username: str, *, max_results: int, since_id: int | None = None,
                 before_id: int | None = None, min_id: int = 0,
                 exclude: frozenset[str] = frozenset()) -> tuple[list[TweetRecord], bool]:
        """Posts mentioning `username` (the newest MENTIONS_LIMIT), newest first, and whether more remain."""
        with self.lock:
            ids = self._mention_ids.get(username.casefold(), [])
            floor = max(min_id, ids[-MENTIONS_LIMIT] if len(ids) > MENTIONS_LIMIT else 0)
            return self._scan(ids, _excluding(exclude), max_results=max_results, since_id=since_id,
                              before_id=before_id, floor=floor)

    def timeline(self, user_id: int, *, max_results: int, since_id: int | None = None,
                 before_id: int | None = None, min_id: int = 0,
                 exclude: frozenset[str] = frozenset()) -> tuple[list[TweetRecord], bool]:
        """The user's own posts (replies and retweets included unless excluded), newest first: the
        newest TIMELINE_LIMIT (800 with exclude=replies), and whether more remain."""
        with self.lock:
            ids = self._author_ids.get(user_id, [])
            reach = 800 if "replies" in exclude else TIMELINE_LIMIT
            floor = max(min_id, ids[-reach] if len(ids) > reach else 0)
            return self._scan(ids, _excluding(exclude), max_results=max_results, since_id=since_id,
                              before_id=before_id, floor=floor)


def _excluding(exclude: frozenset[str]) -> Keep:
    replies, retweets = "replies" in exclude, "retweets" in exclude
    return lambda t: not (replies and t.is_reply) and not (retweets and t.is_retweet)
