"""Fine-tuning: the adapter merges exactly, training is reproducible and resumes, versions gate and roll back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.sentiment import versions
from models.sentiment.adapter import attach_lora, detach_lora, merge_adapter, save_adapter
from models.sentiment.errors import ClassifierError
from models.sentiment.finetune import Corpus, detokenize, fine_tune, load_corpora

POSITIVE = ["I love this, thank you so much!", "Great service, really happy today", "Super, danke für die Hilfe!",
            "Wonderful staff, best experience", "Toll gemacht, ich bin begeistert", "Amazing, you made my day"]
NEGATIVE = ["This is terrible, my order never came", "Worst service ever, I am furious",
            "Der Zug ist schon wieder ausgefallen, unglaublich", "Broken on arrival and no refund, awful",
            "Nie wieder, total enttäuscht", "I hate waiting an hour on hold"]
NEUTRAL = ["The store opens at nine on Monday", "Der Zug fährt um 10 Uhr ab Gleis 3", "I ordered a blue one",
           "What are your opening hours?", "Heute ist Dienstag", "The parcel has a tracking number"]
# tiny: two encoder layers trained, a few steps; enough to exercise every part in seconds
TINY = {"frozen_layers": 10, "batch": 6, "epochs": 2.0, "checkpoint_every": 2, "hidden": 16}


def write_corpus(root: Path, name: str, rows: list[tuple[str, str]], split: str = "train") -> Path:
    path = root / name / f"{split}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8")
    return path


def labelled() -> list[tuple[str, str]]:
    return [(t, "positive") for t in POSITIVE] + [(t, "negative") for t in NEGATIVE] + \
        [(t, "neutral") for t in NEUTRAL]


@pytest.fixture()
def corpora(tmp_path: Path) -> Path:
    data = tmp_path / "datasets"
    write_corpus(data, "tiny", labelled())
    write_corpus(data, "tiny", labelled()[::2], split="val")
    return data


def test_detokenize_undoes_tokenised_punctuation() -> None:
    assert detokenize("nicht , wir üben hier erstmal :) ( ja )") == "nicht, wir üben hier erstmal:) (ja)"


def test_load_corpora_skips_superseded_and_holds_back_a_dev_slice(tmp_path: Path) -> None:
    rows = [(f"Satz Nummer {i} über den Zug", "neutral") for i in range(400)]
    write_corpus(tmp_path, "sb10k_de", rows[:50])
    write_corpus(tmp_path, "sb10k_de_full", rows)
    write_corpus(tmp_path, "potts_de", [("nicht , wir", "negative")])
    train, val = load_corpora(tmp_path)
    names = [c.name for c in train]
    assert "sb10k_de" not in names and {"sb10k_de_full", "potts_de"} <= set(names)
    full = next(c for c in train if c.name == "sb10k_de_full")
    dev = next(c for c in val if c.name == "sb10k_de_full/dev-slice")
    assert len(full.texts) + len(dev.texts) == 400
    assert not set(full.texts) & set(dev.texts)
    assert 0.08 < len(dev.texts) / 400 < 0.22  # the 15 % share, by text hash
    assert next(c for c in train if c.name == "potts_de").texts == ["nicht, wir"]


def test_merged_adapter_equals_the_lora_forward(own_data_dir: Path) -> None:
    from transformers import BertModel

    from models.sentiment.encoder_build import ensure_encoder
    from models.sentiment.packed import PackedBert

    path = ensure_encoder()
    ids = [[0, 41, 902, 1437, 2], [0, 3030, 2]]
    model = BertModel.from_pretrained(str(path), add_pooling_layer=False).eval()
    params = attach_lora(model, 10, rank=4, alpha=8.0, dropout=0.0, seed=1)
    with torch.no_grad():
        for p in params:  # B starts at zero: give the deltas something to say
            if p.dim() == 2 and p.shape[1] == 4:
                p.normal_(0, 0.05)
    from models.sentiment.adapter import adapter_tensors

    tensors = adapter_tensors(model, 10)
    lora_out = PackedBert(model).mean_pooled(ids)
    adapter = save_adapter(tensors, {"rank": 4, "alpha": 8.0}, own_data_dir / "a.safetensors")
    plain = BertModel.from_pretrained(str(path), add_pooling_layer=False).eval()
    before = PackedBert(plain).mean_pooled(ids)
    merge_adapter(plain, own_data_dir / "a.safetensors", adapter)
    merged = PackedBert(plain).mean_pooled(ids)
    cos = torch.nn.functional.cosine_similarity(merged, lora_out).min()
    assert float(cos) > 0.99999
    assert float(torch.nn.functional.cosine_similarity(before, lora_out).min()) < 0.9999  # the delta matters
    detach_lora(model)
    assert float(torch.nn.functional.cosine_similarity(PackedBert(model).mean_pooled(ids), merged).min()) > 0.99999
    with pytest.raises(ClassifierError, match="does not match"):
        merge_adapter(plain, own_data_dir / "a.safetensors", "0" * 64)


def _tiny_corpus(data: Path) -> list[Corpus]:
    return load_corpora(data)[0]


def test_training_is_reproducible_and_seed_dependent(own_data_dir: Path, corpora: Path) -> None:
    a = fine_tune(_tiny_corpus(corpora), seed=3, config=TINY, resume=False)
    b = fine_tune(_tiny_corpus(corpora), seed=3, config=TINY, resume=False)
    c = fine_tune(_tiny_corpus(corpora), seed=4, config=TINY, resume=False)
    assert a.adapter.keys() == b.adapter.keys()
    assert all(torch.equal(a.adapter[k], b.adapter[k]) for k in a.adapter)
    assert all(np.array_equal(a.head[k], b.head[k]) for k in a.head)
    assert any(not torch.equal(a.adapter[k], c.adapter[k]) for k in a.adapter if k.endswith("lora_b"))
    assert a.meta["steps"] == 6  # 2 epochs of 18 texts in batches of 6
    assert any(float(a.adapter[k].abs().sum()) > 0 for k in a.adapter if k.endswith("lora_b"))


def test_an_interrupted_run_resumes_to_the_same_result(own_data_dir: Path, corpora: Path) -> None:
    whole = fine_tune(_tiny_corpus(corpora), seed=5, config=TINY, resume=False)

    class Stop(Exception):
        pass

    def stop_at_three(phase: str, done: int, total: int, info: dict[str, float]) -> None:
        if phase == "train" and done == 3:
            raise Stop

    with pytest.raises(Stop):
        fine_tune(_tiny_corpus(corpora), seed=5, config=TINY, resume=False, progress=stop_at_three)
    seen: list[int] = []
    resumed = fine_tune(_tiny_corpus(corpora), seed=5, config=TINY, resume=True,
                        progress=lambda p, d, t, i: seen.append(d) if p == "train" else None)
    assert seen[0] == 3  # continued after the checkpoint of step 2, not from the start
    assert all(torch.allclose(whole.adapter[k], resumed.adapter[k], atol=1e-6) for k in whole.adapter)


def test_version_loads_through_the_default_classifier_and_rolls_back(own_data_dir: Path, corpora: Path) -> None:
    from models.sentiment.classifier import EmbeddingClassifier

    head_v1 = versions.train_version(corpora, versions.versions_dir() / "v1", seed=0, config=TINY, resume=False)
    head_v2 = versions.train_version(corpora, versions.versions_dir() / "v2", seed=1, config=TINY, resume=False)
    meta = versions.Head.load(head_v1).meta
    assert set(meta["validation"]) == {"tiny/val"}
    assert versions.active_head_path() == versions.HEAD_PATH  # nothing switched yet: the shipped model
    versions.activate("v1", "test")
    versions.activate("v2", "test")
    assert versions.active_head_path() == head_v2
    text = ["Der Zug ist schon wieder ausgefallen"]
    p2 = EmbeddingClassifier(mode="fp32").probabilities(text)
    state = versions.rollback()
    assert (state["active"], state["previous"]) == ("v1", "v2")
    p1 = EmbeddingClassifier(mode="fp32").probabilities(text)
    assert np.allclose(p1, EmbeddingClassifier(head_path=head_v1, mode="fp32").probabilities(text))
    assert not np.allclose(p1, p2)
    versions.discard("v1")
    with pytest.raises(ClassifierError, match="rollback"):
        versions.active_head_path()


def test_gate_refuses_a_worse_model(own_data_dir: Path, corpora: Path, tmp_path: Path) -> None:
    good = versions.train_version(corpora, versions.versions_dir() / "good", seed=0,
                                  config=dict(TINY, epochs=10.0, lr=3e-3, head_lr=1e-2), resume=False)
    flipped = tmp_path / "flipped"
    swap = {"positive": "negative", "negative": "positive", "neutral": "neutral"}
    write_corpus(flipped, "tiny", [(t, swap[label]) for t, label in labelled()])
    write_corpus(flipped, "tiny", labelled()[::2], split="val")
    bad = versions.train_version(flipped, versions.versions_dir() / "bad", seed=0,
                                 config=dict(TINY, epochs=10.0, lr=3e-3, head_lr=1e-2), resume=False)
    val = load_corpora(corpora)[1]
    refused = versions.gate(bad, good, val, None)
    assert not refused.passed and "worse on tiny/val" in refused.summary()
    same = versions.gate(good, good, val, None)
    assert same.passed


def test_a_shallower_student_trains_loads_and_retrains_with_its_depth(own_data_dir: Path, corpora: Path) -> None:
    """`layers`: only the encoder's lower layers are kept; the adapter says so and every load truncates."""
    from models.sentiment.adapter import ADAPTER_PATH, load_adapter
    from models.sentiment.classifier import EmbeddingClassifier

    student = dict(TINY, layers=11, frozen_layers=9)
    head = versions.train_version(corpora, versions.versions_dir() / "s", seed=0, config=student, resume=False)
    adapter_path = head.parent / ADAPTER_PATH.name
    tensors, meta = load_adapter(adapter_path)
    assert meta["layers"] == 11 and {name.split(".")[0] for name in tensors} == {"9", "10"}
    clf = EmbeddingClassifier(head_path=head, mode="fp32")
    text = ["Der Zug ist schon wieder ausgefallen"]
    probs = clf.probabilities(text)
    model = clf.encoder._model
    assert model is not None and len(model.encoder.layer) == 11 and model.config.num_hidden_layers == 11
    full = EmbeddingClassifier(head_path=versions.HEAD_PATH, mode="fp32")
    full.probabilities(text)
    assert full.encoder._model is not None and len(full.encoder._model.encoder.layer) == 12
    # continued training from the student (the corrections retrain) keeps its depth
    again = fine_tune(_tiny_corpus(corpora), seed=0, config=dict(TINY, frozen_layers=9), resume=False,
                      init=(adapter_path, head))
    assert again.meta["config"]["layers"] == 11
    assert np.allclose(probs, EmbeddingClassifier(head_path=head, mode="fp32").probabilities(text))


def _flipped_teacher(corpus: Corpus) -> np.ndarray:
    """Posteriors of an imagined teacher that swaps positive and negative (LABELS order: neg, neu, pos)."""
    soft = np.full((len(corpus.texts), 3), 0.05, np.float32)
    flipped = np.array([2, 1, 0])[corpus.labels]
    soft[np.arange(len(soft)), flipped] = 0.9
    return soft


def test_distillation_follows_the_teacher_and_needs_its_posteriors(own_data_dir: Path, corpora: Path) -> None:
    strong = dict(TINY, epochs=10.0, lr=3e-3, head_lr=1e-2)
    with pytest.raises(ClassifierError, match="posteriors"):
        fine_tune(_tiny_corpus(corpora), seed=0, config=dict(strong, distil=1.0), resume=False)

    def taught() -> list[Corpus]:
        cs = _tiny_corpus(corpora)
        for c in cs:
            c.soft = _flipped_teacher(c)
        return cs

    from models.sentiment.classifier import EmbeddingClassifier

    (train,) = taught()
    flipped = np.array([2, 1, 0])[train.labels]
    agree = {}
    for distil in (0.0, 1.0):
        directory = versions.versions_dir() / f"d{distil}"
        versions.save_version(fine_tune(taught(), seed=0, config=dict(strong, distil=distil), resume=False), directory)
        predicted = EmbeddingClassifier(head_path=directory / versions.HEAD_PATH.name,
                                        mode="fp32").probabilities(train.texts).argmax(1)
        agree[distil] = (float((predicted == train.labels).mean()), float((predicted == flipped).mean()))
    # without distillation the student learns the labels; with distil=1 only the teacher, which swaps them
    assert agree[0.0][0] > agree[0.0][1]
    assert agree[1.0][1] > agree[1.0][0]
    a = fine_tune(taught(), seed=0, config=dict(TINY, distil=0.5), resume=False)
    b = fine_tune(taught(), seed=0, config=dict(TINY, distil=0.5), resume=False)
    assert a.meta["distilled"] and all(torch.equal(a.adapter[k], b.adapter[k]) for k in a.adapter)
    assert "-distil-" in a.meta["run"]


def test_embedding_distillation_pulls_the_students_vectors_towards_the_teachers(own_data_dir: Path,
                                                                                 corpora: Path) -> None:
    from models.sentiment.classifier import EmbeddingClassifier

    cfg = dict(TINY, layers=11, frozen_layers=9, epochs=6.0, lr=3e-3)
    with pytest.raises(ClassifierError, match="vectors"):
        fine_tune(_tiny_corpus(corpora), seed=0, config=dict(cfg, embed_distil=1.0), resume=False)
    (train,) = _tiny_corpus(corpora)
    target = EmbeddingClassifier(head_path=versions.HEAD_PATH, mode="fp32").embed(train.texts)  # 12 layers
    gaps = {}
    for weight in (0.0, 5.0):
        (c,) = _tiny_corpus(corpora)
        c.soft_vectors = target
        trained = fine_tune([c], seed=0, config=dict(cfg, embed_distil=weight), resume=False)
        directory = versions.versions_dir() / f"e{weight}"
        versions.save_version(trained, directory)
        student = EmbeddingClassifier(head_path=directory / versions.HEAD_PATH.name, mode="fp32").embed(train.texts)
        gaps[weight] = float(((student - target) ** 2).sum(1).mean())
        assert trained.meta["embeddings_distilled"] == (weight > 0)
        assert ("-vec-" in trained.meta["run"]) == (weight > 0)
    assert gaps[5.0] < 0.5 * gaps[0.0], gaps  # an 11-layer student, measured against the 12-layer model


def test_an_empty_corpus_adds_nothing_and_all_empty_input_is_refused(own_data_dir: Path,
                                                                     corpora: Path) -> None:
    (train,) = _tiny_corpus(corpora)
    empty = Corpus("none", train.path, [], np.zeros(0, np.int64))
    empty.soft, empty.soft_vectors = versions.teacher_outputs(versions.HEAD_PATH, empty)  # the real (0, 0) shape
    train.soft, train.soft_vectors = versions.teacher_outputs(versions.HEAD_PATH, train)
    cfg = dict(TINY, distil=0.5, embed_distil=1.0)
    trained = fine_tune([train, empty], seed=0, config=cfg, resume=False)
    alone = fine_tune([train], seed=0, config=cfg, resume=False)
    assert trained.meta["embeddings_distilled"]
    assert all(torch.equal(trained.adapter[k], alone.adapter[k]) for k in alone.adapter)
    with pytest.raises(ClassifierError, match="every corpus is empty"):
        fine_tune([empty], seed=0, config=dict(TINY, embed_distil=1.0), resume=False)


def test_train_version_distils_from_a_teacher_model_and_caches_its_posteriors(own_data_dir: Path,
                                                                             corpora: Path) -> None:
    from models.sentiment.classifier import EmbeddingClassifier
    from models.sentiment.encoder_build import data_dir, sha256_file

    train = _tiny_corpus(corpora)[0]
    teacher = EmbeddingClassifier(head_path=versions.HEAD_PATH, mode="fp32")
    expected, expected_vectors = teacher.probabilities(train.texts), teacher.embed(train.texts)
    got, vectors = versions.teacher_outputs(versions.HEAD_PATH, train)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(vectors, expected_vectors, atol=1e-3)  # stored as float16
    (cached,) = (data_dir() / "teacher-cache").glob("*.npz")
    with np.load(cached) as saved:
        assert np.array_equal(saved["probs"], got) and np.array_equal(saved["vectors"].astype(np.float32), vectors)
    head = versions.train_version(corpora, versions.versions_dir() / "student", seed=0,
                                  config=dict(TINY, layers=11, frozen_layers=9), resume=False,
                                  teacher=versions.HEAD_PATH)
    meta = versions.Head.load(head).meta
    assert meta["distilled"] and meta["config"]["distil"] == 0.5
    assert meta["teacher"]["head_sha256"] == sha256_file(versions.HEAD_PATH)


def test_the_shipped_model_is_what_the_default_recipe_trains() -> None:
    """`openear train-classifier --data DIR` reproduces the shipped assets only if the recipe they record is
    today's default, and the command's help must name the same defaults (they drifted once: "default 1")."""
    import json
    import re

    from typer.testing import CliRunner

    from models.sentiment.adapter import ADAPTER_PATH
    from models.sentiment.finetune import FINETUNE_CONFIG
    from openear.cli import app

    shipped = json.loads((ADAPTER_PATH.parent / "sentiment_head.json").read_text(encoding="utf-8"))
    assert shipped["config"] == FINETUNE_CONFIG
    assert shipped["seed"] == 0
    out = re.sub(r"[\s│]+", " ", CliRunner().invoke(app, ["train-classifier", "--help"],
                                                     env={"COLUMNS": "200"}).output)
    for option, key in (("--epochs", "epochs"), ("--frozen-layers", "frozen_layers"), ("--rank", "rank")):
        help_text = out.split(option, 1)[1].split(" --", 1)[0]
        assert f"default {FINETUNE_CONFIG[key]:g})" in help_text, (option, help_text)
