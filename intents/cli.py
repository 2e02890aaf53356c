"""`madoguchi nlu`: train, try and evaluate the intent model from the command line."""

import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from intents.types import Intent, Understanding

logger = logging.getLogger(__name__)


def _default_model_path() -> Path:
    from core.settings import get_settings

    return get_settings().nlu_model_path


def understanding_to_dict(understanding: Understanding) -> dict[str, Any]:
    """Turn an understanding into plain JSON-ready data.

    Args:
        understanding: The result of `Understander.understand`.

    Returns:
        A dict with text, intent, confidence, candidates, entities and lang.
    """
    return {
        "text": understanding.text,
        "intent": understanding.intent.value,
        "confidence": round(understanding.confidence, 4),
        "candidates": [
            {"intent": intent.value, "confidence": round(confidence, 4)}
            for intent, confidence in understanding.candidates
        ],
        "entities": [
            {
                "type": entity.type.value,
                "value": entity.value,
                "start": entity.start,
                "end": entity.end,
                "text": entity.text,
            }
            for entity in understanding.entities
        ],
        "lang": understanding.lang.value,
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def evaluate(understander: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Measure an understander on labelled messages.

    Args:
        understander: An `Understander`.
        rows: Dicts with at least `text` and `intent`.

    Returns:
        A report with n, accuracy, macro_f1 (over the expected intents), oos_recall (None without
        out_of_scope rows), latency_ms_p50, latency_ms_p99, per_intent (precision, recall, f1, support),
        confusions (expected, predicted, count; most frequent first) and errors (text, expected, predicted).

    Raises:
        ValueError: `rows` is empty.
    """
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    if not rows:
        raise ValueError("nothing to evaluate")
    expected = [str(row["intent"]) for row in rows]
    predicted: list[str] = []
    latencies: list[float] = []
    for row in rows:
        started = time.perf_counter()
        understanding = understander.understand(str(row["text"]))
        latencies.append((time.perf_counter() - started) * 1000)
        predicted.append(understanding.intent.value)
    labels = sorted(set(expected) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=labels, zero_division=0
    )
    correct = sum(e == p for e, p in zip(expected, predicted, strict=True))
    oos = [p for e, p in zip(expected, predicted, strict=True) if e == Intent.OUT_OF_SCOPE]
    confusions = Counter((e, p) for e, p in zip(expected, predicted, strict=True) if e != p)
    return {
        "n": len(rows),
        "accuracy": correct / len(rows),
        "macro_f1": float(
            f1_score(expected, predicted, labels=sorted(set(expected)), average="macro", zero_division=0)
        ),
        "oos_recall": sum(p == Intent.OUT_OF_SCOPE for p in oos) / len(oos) if oos else None,
        "latency_ms_p50": _percentile(latencies, 0.50),
        "latency_ms_p99": _percentile(latencies, 0.99),
        "per_intent": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusions": [{"expected": e, "predicted": p, "count": count} for (e, p), count in confusions.most_common()],
        "errors": [
            {"text": str(row["text"]), "expected": e, "predicted": p}
            for row, e, p in zip(rows, expected, predicted, strict=True)
            if e != p
        ],
    }


@click.group(name="nlu")
def nlu() -> None:
    """Train, try and evaluate the intent model."""


@nlu.command()
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to write; default: the configured nlu_model_path.")  # fmt: skip
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder with nlu_ja.yml and nlu_en.yml; default: the shipped training data.")  # fmt: skip
def train(out: Path | None, data_dir: Path | None) -> None:
    """Train the intent model and write it to a joblib file."""
    from intents.classifier import train as train_model

    path = out or _default_model_path()
    model = train_model(data_dir)
    model.save(path)
    total = sum(sum(by_lang.values()) for by_lang in model.example_counts.values())
    click.echo(f"trained in {model.train_seconds:.2f} s on {total} examples; wrote {path}")
    for intent in sorted(model.example_counts):
        by_lang = model.example_counts[intent]
        click.echo(f"  {intent:<24} ja {by_lang.get('ja', 0):>4}  en {by_lang.get('en', 0):>4}")


@nlu.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file; default: the configured nlu_model_path (trained when missing or stale).")  # fmt: skip
def predict(model_path: Path | None) -> None:
    """Read messages on stdin, one a line, and print one JSON understanding a line."""
    from intents.understander import load_understander

    understander = load_understander(model_path)
    for line in sys.stdin:
        understanding = understander.understand(line.rstrip("\r\n"))
        click.echo(json.dumps(understanding_to_dict(understanding), ensure_ascii=False))


@nlu.command(name="eval")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file; default: the configured nlu_model_path (trained when missing or stale).")  # fmt: skip
def eval_command(file: Path, as_json: bool, model_path: Path | None) -> None:
    """Evaluate the model on FILE.jsonl, lines with at least `text` and `intent`."""
    from intents.understander import load_understander

    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise click.ClickException(f"{file}:{number}: not JSON: {error}") from error
        if not isinstance(row, dict) or "text" not in row or "intent" not in row:
            raise click.ClickException(f"{file}:{number}: needs text and intent")
        rows.append(row)
    if not rows:
        raise click.ClickException(f"{file}: no lines to evaluate")
    report = evaluate(load_understander(model_path), rows)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    oos = "n/a" if report["oos_recall"] is None else f"{report['oos_recall']:.3f}"
    click.echo(f"n {report['n']}  accuracy {report['accuracy']:.3f}  macro-F1 {report['macro_f1']:.3f}  "
               f"out_of_scope recall {oos}")  # fmt: skip
    click.echo(f"latency per message: p50 {report['latency_ms_p50']:.2f} ms  p99 {report['latency_ms_p99']:.2f} ms")
    click.echo(f"\n{'intent':<24}{'precision':>10}{'recall':>8}{'support':>9}")
    for label, scores in report["per_intent"].items():
        click.echo(f"{label:<24}{scores['precision']:>10.2f}{scores['recall']:>8.2f}{scores['support']:>9}")
    if report["confusions"]:
        click.echo("\nmost confused (expected -> predicted):")
        for pair in report["confusions"][:10]:
            click.echo(f"  {pair['expected']} -> {pair['predicted']}: {pair['count']}")


if __name__ == "__main__":
    nlu()
