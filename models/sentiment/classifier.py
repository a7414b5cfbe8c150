"""The model-backed classifiers and the factory that picks one by name.

- `EmbeddingClassifier` (the default): the embedded multilingual-e5-small encoder (built offline
  from pip packages, see models/sentiment/encoder_build.py) plus the small head shipped in
  models/sentiment/assets/.
- `TransformersClassifier`: any Hugging Face text-classification model (hub id or local path).
- `LexiconClassifier` (models/sentiment/lexicon.py): a tiny deterministic keyword classifier.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models.complaint import complaint_model_in
from models.sentiment.errors import ClassifierError, UnmappableLabels
from models.sentiment.head import Head
from models.sentiment.lexicon import LexiconClassifier
from models.sentiment.priors import UNIFORM
from models.sentiment.result import (
    DEFAULT_MODEL,
    ENCODER_MODES,
    Classifier,
    SentimentResult,
    make_result,
    normalize_text,
)

# ----------------------------------------------------------------------------- label mapping
_NAMED = {
    "negative": 0, "neg": 0, "negativ": 0, "bad": 0,
    "neutral": 1, "neu": 1, "none": 1, "objective": 1, "mixed": 1,
    "positive": 2, "pos": 2, "positiv": 2, "good": 2,
}
_STARS = re.compile(r"^([1-5])\s*(?:star|stars|sterne?)$")
_INDEXED = re.compile(r"^(?:label_?)?(\d+)$")


def label_matrix(id2label: Mapping[int, str]) -> np.ndarray:
    """A (n_classes, 3) matrix mapping a model's class probabilities onto negative/neutral/positive.

    Understands named labels (negative/neutral/positive, NEG/NEU/POS, ...), `LABEL_n` or bare
    indices (2 classes: 0 negative, 1 positive; 3 classes: 0 negative, 1 neutral, 2 positive;
    5 classes: like stars) and 1-5 stars ("1 star" .. "5 stars": 1-2 negative, 3 neutral, 4-5
    positive). Raises UnmappableLabels (a ValueError) for anything else, naming the labels it saw.
    """
    n = len(id2label)
    names = {int(i): str(lab).strip().lower() for i, lab in id2label.items()}
    if sorted(names) != list(range(n)) or n < 2:
        raise UnmappableLabels(f"unexpected id2label {dict(id2label)!r}")
    m = np.zeros((n, 3), np.float32)
    if all(v in _NAMED for v in names.values()):
        for i, v in names.items():
            m[i, _NAMED[v]] = 1.0
    elif all(_STARS.match(v) for v in names.values()):
        for i, v in names.items():
            stars = int(_STARS.match(v).group(1))  # type: ignore[union-attr]
            m[i, 0 if stars <= 2 else 1 if stars == 3 else 2] = 1.0
    elif all(_INDEXED.match(v) for v in names.values()):
        index = {i: int(_INDEXED.match(v).group(1)) for i, v in names.items()}  # type: ignore[union-attr]
        if sorted(index.values()) != list(range(n)) or n not in (2, 3, 5):
            raise UnmappableLabels(f"cannot map {n} indexed labels {sorted(names.values())} to sentiment")
        target = {2: [0, 2], 3: [0, 1, 2], 5: [0, 0, 1, 2, 2]}[n]
        for i, k in index.items():
            m[i, target[k]] = 1.0
    else:
        raise UnmappableLabels(
            f"cannot map labels {sorted(names.values())} to negative/neutral/positive; expected named "
            "labels (negative/neutral/positive, NEG/NEU/POS), LABEL_0..LABEL_n or '1 star'..'5 stars'"
        )
    covered = {int(np.argmax(row)) for row in m}
    if 0 not in covered or 2 not in covered:
        raise UnmappableLabels(f"labels {sorted(names.values())} lack a negative or a positive class")
    return m


# ----------------------------------------------------------------------------- transformers models
class TransformersClassifier:
    """Any Hugging Face text-classification model, loaded once on the first classify() call."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32, max_length: int = 512) -> None:
        self.model_name, self.device = model, device
        self.batch_size, self.max_length = max(1, batch_size), max_length
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._matrix: np.ndarray | None = None

    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            from models.sentiment.encoder import quiet_transformers

            quiet_transformers()
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.model_name)
                model = AutoModelForSequenceClassification.from_pretrained(self.model_name).eval().to(self.device)
            except OSError as exc:  # not a local model dir, not on the hub, no network
                raise ClassifierError(str(exc)) from exc
            self._matrix = label_matrix(model.config.id2label)
            limit = getattr(tokenizer, "model_max_length", self.max_length) or self.max_length
            positions = getattr(model.config, "max_position_embeddings", self.max_length) or self.max_length
            self.max_length = int(min(self.max_length, limit, positions))
            self._tokenizer, self._model = tokenizer, model

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 3) negative/neutral/positive probabilities."""
        import torch

        from models.sentiment.encoder import SEQ_BUCKET, shape_batches

        self._load()
        assert self._matrix is not None
        out = np.zeros((len(texts), 3), np.float32)
        if not texts:
            return out
        with self._lock:  # fast tokenizers raise "Already borrowed" when shared across threads
            ids = self._tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        with torch.inference_mode():
            for chunk in shape_batches([len(x) for x in ids], self.batch_size):
                with self._lock:
                    batch = self._tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt",
                                                pad_to_multiple_of=SEQ_BUCKET)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                logits = self._model(**batch).logits.float()
                probs = torch.softmax(logits, dim=-1).cpu().numpy()
                out[chunk] = probs @ self._matrix
        return out

    def classify(self, texts: list[str]) -> list[SentimentResult]:
        return [make_result(t, p) for t, p in zip(texts, self.probabilities(texts), strict=True)]


# ----------------------------------------------------------------------------- the embedded default
class EmbeddingClassifier:
    """The default: e5 sentence embeddings (models/sentiment/encoder.py) + the trained head (head.py)."""

    def __init__(self, head_path: Path | None = None, encoder_path: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 32, mode: str | None = None) -> None:
        from models.sentiment.encoder import TextEncoder  # torch: imported when the default is built

        if head_path is None:  # the active version: a gated retrain or else the shipped model
            from models.sentiment.active import active_head_path

            head_path = active_head_path()
        self.head = Head.load(head_path)
        try:  # learned from the team's answered / dismissed mentions, if this version has one
            self.complaint_model = complaint_model_in(head_path.parent)
        except ValueError as exc:
            raise ClassifierError(str(exc)) from exc
        # every head this project trains weights the classes alike (v1's too): a uniform prior
        self.train_prior = np.asarray(self.head.meta.get("train_prior", UNIFORM), np.float64)
        mode = mode or str(self.head.meta.get("inference_mode", self.head.meta.get("encoder_mode", "fp32")))
        adapter = self.head.meta.get("adapter")  # {"file": name beside the head, "sha256": ...}
        self.encoder = TextEncoder(
            encoder_path, device=device, batch_size=batch_size, mode=mode,
            adapter=head_path.parent / str(adapter["file"]) if isinstance(adapter, dict) else None,
            adapter_sha256=str(adapter["sha256"]) if isinstance(adapter, dict) else None)

    @property
    def vector_key(self) -> str:
        """Names the space of `embed`'s vectors: the e5 encoder with this head's adapter merged in."""
        return "e5-" + (self.encoder.adapter_sha256 or "base")[:16]

    def embed(self, texts: list[str]) -> np.ndarray:
        """The sentence embeddings the head reads (L2-normalised, (n, dim))."""
        return self.encoder.encode([normalize_text(t) for t in texts])

    def probabilities_and_vectors(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Class posteriors and the sentence embeddings they came from, in one encoder pass."""
        if not texts:
            return np.zeros((0, 3), np.float32), np.zeros((0, 0), np.float32)
        vectors = self.embed(texts)
        return self.head.predict_proba(vectors), vectors

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.probabilities_and_vectors(texts)[0]

    def classify(self, texts: list[str]) -> list[SentimentResult]:
        return [make_result(t, p, self.complaint_model)
                for t, p in zip(texts, self.probabilities(texts), strict=True)]


# ----------------------------------------------------------------------------- the factory
def build_classifier(model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32) -> Classifier:
    """The classifier for `model`.

    "default": the embedded e5 encoder + shipped head (encoder in bf16 on CPUs with native bf16, else
    float32); "default-fp32" / "default-bf16" / "default-int8" / "default-int8-all": the same with
    that encoder mode; "lexicon": the keyword classifier; anything
    else: a Hugging Face hub id or local path.
    """
    if model == DEFAULT_MODEL:
        return EmbeddingClassifier(device=device, batch_size=batch_size)
    if model.startswith(DEFAULT_MODEL + "-") and model.removeprefix(DEFAULT_MODEL + "-") in ENCODER_MODES:
        return EmbeddingClassifier(device=device, batch_size=batch_size, mode=model.removeprefix("default-"))
    if model == "lexicon":
        return LexiconClassifier()
    return TransformersClassifier(model, device=device, batch_size=batch_size)
