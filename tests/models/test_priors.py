"""Bounded prior re-estimation (models/sentiment/priors.py) on synthetic streams with known class mixes.

The synthetic classifier is calibrated by construction: a text of class y yields a score vector
x ~ Dirichlet(alpha_y), and its posterior is the exact Bayes posterior p(y | x) under the uniform
training prior, so the assumptions of the EM (Saerens et al. 2002) hold. Every expected value
below comes from the generating process (the priors drawn from, the labels drawn), never from the
code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.sentiment.priors import MAX_RATIO, UNIFORM, em_priors, fit_shift

NEUTRAL_HEAVY = (0.3, 0.66, 0.04)
NEGATIVE_HEAVY = (0.7, 0.2, 0.1)
ALPHAS = 2.0 + 3.0 * np.eye(3)  # class y's scores: Dirichlet(alpha_y), peaked at component y


def _log_density(x: np.ndarray) -> np.ndarray:
    """log Dirichlet(x; alpha_y) for every class y, (n, 3)."""
    norm = np.array([math.lgamma(a.sum()) - sum(math.lgamma(v) for v in a) for a in ALPHAS])
    return np.log(x) @ (ALPHAS - 1).T + norm[None, :]


def posteriors(x: np.ndarray, prior: np.ndarray | tuple[float, ...] = tuple(UNIFORM)) -> np.ndarray:
    """The exact Bayes posteriors p(y | x) under `prior`."""
    log_post = _log_density(x) + np.log(np.asarray(prior))[None, :]
    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    return post / post.sum(axis=1, keepdims=True)


def draw(prior: tuple[float, float, float], n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, score vectors and the model's posteriors (uniform training prior) of n texts."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=prior)
    x = np.stack([rng.dirichlet(ALPHAS[y]) for y in labels])
    return labels, x, posteriors(x)


@pytest.mark.parametrize("prior", [NEUTRAL_HEAVY, NEGATIVE_HEAVY])
def test_em_recovers_the_streams_class_mix(prior: tuple[float, float, float]) -> None:
    labels, _, probs = draw(prior, 5000, seed=7)
    estimate = em_priors(probs, UNIFORM)
    assert np.abs(estimate - np.asarray(prior)).max() < 0.03
    # and it is no worse than the mix the labels actually have (sampling noise included)
    drawn = np.bincount(labels, minlength=3) / len(labels)
    assert np.abs(estimate - drawn).max() < 0.03


def test_a_small_sample_is_not_adapted() -> None:
    _, _, probs = draw(NEUTRAL_HEAVY, 100, seed=1)
    shift = fit_shift(probs, UNIFORM)
    assert not shift.applied and shift.texts == 100
    assert np.array_equal(shift.apply(probs), probs)


def test_an_odd_sample_of_one_class_stays_within_the_bound_and_cannot_flip_a_clear_text() -> None:
    # 600 texts that are all positive (the rarest class of a neutral-heavy brand): an odd week
    rng = np.random.default_rng(3)
    x = np.stack([rng.dirichlet(ALPHAS[2]) for _ in range(600)])
    shift = fit_shift(posteriors(x), UNIFORM)
    assert shift.applied
    ratio = shift.ratio
    assert ratio.max() <= MAX_RATIO + 1e-9
    # labels depend on the ratios relative to each other: at most MAX_RATIO**2 = 16 apart
    assert ratio.max() / ratio.min() <= MAX_RATIO**2 + 1e-9
    assert int(np.argmax(ratio)) == 2  # it did move towards positive
    # a text 0.9 another class (18x the positive probability > 16) keeps its label
    for other in (0, 1):
        clear = np.full((1, 3), 0.05)
        clear[0, other] = 0.9
        assert int(np.argmax(shift.apply(clear))) == other


@pytest.mark.parametrize("prior", [NEUTRAL_HEAVY, NEGATIVE_HEAVY])
def test_the_shift_raises_accuracy_on_a_skewed_stream(prior: tuple[float, float, float]) -> None:
    labels, x, probs = draw(prior, 5000, seed=11)
    raw_accuracy = float((probs.argmax(axis=1) == labels).mean())
    shift = fit_shift(probs, UNIFORM)
    assert shift.applied
    adapted_accuracy = float((shift.apply(probs).argmax(axis=1) == labels).mean())
    best_accuracy = float((posteriors(x, prior).argmax(axis=1) == labels).mean())  # Bayes with the true mix
    assert adapted_accuracy > raw_accuracy + 0.02
    assert adapted_accuracy <= best_accuracy + 0.01
    # the applied mix ranks the classes as the true mix does (shrunk and bounded, so not equal to it)
    assert list(np.argsort(shift.prior)) == list(np.argsort(prior))
