"""CLI commands for the sentiment classifier: classify, eval-classifier, train-classifier, classifier."""

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

from models.errors import OpenEarError

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


def _write(out: TextIO, records: list[dict[str, Any]], results: list[Any]) -> None:
    for record, result in zip(records, results, strict=True):
        out.write(json.dumps({**record, **result.as_dict()}, ensure_ascii=False) + "\n")
    out.flush()


def register(app: typer.Typer) -> None:
    """Add `classify`, `eval-classifier` and `train-classifier` to `app`."""

    @app.command("classify")
    def classify(
        file: str = typer.Argument("-", help="Text lines, TSV with a 'text' column or JSONL; '-' is stdin."),
        model: str = typer.Option("default", "--model", help=MODEL_HELP),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write JSONL here, not to stdout."),
        adapt: bool = typer.Option(True, "--adapt/--no-adapt",
                                   help="Correct the scores for the input's own class mix when it holds at least "
                                        "500 texts (bounded EM prior re-estimation; says so on stderr)."),
    ) -> None:
        """Classify texts; write JSONL: the input fields plus label, scores and complaint."""
        from models.sentiment import build_classifier, make_result
        from models.sentiment.adaptive import adaptable
        from models.sentiment.priors import fit_shift

        clf = build_classifier(model, device=device, batch_size=batch_size)
        found = adaptable(clf) if adapt else None
        if adapt and found is None:
            _err.print(f"not adapted to this input's class mix: model {model} does not declare the class mix it "
                       "was trained under", highlight=False, soft_wrap=True)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(output, "w", encoding="utf-8")) if output else sys.stdout
            stream = stack.enter_context(_open_input(file))
            if found is None:
                for chunk in _chunks(read_records(stream, file), 256):
                    results = clf.classify([str(r["text"]) for r in chunk])
                    _write(out, chunk, results)
                return
            records = list(read_records(stream, file))  # the whole input: its class mix is estimated first
            import numpy as np

            texts = [str(r["text"]) for r in records]
            probabilities, train_prior = found
            raw = np.concatenate([probabilities(texts[i:i + 4096]) for i in range(0, len(texts), 4096)]) \
                if texts else np.zeros((0, 3), np.float32)
            shift = fit_shift(raw, train_prior)
            _err.print(shift.describe(), highlight=False, soft_wrap=True)
            adapted = shift.apply(raw)
            for start in range(0, len(records), 256):
                chunk = records[start:start + 256]
                _write(out, chunk, [make_result(t, p, getattr(clf, "complaint_model", None))
                                    for t, p in zip(texts[start:start + 256], adapted[start:start + 256],
                                                    strict=True)])

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
        ctx: typer.Context,
        data: Path = typer.Option(..., "--data", exists=True, file_okay=False,
                                  help="Dir with one folder per corpus (train.tsv, val.tsv), e.g. ../shared/datasets."),
        out: Path | None = typer.Option(None, "--out", file_okay=False,
                                        help="Write adapter + head into this dir (default: the shipped assets)."),
        seed: int = typer.Option(0, "--seed"),
        epochs: float | None = typer.Option(None, "--epochs", min=0.0001, help="Passes over the data (default 2)."),
        layers: int | None = typer.Option(None, "--layers", min=1, max=12,
                                          help="A shallower, faster model: keep only the encoder's lower N layers."),
        frozen_layers: int | None = typer.Option(None, "--frozen-layers", min=0, max=11,
                                                 help="Layers kept frozen below the LoRA-tuned ones (default 8)."),
        rank: int | None = typer.Option(None, "--rank", min=1, max=256,
                                        help="LoRA rank of the adapter (default 8)."),
        teacher: str | None = typer.Option(None, "--teacher",
                                           help='Distil from this model: "active", a trained dir or its head file.'),
        distil: float | None = typer.Option(None, "--distil", min=0.0, max=1.0,
                                            help="With --teacher: weight of the teacher's posteriors in the loss "
                                                 "(default 0.5)."),
        embed_distil: float | None = typer.Option(
            None, "--embed-distil", min=0.0,
            help="With --teacher: also match the teacher's sentence vectors (which topic groups and reply "
                 "suggestions read), with this weight on their relative squared error (default 0: off)."),
        resume: bool = typer.Option(True, "--resume/--restart", help="Continue an interrupted run with the same "
                                                                     "inputs from its last checkpoint."),
        from_corrections: bool = typer.Option(
            False, "--from-corrections", help="Retrain the active model on the team's sentiment corrections (the "
                                              "database of --config), and the complaint score on which mentions "
                                              "the team answered or dismissed; gate each and switch only if it is "
                                              "no worse."),
        min_corrections: int = typer.Option(50, "--min-corrections", min=1),
        min_outcomes: int = typer.Option(20, "--min-outcomes", min=2,
                                         help="With --from-corrections: answered and dismissed mentions (each) "
                                              "the complaint score needs to learn from."),
        frozen_encoder: bool = typer.Option(False, "--frozen-encoder", help="Only the head, on frozen embeddings "
                                                                            "(the first-round model)."),
        extra: list[Path] = typer.Option([], "--extra", exists=True, dir_okay=False,
                                         help="With --frozen-encoder: more labelled TSV files; repeatable."),
        mode: str | None = typer.Option(None, "--mode", help="With --frozen-encoder: the embeddings' encoder mode."),
    ) -> None:
        """Fine-tune the default model (LoRA on the encoder's top layers + head) and report validation scores."""
        console = Console()
        if frozen_encoder:
            _train_frozen(console, data, extra, out, seed, mode)
            return
        with _progress() as progress:
            if from_corrections:
                _retrain_from_corrections(ctx, console, data, min_corrections, progress, seed)
                _learn_complaint(ctx, console, min_outcomes)
                return
            from models.sentiment.adapter import ADAPTER_PATH
            from models.sentiment.versions import train_version

            if embed_distil and teacher is None:
                raise typer.BadParameter("matching sentence vectors needs a model to match: add --teacher",
                                         param_hint="--embed-distil")
            target = out or ADAPTER_PATH.parent
            options = (("epochs", epochs), ("layers", layers), ("frozen_layers", frozen_layers), ("rank", rank),
                       ("distil", distil), ("embed_distil", embed_distil))
            overrides = {k: v for k, v in options if v is not None}
            head_path = train_version(data, target, seed=seed, config=overrides or None, progress=progress,
                                      resume=resume, modes=("fp32", "int8"), teacher=_teacher_head(teacher))
        from models.sentiment.head import Head

        for name, sc in dict(Head.load(head_path).meta.get("validation", {})).items():  # type: ignore[call-overload]
            _print_scores(console, f"validation: {name}", sc)
        console.print(f"adapter and head written to {target}")

    classifier_app = typer.Typer(help="The active default model: status and rollback.", no_args_is_help=True)
    app.add_typer(classifier_app, name="classifier")

    @classifier_app.command("status")
    def classifier_status() -> None:
        """Which trained version `model: default` uses, and the switches so far."""
        from models.sentiment import versions

        state = versions.read_active()
        console = Console()
        console.print(f"active: {state['active']} ({versions.head_path_of(str(state['active']))})")
        console.print(f"previous: {state.get('previous') or '-'}")
        for h in state.get("history", [])[-10:]:
            console.print(f"  {h['at']}  {h['from']} -> {h['to']}  ({h['reason']})", highlight=False)

    @classifier_app.command("rollback")
    def classifier_rollback(ctx: typer.Context) -> None:
        """Make the previous version active again (audited when a database is configured)."""
        from models.orm import utcnow
        from models.sentiment import versions
        from responders.learning import record_rollback

        state = versions.rollback()
        if ctx.obj is not None:  # audited in the configured database, when there is one
            with contextlib.suppress(OpenEarError), ctx.obj.app().sessions.begin() as session:
                record_rollback(session, state, now=utcnow(), user_id=None)
        Console().print(f"active classifier: {state['active']} (was {state['previous']})")


def _teacher_head(teacher: str | None) -> Path | None:
    """--teacher: "active", a directory holding a trained version, or a head file."""
    from models.sentiment.head import HEAD_PATH
    from models.sentiment.versions import active_head_path

    if teacher is None:
        return None
    path = active_head_path() if teacher == "active" else Path(teacher)
    if path.is_dir():
        path = path / HEAD_PATH.name
    if not path.is_file():
        raise typer.BadParameter(f"no trained model at {path}: give 'active', a train-classifier --out dir "
                                 "or its head file", param_hint="--teacher")
    return path


PHASES = {"teacher": "teacher posteriors", "cache": "caching frozen layers", "train": "fine-tuning"}
"""progress phase -> what the bar says."""


class _RichProgress:
    """Rich progress bars with ETA for the phases of fine-tuning (PHASES)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                             TextColumn("{task.fields[info]}"), console=_err)
        self.tasks: dict[str, Any] = {}
        self._logged = 0.0

    def __call__(self, phase: str, done: int, total: int, info: dict[str, float]) -> None:
        key = f"{phase}:{total}"
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(PHASES.get(phase, phase), total=total, info="")
        text = "  ".join(f"{k} {v:.3f}" if k == "loss" else f"{k.replace('_', ' ')} {v:.0f}"
                         for k, v in info.items() if k != "corpus")
        self.bars.update(self.tasks[key], completed=done, info=text)
        if not _err.is_terminal and (time.monotonic() - self._logged > 30 or done == total):  # e.g. a log file
            self._logged = time.monotonic()
            _err.print(f"{PHASES.get(phase, phase)}: {done}/{total} {text}", highlight=False)


@contextlib.contextmanager
def _progress() -> Iterator[_RichProgress]:
    progress = _RichProgress()
    with progress.bars:
        yield progress


def _train_frozen(console: Console, data: Path, extra: list[Path], out: Path | None, seed: int,
                  mode: str | None) -> None:
    from models.sentiment import ENCODER_MODES, HEAD_PATH
    from models.sentiment.training import train_from_dir

    if mode is not None and (mode not in ENCODER_MODES or mode == "auto"):
        raise typer.BadParameter(f"expected one of {', '.join(m for m in ENCODER_MODES if m != 'auto')}",
                                 param_hint="--mode")
    head = train_from_dir(data, extra=list(extra), seed=seed, config={"encoder_mode": mode} if mode else None,
                          log=lambda m: _err.print(m, highlight=False))
    target = (out / HEAD_PATH.name) if out else HEAD_PATH
    head.save(target)
    for name, sc in dict(head.meta.get("validation", {})).items():  # type: ignore[call-overload]
        _print_scores(console, f"validation: {name}", sc)
    console.print(f"head written to {target} (+ {target.with_suffix('.json').name})")


def _retrain_from_corrections(ctx: typer.Context, console: Console, data: Path, min_corrections: int,
                              progress: _RichProgress, seed: int) -> None:
    from models.orm import utcnow
    from responders.learning import retrain

    app_ = ctx.obj.app()
    outcome = retrain(app_.sessions, data, now=utcnow(), min_corrections=min_corrections, progress=progress,
                      seed=seed)
    table = Table(title=f"gate: {outcome.trained_on} corrections trained on, {outcome.held_back} held back")
    for col in ("set", "metric", "current", "candidate", "ok"):
        table.add_column(col, justify="right" if col in ("current", "candidate") else "left")
    for r in outcome.gate_rows:
        table.add_row(r["set"], r["metric"], f"{r['current']:.4f}", f"{r['candidate']:.4f}", "yes" if r["ok"] else "NO")
    if outcome.gate_rows:
        console.print(table)
    console.print(outcome.message + (f"; now active: {outcome.version}" if outcome.switched else ""))


def _learn_complaint(ctx: typer.Context, console: Console, min_outcomes: int) -> None:
    from models.orm import utcnow
    from responders.learning import learn_complaint

    outcome = learn_complaint(ctx.obj.app().sessions, now=utcnow(), min_per_class=min_outcomes)
    for r in outcome.gate_rows:
        console.print(f"gate: {r['set']} ({r['n']}) {r['metric']} current {r['current']:.4f}, "
                      f"candidate {r['candidate']:.4f}: {'ok' if r['ok'] else 'WORSE'}", highlight=False)
    console.print(outcome.message + (f"; now active: {outcome.version}" if outcome.switched else ""),
                  highlight=False)
