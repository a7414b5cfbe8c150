"""Adapting the classifier to a stream's own class mix (prior shift), bounded.

A classifier trained with every class weighted alike assumes each class is a third of what it sees.
A brand's stream is not: customer feedback is mostly neutral, a complaints account mostly negative.
Saerens, Latinne & Decaestecker (2002): with posteriors p(y|x) from a model trained under priors
q(y), the stream's priors pi(y) are the fixed point of

    pi  <-  mean over texts of  normalize(p(y|x) * pi(y) / q(y))

(EM on the unlabeled texts), and the corrected posteriors are normalize(p(y|x) * pi(y) / q(y)).

Bounds, so that a tiny or odd sample cannot flip labels: nothing is adapted below `min_texts`; the
estimate is shrunk towards q by n / (n + shrink); each class's ratio pi/q is clipped to
[1 / max_ratio, max_ratio] before renormalizing, so no ratio exceeds max_ratio and the largest is at
most max_ratio ** 2 times the smallest (a text at 0.9 for one class against 0.05 keeps its label).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TEXTS = 500
SHRINK = 200.0
MAX_RATIO = 4.0
UNIFORM = np.full(3, 1 / 3)


@dataclass(frozen=True)
class PriorShift:
    """An estimated class mix and whether it is applied (`reason` says why not)."""

    prior: tuple[float, float, float]
    train_prior: tuple[float, float, float]
    texts: int
    applied: bool
    reason: str = ""

    @property
    def ratio(self) -> np.ndarray:
        return np.asarray(self.prior) / np.asarray(self.train_prior)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Corrected posteriors (unchanged when the shift is not applied)."""
        if not self.applied or len(probs) == 0:
            return probs
        adjusted = np.asarray(probs, np.float64) * self.ratio
        return (adjusted / adjusted.sum(axis=1, keepdims=True)).astype(np.float32)

    def describe(self) -> str:
        mix = " / ".join(f"{name} {p:.0%}" for name, p in zip(("negative", "neutral", "positive"), self.prior,
                                                                  strict=True))
        if not self.applied:
            return f"not adapted to this input's class mix: {self.reason}"
        return f"adapted to this input's estimated class mix ({mix}; {self.texts} texts)"


def em_priors(probs: np.ndarray, train_prior: np.ndarray = UNIFORM, max_iter: int = 200,
              tol: float = 1e-7) -> np.ndarray:
    """The stream's class priors by EM (unbounded; see the module docstring)."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, None)
    q = np.asarray(train_prior, np.float64)
    pi = q.copy()
    for _ in range(max_iter):
        adjusted = p * (pi / q)
        adjusted /= adjusted.sum(axis=1, keepdims=True)
        new = adjusted.mean(axis=0)
        if np.abs(new - pi).max() < tol:
            return new
        pi = new
    return pi


def fit_shift(probs: np.ndarray, train_prior: np.ndarray = UNIFORM, min_texts: int = MIN_TEXTS,
              shrink: float = SHRINK, max_ratio: float = MAX_RATIO) -> PriorShift:
    """The bounded prior shift for a stream whose raw posteriors are `probs`."""
    q = np.asarray(train_prior, np.float64)
    n = len(probs)
    q_t = (float(q[0]), float(q[1]), float(q[2]))
    if n < min_texts:
        return PriorShift(q_t, q_t, n, False, f"{n} texts, fewer than the {min_texts} needed")
    pi = em_priors(probs, q)
    weight = n / (n + shrink)
    pi = weight * pi + (1 - weight) * q
    ratio = np.clip(pi / q, 1 / max_ratio, max_ratio)
    pi = ratio * q / (ratio * q).sum()
    return PriorShift((float(pi[0]), float(pi[1]), float(pi[2])), q_t, n, True)
