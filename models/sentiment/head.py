"""The sentiment head: a small classifier on e5 embeddings, shipped in models/sentiment/assets/."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.sentiment.errors import ClassifierError

HEAD_PATH = Path(__file__).parent / "assets" / "sentiment_head.safetensors"


@dataclass
class Head:
    """A trained head: standardization then either a linear layer or a one-hidden-layer MLP."""

    kind: str  # "linear" | "mlp"
    tensors: dict[str, np.ndarray]
    meta: dict[str, object] = field(default_factory=dict)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.tensors["mean"]) / self.tensors["scale"]
        if self.kind == "mlp":
            z = np.maximum(z @ self.tensors["w1"].T + self.tensors["b1"], 0.0)
            logits = z @ self.tensors["w2"].T + self.tensors["b2"]
        else:
            logits = z @ self.tensors["w"].T + self.tensors["b"]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.tensors.items()}
        save_file(tensors, str(path), metadata={"kind": self.kind})
        meta = dict(self.meta, kind=self.kind)
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        path.with_suffix(".json").write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Head:
        """The head at `path` (+ its .json); ClassifierError if the file is missing."""
        from safetensors.numpy import load_file

        if not path.is_file():
            raise ClassifierError(f"sentiment head {path} not found; run `openear train-classifier`")
        tensors = load_file(str(path))
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        kind = str(meta.get("kind", "mlp" if "w1" in tensors else "linear"))
        return cls(kind, tensors, meta)
