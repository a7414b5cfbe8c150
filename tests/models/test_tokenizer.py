"""The default encoder's sentencepiece tokenizer against transformers' fast tokenizer of the same file."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from models.sentiment import encoder_build
from models.sentiment.tokenizer import SentencePieceTokenizer, load_tokenizer, supported

PREFIX = encoder_build.QUERY_PREFIX
TEXTS = [
    "", " ", "hello world", "Die Bahn ist wieder 40 Minuten zu spät, ICE 598 ausgefallen!!",
    "@user my order #12345 never arrived, I want a refund 😡", "C'est la vie, naïve café, São Paulo, 東京",
    "ﬁ ligature, ｆｕｌｌｗｉｄｔｈ, Ⅻ, ² (NFKC folds these)", "tabs\tand\nnewlines\r\nand  runs   of spaces",
    "trailing space ", "trailing newline\n", "trailing nbsp\u00a0", "zero\u200bwidth\u200b", "ctrl\x0b\x1c",
    "\u200f\u202eRTL text\x00with control chars", "Straße ÄÖÜ äöü", "http @user #DBfail 👍🏽 🇩🇪",
]


@pytest.fixture(scope="module")
def tokenizers(encoder_root: Path) -> tuple[SentencePieceTokenizer, object]:
    from transformers import AutoTokenizer

    path = encoder_build.encoder_dir(encoder_root)
    sp = load_tokenizer(path)
    assert isinstance(sp, SentencePieceTokenizer)
    return sp, AutoTokenizer.from_pretrained(str(path))


def _random_texts(n: int) -> list[str]:
    """Mixed-script words joined by varied whitespace (no runs of one repeated character: see ties)."""
    rng = random.Random(3)
    words = ["Lieferung", "refund", "😡", "#42", "Verspätung", "n'importe", "@user", "http", "ÜBER", "café",
             "東京", "¿qué?", "x2", "💔", "R$9,90", "Zug", "ticket", "nope!", "ß", "—"]
    gaps = [" ", " ", " ", "  ", "\n", "\t", "\u00a0", ", "]
    return ["".join(rng.choice(words) + rng.choice(gaps) for _ in range(rng.randrange(0, 40))) for _ in range(n)]


def test_ids_equal_the_fast_tokenizer_of_the_same_file(tokenizers: tuple[SentencePieceTokenizer, object]) -> None:
    sp, hf = tokenizers
    texts = [PREFIX + t for t in TEXTS + _random_texts(400)]
    assert sp(texts, truncation=True, max_length=512)["input_ids"] == \
        hf(texts, truncation=True, max_length=512)["input_ids"]  # type: ignore[operator]
    assert sp(texts[2])["input_ids"] == hf(texts[2])["input_ids"]  # type: ignore[operator]


def test_truncation_keeps_the_first_pieces_and_both_ends(tokenizers: tuple[SentencePieceTokenizer, object]) -> None:
    sp, hf = tokenizers
    text = PREFIX + "Zugausfall " * 400
    ids = sp([text], truncation=True, max_length=512)["input_ids"][0]
    assert ids == hf([text], truncation=True, max_length=512)["input_ids"][0]  # type: ignore[operator]
    assert len(ids) == 512 and ids[0] == sp.bos_token_id and ids[-1] == sp.eos_token_id


def test_differences_are_ties_between_equal_scoring_splits(
        tokenizers: tuple[SentencePieceTokenizer, object], encoder_root: Path) -> None:
    """Where the two differ ("...." after a word), both splits score the same under the piece table."""
    sp, hf = tokenizers
    spec = json.loads((encoder_build.encoder_dir(encoder_root) / "tokenizer.json").read_text(encoding="utf-8"))
    score = {i: s for i, (_, s) in enumerate(spec["model"]["vocab"])}
    text = PREFIX + "Fliege tot.... Panda glücklich"
    a, b = sp(text)["input_ids"], hf(text)["input_ids"]  # type: ignore[operator]
    assert a != b
    assert sum(score[i] for i in a) == pytest.approx(sum(score[i] for i in b), abs=1e-4)


def test_control_tokens_spelled_in_a_text_stay_text(tokenizers: tuple[SentencePieceTokenizer, object]) -> None:
    sp, _ = tokenizers
    ids = sp(PREFIX + "ignore this </s><s> and <pad>")["input_ids"]
    assert ids.count(sp.eos_token_id) == 1 and ids.count(sp.bos_token_id) == 1 and sp.pad_token_id not in ids
    assert ids[0] == sp.bos_token_id and ids[-1] == sp.eos_token_id


def test_other_tokenizers_load_through_transformers(encoder_root: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    wordpiece.save(str(tmp_path / "tokenizer.json"))
    assert not supported(json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8")))
    assert not supported({"model": {"type": "Unigram"}, "normalizer": {"type": "Sequence", "normalizers": [1]},
                          "post_processor": {"single": [{"x": 1}]}})  # malformed: no crash
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                                                "unk_token": "[UNK]"}), encoding="utf-8")
    tok = load_tokenizer(tmp_path)
    assert not isinstance(tok, SentencePieceTokenizer)
    assert tok("hello world")["input_ids"] == [1, 2]

    # the default's own file, one normalizer step changed: no longer reproduced, so transformers runs it
    spec = json.loads((encoder_build.encoder_dir(encoder_root) / "tokenizer.json").read_text(encoding="utf-8"))
    spec["normalizer"]["normalizers"][1]["content"] = "_"
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    shutil.copyfile(encoder_build.encoder_dir(encoder_root) / "tokenizer_config.json", other / "tokenizer_config.json")
    assert not isinstance(load_tokenizer(other), SentencePieceTokenizer)
