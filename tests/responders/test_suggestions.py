"""Suggested replies: the index, the ranking, the drafts, erasure and other brands, and the web page.

The mechanism is shown on data built here with the lexical HashEmbedder (no model): the expected
suggestion for each new mention follows from which past mentions share its words, not from the code.
bench/suggest.py measures the default encoder on the demo feed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import Mention, MentionVector, Reply, SavedReply, User
from models.vectors import HashEmbedder, dequantize, load_vectors, quantize, store_vectors, top_k
from responders.customers.gdpr import erase_customer
from responders.suggestions import AnswerIndex, adapt_answer, order_number, suggest
from responders.suggestions.index import Partition
from tests.responders.factories import (
    T0,
    login,
    make_author,
    make_customer,
    make_mention,
    make_reply,
    make_saved_reply,
    make_user,
    post,
)

DELIVERY = "Hi {name}, sorry your parcel is late! We checked order {order}: it ships today. ^{agent}"
BILLING = "Hi {name}, we refund the double charge on your invoice within 3 days. ^{agent}"
OUTAGE = "Hi {name}, there is a network outage in your area; engineers are on it. ^{agent}"


def _index(sessions: sessionmaker[Session], clock: object) -> AnswerIndex:
    return AnswerIndex(HashEmbedder(), clock=clock, refresh_seconds=0)  # type: ignore[arg-type]


def _answered(session: Session, text: str, agent: User, saved: SavedReply | None, *, handle: str,
              brand: str = "Acme Mobile", hours_ago: float = 48, **kw: object) -> Mention:
    mention = make_mention(session, text, handle=handle, brand=brand, state="answered",
                           created_at=T0 - timedelta(hours=hours_ago), **kw)  # type: ignore[arg-type]
    reply = make_reply(session, mention, agent, (saved.text if saved else "We are sorry, looking into it now."))
    reply.saved_reply_id = saved.id if saved else None
    return mention


@pytest.fixture
def team(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Three saved replies, each used for three past mentions that share its topic's words."""
    with sessions.begin() as s:
        agent = make_user(s, "alice")
        delivery = make_saved_reply(s, "Late parcel", DELIVERY)
        billing = make_saved_reply(s, "Double charge", BILLING)
        outage = make_saved_reply(s, "Network outage", OUTAGE)
        for i, text in enumerate(["my parcel is late, still not delivered", "parcel not delivered yet, order late",
                                  "where is my parcel? delivery is late"]):
            _answered(s, text, agent, delivery, handle=f"d{i}")
        for i, text in enumerate(["you charged me twice on my invoice", "double charge on the invoice again",
                                  "invoice shows a double charge, refund please"]):
            _answered(s, text, agent, billing, handle=f"b{i}")
        for i, text in enumerate(["no network since this morning, outage?", "network outage in Berlin again",
                                  "mobile network down, is there an outage"]):
            _answered(s, text, agent, outage, handle=f"o{i}")
        return {"agent": agent.id, "delivery": delivery.id, "billing": billing.id, "outage": outage.id}


# ----------------------------------------------------------------------------- vectors and index
def test_int8_vectors_keep_cosine_within_two_hundredths() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(200, 384)), rng.normal(size=(200, 384))
    b[:100] = a[:100] + 0.3 * b[:100]  # half of the pairs are similar
    exact = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    approx = (dequantize(quantize(a)) * dequantize(quantize(b))).sum(1)
    assert np.abs(exact - approx).max() < 0.02 and np.abs(exact - approx).mean() < 0.005


def test_top_k_is_exact_on_both_kernels() -> None:
    rng = np.random.default_rng(3)
    matrix = quantize(rng.normal(size=(25_000, 384)))  # above TORCH_MIN_ROWS: the torch int8 kernel
    query = matrix[1234]
    expected = np.argsort(-(matrix.astype(np.int64) @ query.astype(np.int64)), kind="stable")[:5]
    index, sims = top_k(query, matrix, 5)
    assert list(index) == list(expected) and index[0] == 1234 and sims[0] == pytest.approx(1.0, abs=0.01)
    small_index, _ = top_k(query, matrix[:1000], 3)  # numpy below the threshold
    expected_small = np.argsort(-(matrix[:1000].astype(np.int64) @ query.astype(np.int64)), kind="stable")[:3]
    assert list(small_index) == list(expected_small)


def test_a_partition_grows_without_duplicates() -> None:
    part = Partition("b", "k")
    rows = quantize(np.eye(8, dtype=np.float32))
    part.add([1, 2, 3], rows[:3])
    part.add([3, 4], rows[2:4])  # 3 again (an overlap re-read)
    assert part.size == 4 and list(part.ids[:4]) == [1, 2, 3, 4]
    assert [i for i, _ in part.search(rows[3], 1)] == [4]


def test_vectors_are_stored_per_model_and_replaced(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        m = make_mention(s, "hello")
        store_vectors(s, "m1", [(m.id, np.ones(16))])
        store_vectors(s, "m2", [(m.id, -3 * np.eye(16)[2])])  # a new model replaces the old vector
        assert load_vectors(s, "m1", [m.id]) == {}
        assert list(load_vectors(s, "m2", [m.id])[m.id]) == [0, 0, -127] + [0] * 13


# ----------------------------------------------------------------------------- drafts
@pytest.mark.parametrize(("text", "expected"), [
    ("my order A1234567 never came", "A1234567"),
    ("Bestellnummer: 40012345, wo bleibt das Paket?", "40012345"),
    ("Bestellung Nr. 7781-22 ist nicht angekommen", "7781-22"),
    ("order #55512 still missing", "55512"),
    ("ticket #9981 is still open", "9981"),
    ("call me on 0171 2345678 please", None),
    ("love you guys #1", None),
])
def test_order_numbers_are_found_in_english_and_german(text: str, expected: str | None) -> None:
    assert order_number(text) == expected


def test_a_past_answer_is_adapted_to_the_new_customer() -> None:
    answer = "@olduser Hi Old Name, order A1111111 ships today. Old, thanks for waiting!"
    adapted = adapt_answer(answer, old_text="order A1111111 late", old_name="Old Name", old_handle="olduser",
                           new_name="Jane Doe", new_handle="jane", new_text="my order B2222222 is late")
    assert adapted == "@jane Hi Jane Doe, order B2222222 ships today. Jane, thanks for waiting!"
    without = adapt_answer("order A1111111 ships", old_text="A1111111", old_name=None, old_handle=None,
                           new_name="Jane", new_handle=None, new_text="it is late")
    assert without == "order {order} ships"


# ----------------------------------------------------------------------------- suggestions
def test_the_saved_reply_of_similar_past_answers_comes_first_with_its_placeholders_filled(
        sessions: sessionmaker[Session], clock: object, team: dict[str, int]) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        author = make_author(s, "jane_doe", name="Jane Doe")
        new = make_mention(s, "my parcel is still not delivered, order A7654321 is late", author=author)
        agent = s.get(User, team["agent"])
        assert agent is not None
        found = suggest(s, index, new, agent)
    assert found[0].saved_reply_id == team["delivery"]
    assert found[0].uses == 3 and found[0].example is not None and "parcel" in found[0].example.mention_text
    assert found[0].draft == "Hi Jane Doe, sorry your parcel is late! We checked order A7654321: it ships today. ^alice"
    assert len(found) == 3 and len({c.key for c in found}) == 3


def test_other_brands_answers_are_never_suggested(sessions: sessionmaker[Session], clock: object,
                                                  team: dict[str, int]) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        agent = s.get(User, team["agent"])
        assert agent is not None
        other = _answered(s, "the tarif page crashes in the app", agent, None, handle="x1", brand="Other Brand")
        new = make_mention(s, "the tarif page crashes in the app", handle="jane_doe")
        found = suggest(s, index, new, agent)
    assert all(c.example is None or c.example.mention_id != other.id for c in found)
    assert "the tarif page crashes in the app" not in [c.example.mention_text for c in found if c.example]


def test_an_erased_customers_mentions_vanish_from_suggestions_even_from_a_loaded_index(
        sessions: sessionmaker[Session], clock: object, team: dict[str, int]) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        agent = s.get(User, team["agent"])
        assert agent is not None
        customer = make_customer(s, "Erin Erased")
        erin = make_author(s, "erin", customer=customer)
        theirs = _answered(s, "the tarif page crashes in the app", agent, None, handle="erin", author=erin)
        new = make_mention(s, "tarif page crashes in the app", handle="jane_doe")
        before = suggest(s, index, new, agent)
        assert before[0].example is not None and before[0].example.mention_id == theirs.id  # the index holds it
        erase_customer(s, customer.id, agent.id, T0)
        assert s.scalar(select(MentionVector).where(MentionVector.mention_id == theirs.id)) is None
        after = suggest(s, index, new, agent)
    assert all(c.example is None or c.example.mention_id != theirs.id for c in after)
    assert all("tarif" not in (c.example.mention_text if c.example else "") for c in after)


def test_an_answer_after_which_the_customer_came_back_unhappy_is_marked_and_ranked_down(
        sessions: sessionmaker[Session], clock: object) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        agent = make_user(s, "alice")
        kept = _answered(s, "router keeps rebooting every hour", agent, None, handle="r1")
        bad = _answered(s, "router keeps rebooting every hour", agent, None, handle="r2")
        make_mention(s, "still rebooting, your answer was useless", handle="r2", sentiment="negative",
                     created_at=T0 - timedelta(hours=40))  # 8 h after the answer
        make_mention(s, "unrelated complaint much later", handle="r1", sentiment="negative",
                     created_at=T0 - timedelta(hours=48) + timedelta(days=9))  # outside the 7 days
        new = make_mention(s, "router keeps rebooting every hour", handle="jane_doe")
        found = suggest(s, index, new, agent)
    by_id = {c.example.mention_id: c for c in found if c.example}
    assert by_id[bad.id].example is not None and by_id[bad.id].example.came_back_unhappy  # type: ignore[union-attr]
    assert by_id[kept.id].example is not None and not by_id[kept.id].example.came_back_unhappy  # type: ignore[union-attr]
    assert [c.example.mention_id for c in found if c.example][:2] == [kept.id, bad.id]


def test_answers_written_on_the_platform_count_and_past_answers_are_adapted(
        sessions: sessionmaker[Session], clock: object) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        agent = make_user(s, "alice")
        old_author = make_author(s, "max_m", name="Max Muster")
        old = make_mention(s, "Bestellung A1112223 ist nicht angekommen", author=old_author, language="de",
                           created_at=T0 - timedelta(days=3), state="answered", conversation_id="c-old")
        brand = make_author(s, "acme", is_brand=True)
        make_mention(s, "@max_m Hallo, wir schauen nach", author=brand, is_own=True, conversation_id="c-old",
                     created_at=T0 - timedelta(days=3) + timedelta(hours=1))  # in the thread, not to it
        answer = make_mention(s, "@max_m Hallo Max Muster, A1112223 geht heute raus.", author=brand, is_own=True,
                              created_at=T0 - timedelta(days=3) + timedelta(hours=2), conversation_id="c-old")
        answer.in_reply_to_id = old.external_id
        new_author = make_author(s, "eva_k", name="Eva Klein")
        new = make_mention(s, "Bestellung B9998887 ist nicht angekommen", author=new_author, language="de")
        found = suggest(s, index, new, agent)
    assert found[0].example is not None and found[0].example.mention_id == old.id
    assert found[0].example.answered_by == "on the platform"
    assert found[0].draft == "@eva_k Hallo Eva Klein, B9998887 geht heute raus."


def test_a_saved_reply_without_history_still_ranks_by_its_fit(sessions: sessionmaker[Session], clock: object) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        agent = make_user(s, "alice")
        fit = make_saved_reply(s, "Roaming", "Roaming in the EU costs nothing extra on your tariff, {name}.")
        make_saved_reply(s, "Thanks", "Thank you so much for the kind words!")
        new = make_mention(s, "does roaming in the EU cost extra on my tariff?", handle="jane_doe")
        found = suggest(s, index, new, agent)
    assert found[0].saved_reply_id == fit.id and found[0].uses == 0
    assert found[0].draft.endswith("your tariff, Jane Doe.")


def test_new_answers_join_the_index_on_the_next_refresh(sessions: sessionmaker[Session], clock: object,
                                                        team: dict[str, int]) -> None:
    index = _index(sessions, clock)
    with sessions.begin() as s:
        assert index.partition(s, "Acme Mobile").size == 9
    with sessions.begin() as s:
        agent = s.get(User, team["agent"])
        assert agent is not None
        _answered(s, "sim card not activated", agent, None, handle="n1", hours_ago=1)
    with sessions.begin() as s:
        assert index.partition(s, "Acme Mobile").size == 10
        assert index.partition(s, "Acme Mobile").size == 10  # re-reading the overlap adds nothing twice
        assert index.partition(s, "Other Brand").size == 0


# ----------------------------------------------------------------------------- the web page
def test_the_mention_page_shows_suggestions_and_use_as_draft_records_the_saved_reply(
        sessions: sessionmaker[Session], new_client: object, team: dict[str, int]) -> None:
    with sessions.begin() as s:
        author = make_author(s, "jane_doe", name="Jane Doe")
        new = make_mention(s, "my parcel is late and still not delivered", author=author)
        mention_id = new.id
    client = login(new_client(), "alice")  # type: ignore[operator]
    post(client, f"/mentions/{mention_id}/claim")
    page = client.get(f"/mentions/{mention_id}").text
    assert "Suggested replies" in page and "Saved reply: Late parcel" in page
    used = client.get(f"/mentions/{mention_id}", params={"use": f"s{team['delivery']}"}).text
    draft = unescape(re.search(r'<textarea name="text" id="reply-text"[^>]*>(.*?)</textarea>', used, re.S).group(1))  # type: ignore[union-attr]
    assert draft == "Hi Jane Doe, sorry your parcel is late! We checked order {order}: it ships today. ^alice"
    assert f'id="saved-reply-id" value="{team["delivery"]}"' in used
    post(client, f"/mentions/{mention_id}/reply", {"text": draft.replace("{order}", "A1"),
                                                   "saved_reply_id": str(team["delivery"])})
    with sessions() as s:
        reply = s.scalar(select(Reply).where(Reply.mention_id == mention_id))
        assert reply is not None and reply.saved_reply_id == team["delivery"]


def test_the_prefilter_finds_the_exact_neighbours_of_structured_vectors() -> None:
    from models.vectors import Prefilter, two_stage_top_k

    rng = np.random.default_rng(11)
    latent = rng.standard_normal((60_000, 48)).astype(np.float32)  # sentence vectors live near a subspace
    matrix = quantize(latent @ rng.standard_normal((48, 384)).astype(np.float32)
                      + 0.3 * rng.standard_normal((60_000, 384)).astype(np.float32))
    prefilter = Prefilter.fit(matrix[:20_000])
    codes = prefilter.codes(matrix)
    overlap = []
    for q in range(0, 60_000, 3_000):
        query = quantize(dequantize(matrix[q:q + 1]) + 0.05 * rng.standard_normal((1, 384)))[0]
        exact, _ = top_k(query, matrix, 10)
        fast, sims = two_stage_top_k(query, matrix, codes, prefilter, 10, candidates=200)
        overlap.append(len(set(exact) & set(fast)) / 10)
        assert list(sims) == sorted(sims, reverse=True)
    assert float(np.mean(overlap)) >= 0.95
