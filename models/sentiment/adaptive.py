"""Each brand's class mix, learned from its own recent mentions (bounded prior shift, priors.py).

`BrandAdaptation` wraps a classifier that has `probabilities`. Per brand it keeps a rolling window of
the RAW (unadapted) posteriors of that brand's recent inbound mentions, refits the bounded shift
(`priors.fit_shift`) whenever the window has grown by `refit_every` texts since the last fit, and
corrects that brand's posteriors by its current shift. New texts join the window before the fit, so
a first large backfill is adapted too. Below `min_texts` in a window nothing changes. The raw
posteriors are handed back alongside the results so the caller can store them; `seed` (and
`stored_raw`, which reads them back from the store) fills the windows of a restarted daemon.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orm import Mention
from models.sentiment.priors import MIN_TEXTS, UNIFORM, PriorShift, fit_shift
from models.sentiment.result import SentimentResult, make_result

WINDOW = 2000
REFIT_EVERY = 100
Probabilities = Callable[[list[str]], np.ndarray]


def adaptable(classifier: Any) -> tuple[Probabilities, np.ndarray] | None:
    """`classifier`'s batch posteriors and the class mix it was trained under, or None.

    Prior adaptation needs both: a model that does not declare its training prior (`train_prior`;
    a hub model trained on an unknown mix) is left as it is rather than corrected against a guess.
    """
    method = getattr(classifier, "probabilities", None)
    prior = getattr(classifier, "train_prior", None)
    if not callable(method) or prior is None:
        return None
    return method, np.asarray(prior, np.float64)


class _Window:
    """One brand's recent raw posteriors and the shift last fitted on them."""

    def __init__(self, size: int, shift: PriorShift) -> None:
        self.rows: deque[tuple[float, float, float]] = deque(maxlen=size)
        self.added = 0  # rows added since the last fit
        self.shift = shift

    def add(self, probs: np.ndarray) -> None:
        self.rows.extend((float(r[0]), float(r[1]), float(r[2])) for r in np.asarray(probs, np.float64))
        self.added += len(probs)


class BrandAdaptation:
    """A classifier whose posteriors follow each brand's own class mix (see the module docstring).

    Without `probabilities` and `train_prior` on the wrapped classifier (`adaptable`), or with
    `enabled=False`, results pass through unchanged. Thread-safe: the model runs outside the lock,
    the windows and fits inside it.
    """

    def __init__(self, classifier: Any, *, window: int = WINDOW, min_texts: int = MIN_TEXTS,
                 refit_every: int = REFIT_EVERY, enabled: bool = True) -> None:
        self.classifier = classifier
        self.window, self.min_texts, self.refit_every = window, min_texts, max(1, refit_every)
        found = adaptable(classifier)
        self._probabilities = found[0] if found else None
        self.train_prior = found[1] if found else UNIFORM
        self.enabled = enabled and found is not None
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state

    def seed(self, brand: str, raw_probs: np.ndarray | Sequence[Sequence[float]]) -> PriorShift:
        """Fill `brand`'s window with stored raw posteriors (oldest first) and fit on them."""
        rows = np.asarray(raw_probs, np.float64).reshape(-1, 3)
        with self._lock:
            window = self._window(brand)
            window.add(rows)
            return self._fit(window)

    def shift(self, brand: str) -> PriorShift:
        """`brand`'s current shift (not applied while its window is too small)."""
        with self._lock:
            return self._window(brand).shift

    def window_of(self, brand: str) -> np.ndarray:
        """A copy of `brand`'s window, oldest first, (n, 3)."""
        with self._lock:
            return np.asarray(list(self._window(brand).rows), np.float64).reshape(-1, 3)

    # ------------------------------------------------------------------ classify

    def classify(self, texts: list[str], brands: Sequence[str | None] | None = None) -> list[SentimentResult]:
        """One result per text; `brands[i]` (None or left out: no adaptation) is text i's brand."""
        return self.classify_with_raw(texts, brands)[0]

    @property
    def vector_key(self) -> str | None:
        """The wrapped classifier's vector space (None: it has no sentence vectors)."""
        key = getattr(self.classifier, "vector_key", None)
        return str(key) if key else None

    def embed(self, texts: list[str]) -> np.ndarray:
        """The wrapped classifier's sentence vectors (AttributeError where it has none)."""
        return np.asarray(self.classifier.embed(texts), np.float32)

    def classify_with_raw(self, texts: list[str], brands: Sequence[str | None] | None = None
                          ) -> tuple[list[SentimentResult], np.ndarray | None]:
        """Adapted results and the raw (n, 3) posteriors (None when the classifier has none)."""
        results, raw, _ = self.classify_scored(texts, brands)
        return results, raw

    def classify_scored(self, texts: list[str], brands: Sequence[str | None] | None = None
                        ) -> tuple[list[SentimentResult], np.ndarray | None, np.ndarray | None]:
        """`classify_with_raw` and the sentence vectors of the same pass (None where the classifier has
        no `probabilities_and_vectors`)."""
        if self._probabilities is None:
            return list(self.classifier.classify(texts)), None, None
        vectors = None
        both = getattr(self.classifier, "probabilities_and_vectors", None)
        if callable(both) and texts:
            probs, vectors = both(texts)
            raw = np.asarray(probs, np.float64).reshape(-1, 3)
        else:
            raw = np.asarray(self._probabilities(texts), np.float64).reshape(-1, 3)
        if len(raw) != len(texts):
            raise ValueError(f"the classifier gave {len(raw)} rows for {len(texts)} texts")
        adapted = raw
        if self.enabled and brands is not None:
            if len(brands) != len(texts):
                raise ValueError(f"{len(brands)} brands for {len(texts)} texts")
            adapted = raw.copy()
            for brand, index in _group(brands).items():
                with self._lock:
                    window = self._window(brand)
                    window.add(raw[index])
                    shift = self._refit(window)
                adapted[index] = shift.apply(raw[index])
        complaint = getattr(self.classifier, "complaint_model", None)
        return [make_result(t, p, complaint) for t, p in zip(texts, adapted.tolist(), strict=True)], raw, vectors

    # ------------------------------------------------------------------ internals (lock held)

    def _window(self, brand: str) -> _Window:
        window = self._windows.get(brand)
        if window is None:
            window = self._windows[brand] = _Window(self.window, self._fit_rows(np.zeros((0, 3))))
        return window

    def _refit(self, window: _Window) -> PriorShift:
        """Refit when `refit_every` texts came since the last fit, or the window just became big enough."""
        due = window.added >= self.refit_every or (not window.shift.applied and len(window.rows) >= self.min_texts)
        return self._fit(window) if due else window.shift

    def _fit(self, window: _Window) -> PriorShift:
        window.shift = self._fit_rows(np.asarray(list(window.rows), np.float64).reshape(-1, 3))
        window.added = 0
        return window.shift

    def _fit_rows(self, rows: np.ndarray) -> PriorShift:
        return fit_shift(rows, self.train_prior, min_texts=self.min_texts)


def _group(brands: Sequence[str | None]) -> dict[str, list[int]]:
    """Text indexes per brand, in order; texts without a brand are left out."""
    groups: dict[str, list[int]] = {}
    for i, brand in enumerate(brands):
        if brand is not None:
            groups.setdefault(brand, []).append(i)
    return groups


def stored_raw(session: Session, brand: str, limit: int = WINDOW) -> np.ndarray:
    """The raw posteriors of `brand`'s latest `limit` stored inbound mentions, oldest first, (n, 3)."""
    rows = session.execute(
        select(Mention.raw_negative, Mention.raw_neutral, Mention.raw_positive)
        .where(Mention.brand == brand, Mention.is_own.is_(False), Mention.raw_negative.is_not(None),
               Mention.raw_neutral.is_not(None), Mention.raw_positive.is_not(None))
        .order_by(Mention.created_at.desc(), Mention.id.desc())
        .limit(limit)
    ).all()
    return np.asarray([tuple(r) for r in reversed(rows)], np.float64).reshape(-1, 3)
