"""Running the embedded default encoder: e5 sentence embeddings from a transformers model dir.

The model dir is built by models/sentiment/encoder_build.py; the forward is models/sentiment/packed.py.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.sentiment.encoder_build import QUERY_PREFIX, bf16_copy, ensure_encoder
from models.sentiment.errors import ClassifierError
from models.sentiment.packed import PackedBert
from models.sentiment.result import ENCODER_MODES


def quiet_transformers() -> None:
    """Silence transformers' load reports and progress bars (they go to stderr of CLI users)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


MODES = ENCODER_MODES


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), where bf16 is fast.

    Elsewhere torch emulates bf16 matrix products, which is slower than float32.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_mode(mode: str, device: str = "cpu") -> str:
    """The concrete mode for `mode` on `device`.

    "auto" is bf16 on CPUs with native bf16 (embeddings within cosine 0.9999 of fp32) and int8 on
    the others (1.2-1.5x fp32 there, validation scores within 0.01 of it; docs/classifier.md).
    """
    if mode not in MODES:
        raise ValueError(f"unknown encoder mode {mode!r}; expected one of {', '.join(MODES)}")
    if device != "cpu":
        return "fp32"
    if mode == "auto":
        return "bf16" if native_bf16() else "int8"
    return mode


# The Linear layers each int8 mode keeps in float32, by their role in a BERT layer (linear_role).
# "int8": the feed-forward down-projection stays float: it reads GELU outputs whose few outlier
# channels per-tensor int8 activations crush (validation, one-epoch v2: German macro F1 0.714 fp32, 0.673 with
# every Linear int8, 0.708 with this one kept float; English macro recall 0.717 / 0.702 / 0.711).
# "int8-all": every Linear int8, the fastest and the least accurate.
INT8_FLOAT_ROLES: dict[str, frozenset[str]] = {"int8": frozenset({"ffn_down"}), "int8-all": frozenset()}

_ROLES = {("self", "query"): "query", ("self", "key"): "key", ("self", "value"): "value",
          ("output", "dense"): "ffn_down", ("intermediate", "dense"): "ffn_up"}


def linear_role(name: str) -> str:
    """The role of the Linear called `name` in a BertModel: query, key, value, attn_out, ffn_up, ffn_down."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[-3:] == ["attention", "output", "dense"]:
        return "attn_out"
    return _ROLES.get(tuple(parts[-2:]), "other")  # type: ignore[arg-type]


def fbgemm_vnni() -> bool:
    """Whether fbgemm's int8 kernels multiply with AVX512-VNNI here, where 8-bit activations cannot
    overflow. fbgemm reads the CPU itself (the ISA variables do not limit it), as does this check."""
    try:
        return bool(torch.cpu._is_vnni_supported())
    except (AttributeError, RuntimeError):
        return False


def int8_activation_bits() -> int:
    """The width of int8 modes' activations here: 8 where fbgemm runs VNNI kernels, else 7 (quantize_int8)."""
    return 8 if fbgemm_vnni() else 7


@functools.cache  # one class, however many encoders load
def _full_range_linear() -> type[torch.nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear

    class FullRangeDynamicLinear(Linear):
        """torch's dynamic int8 Linear with 8-bit activations. torch always passes reduce_range=True
        (7 bits), which keeps AVX2's vpmaddubsw from saturating; VNNI's vpdpbusd cannot saturate."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            packed = self._packed_params._packed_params
            return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)

    return FullRangeDynamicLinear


def quantize_int8(model: torch.nn.Module, mode: str, full_range: bool) -> torch.nn.Module:
    """torch dynamic int8 quantization (per output channel weights) of the Linear layers, in place (CPU).

    The layers whose role is in INT8_FLOAT_ROLES[mode] stay float32. Activations are quantized to
    8 bits if `full_range` (TextEncoder passes fbgemm_vnni()), else to 7: on 4,917
    English and German tweets 8 bits halve the labels that differ from float32 (docs/classifier.md).
    """
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    keep = INT8_FLOAT_ROLES[mode]
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and linear_role(n) not in keep]
    mapping = {torch.nn.Linear: _full_range_linear()} if full_range else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, dict.fromkeys(names, per_channel_dynamic_qconfig), dtype=torch.qint8,
                                mapping=mapping, inplace=True)


SEQ_BUCKET = 8  # batch widths are rounded up to a multiple of this many tokens


def shape_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in length order, cut into batches of `batch_size` or a power of two below it.

    Few distinct batch sizes (with widths rounded to SEQ_BUCKET) mean few distinct tensor shapes, so
    a daemon classifying for months keeps the allocator's and oneDNN's per-shape caches bounded
    instead of growing with every new (rows, tokens) pair; sorting keeps padding small.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    start = 0
    while start < len(order):
        left = len(order) - start
        size = batch_size if left >= batch_size else 1 << (left.bit_length() - 1)
        out.append(order[start:start + size])
        start += size
    return out


class TextEncoder:
    """Mean-pooled, L2-normalized e5 sentence embeddings from a transformers model dir.

    Loads lazily on first use (thread-safe); sorts each call's texts by length so that batches
    carry little padding; truncates to `max_length` tokens; runs the padding-free forward of
    models/sentiment/packed.py unless `packed=False` (the plain transformers forward on padded batches).
    `mode` (CPU only; GPUs always run float32): "auto" (bf16 where the CPU has native bf16, else
    int8), "fp32", "bf16" (weights and activations in bfloat16, pooling in float32: embeddings
    within cosine 0.9999 of fp32, 2-3x faster on CPUs with AVX512-BF16/AMX, slower elsewhere),
    "int8" (dynamic int8 Linear layers except the feed-forward down-projections: within 0.01 of
    fp32 on validation) or "int8-all" (every Linear int8: faster, less accurate); see
    INT8_FLOAT_ROLES. `adapter`: a fine-tuned adapter (models/sentiment/adapter.py) merged in at load.
    """

    def __init__(self, path: str | Path | None = None, device: str = "cpu", batch_size: int = 32,
                 max_length: int = 512, mode: str = "fp32", prefix: str = QUERY_PREFIX,
                 packed: bool = True, adapter: Path | None = None, adapter_sha256: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.adapter, self.adapter_sha256 = adapter, adapter_sha256
        self.device, self.batch_size, self.max_length = device, batch_size, max_length
        self.mode = resolve_mode(mode, device)
        self.activation_bits = int8_activation_bits() if self.mode.startswith("int8") else None
        self.prefix = prefix
        self.packed = packed
        self._packed: Any = None
        self._lock = threading.Lock()
        self._model: torch.nn.Module | None = None
        self._tokenizer: Any = None
        self._dim = 0

    @property
    def dim(self) -> int:
        self._load()
        return self._dim

    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from transformers import BertModel

            from models.sentiment.tokenizer import load_tokenizer

            quiet_transformers()
            try:
                path = self.path or ensure_encoder()
                if self.mode == "bf16":
                    path = bf16_copy(path)
                tokenizer = load_tokenizer(path)
                dtype = torch.bfloat16 if self.mode == "bf16" else torch.float32  # bf16: no fp32 copy in memory
                model = BertModel.from_pretrained(str(path), add_pooling_layer=False, dtype=dtype).eval()
            except OSError as exc:  # a missing or unreadable model dir, an unwritable data dir
                raise ClassifierError(str(exc)) from exc
            if self.adapter is not None:  # before int8 quantization: the deltas go into float weights
                from models.sentiment.adapter import merge_adapter

                merge_adapter(model, self.adapter, self.adapter_sha256)
            if self.mode in ("fp32", "bf16"):
                model = model.to(self.device)
            else:
                model = quantize_int8(model, self.mode, full_range=self.activation_bits == 8)
            self._dim = int(getattr(model, "config").hidden_size)  # noqa: B009 (typed as Module)
            self._tokenizer = tokenizer
            self._packed = PackedBert(model)
            self._model = model

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings (len(texts), dim) float32, in input order."""
        self._load()
        assert self._model is not None
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        prefixed = [self.prefix + t for t in texts]
        with self._lock:  # fast tokenizers raise "Already borrowed" when shared across threads
            ids = self._tokenizer(prefixed, truncation=True, max_length=self.max_length)["input_ids"]
        out = np.zeros((len(texts), self.dim), np.float32)
        for chunk in shape_batches([len(x) for x in ids], self.batch_size):
            if self.packed:
                pooled = self._packed.mean_pooled([ids[i] for i in chunk])
            else:
                pooled = self._padded_mean_pooled([ids[i] for i in chunk])
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[chunk] = pooled.cpu().numpy()
        return out

    def _padded_mean_pooled(self, ids: list[list[int]]) -> torch.Tensor:
        """The plain transformers forward on a padded batch (reference for the packed path)."""
        assert self._model is not None
        width = max(len(x) for x in ids)
        width = min(-(-width // SEQ_BUCKET) * SEQ_BUCKET, max(width, self.max_length))
        input_ids = torch.full((len(ids), width), self._tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, :len(x)] = torch.tensor(x)
            mask[row, :len(x)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
