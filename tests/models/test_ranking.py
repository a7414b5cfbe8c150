"""Ranking: order and human-readable reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.config import RankingConfig, RankingWeights
from models.ranking import CustomerHistory, RankInput, complaint_cues, rank

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def item(text: str = "ok", negative: float = 0.1, hours: float = 0.0, **kw: object) -> RankInput:
    return RankInput(text=text, negative=negative, created_at=NOW - timedelta(hours=hours), **kw)  # type: ignore[arg-type]


def test_more_negative_ranks_higher() -> None:
    assert rank(item(negative=0.9), NOW).priority > rank(item(negative=0.2), NOW).priority


def test_waiting_longer_ranks_higher_and_saturates() -> None:
    fresh, old, older = (rank(item(negative=0.5, hours=h), NOW).priority for h in (0, 12, 240))
    assert fresh < old < older
    assert rank(item(negative=0.5, hours=24), NOW).priority == older


def test_complaint_cues_in_english_and_german() -> None:
    en = complaint_cues("My order #123456 never arrived, can you please help?")
    assert {"problem", "request", "question", "reference"} <= set(en.matches)
    assert "problem: never arrived" in en.reasons() and "asks the brand" in en.reasons()
    de = complaint_cues("Bestellnummer 4711234 ist nicht angekommen, bitte um Erstattung")
    assert {"problem", "request", "reference"} <= set(de.matches)
    assert any("nicht angekommen" in w for w in de.matches["problem"])
    assert complaint_cues("What a lovely day").score == 0.0


def test_history_ranks_a_loyal_customers_repeat_complaint_above_a_stranger() -> None:
    text = "still no internet"
    stranger = rank(item(text, 0.8), NOW)
    loyal = rank(item(text, 0.8, history=CustomerHistory(earlier_conversations=12, repeat_complaint=True)), NOW)
    ignored = rank(item(text, 0.8, history=CustomerHistory(earlier_conversations=12,
                                                           last_complaint_unanswered=True)), NOW)
    assert stranger.priority < loyal.priority < ignored.priority
    assert "12 earlier conversations" in loyal.reasons
    assert "last complaint unanswered" in ignored.reasons


def test_reasons_are_ordered_by_contribution_and_readable() -> None:
    result = rank(item("my bill is wrong, refund please", 0.94, hours=3, followers=12_000), NOW)
    assert result.reasons[0] == "negative 0.94"
    assert "waiting 3 h" in result.reasons and "12k followers" in result.reasons
    assert any(r.startswith("problem: ") for r in result.reasons)
    assert 0.0 <= result.priority <= 1.0


def test_weights_from_config_change_the_order() -> None:
    reach_only = RankingConfig(weights=RankingWeights(negativity=0, complaint_cues=0, waiting=0, reach=1, history=0))
    famous = rank(item(negative=0.0, followers=1_000_000), NOW, reach_only)
    angry = rank(item(negative=1.0, followers=10), NOW, reach_only)
    assert famous.priority > angry.priority


def test_deterministic() -> None:
    args = item("refund!!", 0.7, hours=5, followers=50)
    assert rank(args, NOW) == rank(args, NOW)
