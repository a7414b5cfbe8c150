"""Per-brand adaptation (models/sentiment/adaptive.py): separate windows, seeding, the threshold,
pass-through, and the raw posteriors going through the poller into the store and back."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.config_loader import parse_config
from models.orm import Mention
from models.sentiment.adaptive import BrandAdaptation, stored_raw
from models.sentiment.lexicon import LexiconClassifier
from models.sentiment.result import make_result
from openear.app import OpenEar
from tests.support import SOURCE, T0, ScriptedAdapter, make_poller, post

NEGATIVE, NEUTRAL, POSITIVE = (0.75, 0.15, 0.10), (0.15, 0.70, 0.15), (0.10, 0.15, 0.75)
AMBIGUOUS = (0.40, 0.36, 0.24)  # negative by a hair: a neutral-heavy brand reads it as neutral


class FakeModel:
    """A classifier with `probabilities`: text "i" gets row i of its preset table; trained balanced."""

    train_prior = (1 / 3, 1 / 3, 1 / 3)

    def __init__(self, rows: list[tuple[float, float, float]]) -> None:
        self.rows = rows

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return np.asarray([self.rows[int(t)] for t in texts], np.float32).reshape(-1, 3)

    def classify(self, texts: list[str]) -> list[object]:
        return [make_result(t, p) for t, p in zip(texts, self.probabilities(texts), strict=True)]


def mix(n: int, shares: tuple[float, float, float], seed: int) -> list[tuple[float, float, float]]:
    """n rows, each one of the three clear patterns, drawn with `shares`."""
    rng = np.random.default_rng(seed)
    return [(NEGATIVE, NEUTRAL, POSITIVE)[i] for i in rng.choice(3, size=n, p=shares)]


def test_each_brand_has_its_own_window_and_shift() -> None:
    rows = mix(800, (0.25, 0.70, 0.05), seed=1) + mix(800, (0.70, 0.20, 0.10), seed=2) + [AMBIGUOUS]
    adaptation = BrandAdaptation(FakeModel(rows))
    brands = ["A"] * 800 + ["B"] * 800
    order = np.random.default_rng(3).permutation(1600)  # interleaved in one call
    adaptation.classify([str(i) for i in order], [brands[i] for i in order])
    a, b = adaptation.shift("A"), adaptation.shift("B")
    assert a.applied and b.applied and a.texts == b.texts == 800
    assert int(np.argmax(a.prior)) == 1 and int(np.argmax(b.prior)) == 0
    assert len(adaptation.window_of("A")) == len(adaptation.window_of("B")) == 800
    # one text, two brands: each reads it by its own mix
    ambiguous = str(len(rows) - 1)
    results, raw = adaptation.classify_with_raw([ambiguous, ambiguous], ["A", "B"])
    assert [r.label for r in results] == ["neutral", "negative"]
    assert raw is not None and np.allclose(raw, [AMBIGUOUS, AMBIGUOUS], atol=1e-6)


def test_seed_fills_a_window_and_adapts_at_once_keeping_the_newest() -> None:
    rows = [*mix(2500, (0.25, 0.70, 0.05), seed=4), AMBIGUOUS]
    adaptation = BrandAdaptation(FakeModel(rows))
    shift = adaptation.seed("A", np.asarray(rows[:2500]))
    assert shift.applied and shift.texts == 2000  # the window's size
    assert np.allclose(adaptation.window_of("A"), rows[500:2500])
    assert adaptation.classify(["2500"], ["A"])[0].label == "neutral"
    assert adaptation.classify(["2500"], ["other brand"])[0].label == "negative"


def test_below_min_texts_results_are_the_unadapted_ones() -> None:
    rows = [*mix(498, (0.25, 0.70, 0.05), seed=5), AMBIGUOUS]
    model = FakeModel(rows)
    texts = [str(i) for i in range(499)]  # one fewer than min_texts (500)
    adaptation = BrandAdaptation(model)
    adapted, raw = adaptation.classify_with_raw(texts, ["A"] * 499)
    assert adapted == model.classify(texts) and adapted[-1].label == "negative"
    assert raw is not None and np.allclose(raw, rows, atol=1e-6)
    assert not adaptation.shift("A").applied
    assert adaptation.classify(["0"], ["A"])[0] != model.classify(["0"])[0]  # the 500th text adapts


def test_the_shift_refits_every_refit_every_texts() -> None:
    rows = mix(800, (0.25, 0.70, 0.05), seed=6)
    adaptation = BrandAdaptation(FakeModel(rows), refit_every=100)
    adaptation.seed("A", np.asarray(rows[:600]))
    first = adaptation.shift("A")
    adaptation.classify([str(i) for i in range(600, 650)], ["A"] * 50)
    assert adaptation.shift("A") is first
    adaptation.classify([str(i) for i in range(650, 700)], ["A"] * 50)
    assert adaptation.shift("A") is not first and adaptation.shift("A").texts == 700


def test_without_probabilities_or_switched_off_it_passes_through() -> None:
    class LabelsOnly:
        def classify(self, texts: list[str]) -> list[str]:
            return ["x" for _ in texts]

    results, raw = BrandAdaptation(LabelsOnly()).classify_with_raw(["a"], ["A"])
    assert results == ["x"] and raw is None
    rows = [*mix(800, (0.25, 0.70, 0.05), seed=7), AMBIGUOUS]
    off = BrandAdaptation(FakeModel(rows), enabled=False)
    off.classify([str(i) for i in range(800)], ["A"] * 800)
    assert off.classify(["800"], ["A"])[0].label == "negative" and len(off.window_of("A")) == 0


def test_the_lexicon_model_is_adapted_through_its_per_text_probabilities() -> None:
    lexicon = LexiconClassifier()
    texts = ["my order never arrived", "love it", "the shop opens at nine"]
    results, raw = BrandAdaptation(lexicon).classify_with_raw(texts, ["A"] * 3)
    assert results == lexicon.classify(texts)
    assert raw is not None and np.allclose(raw, [lexicon.text_probabilities(t) for t in texts])


def test_the_poller_stores_raw_posteriors_and_the_store_seeds_the_same_window(
        sessions: sessionmaker[Session]) -> None:
    rows = [*mix(599, (0.25, 0.70, 0.05), seed=8), AMBIGUOUS]  # one backfill: adapted at once
    adaptation = BrandAdaptation(FakeModel(rows))
    inbound = [post(i, str(i)) for i in range(len(rows))]
    own = post(900, "0", author="brand", is_own=True)
    make_poller(sessions, adaptation).poll_once(ScriptedAdapter([[*inbound, own]]), SOURCE)
    with sessions() as session:
        stored = {m.external_id: m for m in session.scalars(select(Mention))}
        window = stored_raw(session, SOURCE.brand)
    assert stored[own.external_id].raw_negative is None  # own posts are not classified
    for m, row in zip(inbound, rows, strict=True):
        got = stored[m.external_id]
        assert (got.raw_negative, got.raw_neutral, got.raw_positive) == pytest.approx(row, abs=1e-6)
    ambiguous = stored[inbound[-1].external_id]
    assert ambiguous.sentiment_label == "neutral"  # adapted: the raw posterior says negative
    assert ambiguous.score_neutral is not None and ambiguous.score_neutral > AMBIGUOUS[1]
    assert np.allclose(window, adaptation.window_of(SOURCE.brand), atol=1e-6)
    fresh = BrandAdaptation(FakeModel(rows))
    fresh.seed(SOURCE.brand, window)
    assert np.allclose(fresh.window_of(SOURCE.brand), adaptation.window_of(SOURCE.brand), atol=1e-6)
    assert fresh.shift(SOURCE.brand).prior == pytest.approx(adaptation.shift(SOURCE.brand).prior, abs=1e-6)



def test_an_edit_stores_the_new_revisions_raw_posteriors(sessions: sessionmaker[Session]) -> None:
    rows = [NEGATIVE, POSITIVE]
    edited = replace(post(1, "1"), revision="1009", edited_at=T0 + timedelta(minutes=9))
    poller = make_poller(sessions, BrandAdaptation(FakeModel(rows)))
    adapter = ScriptedAdapter([[post(1, "0")], [edited]])
    poller.poll_once(adapter, SOURCE)
    assert poller.poll_once(adapter, SOURCE).edited == 1
    with sessions() as session:
        row = session.scalars(select(Mention)).one()
    assert (row.raw_negative, row.raw_neutral, row.raw_positive) == pytest.approx(POSITIVE, abs=1e-6)
    assert row.sentiment_label == "positive"


CONFIG = """
brands:
  - name: Acme
    accounts: {x: [acme_help]}
    queries: {x: ['acme']}
database: {url: "sqlite:///unused.db"}
web: {secret_key: "test-secret-key-0123456789"}
classifier: {model: lexicon}
"""


def test_the_app_wraps_a_model_with_probabilities_and_seeds_it_from_the_store(engine: Engine) -> None:
    texts = ["my order never arrived, please help", "love the new plan, thanks!", "it is a phone"]
    first = OpenEar(parse_config(CONFIG), engine=engine)
    first.poller.poll_once(ScriptedAdapter([[post(i, t) for i, t in enumerate(texts)]]), SOURCE)
    adaptation = first.classifier
    assert isinstance(adaptation, BrandAdaptation) and len(adaptation.window_of("Acme")) == 3
    restarted = OpenEar(parse_config(CONFIG), engine=engine).classifier
    assert isinstance(restarted, BrandAdaptation)
    assert np.allclose(restarted.window_of("Acme"), adaptation.window_of("Acme"), atol=1e-6)
    off = OpenEar(parse_config(CONFIG.replace("{model: lexicon}", "{model: lexicon, adapt_priors: false}")),
                  engine=engine).classifier
    assert isinstance(off, LexiconClassifier)
