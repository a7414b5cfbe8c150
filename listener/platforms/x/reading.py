"""Reading X: pages under the read budget, and posts -> `MentionData`.

- Pages are read newest first, each `max_results` cut to what the poll's read budget has left
  (`read_pages`); a page fails with `RateLimited` after some were read -> the pages read are kept and
  the stop is reported (`Batch.stopped`).
- Long posts: `note_tweet.text` (asked for in tweet.fields) is the full text; `text` is cut at 280.
- Retweets (`referenced_tweets` of type "retweeted") are skipped on every source: a retweet's text
  is X's "RT @user: ..." cut to 140, and a share is not a customer speaking. They still count as read.
- Edits: X gives each version a new id; `edit_history_tweet_ids` lists the chain, oldest first. A
  mention is reported under the chain's first id (`external_id`), with `revision` = the version read
  and `edited_at` its created_at; `created_at` is the original's (decoded from its snowflake id).
  Several versions of one chain in one read give one mention, the newest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from listener.platforms.base import RateLimited, Source, Transient
from models.domain import AuthorData, MentionData, clean_json, clean_text

log = logging.getLogger(__name__)
TWEPOCH_MS = 1288834974657  # X's snowflake epoch
NAME = "x"
_URL_RE = re.compile(r"https?://\S+")

Tweet = dict[str, Any]


def snowflake_time(post_id: str | int) -> datetime:
    """When X created the post with this id (ids are snowflakes: milliseconds since 2010-11-04 << 22)."""
    return datetime.fromtimestamp(((int(post_id) >> 22) + TWEPOCH_MS) / 1000, UTC)


def snowflake_at(moment: datetime) -> str:
    """The smallest post id X can give a post created at `moment` (the inverse of `snowflake_time`)."""
    ms = int(moment.timestamp() * 1000)
    return str(max(0, ms - TWEPOCH_MS) << 22)


def unescape(text: str) -> str:
    """Undo the entity escaping X applies to post texts (only &amp; &lt; &gt;)."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def comparable(text: str) -> str:
    """A post text reduced for "is this our reply": entities undone, the leading @mentions X puts in
    front of a reply dropped, links (X may wrap them in t.co) and runs of whitespace made equal."""
    words = clean_text(unescape(text))[0].split()
    while words and words[0].startswith("@"):
        words.pop(0)
    return _URL_RE.sub("<link>", " ".join(words))


def full_text(tweet: Tweet) -> str:
    """The whole text: a long post's `note_tweet.text`, else `text`."""
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"]:
        return str(note["text"])
    return str(tweet["text"])


def is_retweet(tweet: Tweet) -> bool:
    refs = tweet.get("referenced_tweets") or []
    return any(isinstance(r, dict) and r.get("type") == "retweeted" for r in refs)


def replied_to(tweet: Tweet) -> list[str]:
    refs = tweet.get("referenced_tweets") or []
    return [str(r["id"]) for r in refs if isinstance(r, dict) and r.get("type") == "replied_to" and r.get("id")]


def chain_of(tweet: Tweet) -> list[str]:
    """The ids of the post's edit chain, oldest first (just its own id when never edited)."""
    history = tweet.get("edit_history_tweet_ids")
    if isinstance(history, list) and history and all(isinstance(i, str) and i.isdigit() for i in history):
        return list(history)
    return [str(tweet["id"])]


@dataclass
class Batch:
    """What one fetch read: posts newest first (each once), their authors, the first page's newest id."""

    tweets: list[Tweet] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_newest: str | None = None
    more: bool = False  # the read stopped with pages left (budget, page cap, rate limit)
    read: int = 0  # posts read that count against the read budget (re-reads of `skip` do not)
    stopped: RateLimited | None = None  # a rate limit ended the read after some pages


def read_pages(call: Callable[[dict[str, Any]], Any], *, token_param: str, page_size: int, min_page: int,
               allowance: int, max_pages: int, skip: frozenset[str] = frozenset()) -> Batch:
    """Read pages through `call(params)` until X has no more, `allowance` posts or `max_pages` pages.

    `call` raises PlatformError; a RateLimited after the first page ends the read (`Batch.stopped`),
    any other error (and one on the first page) propagates: nothing of the fetch is kept.
    """
    batch = Batch()
    seen: set[str] = set()
    token: str | None = None
    pages = 0
    while True:
        left = allowance - batch.read
        if pages >= max_pages or left < min_page:
            return batch
        params: dict[str, Any] = {"max_results": min(page_size, left)}
        if token:
            params[token_param] = token
        try:
            page = call(params)
        except RateLimited as exc:
            if pages == 0:
                raise
            batch.stopped, batch.more = exc, True
            return batch
        if not isinstance(page, dict):
            raise Transient("X answered with something that is not a JSON object")
        meta = page.get("meta") or {}
        data = page.get("data") or []
        if not isinstance(meta, dict) or not isinstance(data, list):
            raise Transient("X answered with a malformed page (meta/data of the wrong type)")
        if pages == 0 and data:
            batch.first_newest = str(meta.get("newest_id") or data[0].get("id"))
        pages += 1
        for tweet in data:
            if not isinstance(tweet, dict) or not isinstance(tweet.get("id"), str) \
                    or not isinstance(tweet.get("text"), str):
                raise Transient("X answered with a malformed post (no id or text)")
            if tweet["id"] not in skip:
                batch.read += 1
            if tweet["id"] not in seen:
                seen.add(tweet["id"])
                batch.tweets.append(tweet)
        for user in (page.get("includes") or {}).get("users") or []:
            if isinstance(user, dict) and isinstance(user.get("id"), str):
                batch.users[user["id"]] = user
        token = meta.get("next_token") or None
        batch.more = bool(token)
        if not token:
            return batch


def newest_per_chain(tweets: list[Tweet]) -> list[Tweet]:
    """Retweets dropped and one post per edit chain (its newest version read), oldest first."""
    chosen: dict[str, Tweet] = {}
    for tweet in tweets:
        if is_retweet(tweet):
            continue
        first = chain_of(tweet)[0]
        held = chosen.get(first)
        if held is None or int(tweet["id"]) > int(held["id"]):
            chosen[first] = tweet
    return sorted(chosen.values(), key=lambda t: int(t["id"]))


def _created_at(tweet: Tweet, fallback: Callable[[], datetime]) -> datetime:
    raw = tweet.get("created_at")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            log.warning("X post %s: unreadable created_at %r", tweet.get("id"), raw)
    return fallback()


def to_mention(tweet: Tweet, users: dict[str, dict[str, Any]], *, brand: str, accounts: list[str],
               source: Source, clock: Callable[[], datetime], own_post: bool = False) -> MentionData:
    """One X post as a MentionData (an edit under its chain's first id; see the module doc). `own_post`: read
    from a brand account's own timeline, so the brand's post even when X sent no author with it."""
    post_id = str(tweet["id"])
    chain = chain_of(tweet)
    original = chain[0]
    written = _created_at(tweet, clock)
    edited = len(chain) > 1
    author_id = str(tweet.get("author_id") or "")
    user = users.get(author_id) or {}
    username = user.get("username") if isinstance(user.get("username"), str) else None
    text, reasons = clean_text(unescape(full_text(tweet)))
    if reasons:
        log.warning("X post %s: text changed for storage: %s", post_id, "; ".join(reasons))
    metrics = user.get("public_metrics")
    followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
    own = {a.lstrip("@").casefold() for a in accounts}
    lang = tweet.get("lang")
    name = user.get("name")
    author = AuthorData(
        platform=NAME, external_id=author_id, handle=username,
        display_name=clean_text(name)[0] if isinstance(name, str) else None,
        followers=followers if isinstance(followers, int) else None,
        profile_url=f"https://x.com/{username}" if username else None)
    conversation = str(tweet.get("conversation_id") or "") or None
    if conversation == post_id:  # an edit of a post that starts its own conversation
        conversation = original
    in_reply_to = next(iter(replied_to(tweet)), None)
    return MentionData(
        platform=NAME, external_id=original, text=text,
        created_at=snowflake_time(original) if original != post_id else written,
        author=author, brand=brand, source=source.name,
        language=lang if isinstance(lang, str) and lang != "und" else None,
        conversation_id=conversation, in_reply_to_id=in_reply_to,
        permalink=f"https://x.com/{username or 'i/web'}/status/{original}",
        is_own=own_post or (username is not None and username.casefold() in own),
        raw=clean_json({"tweet": tweet, "author": user}),
        revision=post_id if edited else None, edited_at=written if edited and original != post_id else None)
