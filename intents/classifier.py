"""The intent classifier: TF-IDF n-grams of characters, readings and lemmas with a calibrated linear SVM."""

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from intents.data import Example, data_hash, load_examples
from intents.normalize import normalize
from intents.readings import Reader, shared_reader
from intents.types import Intent

logger = logging.getLogger(__name__)

# Bump when the features or the saved layout change, so that older model files are retrained.
MODEL_FORMAT = 3

# What the classifier looks at, each with its own TF-IDF: the normalized characters, the romaji key of the
# readings (intents.readings), the content lemmas. Measured on the development and held-out sets with
# `python benchmarks/bench_nlu_features.py`; the figures are in the README.
VIEWS = ("text", "reading", "lemmas")


@dataclass(frozen=True, slots=True)
class Features:
    """The views of one message that the vectorizers read."""

    text: str
    reading: str
    lemmas: str

    def view(self, name: str) -> str:
        """One view by name."""
        return str(getattr(self, name))


def features(normalized_text: str, reader: Reader | None = None) -> Features:
    """The views of a normalized message.

    Args:
        normalized_text: Output of `intents.normalize.normalize`.
        reader: The reader of Japanese; default: the process's shared one.

    Returns:
        The features.
    """
    reading = (reader or shared_reader()).read(normalized_text)
    return Features(normalized_text, reading.key, " ".join(reading.lemmas))


def build_vectorizers(views: tuple[str, ...] = VIEWS) -> list[tuple[str, Any]]:
    """The unfitted vectorizers, each with the view it reads; sklearn is imported here so that importing
    `intents` stays light.

    Args:
        views: Which views to use (all by default; fewer to measure what each adds).

    Returns:
        `(view, vectorizer)` pairs.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    def tfidf(**options: Any) -> Any:
        return TfidfVectorizer(sublinear_tf=True, lowercase=False, **options)

    chosen: list[tuple[str, Any]] = []
    if "text" in views:
        # char_wb n-grams carry Japanese (no spaces) and English misspellings alike.
        chosen.append(("text", tfidf(analyzer="char_wb", ngram_range=(1, 4))))
        # Latin word uni- and bigrams for English phrasing ("log in", "pay back").
        chosen.append(("text", tfidf(analyzer="word", token_pattern=r"[a-z0-9]+", ngram_range=(1, 2))))
    if "reading" in views:
        # Romaji n-grams: where 「しはらい」, 「支払い」 and "shiharai" meet.
        chosen.append(("reading", tfidf(analyzer="char_wb", ngram_range=(2, 5), min_df=2)))
    if "lemmas" in views:
        chosen.append(("lemmas", tfidf(analyzer="word", token_pattern=r"\S+", ngram_range=(1, 1))))
    return chosen


def build_model() -> Any:
    """The unfitted model: a LinearSVC calibrated with per-class sigmoids (5-fold, one final model)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    return CalibratedClassifierCV(LinearSVC(C=0.5), method="sigmoid", cv=5, ensemble=False)


def fit(rows: list[Features], labels: list[str], views: tuple[str, ...] = VIEWS) -> tuple[list[tuple[str, Any]], Any]:
    """Fit the vectorizers and the model.

    Args:
        rows: The features of each example.
        labels: Each example's label (an intent, or `out_of_scope/<kind>`).
        views: Which views to use.

    Returns:
        The fitted `(view, vectorizer)` pairs and the fitted calibrated model.
    """
    from scipy.sparse import hstack

    vectorizers = build_vectorizers(views)
    matrix = hstack([vectorizer.fit_transform([row.view(view) for row in rows]) for view, vectorizer in vectorizers])
    model = build_model()
    model.fit(matrix.tocsr(), labels)
    return vectorizers, model


@dataclass(frozen=True, slots=True)
class Scores:
    """One message's scores: every intent's probability, best first (out_of_scope's kinds summed into
    out_of_scope), and the likeliest kind of out_of_scope."""

    ranking: list[tuple[Intent, float]]
    out_of_scope_kind: str | None


@dataclass(frozen=True, eq=False)  # numpy fields: compare models by their data_hash, not with ==
class IntentModel:
    """A trained classifier with what it was trained on. Read-only, so safe to share between threads.

    It keeps the fitted vectorizers and, instead of the sklearn estimator, the linear SVM's weights and
    the sigmoid calibration of each class. Scoring one message repeats sklearn's arithmetic (TF-IDF with
    sublinear tf and l2 norm, the SVM's decision, the per-class sigmoids normalized to sum to one) on
    the message's few n-grams, without sklearn's per-call input validation: about 0.1 ms instead of 2.
    Tests check that the probabilities equal the fitted model's `predict_proba`.
    """

    views: tuple[str, ...]  # the view each vectorizer reads
    vectorizers: tuple[Any, ...]
    weights: tuple[np.ndarray, ...]  # one (features, classes) block per vectorizer
    intercept: np.ndarray
    sigmoid_a: np.ndarray
    sigmoid_b: np.ndarray
    labels: tuple[str, ...]  # an intent, or out_of_scope/<kind>
    data_hash: str
    example_counts: dict[str, dict[str, int]]
    train_seconds: float
    sklearn_version: str
    format_version: int = MODEL_FORMAT

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scorers", self._build_scorers())
        object.__setattr__(self, "_intents", self._label_intents())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_scorers", None)  # analyzers are rebuilt on load rather than pickled twice
        state.pop("_intents", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "_scorers", self._build_scorers())
        object.__setattr__(self, "_intents", self._label_intents())

    def _build_scorers(self) -> tuple[tuple[str, Any, dict[str, int], np.ndarray, np.ndarray], ...]:
        return tuple(
            (view, vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, block)
            for view, vectorizer, block in zip(self.views, self.vectorizers, self.weights, strict=True)
        )

    def _label_intents(self) -> tuple[tuple[Intent, ...], np.ndarray]:
        """The intents in a fixed order, and for each label the index of its intent."""
        intents = tuple(dict.fromkeys(Intent(label.partition("/")[0]) for label in self.labels))
        return intents, np.array([intents.index(Intent(label.partition("/")[0])) for label in self.labels])

    @property
    def classes(self) -> tuple[Intent, ...]:
        """The intents the model can answer."""
        return self._intents[0]  # type: ignore[attr-defined]

    @classmethod
    def from_fitted(cls, vectorizers: list[tuple[str, Any]], calibrated: Any, **metadata: Any) -> "IntentModel":
        """Take the parts that scoring needs out of what `fit` returned.

        Args:
            vectorizers: The fitted `(view, vectorizer)` pairs.
            calibrated: The fitted CalibratedClassifierCV(ensemble=False) around a LinearSVC.
            **metadata: data_hash, example_counts, train_seconds and sklearn_version.

        Returns:
            The model.
        """
        (fitted,) = calibrated.calibrated_classifiers_
        coef = fitted.estimator.coef_
        blocks, offset = [], 0
        for _, vectorizer in vectorizers:
            size = len(vectorizer.vocabulary_)
            blocks.append(np.ascontiguousarray(coef[:, offset : offset + size].T))
            offset += size
        return cls(
            views=tuple(view for view, _ in vectorizers),
            vectorizers=tuple(vectorizer for _, vectorizer in vectorizers),
            weights=tuple(blocks),
            intercept=np.array(fitted.estimator.intercept_, dtype=float),
            sigmoid_a=np.array([calibrator.a_ for calibrator in fitted.calibrators], dtype=float),
            sigmoid_b=np.array([calibrator.b_ for calibrator in fitted.calibrators], dtype=float),
            labels=tuple(str(label) for label in calibrated.classes_),
            **metadata,
        )

    def probabilities(self, row: Features) -> np.ndarray:
        """Calibrated probability of each label in `labels`, as CalibratedClassifierCV computes it.

        Args:
            row: The message's features (`features(normalized_text)`).

        Returns:
            One probability a label, summing to 1.
        """
        decision = self.intercept.copy()
        for view, analyze, vocabulary, idf, block in self._scorers:  # type: ignore[attr-defined]
            # Counting the grams first (in C) leaves one vocabulary lookup per distinct gram.
            known = [(index, count) for gram, count in Counter(analyze(row.view(view))).items()
                     if (index := vocabulary.get(gram)) is not None]
            if not known:
                continue
            indices = np.fromiter((index for index, _ in known), dtype=np.intp, count=len(known))
            counts = np.fromiter((count for _, count in known), dtype=float, count=len(known))
            weights = (np.log(counts) + 1.0) * idf[indices]
            weights /= np.sqrt(weights @ weights)
            decision += weights @ block[indices]
        # 1 / (1 + exp(a·d + b)), written so that a large exponent cannot overflow.
        scores = np.exp(-np.logaddexp(0.0, self.sigmoid_a * decision + self.sigmoid_b))
        total = scores.sum()
        return scores / total if total else np.full(len(scores), 1.0 / len(scores))

    def score(self, row: Features) -> Scores:
        """Every intent's probability for one message, and the likeliest kind of out_of_scope.

        Args:
            row: The message's features.

        Returns:
            The scores; the kinds of out_of_scope count together as out_of_scope.
        """
        probabilities = self.probabilities(row)
        intents, index_of_label = self._intents  # type: ignore[attr-defined]
        by_intent = np.bincount(index_of_label, weights=probabilities, minlength=len(intents))
        order = np.argsort(-by_intent, kind="stable")
        kinds = [(p, label.partition("/")[2]) for label, p in zip(self.labels, probabilities, strict=True)
                 if label.startswith(f"{Intent.OUT_OF_SCOPE.value}/")]
        return Scores([(intents[index], float(by_intent[index])) for index in order],
                      max(kinds)[1] if kinds else None)

    def rank(self, row: Features) -> list[tuple[Intent, float]]:
        """Score every intent for one message.

        Args:
            row: The message's features.

        Returns:
            `(intent, probability)` for every intent, most probable first.
        """
        return self.score(row).ranking

    def save(self, path: Path) -> None:
        """Write the model to a joblib file, creating its folder.

        Args:
            path: Destination file.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        joblib.dump(self, temporary, compress=3)
        temporary.replace(path)  # never leave a half-written model where the service looks for one
        # What it was trained on, beside it: `serve --workers N` checks this without loading the model.
        stamp_of(path).write_text(json.dumps(self.stamp()), encoding="utf-8")
        logger.info("saved intent model to %s", path)

    def stamp(self) -> dict[str, Any]:
        """What makes the model fresh or stale: its training data's hash, its format, scikit-learn's version."""
        return {"data_hash": self.data_hash, "format_version": self.format_version,
                "sklearn_version": self.sklearn_version}

    @staticmethod
    def load(path: Path) -> "IntentModel":
        """Read a model written by `save`.

        Args:
            path: The joblib file.

        Returns:
            The model.

        Raises:
            TypeError: The file holds something else.
            OSError: The file cannot be read.
        """
        model = joblib.load(path)
        if not isinstance(model, IntentModel):
            raise TypeError(f"{path} holds {type(model).__name__}, not an IntentModel")
        return model


def current_stamp() -> dict[str, Any]:
    """The stamp (`IntentModel.stamp`) of a model trained now: on the shipped data, by this format and
    scikit-learn."""
    import sklearn  # imported here, as everywhere in this module: importing the model must stay cheap

    return {"data_hash": data_hash(), "format_version": MODEL_FORMAT, "sklearn_version": sklearn.__version__}


def stamp_of(model_path: Path) -> Path:
    """The file beside a saved model that says what it was trained on (`IntentModel.stamp`)."""
    return model_path.with_name(f"{model_path.name}.json")


def train(data_dir: Path | None = None, views: tuple[str, ...] = VIEWS,
          examples: list[Example] | None = None) -> IntentModel:
    """Train the intent classifier on the Rasa YAML training data.

    Args:
        data_dir: Folder with `nlu_ja.yml` and `nlu_en.yml`; default: the package's data folder.
        views: Which views to use (all by default; fewer to measure what each adds).
        examples: Train on these instead of the files' examples (cross-validation).

    Returns:
        The trained model, carrying the hash of the data it was trained on.

    Raises:
        intents.data.DataError: The training data is missing or invalid.
    """
    import sklearn

    started = time.perf_counter()
    trained_on = data_hash(data_dir)
    examples = load_examples(data_dir) if examples is None else examples
    counts: dict[str, Counter[str]] = {}
    for example in examples:
        counts.setdefault(example.intent.value, Counter())[example.lang.value] += 1
    reader = shared_reader()
    rows = [features(normalize(example.text), reader) for example in examples]
    vectorizers, model = fit(rows, [example.label for example in examples], views)
    seconds = time.perf_counter() - started
    logger.info("trained intent model on %d examples in %.2f s", len(examples), seconds)
    return IntentModel.from_fitted(
        vectorizers, model,
        data_hash=trained_on,
        example_counts={intent: dict(by_lang) for intent, by_lang in counts.items()},
        train_seconds=seconds,
        sklearn_version=sklearn.__version__,
    )
