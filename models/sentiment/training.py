"""Training the sentiment head on frozen e5 embeddings (reproducible: fixed seed, cached embeddings).

Data: TSV files with a header and the columns `text` and `label` (negative/neutral/positive). The
English and German TweetEval/SB-10k files are expected as `<dir>/tweeteval/{train,val}.tsv` and
`<dir>/sb10k_de/{train,val}.tsv`; any extra TSV (for example a team's corrected labels exported from
the web app) can be added to the training set. Embeddings are cached under the data directory, keyed
by the file's sha256 and the encoder, so retraining takes seconds once they exist.
"""

from __future__ import annotations

import csv
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.sentiment.encoder import TextEncoder, resolve_mode
from models.sentiment.encoder_build import WEIGHTS_SHA256, data_dir, sha256_file
from models.sentiment.errors import ClassifierError
from models.sentiment.head import Head
from models.sentiment.result import LABELS, normalize_text

# bump when normalize_text or the forward changes: it invalidates cached embeddings
NORMALIZATION = "norm1-packed-f32attn-sp"  # -sp: sentencepiece tokenizes (models/sentiment/tokenizer.py)

csv.field_size_limit(sys.maxsize)


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    """Texts and label indices from a `text<TAB>label` file with a header."""
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not reader.fieldnames or "text" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise ValueError(f"{path}: expected a header with 'text' and 'label' columns")
        for n, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip().lower()
            if label not in LABELS:
                raise ValueError(f"{path}:{n}: label {row['label']!r} is not one of {', '.join(LABELS)}")
            texts.append(row["text"] or "")
            labels.append(LABELS.index(label))
    return texts, labels


def embedding_cache_dir() -> Path:
    return data_dir() / "embeddings"


def cached_embeddings(path: Path, encoder: TextEncoder, encoder_key: str,
                      log: Callable[[str], None] = lambda _m: None) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, labels) for a TSV file, computed once and cached by file hash + encoder key."""
    key = hashlib.sha256(f"{sha256_file(path)}:{encoder_key}:{NORMALIZATION}".encode()).hexdigest()[:24]
    cache = embedding_cache_dir() / f"{key}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return z["x"], z["y"]
    texts, labels = read_tsv(path)
    texts = [normalize_text(t) for t in texts]
    log(f"embedding {len(texts)} texts from {path} (cached afterwards in {cache.parent})")
    start = time.perf_counter()
    x = encoder.encode(texts)
    log(f"  {len(texts) / max(time.perf_counter() - start, 1e-9):.0f} texts/s")
    y = np.asarray(labels, np.int64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(cache)
    return x, y


# ----------------------------------------------------------------------------- metrics
def scores(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """Accuracy, macro recall, macro F1, per-class recall and the confusion matrix (rows = truth)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    cm = np.zeros((3, 3), np.int64)
    np.add.at(cm, (t, p), 1)
    support, predicted, correct = cm.sum(1), cm.sum(0), np.diag(cm)
    recall = np.divide(correct, support, out=np.zeros(3), where=support > 0)
    precision = np.divide(correct, predicted, out=np.zeros(3), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(3), where=denom > 0)
    present = support > 0
    return {
        "n": int(cm.sum()),
        "accuracy": float(correct.sum() / max(cm.sum(), 1)),
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "recall": {lab: float(r) for lab, r in zip(LABELS, recall, strict=True)},
        "f1": {lab: float(f) for lab, f in zip(LABELS, f1, strict=True)},
        "confusion": cm.tolist(),
    }


# ----------------------------------------------------------------------------- heads
def _standardize(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w)) + 1e-6
    return mean.astype(np.float32), scale.astype(np.float32)


def class_balanced_weights(y: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per-sample weights so that each class has the same total weight (`base` kept within a class)."""
    w = base.astype(np.float64).copy()
    for c in range(3):
        m = y == c
        if m.any():
            w[m] *= (w.sum() / 3) / w[m].sum()
    return w / w.mean()


def train_linear(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, seed: int) -> Head:
    """Multinomial logistic regression (lbfgs) on standardized embeddings."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardize(x, w)
    lr = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    lr.fit((x - mean) / scale, y, sample_weight=w)
    return Head("linear", {"mean": mean, "scale": scale, "w": lr.coef_.astype(np.float32),
                           "b": lr.intercept_.astype(np.float32)}, {"C": c})


def train_mlp(x: np.ndarray, y: np.ndarray, w: np.ndarray, hidden: int, seed: int, epochs: int = 30,
              weight_decay: float = 1e-2, dropout: float = 0.3) -> Head:
    """A 384-hidden-3 ReLU MLP with dropout, weighted cross-entropy and AdamW (deterministic)."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    mean, scale = _standardize(x, w)
    xt = torch.from_numpy((x - mean) / scale).float()
    yt, wt = torch.from_numpy(y).long(), torch.from_numpy(w).float()
    net = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Dropout(dropout), torch.nn.Linear(hidden, 3))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=weight_decay)
    steps = epochs * ((len(xt) + 255) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 256):
            idx = perm[i:i + 256]
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx], reduction="none")
            loss = (loss * wt[idx]).sum() / wt[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    lin1, lin2 = net[1], net[4]
    assert isinstance(lin1, torch.nn.Linear) and isinstance(lin2, torch.nn.Linear)
    t = {"mean": mean, "scale": scale, "w1": lin1.weight.detach().numpy(), "b1": lin1.bias.detach().numpy(),
         "w2": lin2.weight.detach().numpy(), "b2": lin2.bias.detach().numpy()}
    return Head("mlp", t, {"hidden": hidden, "epochs": epochs, "weight_decay": weight_decay,
                           "dropout": dropout})


def merge_mlps(members: Sequence[Head]) -> Head:
    """One wide MLP whose logits are the mean of the members' logits (an exact ensemble)."""
    k = len(members)
    first = members[0]
    t = {
        "mean": first.tensors["mean"], "scale": first.tensors["scale"],
        "w1": np.concatenate([m.tensors["w1"] for m in members]),
        "b1": np.concatenate([m.tensors["b1"] for m in members]),
        "w2": np.concatenate([m.tensors["w2"] for m in members], axis=1) / k,
        "b2": np.mean([m.tensors["b2"] for m in members], axis=0),
    }
    return Head("mlp", t, dict(first.meta, members=k))


# ----------------------------------------------------------------------------- the train command
# Chosen by measurement on the validation files (docs/classifier.md); the command reproduces the head.
HEAD_CONFIG: dict[str, object] = {
    "kind": "mlp", "hidden": 256, "epochs": 10, "dropout": 0.3, "members": 7, "C": 1.0,
    "small_set_alpha": 0.7, "extra_weight": 3.0, "encoder_mode": "int8-all", "inference_mode": "auto",
}
# encoder_mode: the embeddings the head is trained on. All-int8 embeddings are slightly noisy, which
# regularizes: the int8-trained head scored better on fp32 validation embeddings than a head trained
# on fp32 embeddings (measured with per-tensor int8, before int8-all became per-channel).
# inference_mode: what the classifier runs by default ("auto": bf16 on CPUs with native bf16, else
# int8 with the feed-forward down-projections float; encoder.resolve_mode).


def dataset_files(data: Path, split: str) -> list[Path]:
    """`<data>/<split>.tsv` and `<data>/*/<split>.tsv`, sorted (e.g. tweeteval/train.tsv)."""
    found = sorted(data.glob(f"*/{split}.tsv"))
    return ([data / f"{split}.tsv"] if (data / f"{split}.tsv").is_file() else []) + found


def dataset_weights(sizes: Sequence[int], alpha: float) -> list[float]:
    """Per-sample weight for each training file: (largest / size) ** alpha, so small sets count more."""
    largest = max(sizes) if sizes else 1
    return [(largest / max(n, 1)) ** alpha for n in sizes]


def train_from_dir(data: Path, extra: Sequence[Path] = (), seed: int = 0, batch_size: int = 64,
                   config: dict[str, object] | None = None,
                   log: Callable[[str], None] = lambda _m: None) -> Head:
    """Train the head on `data`'s train files (+ `extra` TSVs), validate on its val files."""
    cfg = dict(HEAD_CONFIG, **(config or {}))
    mode = str(cfg["encoder_mode"])
    encoder = TextEncoder(mode=mode, batch_size=batch_size)
    key = f"{WEIGHTS_SHA256[:12]}:{mode}{encoder.activation_bits or ''}:{encoder.max_length}:{encoder.prefix}"
    train_files = dataset_files(data, "train")
    if not train_files and not extra:
        raise ClassifierError(f"no train.tsv under {data} (expected e.g. {data}/tweeteval/train.tsv)")
    parts = [cached_embeddings(p, encoder, key, log) for p in train_files]
    weights = dataset_weights([len(y) for _, y in parts], float(cfg["small_set_alpha"]))  # type: ignore[arg-type]
    extra_parts = [cached_embeddings(p, encoder, key, log) for p in extra]
    xs = [x for x, _ in parts + extra_parts]
    ys = [y for _, y in parts + extra_parts]
    base = [np.full(len(y), w) for (_, y), w in zip(parts, weights, strict=True)]
    base += [np.full(len(y), float(cfg["extra_weight"])) for _, y in extra_parts]  # type: ignore[arg-type]
    x, y, w0 = np.concatenate(xs), np.concatenate(ys), np.concatenate(base)
    w = class_balanced_weights(y, w0)
    log(f"training a {cfg['kind']} head on {len(y)} texts (seed {seed})")
    if cfg["kind"] == "mlp":
        members = [train_mlp(x, y, w, int(str(cfg["hidden"])), seed + k, epochs=int(str(cfg["epochs"])),
                             dropout=float(str(cfg["dropout"]))) for k in range(int(str(cfg["members"])))]
        head = merge_mlps(members)
    else:
        head = train_linear(x, y, w, float(cfg["C"]), seed)  # type: ignore[arg-type]
    validation: dict[str, dict[str, Any]] = {}
    inference_mode = resolve_mode(str(cfg["inference_mode"]))
    for val_mode in dict.fromkeys([inference_mode, mode]):
        val_encoder = encoder if val_mode == mode else TextEncoder(mode=val_mode, batch_size=batch_size)
        val_key = (f"{WEIGHTS_SHA256[:12]}:{val_mode}{val_encoder.activation_bits or ''}:{encoder.max_length}:"
                   f"{encoder.prefix}")
        for path in dataset_files(data, "val"):
            vx, vy = cached_embeddings(path, val_encoder, val_key, log)
            suffix = "" if val_mode == inference_mode else f" ({val_mode} encoder)"
            name = f"{path.parent.name}/{path.name}{suffix}"
            validation[name] = scores(vy, head.predict_proba(vx).argmax(1))
    head.meta.update({
        "labels": list(LABELS), "encoder": f"multilingual-e5-small-q4 ({WEIGHTS_SHA256[:12]})",
        "encoder_mode": mode, "inference_mode": cfg["inference_mode"], "validated_with": inference_mode,
        "seed": seed, "config": cfg,
        "validation": validation,
        "train_files": {f"{p.parent.name}/{p.name}": {"sha256": sha256_file(p), "n": len(yy), "weight": ww}
                        for p, (_, yy), ww in zip(train_files, parts, weights, strict=True)},
        "extra_files": {p.name: {"sha256": sha256_file(p), "n": len(yy)}
                        for p, (_, yy) in zip(extra, extra_parts, strict=True)},
    })
    return head
