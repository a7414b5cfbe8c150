"""CLI commands for the sentiment classifier: classify, eval-classifier and train-classifier."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

MODEL_HELP = (
    'Model: "default" (embedded e5 + head; "default-int8" is ~2.5x faster on CPU, a little less accurate), '
    '"lexicon", a Hugging Face hub id or a local path.'
)
_err = Console(stderr=True)


def _open_input(file: str) -> TextIO:
    if file == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") \
            if hasattr(sys.stdin, "buffer") else sys.stdin
    path = Path(file)
    if not path.is_file():
        raise typer.BadParameter(f"{file} does not exist", param_hint="FILE")
    return open(path, encoding="utf-8", errors="replace", newline="")


def read_records(stream: TextIO, name: str = "-") -> Iterator[dict[str, Any]]:
    """Records with a `text` field from JSONL, TSV with a `text` column, or plain text lines.

    The format is taken from the file suffix (.jsonl/.json, .tsv) or else from the first line:
    `{` means JSONL, a tab-separated header with a `text` column means TSV, anything else is one
    text per line (blank lines are skipped).
    """
    first = stream.readline()
    suffix = Path(name).suffix.lower()
    rest: Iterable[str] = stream
    if suffix in (".jsonl", ".json") or (suffix != ".tsv" and first.lstrip().startswith("{")):
        for n, line in enumerate([first, *rest] if first else [], start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"line {n}: not JSON ({exc})", param_hint="FILE") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                message = f"line {n}: expected an object with a 'text' string"
                raise typer.BadParameter(message, param_hint="FILE")
            yield obj
    elif suffix == ".tsv" or ("\t" in first and "text" in first.rstrip("\r\n").split("\t")):
        header = first.rstrip("\r\n").split("\t")
        if "text" not in header:
            raise typer.BadParameter("TSV input needs a header with a 'text' column", param_hint="FILE")
        for row in csv.reader(rest, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row:
                yield dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
    else:
        for line in [first, *rest] if first else []:
            text = line.rstrip("\r\n")
            if text.strip():
                yield {"text": text}


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _print_scores(console: Console, title: str, s: dict[str, Any], seconds: float | None = None) -> None:
    from models.sentiment import LABELS

    summary = Table(title=title)
    for col in ("texts", "accuracy", "macro recall", "macro F1") + (("texts/s",) if seconds else ()):
        summary.add_column(col, justify="right")
    row = [str(s["n"]), f"{s['accuracy']:.4f}", f"{s['macro_recall']:.4f}", f"{s['macro_f1']:.4f}"]
    summary.add_row(*row, *([f"{s['n'] / seconds:.1f}"] if seconds else []))
    console.print(summary)
    confusion = Table(title="confusion matrix (rows: truth, columns: predicted)")
    confusion.add_column("truth \\ predicted")
    for lab in LABELS:
        confusion.add_column(lab, justify="right")
    confusion.add_column("recall", justify="right")
    confusion.add_column("F1", justify="right")
    for lab, counts in zip(LABELS, s["confusion"], strict=True):
        confusion.add_row(lab, *[str(c) for c in counts], f"{s['recall'][lab]:.3f}", f"{s['f1'][lab]:.3f}")
    console.print(confusion)


def register(app: typer.Typer) -> None:
    """Add `classify`, `eval-classifier` and `train-classifier` to `app`."""

    @app.command("classify")
    def classify(
        file: str = typer.Argument("-", help="Text lines, TSV with a 'text' column or JSONL; '-' is stdin."),
        model: str = typer.Option("default", "--model", help=MODEL_HELP),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write JSONL here, not to stdout."),
    ) -> None:
        """Classify texts; write JSONL: the input fields plus label, scores and complaint."""
        from models.sentiment import build_classifier

        clf = build_classifier(model, device=device, batch_size=batch_size)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(output, "w", encoding="utf-8")) if output else sys.stdout
            stream = stack.enter_context(_open_input(file))
            for chunk in _chunks(read_records(stream, file), 256):
                results = clf.classify([str(r["text"]) for r in chunk])
                for record, result in zip(chunk, results, strict=True):
                    out.write(json.dumps({**record, **result.as_dict()}, ensure_ascii=False) + "\n")
                out.flush()

    @app.command("eval-classifier")
    def eval_classifier(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="TSV with 'text' and 'label'."),
        model: str = typer.Option("default", "--model", help=MODEL_HELP),
        device: str = typer.Option("cpu", "--device"),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the scores as JSON here."),
    ) -> None:
        """Accuracy, macro recall, macro F1 and the confusion matrix on a labelled TSV file."""
        from models.sentiment import LABELS, build_classifier
        from models.sentiment.training import read_tsv, scores

        try:
            texts, labels = read_tsv(file)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="FILE") from exc
        clf = build_classifier(model, device=device, batch_size=batch_size)
        start = time.perf_counter()
        results = clf.classify(texts)
        seconds = time.perf_counter() - start
        s = scores(labels, [LABELS.index(r.label) for r in results])
        _print_scores(Console(), f"{file.name} — model {model}", s, seconds)
        if json_out:
            payload = {"file": str(file), "model": model, "seconds": round(seconds, 3), **s}
            json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

    @app.command("train-classifier")
    def train_classifier(
        data: Path = typer.Option(..., "--data", exists=True, file_okay=False,
                                  help="Dir with tweeteval/ and sb10k_de/ (train.tsv, val.tsv)."),
        extra: list[Path] = typer.Option([], "--extra", exists=True, dir_okay=False,
                                         help="More labelled TSV files (e.g. corrected labels); repeatable."),
        out: Path | None = typer.Option(None, "--out", help="Head file (default: the shipped asset)."),
        seed: int = typer.Option(0, "--seed"),
        batch_size: int = typer.Option(64, "--batch-size", min=1),
        mode: str | None = typer.Option(
            None, "--mode", help="Encoder mode whose embeddings the head is trained on: fp32, bf16, int8 (default), "
                                 "int8-noqkv."),
    ) -> None:
        """Train the default model's head on frozen embeddings and report validation scores."""
        from models.sentiment import ENCODER_MODES, HEAD_PATH
        from models.sentiment.training import train_from_dir

        console = Console()
        if mode is not None and (mode not in ENCODER_MODES or mode == "auto"):
            raise typer.BadParameter(f"expected one of {', '.join(m for m in ENCODER_MODES if m != 'auto')}",
                                     param_hint="--mode")
        head = train_from_dir(data, extra=list(extra), seed=seed, batch_size=batch_size,
                              config={"encoder_mode": mode} if mode else None,
                              log=lambda m: _err.print(m, highlight=False))
        target = out or HEAD_PATH
        head.save(target)
        for name, s in dict(head.meta.get("validation", {})).items():  # type: ignore[call-overload]
            _print_scores(console, f"validation: {name}", s)
        console.print(f"head written to {target} (+ {target.with_suffix('.json').name})")
