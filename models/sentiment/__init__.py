"""Sentiment classification: one interface, three implementations and a factory.

- `EmbeddingClassifier` (the default): the embedded multilingual-e5-small encoder (built offline
  from pip packages, encoder_build.py; run by encoder.py and packed.py) plus the small head
  (head.py) shipped in assets/.
- `TransformersClassifier`: any Hugging Face text-classification model (hub id or local path).
- `LexiconClassifier`: a tiny deterministic keyword classifier (English + German), no model.

Every classifier returns `SentimentResult`s with negative/neutral/positive probabilities (sum 1)
and a `complaint` score (see models/complaint.py). Training the head is training.py. Importing this
package loads neither torch nor transformers; the encoder and the Hugging Face models load lazily.

Modules: base (labels, result type, normalization), errors, head, lexicon, classifier (the model
classifiers and `build_classifier`), encoder_build, encoder, packed, training.
"""

from __future__ import annotations

from models.sentiment.classifier import EmbeddingClassifier, TransformersClassifier, build_classifier, label_matrix
from models.sentiment.errors import ClassifierError, EncoderBuildError, UnmappableLabels
from models.sentiment.head import HEAD_PATH, Head
from models.sentiment.lexicon import LexiconClassifier
from models.sentiment.result import (
    DEFAULT_MODEL,
    ENCODER_MODES,
    LABELS,
    Classifier,
    SentimentResult,
    make_result,
    normalize_text,
)

__all__ = [
    "DEFAULT_MODEL",
    "ENCODER_MODES",
    "HEAD_PATH",
    "LABELS",
    "Classifier",
    "ClassifierError",
    "EmbeddingClassifier",
    "EncoderBuildError",
    "Head",
    "LexiconClassifier",
    "SentimentResult",
    "TransformersClassifier",
    "UnmappableLabels",
    "build_classifier",
    "label_matrix",
    "make_result",
    "normalize_text",
]
