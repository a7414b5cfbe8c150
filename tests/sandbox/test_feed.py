"""The seeded feed of Acme Mobile mentions and its customer pool."""

from __future__ import annotations

import re
from collections import Counter

from sandbox.feed import CATEGORIES, SUPPORT_HANDLE, FeedGenerator, customer_pool


def test_same_seed_same_posts_other_seed_other_posts() -> None:
    assert FeedGenerator(5).posts(300) == FeedGenerator(5).posts(300)
    assert [p.text for p in FeedGenerator(5).posts(50)] != [p.text for p in FeedGenerator(6).posts(50)]


def test_mix_of_languages_and_categories() -> None:
    posts = FeedGenerator(1).posts(3000)
    categories = Counter(p.category for p in posts)
    assert set(categories) == set(CATEGORIES)
    langs = Counter(p.lang for p in posts)
    assert 0.15 < langs["de"] / len(posts) < 0.45 and langs.keys() == {"en", "de"}
    assert any("Bestellung" in p.text for p in posts) and any("order" in p.text for p in posts)
    assert [p.seq for p in posts] == list(range(3000))


def test_conversations_refer_to_earlier_posts() -> None:
    posts = FeedGenerator(2).posts(2000)
    by_seq = {p.seq: p for p in posts}
    brand = [p for p in posts if p.category == "brand_reply"]
    assert brand and all(p.author == SUPPORT_HANDLE and p.customer is None for p in brand)
    for p in brand:
        parent = by_seq[p.reply_to]  # type: ignore[index]
        assert parent.seq < p.seq and p.text.startswith(f"@{parent.author} ")
    followups = [p for p in posts if p.category == "followup"]
    assert followups
    for p in followups:
        parent = by_seq[p.reply_to]  # type: ignore[index]
        # the customer answers the brand's reply, or follows up on their own post
        assert parent.author in (SUPPORT_HANDLE, p.author)
        assert parent.author == SUPPORT_HANDLE or parent.customer == p.customer
    for p in (p for p in posts if p.category == "retweet"):
        original = by_seq[p.retweet_of]  # type: ignore[index]
        assert p.text == f"RT @{original.author}: {original.text}"


def test_customer_pool_is_shareable() -> None:
    pool = customer_pool(0)
    assert pool == customer_pool(0) and len(pool) == 500
    handles = [c.handle for c in pool]
    assert len(set(handles)) == len(handles)
    assert all(re.fullmatch(r"[a-z0-9_]{1,15}", h) for h in handles)
    on_facebook = [c for c in pool if c.facebook_name]
    assert 0.3 < len(on_facebook) / len(pool) < 0.5
    assert any(c.is_spammer for c in pool) and all(c.followers >= 0 for c in pool)
    assert sum(c.followers > 1_000 for c in pool) >= 3  # a few influential customers (Pareto tail)
    feed = FeedGenerator(0, customers=pool[:20])
    assert {p.author for p in feed.posts(200)} <= {c.handle for c in pool[:20]} | {SUPPORT_HANDLE}

