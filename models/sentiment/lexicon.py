"""The lexicon fallback: a small deterministic English + German keyword classifier, no model."""

from __future__ import annotations

import math
import re

import numpy as np

from models.sentiment.result import SentimentResult, make_result

_POSITIVE = (
    "good great love loved lovely awesome amazing excellent perfect best thanks thank happy glad nice "
    "fantastic wonderful brilliant cool enjoy enjoyed fun beautiful helpful quick fast recommend super "
    "gut toll liebe danke dankeschön glücklich schön prima klasse genial perfekt hilfreich schnell freue "
    "freude wunderbar spitze empfehlen lob zufrieden ❤ ❤️ 😍 😀 😃 😊 🙂 👍 🎉 😁 🥰"
)
_NEGATIVE = (
    "bad worst terrible awful hate hated horrible broken angry annoyed disappointed disappointing useless "
    "poor slow delayed delay refund cancelled canceled missing lost wrong fail failed problem issue never "
    "sucks ridiculous unacceptable rude scam sad "
    "schlecht schlimm scheiße scheisse mies hasse kaputt ärgerlich enttäuscht enttäuschend nutzlos langsam "
    "verspätung verspätet ausgefallen falsch fehler problem nie frechheit unverschämt katastrophe traurig "
    "sauer nervt 😡 😠 🤬 😢 😭 👎 💩 😤 😞"
)
_NEGATORS = frozenset(
    ["not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "can't", "won't",
     "nicht", "kein", "keine", "keinen", "nie"]
)
_TOKEN = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


class LexiconClassifier:
    """A small deterministic keyword classifier (English + German): no model, instant, honest-ish.

    Each positive/negative keyword (or emoji) adds one point to its side; a negator within the two
    preceding words flips it. Probabilities are a softmax over (negative, neutral=0.5, positive)
    points. Meant for tests, benchmarks of other components and as a fallback.
    """

    positive = frozenset(_POSITIVE.split())
    negative = frozenset(_NEGATIVE.split())

    train_prior = (1 / 3, 1 / 3, 1 / 3)
    """Not trained: its rules favour no class, so prior adaptation may correct it like a balanced model."""

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 3) negative/neutral/positive probabilities, like the model classifiers."""
        return np.asarray([self.text_probabilities(t) for t in texts], np.float64).reshape(-1, 3)

    def text_probabilities(self, text: str) -> tuple[float, float, float]:
        tokens = [t.lower() for t in _TOKEN.findall(text)]
        neg = pos = 0.0
        for i, tok in enumerate(tokens):
            side = 1 if tok in self.positive else -1 if tok in self.negative else 0
            if side and any(t in _NEGATORS for t in tokens[max(0, i - 2):i]):
                side = -side
            if side > 0:
                pos += 1.0
            elif side < 0:
                neg += 1.0
        logits = (neg, 0.5, pos)
        top = max(logits)
        exps = [math.exp(2.0 * (v - top)) for v in logits]
        total = sum(exps)
        return exps[0] / total, exps[1] / total, exps[2] / total

    def classify(self, texts: list[str]) -> list[SentimentResult]:
        return [make_result(t, self.text_probabilities(t)) for t in texts]

