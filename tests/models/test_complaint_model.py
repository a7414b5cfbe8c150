"""The learned complaint score (models/complaint.py): the fit, ROC AUC, storage, and its use in results."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from models.complaint import (
    COMPLAINT_FILE,
    FEATURES,
    ComplaintModel,
    complaint_features,
    complaint_model_in,
    complaint_score,
    fit_complaint_model,
    roc_auc,
)
from models.sentiment.result import make_result


def test_the_fit_recovers_a_known_logistic_model() -> None:
    """Labels drawn from a known logistic model: the weights come back; balancing the classes moves only
    the bias, by ln(dismissed / answered) (a re-weighted correctly specified logistic regression)."""
    rng = np.random.default_rng(7)
    n = 20_000
    x = np.hstack([rng.random((n, 3)), rng.integers(0, 2, (n, len(FEATURES) - 3))]).astype(np.float64)
    true_w = np.array([2.0, -1.5, 1.0, 0.8, 0.0, -0.7, 0.5, 1.2])
    true_b = -1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-(true_b + x @ true_w)))).astype(np.int64)
    model = fit_complaint_model(x, y, l2=0.0)
    assert np.abs(np.array(model.weights) - true_w).max() < 0.2
    shift = math.log((n - y.sum()) / y.sum())
    assert abs(model.bias - (true_b + shift)) < 0.2


def test_the_fit_refuses_one_class_and_wrong_shapes() -> None:
    x = np.zeros((10, len(FEATURES)))
    with pytest.raises(ValueError, match="both answered and dismissed"):
        fit_complaint_model(x, np.ones(10))
    with pytest.raises(ValueError, match="expected"):
        fit_complaint_model(np.zeros((10, 3)), np.r_[np.ones(5), np.zeros(5)])


def test_roc_auc_equals_counting_pairs() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 12, 300) / 11  # many ties
    pairs = [(a, b) for a, b in itertools.product(s[y == 1], s[y == 0])]
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert roc_auc(y, s) == pytest.approx(expected, abs=1e-12)
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0 and roc_auc([0, 1], [0.9, 0.1]) == 0.0
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.3])


def test_features_and_score_by_hand() -> None:
    text = "My order 123456 never arrived, can you help?"
    f = complaint_features(text, 0.4, 0.1)
    assert f[:3] == [0.4, 0.1, complaint_score(text, 0.4, 0.1)]
    assert dict(zip(FEATURES[3:], f[3:], strict=True)) == {
        "problem": 1.0, "request": 1.0, "reference": 1.0, "anger": 0.0, "question": 1.0}
    model = ComplaintModel(tuple(0.5 for _ in FEATURES), -1.0)
    z = -1.0 + 0.5 * sum(f)
    assert model.score(text, 0.4, 0.1) == pytest.approx(1 / (1 + math.exp(-z)))


def test_stored_beside_a_version_and_used_by_results(tmp_path: Path) -> None:
    assert complaint_model_in(tmp_path) is None
    model = ComplaintModel((0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0), -1.0, {"trained_on": 5})
    model.save(tmp_path / COMPLAINT_FILE)
    loaded = complaint_model_in(tmp_path)
    assert loaded == model
    question = make_result("is it down?", [0.2, 0.6, 0.2], loaded)
    plain = make_result("is it down?", [0.2, 0.6, 0.2])
    assert question.complaint == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert plain.complaint == pytest.approx(complaint_score("is it down?", 0.2, 0.2))
    (tmp_path / COMPLAINT_FILE).write_text('{"features": ["negative"], "weights": [1.0], "bias": 0}')
    with pytest.raises(ValueError, match="other features"):
        complaint_model_in(tmp_path)
    (tmp_path / COMPLAINT_FILE).write_text("not json")
    with pytest.raises(ValueError, match="not a complaint model"):
        complaint_model_in(tmp_path)
