"""Fine-tuning the default model: LoRA on the encoder's top layers and the head, trained jointly.

The lower `frozen_layers` of the encoder never change, so their output for every training text is
computed once and cached (float16, under the data directory, keyed by file hash, encoder and
configuration); each training step then runs only the top layers, forward and backward, on the
cached states, packed without padding (models/sentiment/packed.py). Training is reproducible (one
seed fixes the LoRA initialization, the head, the data order and dropout) and resumable: a
checkpoint is written every `checkpoint_every` steps and a rerun with the same inputs continues
from it. The result is two small files: the adapter (models/sentiment/adapter.py) and the head.

Data (`<dir>` holds one folder per corpus, each with train.tsv and optionally val.tsv): every
`*/train.tsv` is used, except a corpus that a fuller one supersedes (`SUPERSEDED`); `DEV_SLICES`
keeps a fixed share of a corpus out of training as an extra validation set in its natural class
mix; `DETOKENIZED` corpora get their tokenised punctuation undone. Small corpora count more per
text ((largest / size) ** alpha) and every class gets the same total weight, so the model's
training prior is uniform: models/sentiment/priors.py corrects for a deployment's own mix.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.sentiment.encoder_build import QUERY_PREFIX, WEIGHTS_SHA256, data_dir, sha256_file
from models.sentiment.errors import ClassifierError
from models.sentiment.result import normalize_text
from models.sentiment.training import read_tsv

FINETUNE_CONFIG: dict[str, Any] = {
    "frozen_layers": 8, "rank": 8, "alpha": 16.0, "lora_dropout": 0.1, "lr": 1e-3, "head_lr": 2e-3,
    "weight_decay": 0.01, "batch": 32, "epochs": 2.0, "warmup": 0.06, "max_tokens": 128, "hidden": 256,
    "dropout": 0.2, "small_set_alpha": 0.5, "checkpoint_every": 100, "distil": 0.0, "temperature": 2.0,
    "embed_distil": 0.0,
}
"""`distil` > 0 mixes in distillation: the loss is (1 - distil) * cross-entropy on the labels +
distil * T^2 * KL(teacher || student) at temperature T, on every corpus's `soft` posteriors.
`embed_distil` > 0 adds embed_distil * ||s - t||^2 / spread, where s and t are the student's and the
teacher's unit sentence vectors (`soft_vectors`) and spread is the teacher vectors' mean squared distance
from their mean: the error relative to what sets one text apart from another (e5's vectors are
anisotropic, so raw 1 - cos is tiny). It is meant to keep the topic groups and reply suggestions, which
read the same vectors; for an 8-layer student it did not (docs/classifier.md)."""
SUPERSEDED = {"sb10k_de": "sb10k_de_full"}
"""corpus -> the fuller corpus that contains it: the smaller one is not trained on when both exist."""
DEV_SLICES = {"sb10k_de_full": 0.15}
"""corpus -> share of its train.tsv held out (by text hash) as a natural-mix validation set."""
DETOKENIZED = {"potts_de"}
"""corpora whose texts are tokenised (`nicht , wir`): spaces before punctuation are removed."""

Progress = Callable[[str, int, int, dict[str, float]], None]
"""progress(phase, done, total, info): phase "cache" or "train"."""


def detokenize(text: str) -> str:
    text = re.sub(r"\s+([,.!?;:%)\]}])", r"\1", text)
    return re.sub(r"([(\[{])\s+", r"\1", text)


def in_dev_slice(text: str, share: float) -> bool:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32 < share


@dataclass
class Corpus:
    name: str
    path: Path
    texts: list[str]
    labels: np.ndarray
    weight: float = 1.0
    soft: np.ndarray | None = None
    """a teacher model's posteriors (n, 3) for distillation, or None."""
    soft_vectors: np.ndarray | None = None
    """the teacher's unit sentence vectors (n, dim) for `embed_distil`, or None."""


def load_corpora(data: Path) -> tuple[list[Corpus], list[Corpus]]:
    """(training corpora, validation sets) under `data` (see the module docstring)."""
    found = {p.parent.name: p for p in sorted(data.glob("*/train.tsv"))}
    train: list[Corpus] = []
    val: list[Corpus] = []
    for name, path in found.items():
        if SUPERSEDED.get(name) in found:
            continue
        texts, labels = read_tsv(path)
        if name in DETOKENIZED:
            texts = [detokenize(t) for t in texts]
        share = DEV_SLICES.get(name)
        if share:
            dev = [in_dev_slice(t, share) for t in texts]
            val.append(Corpus(f"{name}/dev-slice", path, [t for t, d in zip(texts, dev, strict=True) if d],
                              np.asarray([y for y, d in zip(labels, dev, strict=True) if d], np.int64)))
            texts = [t for t, d in zip(texts, dev, strict=True) if not d]
            labels = [y for y, d in zip(labels, dev, strict=True) if not d]
        train.append(Corpus(name, path, texts, np.asarray(labels, np.int64)))
    for path in sorted(data.glob("*/val.tsv")):
        texts, labels = read_tsv(path)
        val.insert(0, Corpus(f"{path.parent.name}/val", path, texts, np.asarray(labels, np.int64)))
    if not train:
        raise ClassifierError(f"no */train.tsv under {data} (expected e.g. {data}/tweeteval/train.tsv)")
    largest = max(len(c.texts) for c in train)
    for c in train:
        c.weight = (largest / max(len(c.texts), 1)) ** float(FINETUNE_CONFIG["small_set_alpha"])
    return train, val


def sample_weights(corpora: Sequence[Corpus]) -> np.ndarray:
    """Per-text weights: the corpus weight, rescaled so that each class has the same total."""
    y = np.concatenate([c.labels for c in corpora])
    w = np.concatenate([np.full(len(c.labels), c.weight) for c in corpora])
    for k in range(3):
        m = y == k
        if m.any():
            w[m] *= (w.sum() / 3) / w[m].sum()
    return (w / w.mean()).astype(np.float32)


# ----------------------------------------------------------------------------- the frozen part's cache
class LowerStates:
    """The frozen lower layers' output per text (float16 rows), computed once and kept on disk."""

    def __init__(self, states: np.ndarray, offsets: np.ndarray) -> None:
        self.states, self.offsets = states, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self, i: int) -> np.ndarray:
        return self.states[self.offsets[i]:self.offsets[i + 1]]


def tokenize(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    prefixed = [QUERY_PREFIX + normalize_text(t) for t in texts]
    return [list(x) for x in tokenizer(prefixed, truncation=True, max_length=max_tokens)["input_ids"]]


def lower_states(corpus: Corpus, model: Any, tokenizer: Any, frozen: int, max_tokens: int,
                 progress: Progress | None = None, batch: int = 64, salt: str = "") -> LowerStates:
    """The cached lower-layer states of `corpus` (computed and saved on first use); `salt` names
    anything else the lower layers depend on (an adapter merged in before)."""
    import torch

    from models.sentiment.packed import PackedBert

    key = hashlib.sha256("\n".join([WEIGHTS_SHA256, str(frozen), str(max_tokens), "norm1", type(tokenizer).__name__,
                                     *corpus.texts]).encode()
                         + salt.encode())
    cache = data_dir() / "finetune-cache" / f"{key.hexdigest()[:24]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return LowerStates(z["states"], z["offsets"])
    ids = tokenize(tokenizer, corpus.texts, max_tokens)
    offsets = np.zeros(len(ids) + 1, np.int64)
    offsets[1:] = np.cumsum([len(x) for x in ids])
    states = np.zeros((int(offsets[-1]), model.config.hidden_size), np.float16)
    packed = PackedBert(model)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            lengths = [len(ids[i]) for i in chunk]
            packing = packed.packing(lengths, sum(lengths))
            x = packed.embed([ids[i] for i in chunk], packing)
            for layer in model.encoder.layer[:frozen]:
                x = packed.layer(layer, x, packing)
            rows = x.float().numpy().astype(np.float16)
            at = 0
            for i, n in zip(chunk, lengths, strict=True):
                states[offsets[i]:offsets[i] + n] = rows[at:at + n]
                at += n
            if progress:
                progress("cache", min(start + batch, len(order)), len(order), {"corpus": 0.0})
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, states=states, offsets=offsets)
    tmp.replace(cache)
    return LowerStates(states, offsets)


# ----------------------------------------------------------------------------- training
def _head_net(dim: int, hidden: int, dropout: float) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(dim, hidden), torch.nn.ReLU(),
                               torch.nn.Dropout(dropout), torch.nn.Linear(hidden, 3))


def _teacher_targets(corpora: Sequence[Corpus], temperature: float) -> tuple[Any, str]:
    """The teacher's posteriors softened by `temperature`, and a key naming them."""
    import torch

    missing = [c.name for c in corpora if c.soft is None or len(c.soft) != len(c.texts)]
    if missing:
        raise ClassifierError(f"distillation needs a teacher's posteriors for every corpus; missing: {missing}")
    soft = np.concatenate([np.asarray(c.soft, np.float64) for c in corpora])
    logits = np.log(np.clip(soft, 1e-12, None)) / temperature
    tempered = np.exp(logits - logits.max(1, keepdims=True))
    tempered /= tempered.sum(1, keepdims=True)
    key = "-distil-" + hashlib.sha256(soft.astype(np.float32).tobytes()).hexdigest()[:8]
    return torch.from_numpy(tempered.astype(np.float32)), key


def _teacher_vectors(corpora: Sequence[Corpus]) -> tuple[Any, float, str]:
    """The teacher's sentence vectors, their spread (mean squared distance from their mean), a key."""
    import torch

    missing = [c.name for c in corpora if c.soft_vectors is None or len(c.soft_vectors) != len(c.texts)]
    if missing:
        raise ClassifierError(f"embedding distillation needs the teacher's vectors for every corpus; "
                              f"missing: {missing}")
    # an empty corpus's vectors are (0, 0), with no width to join on (fine_tune refuses all-empty input)
    vectors = np.concatenate([np.asarray(c.soft_vectors, np.float32) for c in corpora if len(c.texts)])
    spread = float(((vectors - vectors.mean(0)) ** 2).sum(1).mean())
    key = "-vec-" + hashlib.sha256(vectors.tobytes()).hexdigest()[:8]
    return torch.from_numpy(vectors), max(spread, 1e-6), key


def run_key(corpora: Sequence[Corpus], cfg: dict[str, Any], seed: int) -> str:
    parts = [WEIGHTS_SHA256, str(seed), repr(sorted(cfg.items()))]
    parts += [f"{c.name}:{sha256_file(c.path)}:{len(c.texts)}:{c.weight:.6f}" for c in corpora]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass
class FineTuned:
    adapter: dict[str, Any]
    head: dict[str, np.ndarray]
    meta: dict[str, Any]


def fine_tune(corpora: Sequence[Corpus], seed: int = 0, config: dict[str, Any] | None = None,
              progress: Progress | None = None, resume: bool = True,
              init: tuple[Path, Path] | None = None) -> FineTuned:
    """Train LoRA + head on `corpora`; `init` (adapter, head) continues from a trained pair."""
    import torch
    from transformers import BertModel

    from models.sentiment.adapter import adapter_tensors, attach_lora, merge_adapter
    from models.sentiment.encoder import quiet_transformers
    from models.sentiment.encoder_build import ensure_encoder
    from models.sentiment.packed import PackedBert
    from models.sentiment.tokenizer import load_tokenizer

    if not any(len(c.texts) for c in corpora):
        raise ClassifierError(f"nothing to train on: every corpus is empty ({[c.name for c in corpora]})")
    cfg = dict(FINETUNE_CONFIG, **(config or {}))
    frozen, max_tokens = int(cfg["frozen_layers"]), int(cfg["max_tokens"])
    quiet_transformers()
    path = ensure_encoder()
    tokenizer = load_tokenizer(path)
    model = BertModel.from_pretrained(str(path), add_pooling_layer=False, dtype=torch.float32).eval()
    if cfg.get("layers"):  # a shallower student: only the lower `layers` layers (frozen ones included)
        from models.sentiment.adapter import truncate_layers

        truncate_layers(model, int(cfg["layers"]))
        if frozen >= int(cfg["layers"]):
            raise ClassifierError(f"frozen_layers {frozen} leaves nothing to train in {cfg['layers']} layers")
    salt = ""
    if init is not None:  # the starting point; its adapter must cover exactly the layers trained now
        from models.sentiment.adapter import load_adapter

        init_meta = load_adapter(init[0])[1]
        started_at = init_meta.get("frozen_layers", frozen)
        if int(started_at) != frozen:
            raise ClassifierError(f"the active model's adapter starts at layer {started_at}, this run at {frozen}")
        merge_adapter(model, init[0])  # truncates the model to the adapter's `layers`, if it has them
        if init_meta.get("layers"):
            cfg["layers"] = int(init_meta["layers"])
        salt = sha256_file(init[0])
    states = [lower_states(c, model, tokenizer, frozen, max_tokens, progress, salt=salt) for c in corpora]
    index = [(ci, i) for ci, s in enumerate(states) for i in range(len(s))]
    labels = torch.from_numpy(np.concatenate([c.labels for c in corpora]))
    weights = torch.from_numpy(sample_weights(corpora))
    distil, temperature = float(cfg["distil"]), float(cfg["temperature"])
    teacher, teacher_key = _teacher_targets(corpora, temperature) if distil > 0 else (None, "")
    embed_distil = float(cfg["embed_distil"])
    target_vectors, spread, vectors_key = _teacher_vectors(corpora) if embed_distil > 0 else (None, 1.0, "")

    torch.manual_seed(seed)
    trainable = attach_lora(model, frozen, int(cfg["rank"]), float(cfg["alpha"]), float(cfg["lora_dropout"]),
                            seed)
    packed = PackedBert(model)
    top = model.encoder.layer[frozen:]

    def forward(rows: list[int]) -> Any:
        chunks = [states[index[r][0]].rows(index[r][1]) for r in rows]
        lengths = [len(c) for c in chunks]
        packing = packed.packing(lengths, sum(lengths))
        x = torch.from_numpy(np.concatenate(chunks)).float()
        for layer in top:
            x = packed.layer(layer, x, packing)
        return torch.nn.functional.normalize(packed.pool(x, packing), dim=-1)

    dim = int(model.config.hidden_size)
    net = _head_net(dim, int(cfg["hidden"]), float(cfg["dropout"]))
    if init is not None:
        from models.sentiment.head import Head

        start_head = Head.load(init[1])
        mean, scale = (torch.from_numpy(start_head.tensors[k]) for k in ("mean", "scale"))
        w1 = torch.from_numpy(start_head.tensors["w1"])
        net[1] = torch.nn.Linear(dim, w1.shape[0])
        with torch.no_grad():
            net[1].weight.copy_(w1)
            net[1].bias.copy_(torch.from_numpy(start_head.tensors["b1"]))
            net[4] = torch.nn.Linear(w1.shape[0], 3)
            net[4].weight.copy_(torch.from_numpy(start_head.tensors["w2"]))
            net[4].bias.copy_(torch.from_numpy(start_head.tensors["b2"]))
    else:  # standardize by the untrained model's embeddings of a fixed sample
        sample = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))[:2048].tolist()
        with torch.no_grad():
            model.eval()
            e = torch.cat([forward(sample[i:i + 64]) for i in range(0, len(sample), 64)])
        mean, scale = e.mean(0), e.std(0) + 1e-6

    batch = int(cfg["batch"])
    steps = max(1, round(float(cfg["epochs"]) * len(index) / batch))
    order = torch.cat([torch.randperm(len(index), generator=torch.Generator().manual_seed(seed + 1 + k))
                       for k in range(int(np.ceil(float(cfg["epochs"]))) + 1)])
    opt = torch.optim.AdamW([{"params": trainable, "lr": float(cfg["lr"])},
                             {"params": list(net.parameters()), "lr": float(cfg["head_lr"])}],
                            weight_decay=float(cfg["weight_decay"]))
    warm = max(1, int(float(cfg["warmup"]) * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm)) if s >= warm
        else (s + 1) / warm)
    key = run_key(corpora, cfg, seed) + ("-init" if init else "") + teacher_key + vectors_key
    checkpoint = data_dir() / "finetune-runs" / key / "checkpoint.pt"
    step = 0
    if resume and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        for p, value in zip(trainable, saved["trainable"], strict=True):
            p.data.copy_(value)
        net.load_state_dict(saved["head"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        torch.set_rng_state(saved["rng"])
        step = int(saved["step"])
    model.train()
    net.train()
    loss_avg, began = 0.0, time.perf_counter()
    while step < steps:
        rows = order[step * batch:(step + 1) * batch].tolist()
        vectors = forward(rows)
        logits = net((vectors - mean) / scale)
        target, w = labels[rows], weights[rows]
        per_text = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        if teacher is not None:
            soft = teacher[rows]
            kl = (soft * (soft.clamp_min(1e-12).log() - torch.log_softmax(logits / temperature, -1))).sum(-1)
            per_text = (1 - distil) * per_text + distil * temperature ** 2 * kl
        if target_vectors is not None:
            per_text = per_text + embed_distil * ((vectors - target_vectors[rows]) ** 2).sum(-1) / spread
        loss = (per_text * w).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable + list(net.parameters()), 1.0)
        opt.step()
        sched.step()
        step += 1
        value = float(loss.detach())
        loss_avg = 0.98 * loss_avg + 0.02 * value if step > 1 else value
        if step % int(cfg["checkpoint_every"]) == 0 or step == steps:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"trainable": [p.detach().clone() for p in trainable], "head": net.state_dict(),
                        "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                        "step": step}, tmp)
            tmp.replace(checkpoint)
        if progress:
            progress("train", step, steps, {"loss": loss_avg, "texts_per_s": step * batch / max(
                time.perf_counter() - began, 1e-9)})
    lin1, lin2 = net[1], net[4]
    head = {"mean": mean.numpy().astype(np.float32), "scale": scale.numpy().astype(np.float32),
            "w1": lin1.weight.detach().numpy().copy(), "b1": lin1.bias.detach().numpy().copy(),
            "w2": lin2.weight.detach().numpy().copy(), "b2": lin2.bias.detach().numpy().copy()}
    meta = {"config": cfg, "seed": seed, "steps": steps, "run": key, "init": bool(init),
            "distilled": bool(teacher_key), "embeddings_distilled": bool(vectors_key),
            "train_files": {c.name: {"sha256": sha256_file(c.path), "n": len(c.texts), "weight": c.weight,
                                     "mix": np.bincount(c.labels, minlength=3).tolist()} for c in corpora}}
    adapter = adapter_tensors(model, frozen)
    meta["adapter_rank"], meta["adapter_alpha"] = int(cfg["rank"]), float(cfg["alpha"])
    if init is not None:  # the deltas add up: stack the starting adapter's and the new ones (rank r + r)
        from models.sentiment.adapter import load_adapter

        before, before_meta = load_adapter(init[0])
        ratio = (float(before_meta["alpha"]) / int(before_meta["rank"])) / (float(cfg["alpha"]) / int(cfg["rank"]))
        for name in [n for n in adapter if n.endswith(".lora_a")]:
            b_name = name.removesuffix(".lora_a") + ".lora_b"
            adapter[name] = torch.cat([before[name] * ratio, adapter[name]])
            adapter[b_name] = torch.cat([before[b_name], adapter[b_name]], dim=1)
        rank = int(before_meta["rank"]) + int(cfg["rank"])
        meta["adapter_rank"], meta["adapter_alpha"] = rank, float(cfg["alpha"]) / int(cfg["rank"]) * rank
    return FineTuned(adapter, head, meta)
