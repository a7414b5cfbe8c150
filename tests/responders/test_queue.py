"""The queue service on SQLite and PostgreSQL: claims (race, expiry), replies, dismissals, corrections,
notes, tags, saved-reply placeholders, listing with filters and search, live updates."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.domain import QueueState, ReplyState
from models.orm import AuditEvent, Mention, MentionTag, Note, QueueItem, Reply, SentimentCorrection, User
from responders import queue
from responders.queue.items import flush
from responders.queue.listing import QueueFilter, list_queue, updates_since
from tests.responders.factories import (
    T0,
    item_of,
    make_author,
    make_customer,
    make_mention,
    make_reply,
    make_user,
)

TIMEOUT = 30


def _actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_claim_race_between_two_sessions_has_exactly_one_winner(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        item_id = item_of(s, make_mention(s, "router broken").id).id
    first, second = sessions(), sessions()
    try:
        # both agents load the item while it is still new ...
        a_item, b_item = first.get(QueueItem, item_id), second.get(QueueItem, item_id)
        assert a_item is not None and b_item is not None and a_item.version == b_item.version
        a_item.transition(QueueState.CLAIMED, now=T0)
        a_item.assignee_id = alice.id
        b_item.transition(QueueState.CLAIMED, now=T0)
        b_item.assignee_id = bob.id
        # ... alice writes first; bob's write carries the old version and is refused
        flush(first, "claim")
        first.commit()
        with pytest.raises(queue.ClaimConflict, match="a moment ago"):
            flush(second, "claim")
    finally:
        first.close()
        second.rollback()
        second.close()
    with sessions() as s:
        assert item_of(s, s.scalar(select(QueueItem.mention_id))).assignee_id == alice.id


def test_concurrent_claims_in_threads_one_wins(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        users = [make_user(s, f"agent{i}") for i in range(4)]
        item_id = item_of(s, make_mention(s, "no signal since monday").id).id
    barrier = threading.Barrier(len(users))
    results: dict[str, str] = {}

    def attempt(user: User) -> None:
        barrier.wait()
        try:
            with sessions.begin() as session:
                queue.claim(session, item_id, user, now=T0, timeout_minutes=TIMEOUT)
            results[user.username] = "won"
        except queue.ClaimConflict:
            results[user.username] = "lost"

    threads = [threading.Thread(target=attempt, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == ["lost", "lost", "lost", "won"]
    winner = next(name for name, r in results.items() if r == "won")
    with sessions() as s:
        item = s.get(QueueItem, item_id)
        assert item is not None and item.state == "claimed"
        assert s.get(User, item.assignee_id).username == winner  # type: ignore[union-attr]
        assert _actions(s).count("claim") == 1


def test_second_agent_sees_the_holder_and_cannot_answer(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        item_id = item_of(s, make_mention(s, "refund please").id).id
        queue.claim(s, item_id, alice, now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s:
        with pytest.raises(queue.ClaimConflict, match="alice is working on this since 09:00") as info:
            queue.claim(s, item_id, bob, now=T0 + timedelta(minutes=5), timeout_minutes=TIMEOUT)
        assert info.value.holder == "alice"
        with pytest.raises(queue.ClaimConflict):
            queue.submit_reply(s, item_id, bob, "double answer", now=T0, timeout_minutes=TIMEOUT)
        with pytest.raises(queue.ClaimConflict):
            queue.dismiss(s, item_id, bob, "spam", now=T0, timeout_minutes=TIMEOUT)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Reply)) == 0


def test_claim_expiry_with_a_fake_clock(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        idle_id = item_of(s, make_mention(s, "idle one").id).id
        busy_id = item_of(s, make_mention(s, "busy one").id).id
        queue.claim(s, idle_id, alice, now=T0, timeout_minutes=TIMEOUT)
        queue.claim(s, busy_id, alice, now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s:  # activity renews the busy claim
        assert queue.touch(s, busy_id, alice, now=T0 + timedelta(minutes=20))
        assert not queue.touch(s, busy_id, bob, now=T0 + timedelta(minutes=20))
    with sessions.begin() as s:
        assert queue.expire_claims(s, T0 + timedelta(minutes=29), TIMEOUT) == []
        assert queue.expire_claims(s, T0 + timedelta(minutes=31), TIMEOUT) == [idle_id]
    with sessions() as s:
        idle, busy = s.get(QueueItem, idle_id), s.get(QueueItem, busy_id)
        assert idle is not None and idle.state == "new" and idle.assignee_id is None
        assert busy is not None and busy.state == "claimed" and busy.assignee_id == alice.id
        assert "claim_expired" in _actions(s)


def test_an_expired_claim_is_free_for_someone_else(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        item_id = item_of(s, make_mention(s, "still waiting").id).id
        queue.claim(s, item_id, alice, now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s:
        item = queue.claim(s, item_id, bob, now=T0 + timedelta(minutes=TIMEOUT + 1), timeout_minutes=TIMEOUT)
        assert item.assignee_id == bob.id
    with sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "claim").order_by(AuditEvent.id.desc())).first()
        assert event is not None and event.detail == {"taken_over_from": alice.id}


def test_release_and_reassign(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        boss = make_user(s, "boss", "manager")
        item_id = item_of(s, make_mention(s, "help").id).id
        queue.claim(s, item_id, alice, now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s:
        with pytest.raises(queue.NotAllowed):
            queue.release(s, item_id, bob, now=T0)
        with pytest.raises(queue.NotAllowed):
            queue.reassign(s, item_id, bob, bob.id, now=T0)
        queue.reassign(s, item_id, boss, bob.id, now=T0)
    with sessions.begin() as s:
        assert item_of(s, s.scalar(select(QueueItem.mention_id))).assignee_id == bob.id
        queue.release(s, item_id, bob, now=T0)
        assert _actions(s)[-3:] == ["claim", "reassign", "release"]
    with sessions() as s:
        item = s.get(QueueItem, item_id)
        assert item is not None and item.state == "new" and item.assignee_id is None


def test_reply_creates_a_draft_and_closes_the_item(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        mention = make_mention(s, "my bill is wrong", platform="facebook", handle="jane")
        item_id = item_of(s, mention.id).id
        queue.claim(s, item_id, alice, now=T0, timeout_minutes=TIMEOUT)
        reply = queue.submit_reply(s, item_id, alice, "  Sorry Jane, we fix it today.\r\n", now=T0,
                                   timeout_minutes=TIMEOUT)
    with sessions() as s:
        stored = s.get(Reply, reply.id)
        assert stored is not None
        assert (stored.state, stored.platform, stored.user_id, stored.text) == (
            "draft", "facebook", alice.id, "Sorry Jane, we fix it today.")
        assert len(stored.idempotency_key) == 32
        item = s.get(QueueItem, item_id)
        assert item is not None and item.state == "answered" and item.closed_at == T0
    with sessions.begin() as s, pytest.raises(queue.Invalid, match="already answered"):
        queue.submit_reply(s, item_id, alice, "again", now=T0, timeout_minutes=TIMEOUT)


@pytest.mark.parametrize(("platform", "limit"), [("x", 280), ("facebook", 8000)])
def test_reply_length_is_enforced_per_platform(sessions: sessionmaker[Session], platform: str, limit: int) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        item_id = item_of(s, make_mention(s, "x", platform=platform, handle="p").id).id
    with sessions.begin() as s, pytest.raises(queue.Invalid, match=f"allows {limit}"):
        queue.submit_reply(s, item_id, alice, "a" * (limit + 1), now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s, pytest.raises(queue.Invalid, match="empty"):
        queue.submit_reply(s, item_id, alice, "   ", now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s:  # exactly the limit is fine (a new item is claimed on the way)
        queue.submit_reply(s, item_id, alice, "ü" * limit, now=T0, timeout_minutes=TIMEOUT)


def test_retry_requeues_a_failed_reply(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        mention = make_mention(s, "gone", state="answered")
        failed = make_reply(s, mention, alice, state=ReplyState.FAILED.value, error="The post you answered ...")
        sent = make_reply(s, mention, alice)
    with sessions.begin() as s:
        with pytest.raises(queue.Invalid, match="only a failed reply"):
            queue.retry_reply(s, sent.id, alice, now=T0)
        queue.retry_reply(s, failed.id, alice, now=T0)
    with sessions() as s:
        again = s.get(Reply, failed.id)
        assert again is not None and again.retryable and again.next_attempt_at == T0
        assert again.idempotency_key == failed.idempotency_key  # same key: never posted twice
        assert "reply_retry" in _actions(s)


def test_dismissal_needs_a_known_reason(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        item_id = item_of(s, make_mention(s, "buy cheap followers").id).id
    with sessions.begin() as s, pytest.raises(queue.Invalid, match="choose a reason"):
        queue.dismiss(s, item_id, alice, "boring", now=T0, timeout_minutes=TIMEOUT)
    with sessions.begin() as s:
        queue.dismiss(s, item_id, alice, "spam", now=T0, timeout_minutes=TIMEOUT)
    with sessions() as s:
        item = s.get(QueueItem, item_id)
        assert item is not None and (item.state, item.dismiss_reason, item.assignee_id) == ("dismissed", "spam",
                                                                                            alice.id)


def test_sentiment_correction_is_stored_and_applied(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        mention_id = make_mention(s, "thanks, great service!", sentiment="negative").id
    with sessions.begin() as s:
        with pytest.raises(queue.Invalid):
            queue.correct_sentiment(s, mention_id, alice, "angry", now=T0)
        queue.correct_sentiment(s, mention_id, alice, "positive", now=T0)
        queue.correct_sentiment(s, mention_id, alice, "positive", now=T0)  # no-op
    with sessions() as s:
        correction = s.scalars(select(SentimentCorrection)).one()
        assert (correction.original_label, correction.corrected_label, correction.user_id) == (
            "negative", "positive", alice.id)
        assert s.get(Mention, mention_id).sentiment_label == "positive"  # type: ignore[union-attr]


def test_notes_and_tags(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        customer = make_customer(s, "Jane")
        mention_id = make_mention(s, "x", author=make_author(s, "jane", customer=customer)).id
        customer_id = customer.id
    with sessions.begin() as s:
        queue.add_note(s, "called her back", user_id=alice.id, now=T0, mention_id=mention_id)
        queue.add_note(s, "VIP since 2019", user_id=alice.id, now=T0, customer_id=customer_id)
        with pytest.raises(queue.Invalid):
            queue.add_note(s, "  ", user_id=alice.id, now=T0, mention_id=mention_id)
        assert queue.add_tag(s, mention_id, "  Billing  ", user_id=alice.id, now=T0) == "billing"
        queue.add_tag(s, mention_id, "billing", user_id=alice.id, now=T0)  # idempotent
        queue.add_tag(s, mention_id, "outage", user_id=alice.id, now=T0)
        with pytest.raises(queue.Invalid):
            queue.add_tag(s, mention_id, "<b>", user_id=alice.id, now=T0)
    with sessions.begin() as s:
        queue.remove_tag(s, mention_id, "outage", user_id=alice.id, now=T0)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Note)) == 2
        assert list(s.scalars(select(MentionTag.tag))) == ["billing"]
        assert _actions(s).count("tag") == 2 and "untag" in _actions(s)


def test_saved_reply_placeholders(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        agent = make_user(s, "alice")
        customer = make_customer(s, "Jane Q. Doe")
        x_author = make_author(s, "janedoe", name="Jane", customer=customer)
        fb_author = make_author(s, "jane.fb", platform="facebook", name="Jane Facebook")
        template = "Hi {name}! @{handle} {handle} — {agent} from {brand}. {unknown} {0.__class__}"
        assert queue.render_template(template, author=x_author, customer=customer, agent=agent, brand="Acme") == (
            "Hi Jane Q. Doe! @janedoe @janedoe — alice from Acme. {unknown} {0.__class__}")
        assert queue.render_template("Hi {name}, {handle}", author=fb_author, customer=None, agent=agent,
                                     brand="Acme") == "Hi Jane Facebook, Jane Facebook"


def test_saved_replies_are_managed_by_admins_only(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        agent, admin = make_user(s, "alice"), make_user(s, "root", "admin")
        with pytest.raises(queue.NotAllowed):
            queue.save_saved_reply(s, agent, name="x", text="y", language=None, now=T0)
        saved = queue.save_saved_reply(s, admin, name="Sorry", text="Sorry {name}", language="en", now=T0)
        with pytest.raises(queue.Invalid, match="exists already"):
            queue.save_saved_reply(s, admin, name="sorry", text="dup", language=None, now=T0)
        queue.save_saved_reply(s, admin, name="Sorry", text="Very sorry {name}", language="en", now=T0,
                               saved_reply_id=saved.id)
        assert [r.text for r in queue.list_saved_replies(s)] == ["Very sorry {name}"]
        queue.delete_saved_reply(s, admin, saved.id, now=T0)
        assert queue.list_saved_replies(s) == []


# --------------------------------------------------------------------------- listing


def _texts(session: Session, f: QueueFilter, user_id: int | None = None) -> list[str]:
    page = list_queue(session, f, now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT, user_id=user_id)
    return [r.text for r in page.rows]


def test_listing_ranks_filters_and_searches(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        fb = make_author(s, "Müller GmbH", platform="facebook", name="Jürgen Müller")
        make_mention(s, "Internet DOWN again", priority=0.9, created_at=T0 - timedelta(hours=6))
        make_mention(s, "Störung seit gestern", author=fb, platform="facebook", language="de", priority=0.7)
        make_mention(s, "love the new plan", sentiment="positive", priority=0.2)
        make_mention(s, "mine", priority=0.5, state="claimed", assignee=alice, claimed_at=T0)
        make_mention(s, "answered long ago", priority=0.99, state="answered")
        make_mention(s, "our own post", is_own=True, priority=1.0)
        make_mention(s, "other brand down", brand="Other Brand", priority=0.1)
        make_mention(s, "100% sure_thing", priority=0.05)
    with sessions() as s:
        assert _texts(s, QueueFilter()) == ["Internet DOWN again", "Störung seit gestern", "mine",
                                            "love the new plan", "other brand down", "100% sure_thing"]
        assert _texts(s, QueueFilter(platform="facebook")) == ["Störung seit gestern"]
        assert _texts(s, QueueFilter(sentiment="positive")) == ["love the new plan"]
        assert _texts(s, QueueFilter(language="de")) == ["Störung seit gestern"]
        assert _texts(s, QueueFilter(brand="Other Brand")) == ["other brand down"]
        assert _texts(s, QueueFilter(mine=True), alice.id) == ["mine"]
        assert _texts(s, QueueFilter(overdue=True)) == ["Internet DOWN again"]
        assert _texts(s, QueueFilter(state="answered")) == ["answered long ago"]
        assert _texts(s, QueueFilter(state="claimed")) == ["mine"]
        # search: case-insensitive substring of the text, the handle or the author's name
        assert _texts(s, QueueFilter(q="internet down")) == ["Internet DOWN again"]
        assert _texts(s, QueueFilter(q="STÖRUNG")) == ["Störung seit gestern"]
        assert _texts(s, QueueFilter(q="jürgen")) == ["Störung seit gestern"]
        assert _texts(s, QueueFilter(q="müller gm")) == ["Störung seit gestern"]
        assert _texts(s, QueueFilter(q="down")) == ["Internet DOWN again", "other brand down"]
        assert _texts(s, QueueFilter(q="ow")) == ["Internet DOWN again", "other brand down"]  # short: scan
        assert _texts(s, QueueFilter(q="100%")) == ["100% sure_thing"]  # wildcards are literal
        assert _texts(s, QueueFilter(q="s_r")) == []  # "_" is no wildcard either
        assert _texts(s, QueueFilter(q='"quoted" stuff')) == []
        assert _texts(s, QueueFilter(q="answered", state="all")) == ["answered long ago"]


def test_listing_paginates_and_caps_nothing_small(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        for i in range(7):
            make_mention(s, f"complaint {i}", priority=i / 10)
    with sessions() as s:
        first = list_queue(s, QueueFilter(), now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT, per_page=3)
        assert [r.text for r in first.rows] == ["complaint 6", "complaint 5", "complaint 4"]
        assert first.has_next and first.total == 7 and not first.total_capped
        last = list_queue(s, QueueFilter(page=3), now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT, per_page=3)
        assert [r.text for r in last.rows] == ["complaint 0"] and not last.has_next


def test_rows_explain_the_rank_with_live_waiting_time(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        make_mention(s, "where is my refund", created_at=T0 - timedelta(hours=3),
                     reasons=["negative 0.94", "waiting 2 min", "12 earlier conversations"])
    with sessions() as s:
        row = list_queue(s, QueueFilter(), now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT).rows[0]
    assert " · ".join(row.reasons) == "negative 0.94 · waiting 3 h · 12 earlier conversations"
    assert not row.overdue and row.sla_deadline == T0 + timedelta(hours=1)


def test_updates_since_reports_new_open_items(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        make_mention(s, "first")
    with sessions() as s:
        last = list_queue(s, QueueFilter(), now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT).last_id
        assert updates_since(s, last, QueueFilter(), now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT).count == 0
    with sessions.begin() as s:
        make_mention(s, "second", platform="facebook", handle="fb")
        make_mention(s, "third")
        make_mention(s, "closed", state="dismissed")
    with sessions() as s:
        news = updates_since(s, last, QueueFilter(), now=T0, sla_hours=4, claim_timeout_minutes=TIMEOUT)
        assert news.count == 2 and [r.text for r in news.rows] == ["third", "second"]
        assert news.last_id == s.scalar(select(func.max(QueueItem.id))) - 1  # type: ignore[operator]
        only_fb = updates_since(s, last, QueueFilter(platform="facebook"), now=T0, sla_hours=4,
                                claim_timeout_minutes=TIMEOUT)
        assert [r.text for r in only_fb.rows] == ["second"]


def test_search_of_a_common_term_gives_the_same_rows(sessions: sessionmaker[Session],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite switches from the FTS hit list to testing each ranked row when a term is common."""
    with sessions.begin() as s:
        make_mention(s, "Router kaputt", priority=0.9)
        make_mention(s, "my ROUTER again", priority=0.8)
        make_mention(s, "nothing here", priority=0.7, handle="router_fan")
        make_mention(s, "unrelated", priority=0.6)
    expected = ["Router kaputt", "my ROUTER again", "nothing here"]
    with sessions() as s:
        assert _texts(s, QueueFilter(q="router")) == expected
    monkeypatch.setattr("responders.queue.listing.FTS_RARE_LIMIT", 1)
    with sessions() as s:
        assert _texts(s, QueueFilter(q="router")) == expected
        assert _texts(s, QueueFilter(q="rOuTeR")) == expected
