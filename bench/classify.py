"""Benchmark the default sentiment classifier: texts/s, load time and peak RSS.

Configurations (each in its own subprocess, so that peak RSS is per configuration):
  default-fp32        the embedded e5 encoder in float32 + the shipped head
  default-bf16        the same in bfloat16 (what `default` runs on CPUs with native bf16)
  default-int8        the same with dynamic int8 Linear layers
  default-int8-all    every Linear int8 (default-int8 keeps the feed-forward down-projections float)
  naive         transformers.pipeline("feature-extraction") on the same encoder, one text at a time,
                mean pooling + the same head (how one would call the model without our batching)
Texts are synthetic tweet-length English and German brand mentions (see `synthetic_texts`).

    .venv/bin/python bench/classify.py [--n 512] [--threads 2] [--head DIR/sentiment_head.safetensors]

Prints a table and writes bench/results/classify.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python bench/classify.py` puts bench/ first on sys.path, where bench/queue.py would shadow the
# standard library's queue module (torch imports it): use the project root instead.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
RESULTS = ROOT / "bench" / "results" / "classify.json"
CONFIGS = ("default-fp32", "default-bf16", "default-int8", "default-int8-all", "naive")
BATCH_SIZES = (1, 32, 128)

_EN = {
    "brand": ["@acme", "@AcmeAir", "@ShopFast", "@TelcoOne", "@RailCo"],
    "open": ["Hey", "Honestly", "Wow", "Ugh", "Just wanted to say", "FYI", "So"],
    "body": [
        "my order {num} still hasn't arrived and nobody answers my emails",
        "the app keeps crashing every time I try to pay",
        "thanks for the super quick refund, really appreciate it",
        "train {num} delayed again by 40 minutes, missed my connection",
        "loving the new update, the dark mode looks great",
        "is the store on Main Street open on Sunday?",
        "I was charged twice for the same ticket, please help",
        "great service at the airport today, staff were very friendly",
        "wifi on board not working for the third time this week",
        "can you DM me about the delivery options for {city}?",
    ],
    "tail": ["", " 😡", " 🙏", " #fail", " 👍", " !!!", " lol", " #customerservice", " 😍"],
}
_DE = {
    "brand": ["@DB_Bahn", "@Telekom_hilft", "@Zalando", "@Lufthansa_DE", "@Vodafone_Hilfe"],
    "open": ["Hallo", "Also ehrlich", "Mal wieder", "Danke", "Kurze Frage", "Leute"],
    "body": [
        "meine Bestellung {num} ist immer noch nicht angekommen",
        "der ICE {num} hat schon wieder 30 Minuten Verspätung",
        "vielen Dank für die schnelle Erstattung, super Service",
        "das Internet funktioniert seit gestern nicht, wann wird das repariert?",
        "die neue App ist echt gut geworden",
        "habt ihr am Sonntag in {city} geöffnet?",
        "mir wurde der Betrag doppelt abgebucht, bitte um Rückmeldung",
        "sehr freundliches Personal im Zug heute, gerne wieder",
        "Klimaanlage im Wagen 7 kaputt, es ist unerträglich heiß",
        "könnt ihr mir per DM die Kündigungsfrist schicken?",
    ],
    "tail": ["", " 😡", " 🙏", " #fail", " 👍", " !!!", " #bahn", " echt jetzt?", " 😍"],
}
_CITIES = ["Berlin", "Hamburg", "London", "Leeds", "München", "Köln", "Boston"]


def synthetic_texts(lang: str, n: int, seed: int = 0) -> list[str]:
    """`n` tweet-length brand mentions in English ("en") or German ("de"), deterministic."""
    parts = _EN if lang == "en" else _DE
    rng = random.Random(f"{lang}:{seed}")
    out = []
    for _ in range(n):
        body = rng.choice(parts["body"]).format(num=rng.randint(100, 99999999), city=rng.choice(_CITIES))
        text = f"{rng.choice(parts['brand'])} {rng.choice(parts['open'])}, {body}.{rng.choice(parts['tail'])}"
        if rng.random() < 0.3:
            more = rng.choice(parts["body"])
            text += " " + more.format(num=rng.randint(100, 9999), city=rng.choice(_CITIES))
        out.append(text)
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _naive(n_texts: int) -> Any:
    """A classifier that calls a feature-extraction pipeline once per text (no batching)."""
    import numpy as np
    from transformers import pipeline

    from models.sentiment import HEAD_PATH, Head, make_result
    from models.sentiment.encoder import quiet_transformers
    from models.sentiment.encoder_build import QUERY_PREFIX, ensure_encoder

    quiet_transformers()
    head = Head.load(HEAD_PATH)
    pipe = pipeline("feature-extraction", model=str(ensure_encoder()), device="cpu")

    class Naive:
        def classify(self, texts: list[str]) -> list[Any]:
            out = []
            for text in texts:
                hidden = np.asarray(pipe(QUERY_PREFIX + text, truncation=True, max_length=512))[0]
                v = hidden.mean(0)
                probs = head.predict_proba((v / np.linalg.norm(v))[None, :].astype(np.float32))[0]
                out.append(make_result(text, probs))
            return out

    return Naive()


def worker(config: str, n: int, threads: int, head: str | None = None) -> dict[str, Any]:
    """Measure one configuration in this process; returns a JSON-able dict."""
    import torch

    torch.set_num_threads(threads)
    from models.sentiment import EmbeddingClassifier

    start = time.perf_counter()
    if config == "naive":
        clf = _naive(n)
    else:
        clf = EmbeddingClassifier(head_path=Path(head) if head else None, mode=config.removeprefix("default-"),
                                  batch_size=128)
    clf.classify(["warm up: loading the model"])
    load_s = time.perf_counter() - start
    result: dict[str, Any] = {"config": config, "load_s": round(load_s, 2), "throughput": {}}
    sizes = (1,) if config == "naive" else BATCH_SIZES
    for lang in ("en", "de"):
        texts = synthetic_texts(lang, n)
        for bs in sizes:
            count = min(n, 64) if bs == 1 else n
            if hasattr(clf, "encoder"):
                clf.encoder.batch_size = bs
            t0 = time.perf_counter()
            for i in range(0, count, bs):
                clf.classify(texts[i:i + bs])
            rate = count / (time.perf_counter() - t0)
            result["throughput"][f"{lang}/bs{bs}"] = round(rate, 1)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=512, help="texts per language and batch size")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--head", help="a trained head file (e.g. a student's sentiment_head.safetensors); "
                                       "default: the active model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.threads, args.head)))
        return
    rows = []
    for config in args.configs.split(","):
        cmd = [sys.executable, __file__, "--worker", config, "--n", str(args.n),
               "--threads", str(args.threads), *(["--head", args.head] if args.head else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            print(f"{config} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{config}: done", file=sys.stderr)
    from rich.console import Console
    from rich.table import Table

    from models.sentiment.encoder import int8_activation_bits, native_bf16, resolve_mode

    keys = [f"{lang}/bs{bs}" for lang in ("en", "de") for bs in BATCH_SIZES]
    table = Table(title=f"sentiment classifier, texts/s ({args.threads} torch threads)")
    for col in ["config", "load s", "peak RSS MB", *keys]:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["config"], str(r["load_s"]), str(r["peak_rss_mb"]),
                      *[str(r["throughput"].get(k, "-")) for k in keys])
    Console(width=160).print(table)
    print(f"`default` runs the {resolve_mode('auto')} encoder on this CPU (native bf16: {native_bf16()})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"head": args.head, "threads": args.threads, "n": args.n, "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "native_bf16": native_bf16(), "default_mode": resolve_mode("auto"),
            "int8_activation_bits": int8_activation_bits()}
    RESULTS.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
