"""The default encoder's tokenizer: its Unigram piece table run by sentencepiece, not `tokenizers`.

multilingual-e5-small has XLM-R's 250,002 pieces. The `tokenizers` library (transformers' fast
tokenizer) holds that table in about 280 MB of RSS, a quarter of the classifier's peak; sentencepiece,
the library XLM-R was trained with, holds it in about 55 MB and encodes tweets about 10x faster.
The sentencepiece model is built in memory from the encoder dir's `tokenizer.json` (pieces, scores,
the precompiled NFKC normalizer), so there is nothing more to ship or cache.

The two agree on all but 22 of the 65,149 texts of ../shared/datasets (measured 2026-12-07): ties
between equal-scoring splits of runs like "...." or "mmmm" (sentencepiece's is the split the model
was pre-trained on). Texts that spell "<s>" or "</s>" stay text here; `tokenizers` turns them into
the control tokens. An encoder dir with another kind of tokenizer (a configured model whose
tokenizer.json is not XLM-R's kind, see `supported`) keeps transformers' AutoTokenizer.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# sentencepiece's ModelProto field numbers (sentencepiece_model.proto)
_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3
_UNIGRAM = 1
_TAIL = 8  # characters whose normalized form decides whether a text ends in a space


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def supported(spec: dict[str, Any]) -> bool:
    """Whether a tokenizer.json is the XLM-R kind (NFKC charsmap, runs of spaces squeezed, a "\u2581"
    before every word, `<s> A </s>`) that this module reproduces exactly."""
    try:
        norm = spec.get("normalizer") or {}
        parts = norm.get("normalizers", []) if norm.get("type") == "Sequence" else []
        pre = spec.get("pre_tokenizer") or {}
        single = (spec.get("post_processor") or {}).get("single", [])
        template = [next(iter(x.values()))["id"] for x in single if isinstance(x, dict) and x]
        names = {t.get("content") for t in spec.get("added_tokens", [])}
        return bool(spec.get("model", {}).get("type") == "Unigram" and not spec["model"].get("byte_fallback")
                    and [p.get("type") for p in parts] == ["Precompiled", "Replace"]
                    and parts[1].get("pattern") == {"Regex": " {2,}"} and parts[1].get("content") == " "
                    and pre.get("type") == "Metaspace" and pre.get("replacement") == "\u2581"
                    and pre.get("prepend_scheme", "always") == "always"
                    and template == ["<s>", "A", "</s>"] and {"<s>", "</s>", "<pad>"} <= names)
    except (AttributeError, KeyError, TypeError, StopIteration):  # an odd file: transformers judges it
        return False


def sentencepiece_model(spec: dict[str, Any]) -> bytes:
    """A serialized sentencepiece ModelProto with the pieces, scores and normalizer of `spec`."""
    model = spec["model"]
    control = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    out = bytearray()
    for i, (piece, score) in enumerate(model["vocab"]):
        kind = _UNKNOWN if i == model["unk_id"] else _CONTROL if i in control else _NORMAL
        out += _field(1, _field(1, piece) + _float(2, score) + _int(3, kind))
    out += _field(2, _int(3, _UNIGRAM) + _int(40, model["unk_id"]))  # trainer_spec: type, unk id
    charsmap = base64.b64decode(spec["normalizer"]["normalizers"][0]["precompiled_charsmap"])
    # normalizer_spec: name, charsmap, add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces
    out += _field(3, _field(1, "nmt_nfkc") + _field(2, charsmap) + _int(3, 1) + _int(4, 1) + _int(5, 1))
    return bytes(out)


class SentencePieceTokenizer:
    """The calls TextEncoder and training make of a transformers tokenizer, on sentencepiece.

    `tokenizer(texts, truncation=True, max_length=n)["input_ids"]`: `<s>` pieces `</s>` per text.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        import sentencepiece

        proto = sentencepiece_model(spec)
        self._sp = sentencepiece.SentencePieceProcessor(model_proto=proto)
        self._normalizer = sentencepiece.SentencePieceNormalizer(
            model_proto=proto, add_dummy_prefix=False, escape_whitespaces=False, remove_extra_whitespaces=False)
        ids = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self.bos_token_id, self.eos_token_id, self.pad_token_id = ids["<s>"], ids["</s>"], ids["<pad>"]
        self._space = self._sp.piece_to_id("\u2581")

    def __call__(self, texts: str | Sequence[str], truncation: bool = False,
                 max_length: int | None = None) -> dict[str, Any]:
        batch = [texts] if isinstance(texts, str) else list(texts)
        pieces = self._sp.encode(batch)
        keep = max_length - 2 if truncation and max_length else None
        for text, p in zip(batch, pieces, strict=True):
            if self._normalizer.normalize(text[-_TAIL:]).endswith(" "):  # a trailing space: sentencepiece
                p.append(self._space)  # drops it, the tokenizer the model was tuned with keeps a "\u2581"
        ids = [[self.bos_token_id, *p[:keep], self.eos_token_id] for p in pieces]
        return {"input_ids": ids[0] if isinstance(texts, str) else ids}

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(i) for i in ids]


def load_tokenizer(path: Path) -> Any:
    """The tokenizer of the encoder dir `path`: sentencepiece where supported(), else AutoTokenizer."""
    spec_path = path / "tokenizer.json"
    if spec_path.is_file():
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        if supported(spec):
            return SentencePieceTokenizer(spec)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
