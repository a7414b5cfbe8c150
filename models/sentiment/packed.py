"""Padding-free inference for a transformers `BertModel`: mean-pooled sentence embeddings.

A batch of texts of different lengths is usually padded to the longest one, and every Linear layer
then computes the padding too (on tweet-length texts in small batches, 30-70 % of the work). Here
the per-token layers (embeddings, the q/k/v/output projections, the feed-forward block, layer norms)
run on the texts' tokens packed into one (tokens, hidden) matrix; only attention, which mixes the
tokens of one text, sees a padded (texts, heads, length, head size) view, with a mask.

A long-running process must see a small, fixed set of matrix shapes: in bfloat16, every new shape
costs oneDNN a JIT-compiled kernel that stays cached, so free-ranging shapes grow the resident memory
for hours (bench/shapes.py --free-shapes: +250 MB over 200 batches of feed texts, against +90 MB).
So the packed row count is rounded up by `packed_rows` (multiples of ROW_BUCKET, then eight steps
per doubling: at most 12.5 % extra rows, 48 shapes up to 16k rows), attention runs in float32 (MKL,
which keeps nothing per shape; under 10 % of the work for tweets) and the long-text SDPA path pads
its width to a power of two. Rounding rows carry token 0 at position 0 and are never read back.

Works with float32, bfloat16 and dynamically quantized int8 Linear layers alike; the result matches
`BertModel(...).last_hidden_state` mean-pooled over the attention mask (tests/models/test_encoder.py
pins it against a numpy reference at cosine > 0.99999).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

ROW_BUCKET = 64
ROW_STEPS_PER_DOUBLING = 8
MATMUL_ATTENTION_MAX_WIDTH = 128
"""Up to this many tokens per text, attention runs as plain matmuls (fast for tweets); longer
batches use torch's memory-efficient SDPA kernel, which never holds (texts, heads, width, width)."""
FLOAT32_ATTENTION = True
"""Matmul attention in float32 whatever the model's dtype (bench/shapes.py --free-shapes turns it off)."""


def packed_rows(total: int) -> int:
    """`total` rounded up to a multiple of ROW_BUCKET, or of an eighth of its power of two if larger.

    At most 12.5 % extra rows; 48 row counts up to 16k rows (32 texts of 512 tokens).
    """
    octave = 1 << (max(total, 1).bit_length() - 1)
    step = max(ROW_BUCKET, octave // ROW_STEPS_PER_DOUBLING)
    return -(-max(total, 1) // step) * step


def attention_width(width: int) -> int:
    """The padded width attention sees: exact for matmul attention, a power of two for SDPA."""
    return width if width <= MATMUL_ATTENTION_MAX_WIDTH else 1 << (width - 1).bit_length()


@dataclass(frozen=True)
class Packing:
    """Where each text's tokens sit: packed rows, their padded attention layout, and the mask."""

    texts: int
    width: int
    total: int
    rows: int
    slot: torch.Tensor
    positions: torch.Tensor
    mask: torch.Tensor
    owner: torch.Tensor
    lengths: torch.Tensor


class PackedBert:
    """Runs `model` (a BertModel in eval mode) on packed token rows."""

    def __init__(self, model: Any) -> None:
        self.model = model
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.hidden = int(config.hidden_size)
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("PackedBert supports absolute position embeddings only")

    @torch.inference_mode()
    def mean_pooled(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """(len(ids), hidden) float32 mean-pooled last hidden states (not normalized)."""
        lengths = [len(x) for x in ids]
        if not ids or min(lengths) == 0:
            raise ValueError("every text needs at least one token")
        packing = self.packing(lengths, packed_rows(sum(lengths)))
        x = self.embed(ids, packing)
        for layer in self.model.encoder.layer:
            x = self.layer(layer, x, packing)
        return self.pool(x, packing)

    def packing(self, lengths: Sequence[int], rows: int) -> Packing:
        """The geometry of texts of `lengths` tokens packed into `rows` rows (>= their sum)."""
        device = self.model.embeddings.word_embeddings.weight.device
        texts, width, total = len(lengths), attention_width(max(lengths)), sum(lengths)
        lengths_t = torch.tensor(list(lengths))
        # token j of text i sits at row i * width + j of the padded layout; rounding rows point at a
        # spare row after it, which stays zero
        slot = torch.full((rows,), texts * width, dtype=torch.long)
        slot[:total] = torch.cat([torch.arange(n) + i * width for i, n in enumerate(lengths)])
        positions = torch.zeros(rows, dtype=torch.long)
        positions[:total] = torch.cat([torch.arange(n) for n in lengths])
        keep = (torch.arange(width)[None, :] < lengths_t[:, None]).view(texts, 1, 1, width)
        slot, positions, keep = (t.to(device) for t in (slot, positions, keep))
        if width <= MATMUL_ATTENTION_MAX_WIDTH:
            # additive mask: 0 for tokens, -inf-like for padding (float32 min would overflow bf16)
            mask = torch.zeros(keep.shape, dtype=torch.float32, device=device).masked_fill(~keep, -1e9)
        else:
            mask = keep
        owner = torch.repeat_interleave(torch.arange(texts, device=device), lengths_t.to(device))
        return Packing(texts, width, total, rows, slot, positions, mask, owner, lengths_t.to(device))

    def embed(self, ids: Sequence[Sequence[int]], packing: Packing) -> torch.Tensor:
        """The embedding layer's output on packed rows."""
        flat_ids = torch.zeros(packing.rows, dtype=torch.long)
        flat_ids[:packing.total] = torch.tensor([t for x in ids for t in x])
        emb = self.model.embeddings
        x = emb.word_embeddings(flat_ids.to(packing.slot.device)) + emb.position_embeddings(packing.positions)
        return emb.LayerNorm(x + emb.token_type_embeddings.weight[0])

    def pool(self, x: torch.Tensor, packing: Packing) -> torch.Tensor:
        """Mean over each text's rows, in float32."""
        summed = torch.zeros(packing.texts, self.hidden, dtype=torch.float32, device=x.device)
        summed.index_add_(0, packing.owner, x[:packing.total].float())
        return summed / packing.lengths.to(torch.float32)[:, None]

    def layer(self, layer: Any, x: torch.Tensor, packing: Packing) -> torch.Tensor:
        """One encoder layer on packed rows (differentiable: the fine-tuning runs it too)."""
        return self._layer(layer, x, packing.slot, packing.mask, packing.texts, packing.width)

    def _layer(self, layer: Any, x: torch.Tensor, slot: torch.Tensor, mask: torch.Tensor, texts: int,
               width: int) -> torch.Tensor:
        """One post-LN BERT layer on packed rows; `mask`: additive float (matmul attention) or bool (SDPA)."""
        att = layer.attention
        size = self.hidden // self.heads

        def padded(t: torch.Tensor) -> torch.Tensor:
            grid = t.new_zeros(texts * width + 1, self.hidden)
            grid[slot] = t
            return grid[:-1].view(texts, width, self.heads, size).transpose(1, 2)

        q, k, v = (padded(proj(x)) for proj in (att.self.query, att.self.key, att.self.value))
        if mask.dtype == torch.bool:
            context = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:  # plain batched matmuls: for tweets several times faster than torch's CPU flash attention;
            # in float32, whose kernels keep no per-shape state (the width changes with every batch)
            kind = torch.float32 if FLOAT32_ATTENTION else q.dtype
            scores = torch.matmul(q.to(kind), k.to(kind).transpose(-1, -2)).float() * (size ** -0.5) + mask
            context = torch.matmul(torch.softmax(scores, dim=-1).to(kind), v.to(kind)).to(v.dtype)
        context = context.transpose(1, 2).reshape(texts * width, self.hidden)
        context = torch.cat([context, context.new_zeros(1, self.hidden)])[slot]
        x = att.output.LayerNorm(att.output.dense(context) + x)
        inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
        return layer.output.LayerNorm(layer.output.dense(inner) + x)
