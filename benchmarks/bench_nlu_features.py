"""What each part of understanding adds: the classifier's views (characters, romaji readings, lemmas) and the
turn understanding (openers set aside, clauses), measured on the development set and the held-out sets.

Run with `.venv/bin/python benchmarks/bench_nlu_features.py`. Each configuration is trained from the shipped
training data and evaluated on every set found: ../shared/dev-set/utterances.jsonl (when it is beside the
repository) and benchmarks/nlu/*.jsonl (written by people who never saw the training data; never
trained on). Prints accuracy, out-of-scope recall and, for messages asking two things, how often both were
found in order. Not a test: it only measures.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intents.classifier import VIEWS, train  # noqa: E402
from intents.clauses import Clause  # noqa: E402
from intents.cli import evaluate  # noqa: E402
from intents.understander import Understander  # noqa: E402

HELD_OUT = sorted((REPO / "benchmarks" / "nlu").glob("*.jsonl"))
SETS = {"dev": REPO.parent / "shared" / "dev-set" / "utterances.jsonl", **{path.stem: path for path in HELD_OUT}}


class WholeMessage(Understander):
    """The understander without the turn understanding: every message classified whole, as before."""

    def _questions(self, clauses: list[Clause]) -> list[Clause]:
        return []


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    """Train each configuration and print its figures on each set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", nargs="*", default=None, help="only this one configuration of views")
    args = parser.parse_args()
    sets = {name: _rows(path) for name, path in SETS.items() if path.is_file()}
    configurations = [(tuple(args.views), True)] if args.views else [
        (("text",), False), (("text",), True), (("text", "reading"), True), (("text", "lemmas"), True),
        (VIEWS, False), (VIEWS, True)]
    header = f"{'views':<22}{'turns':<7}" + "".join(f"{name:>32}" for name in sets)
    print(header + "\n" + " " * 29 + "".join(f"{'acc   oos  (ja / en)   both':>32}" for _ in sets))
    models: dict[tuple[str, ...], Any] = {}
    for views, turns in configurations:
        model = models.setdefault(views, train(views=views))
        understander = (Understander if turns else WholeMessage)(model)
        cells = []
        for rows in sets.values():
            report = evaluate(understander, rows)
            by_lang = report["by_lang"]
            oos = report["oos_recall"]
            topics = report["topics"]
            both = f"{topics['both_found']}/{topics['n']}" if topics["n"] else "-"
            ja, en = (by_lang.get(lang, {}).get("accuracy", 0.0) for lang in ("ja", "en"))
            cells.append(f"{report['accuracy']:.3f} {'-' if oos is None else f'{oos:.2f}'} ({ja:.2f}/{en:.2f}) {both}")
        name = "+".join(views)
        print(f"{name:<22}{'yes' if turns else 'no':<7}" + "".join(f"{cell:>32}" for cell in cells))


if __name__ == "__main__":
    main()
