"""The encoder adapter: LoRA deltas and layer norms for the top layers of the e5 encoder.

Fine-tuning (models/sentiment/finetune.py) trains low-rank updates `W + (alpha / r) * B @ A` of the
top layers' linear maps, and those layers' LayerNorms, while the lower layers stay frozen. The
trained part is shipped as a small safetensors file (models/sentiment/assets/encoder_adapter.*) and
merged into the encoder's weights when it loads (`merge_adapter`), before any bf16 copy or int8
quantization, so every encoder mode and the padding-free forward run the fine-tuned model unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from models.sentiment.errors import ClassifierError

ADAPTER_PATH = Path(__file__).parent / "assets" / "encoder_adapter.safetensors"
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")
"""The linear maps of a BERT layer that get a LoRA delta."""
NORMS = ("attention.output.LayerNorm", "output.LayerNorm")


class LoRALinear(torch.nn.Module):
    """`base(x) + scale * dropout(x) @ A.T @ B.T`; `base` stays frozen, B starts at zero."""

    def __init__(self, base: torch.nn.Linear, rank: int, alpha: float, dropout: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        bound = 1 / math.sqrt(base.in_features)
        a = (torch.rand(rank, base.in_features, generator=generator) * 2 - 1) * bound
        self.lora_a = torch.nn.Parameter(a)
        self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.lora_b @ self.lora_a) * self.scale


def _get(module: torch.nn.Module, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _set(module: torch.nn.Module, dotted: str, value: torch.nn.Module) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(_get(module, parent) if parent else module, name, value)


def attach_lora(model: Any, first_layer: int, rank: int, alpha: float, dropout: float,
                seed: int) -> list[torch.nn.Parameter]:
    """Wrap the top layers' linear maps of a BertModel in LoRA; freeze everything else but their norms.

    Returns the trainable parameters (LoRA matrices, then the top layers' LayerNorm weights).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    trainable: list[torch.nn.Parameter] = []
    for layer in model.encoder.layer[first_layer:]:
        for target in TARGETS:
            lora = LoRALinear(_get(layer, target), rank, alpha, dropout, gen)
            _set(layer, target, lora)
            trainable += [lora.lora_a, lora.lora_b]
        for norm in NORMS:
            for p in _get(layer, norm).parameters():
                p.requires_grad_(True)
                trainable.append(p)
    return trainable


def adapter_tensors(model: Any, first_layer: int) -> dict[str, torch.Tensor]:
    """The adapter's tensors (LoRA A/B and LayerNorms of layers >= first_layer), named by layer."""
    out: dict[str, torch.Tensor] = {}
    for index in range(first_layer, len(model.encoder.layer)):
        layer = model.encoder.layer[index]
        for target in TARGETS:
            lora = _get(layer, target)
            out[f"{index}.{target}.lora_a"] = lora.lora_a.detach().clone()
            out[f"{index}.{target}.lora_b"] = lora.lora_b.detach().clone()
        for norm in NORMS:
            module = _get(layer, norm)
            out[f"{index}.{norm}.weight"] = module.weight.detach().clone()
            out[f"{index}.{norm}.bias"] = module.bias.detach().clone()
    return out


def detach_lora(model: Any) -> None:
    """Replace every LoRALinear by its base Linear with the delta merged in (training's end)."""
    for layer in model.encoder.layer:
        for target in TARGETS:
            module = _get(layer, target)
            if isinstance(module, LoRALinear):
                with torch.no_grad():
                    module.base.weight += module.delta().to(module.base.weight.dtype)
                _set(layer, target, module.base)


def save_adapter(tensors: dict[str, torch.Tensor], meta: dict[str, Any], path: Path) -> str:
    """Write the adapter (float32 safetensors + .json meta); returns its sha256."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "lora"})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ClassifierError(f"encoder adapter {path} not found; run `openear train-classifier`")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    return load_file(str(path)), meta


def truncate_layers(model: Any, layers: int) -> None:
    """Keep only the lower `layers` encoder layers of `model` (in place)."""
    total = len(model.encoder.layer)
    if not 1 <= layers <= total:
        raise ClassifierError(f"the adapter wants {layers} encoder layers; the encoder has {total}")
    if layers < total:
        model.encoder.layer = model.encoder.layer[:layers]
        model.config.num_hidden_layers = layers


def merge_adapter(model: Any, path: Path, expected_sha256: str | None = None) -> None:
    """Add the adapter's deltas to `model`'s weights in place (any float dtype) and set its norms."""
    if expected_sha256 is not None:
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != expected_sha256:
            raise ClassifierError(f"encoder adapter {path} does not match its head (sha256 {actual[:12]}, the "
                                  f"head expects {expected_sha256[:12]}); reinstall openear or retrain both "
                                  "with `openear train-classifier`")
    tensors, meta = load_adapter(path)
    if meta.get("layers"):  # a shallower model: the encoder's lower `layers` layers only
        truncate_layers(model, int(meta["layers"]))
    scale = float(meta.get("alpha", 16)) / float(meta.get("rank", 8))
    layers = model.encoder.layer
    with torch.no_grad():
        for name, value in tensors.items():
            index_text, _, rest = name.partition(".")
            layer = layers[int(index_text)]
            if rest.endswith(".lora_a"):
                target = rest.removesuffix(".lora_a")
                b = tensors[f"{index_text}.{target}.lora_b"]
                weight = _get(layer, target).weight
                weight += ((b @ value) * scale).to(weight.dtype)
            elif not rest.endswith(".lora_b"):
                norm, _, attr = rest.rpartition(".")
                getattr(_get(layer, norm), attr).copy_(value.to(getattr(_get(layer, norm), attr).dtype))
