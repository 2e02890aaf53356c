"""`madoguchi nlu`: train, try and evaluate the intent model from the command line."""

import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
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
        A dict with text, intent, confidence, candidates, entities, lang, topics and out_of_scope_kind.
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
        "asides": [intent.value for intent in understanding.asides],
        "topics": [{"intent": topic.intent.value, "confidence": round(topic.confidence, 4), "start": topic.start,
                    "end": topic.end} for topic in understanding.topics],
        "out_of_scope_kind": understanding.out_of_scope_kind.value if understanding.out_of_scope_kind else None,
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _scores(expected: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy, out-of-scope recall and macro-F1 of one set of labelled predictions."""
    from sklearn.metrics import f1_score

    correct = sum(e == p for e, p in zip(expected, predicted, strict=True))
    oos = [p for e, p in zip(expected, predicted, strict=True) if e == Intent.OUT_OF_SCOPE]
    return {
        "n": len(expected),
        "accuracy": correct / len(expected) if expected else 0.0,
        "macro_f1": float(f1_score(expected, predicted, labels=sorted(set(expected)), average="macro",
                                   zero_division=0)) if expected else 0.0,
        "oos_recall": sum(p == Intent.OUT_OF_SCOPE for p in oos) / len(oos) if oos else None,
    }


def evaluate(understander: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Measure an understander on labelled messages.

    Args:
        understander: An `Understander`.
        rows: Dicts with at least `text` and `intent`; optionally `lang`, and `also` (the intent of a second
            question in the same message).

    Returns:
        A report with n, accuracy, macro_f1 (over the expected intents), oos_recall (None without
        out_of_scope rows), by_lang (the same three per language), topics (for rows with `also`: how
        many had both questions answered in order, the second answered, the second offered as a button),
        latency_ms_p50, latency_ms_p99, per_intent (precision,
        recall, f1, support), confusion (expected → predicted → count, over every row), confusions
        (expected, predicted, count; the mistakes, most frequent first) and errors (text, expected,
        predicted).

    Raises:
        ValueError: `rows` is empty.
    """
    if not rows:
        raise ValueError("nothing to evaluate")
    expected = [str(row["intent"]) for row in rows]
    answers = _answer_all(understander, rows)
    pairs = list(zip(expected, answers.predicted, strict=True))
    return {
        **_scores(expected, answers.predicted),
        "by_lang": _scores_by_lang(expected, answers.predicted, answers.languages),
        "topics": _second_questions(rows, answers),
        "latency_ms_p50": _percentile(answers.latencies, 0.50),
        "latency_ms_p99": _percentile(answers.latencies, 0.99),
        "per_intent": _per_intent(expected, answers.predicted),
        "confusion": _confusion(pairs),
        "confusions": [{"expected": e, "predicted": p, "count": count}
                       for (e, p), count in Counter(pair for pair in pairs if pair[0] != pair[1]).most_common()],
        "errors": [
            {"text": str(row["text"]), "expected": e, "predicted": p, "lang": lang}
            for row, (e, p), lang in zip(rows, pairs, answers.languages, strict=True)
            if e != p
        ],
    }


@dataclass
class _Answers:
    """What an understander made of each labelled message, in the order of the rows."""

    predicted: list[str] = field(default_factory=list)  # the intent answered
    topics: list[list[str]] = field(default_factory=list)  # the questions answered (the intent, when one)
    offered: list[list[str]] = field(default_factory=list)  # the asides offered as buttons
    latencies: list[float] = field(default_factory=list)  # milliseconds
    languages: list[str] = field(default_factory=list)  # the row's `lang`, else the one detected


def _answer_all(understander: Any, rows: list[dict[str, Any]]) -> _Answers:
    """Understand every row's text, timing each."""
    answers = _Answers()
    for row in rows:
        started = time.perf_counter()
        understanding = understander.understand(str(row["text"]))
        answers.latencies.append((time.perf_counter() - started) * 1000)
        answers.predicted.append(understanding.intent.value)
        answers.topics.append([topic.intent.value for topic in understanding.topics] or [understanding.intent.value])
        answers.offered.append([intent.value for intent in understanding.asides])
        answers.languages.append(str(row.get("lang") or understanding.lang.value))
    return answers


def _scores_by_lang(expected: list[str], predicted: list[str], languages: list[str]) -> dict[str, dict[str, Any]]:
    """`_scores` of the rows of each language."""
    by_lang = {}
    for lang in sorted(set(languages)):
        chosen = [index for index, value in enumerate(languages) if value == lang]
        by_lang[lang] = _scores([expected[i] for i in chosen], [predicted[i] for i in chosen])
    return by_lang


def _second_questions(rows: list[dict[str, Any]], answers: _Answers) -> dict[str, int]:
    """For the rows that ask a second question (`also`): how many had both answered in order, the second
    answered, the second offered as a button."""
    two = [(row, topics, buttons) for row, topics, buttons in zip(rows, answers.topics, answers.offered, strict=True)
           if row.get("also")]
    return {
        "n": len(two),
        "both_found": sum(topics[:2] == [str(row["intent"]), str(row["also"])] for row, topics, _ in two),
        "second_found": sum(str(row["also"]) in topics for row, topics, _ in two),
        "second_offered": sum(str(row["also"]) in buttons for row, _, buttons in two),
    }


def _per_intent(expected: list[str], predicted: list[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of every intent expected or predicted, in name order."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = sorted(set(expected) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=labels, zero_division=0
    )
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }


def _confusion(pairs: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Expected → predicted → count, over every (expected, predicted) pair."""
    confusion: dict[str, dict[str, int]] = {}
    for e, p in pairs:
        confusion.setdefault(e, {}).setdefault(p, 0)
        confusion[e][p] += 1
    return confusion


def read_rows(file: Path) -> list[dict[str, Any]]:
    """The labelled lines of a JSONL file (each with at least `text` and `intent`).

    Raises:
        click.ClickException: A line is not JSON, lacks a key, or the file has no lines.
    """
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
    return rows


def _summary(scores: dict[str, Any]) -> str:
    oos = "n/a" if scores["oos_recall"] is None else f"{scores['oos_recall']:.3f}"
    return (f"n {scores['n']:>4}  accuracy {scores['accuracy']:.3f}  macro-F1 {scores['macro_f1']:.3f}  "
            f"out_of_scope recall {oos}")


def print_report(report: dict[str, Any]) -> None:
    """Print an evaluation report for people: totals, per language, per intent and the confusion table."""
    click.echo(_summary(report))
    for lang, scores in report["by_lang"].items():
        click.echo(f"  {lang}: {_summary(scores)}")
    topics = report["topics"]
    if topics["n"]:
        click.echo(f"two questions in one message: {topics['n']}, both answered in order {topics['both_found']}, "
                   f"the second answered {topics['second_found']}, the second offered as a button "
                   f"{topics['second_offered']}")
    click.echo(f"latency per message: p50 {report['latency_ms_p50']:.2f} ms  p99 {report['latency_ms_p99']:.2f} ms")
    click.echo(f"\n{'intent':<24}{'precision':>10}{'recall':>8}{'support':>9}")
    for label, scores in report["per_intent"].items():
        click.echo(f"{label:<24}{scores['precision']:>10.2f}{scores['recall']:>8.2f}{scores['support']:>9}")
    labels = list(report["per_intent"])
    click.echo("\nconfusion (rows: expected, columns: predicted, in the order of the rows)")
    click.echo(f"{'':<24}" + "".join(f"{number:>4}" for number in range(1, len(labels) + 1)))
    for number, label in enumerate(labels, start=1):
        row = report["confusion"].get(label, {})
        cells = "".join(f"{row.get(other, 0) or '.':>4}" for other in labels)
        click.echo(f"{number:>2} {label[:21]:<21}{cells}")
    if report["confusions"]:
        click.echo("\nmost confused (expected -> predicted):")
        for pair in report["confusions"][:10]:
            click.echo(f"  {pair['expected']} -> {pair['predicted']}: {pair['count']}")


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
    """Evaluate the model on FILE.jsonl, lines with at least `text` and `intent` (and optionally `lang`, `also`)."""
    from intents.understander import load_understander

    report = evaluate(load_understander(model_path), read_rows(file))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    print_report(report)


if __name__ == "__main__":
    nlu()
