"""Mention embeddings: int8 storage, a lexical fallback embedder, and exact nearest-neighbour search.

Vectors are L2-normalised and stored as int8 (`round(v * 127)`), so a stored vector is 384 bytes for
the default e5 encoder and the dot product of two int8 vectors, divided by 127², approximates their
cosine similarity within about 0.003 on average, 0.02 at worst (384 dimensions). Each vector names
the embedder that made it (`model`): vectors of two embedders never meet in one search.

`HashEmbedder` ("hash-v1") is the fallback where the configured classifier exposes no sentence
embedding (a hub model, the lexicon): hashed word unigrams and bigrams plus character 4-grams, a
lexical similarity that still finds "same words, other order" and misspellings.

`top_k` is exact (brute force): int8 matrix products through torch's `_int_mm` kernel where torch is
loaded and the matrix is large (VNNI/AMX where the CPU has them, AVX2 elsewhere), numpy otherwise.
`two_stage_top_k` scans short `Prefilter` codes first and ranks the best candidates exactly: for
large partitions, where the exact scan is memory-bound. bench/suggest.py measures both at 1M.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Protocol

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from models.orm import MentionVector
from models.sentiment.result import normalize_text

SCALE = 127
HASH_MODEL = "hash-v1"
HASH_DIM = 512
TORCH_MIN_ROWS = 20_000  # below this numpy is as fast and needs no torch
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_DIGITS_RE = re.compile(r"\d")


class Embedder(Protocol):
    """What makes sentence vectors: a stable key naming the vector space, and `embed`."""

    @property
    def vector_key(self) -> str: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def quantize(vectors: np.ndarray) -> np.ndarray:
    """int8 rows of L2-normalised `vectors` (a zero row stays zero)."""
    v = np.asarray(vectors, np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.clip(np.rint(v / norms * SCALE), -SCALE, SCALE).astype(np.int8)


def dequantize(rows: np.ndarray) -> np.ndarray:
    """float32 unit-scale vectors back from int8 rows."""
    return np.asarray(rows, np.float32) / SCALE


def similarity(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine similarity (about, from int8) of one int8 `query` against each int8 row of `matrix`."""
    if len(matrix) == 0:
        return np.zeros(0, np.float32)
    if len(matrix) >= TORCH_MIN_ROWS:
        dots = _torch_dots(query, matrix)
        if dots is not None:
            return dots.astype(np.float32) / (SCALE * SCALE)
    return (matrix.astype(np.int32) @ query.astype(np.int32)).astype(np.float32) / (SCALE * SCALE)


def _torch_dots(query: np.ndarray, matrix: np.ndarray) -> np.ndarray | None:
    """int32 dot products through torch._int_mm (needs a multiple-of-8 column count), or None."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the default classifier
        return None
    if not hasattr(torch, "_int_mm") or matrix.shape[1] % 8:
        return None
    a = torch.from_numpy(np.ascontiguousarray(matrix))
    rows = a.shape[0]
    pad = (-rows) % 8
    if pad:  # _int_mm wants rows in multiples of 8 too
        a = torch.cat([a, torch.zeros((pad, a.shape[1]), dtype=torch.int8)])
    b = torch.from_numpy(np.ascontiguousarray(np.repeat(query[:, None], 8, axis=1)))
    try:
        out = torch._int_mm(a, b)[:rows, 0]
    except RuntimeError:
        return None
    return out.numpy()


def top_k(query: np.ndarray, matrix: np.ndarray, k: int, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and similarities of the `k` rows of `matrix` most similar to `query`, best first.

    `rows`: only the first `rows` rows count (the rest is padding, kept so that the torch kernel's
    multiple-of-8 row count needs no copy of the matrix)."""
    sims = similarity(query, matrix)[:rows]
    if len(sims) == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    k = min(k, len(sims))
    part = np.argpartition(-sims, k - 1)[:k]
    order = part[np.lexsort((part, -sims[part]))]  # ties: lower index (older) first
    return order, sims[order]


class Prefilter:
    """A first pass for large partitions: int8 codes of the vectors' top principal components.

    Scanning `dims` of 384 bytes per row is about 384 / dims times less memory (and int8 work) than
    the exact scan; the `candidates` best rows by code are then ranked exactly on their full int8
    vectors. The basis comes from a sample of the partition (`fit`) and stays fixed, so codes of rows
    added later are comparable. Recall of the exact top 10 is measured in bench/suggest.py.
    """

    def __init__(self, basis: np.ndarray, scale: float) -> None:
        self.basis, self.scale = basis.astype(np.float32), scale

    @classmethod
    def fit(cls, sample: np.ndarray, dims: int = 96) -> Prefilter:
        """The top `dims` principal directions (uncentered: dot products are what is ranked) of int8 rows."""
        x = dequantize(sample)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        basis = vt[:dims].T
        spread = float(np.abs(x @ basis).max()) or 1.0
        return cls(basis, SCALE / spread)

    def codes(self, rows: np.ndarray) -> np.ndarray:
        """int8 codes of int8 rows (in chunks: no float copy of a large matrix at once)."""
        out = np.zeros((len(rows), self.basis.shape[1]), np.int8)
        for start in range(0, len(rows), 100_000):
            chunk = dequantize(rows[start:start + 100_000]) @ self.basis
            out[start:start + len(chunk)] = np.clip(np.rint(chunk * self.scale), -SCALE, SCALE)
        return out


def two_stage_top_k(query: np.ndarray, matrix: np.ndarray, codes: np.ndarray, prefilter: Prefilter, k: int,
                    candidates: int, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`top_k` through `prefilter`: the best `candidates` rows by code, ranked exactly."""
    first, _ = top_k(prefilter.codes(query[None, :])[0], codes, candidates, rows=rows)
    sims = similarity(query, matrix[np.sort(first)])
    order = np.sort(first)
    best = np.lexsort((order, -sims))[:k]
    return order[best], sims[best]


class HashEmbedder:
    """Lexical sentence vectors from hashed features (no model, no download); see the module docstring."""

    vector_key = HASH_MODEL

    def __init__(self, dim: int = HASH_DIM) -> None:
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        clean = _DIGITS_RE.sub("0", normalize_text(text).lower())
        words = _WORD_RE.findall(clean)
        feats = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in pairwise(words)]
        for word in words:
            padded = f" {word} "
            feats += [f"c:{padded[i:i + 4]}" for i in range(max(1, len(padded) - 3))]
        return feats

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                weight = 1.0 if feat[0] != "c" else 0.5
                out[row, h % self.dim] += weight if (h >> 63) & 1 else -weight
        return out


# ----------------------------------------------------------------------------- storage
def store_vectors(session: Session, model: str, items: Iterable[tuple[int, np.ndarray]]) -> int:
    """Store (mention id, float vector) pairs for `model`, replacing the mentions' older vectors."""
    rows = {mention_id: quantize(vector)[0].tobytes() for mention_id, vector in items}
    ids = sorted(rows)
    for start in range(0, len(ids), 500):
        session.execute(delete(MentionVector).where(MentionVector.mention_id.in_(ids[start:start + 500])))
    if rows:
        session.execute(insert(MentionVector), [{"mention_id": i, "model": model, "data": rows[i]} for i in ids])
    return len(rows)


def load_vectors(session: Session, model: str, mention_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored int8 vectors of `mention_ids` made by `model` (missing ones are left out)."""
    found: dict[int, np.ndarray] = {}
    ids = list(mention_ids)
    for start in range(0, len(ids), 500):
        for mention_id, data in session.execute(
            select(MentionVector.mention_id, MentionVector.data).where(
                MentionVector.mention_id.in_(ids[start:start + 500]), MentionVector.model == model)
        ):
            found[mention_id] = np.frombuffer(data, np.int8)
    return found
