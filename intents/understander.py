"""Understanding one message: intent with calibrated confidence, candidates, entities and language."""

import logging
from datetime import datetime
from pathlib import Path

from core.enums import Language
from intents.classifier import MODEL_FORMAT, IntentModel, train
from intents.data import data_hash
from intents.entities import EntityExtractor
from intents.language import detect_language
from intents.normalize import normalize_with_offsets
from intents.types import Intent, Understanding

logger = logging.getLogger(__name__)

# Below this calibrated probability the answer is out_of_scope, with the candidates for "did you mean…".
# Tuned by 5-fold cross-validation on the training data: at 0.35 about 4.5% of in-scope messages are
# sent to "did you mean…" (their intent is among the three buttons four times in five); at 0.45 twice as
# many are, for few more out-of-scope messages caught. The development set scores the same from 0.1 to 0.45.
CONFIDENCE_THRESHOLD = 0.35
# Longer messages are cut before any work (a worst-case 500 characters take ~1.5 ms): nobody needs more
# to ask about certificates, and a pasted page must not slow the bot down.
MAX_INPUT_CHARS = 500
CANDIDATE_COUNT = 3


class Understander:
    """Turns a message into an `Understanding`. Holds only read-only state, so one instance serves all threads."""

    def __init__(self, model: IntentModel, extractor: EntityExtractor | None = None) -> None:
        """Wrap a trained model and an entity extractor.

        Args:
            model: The trained intent classifier.
            extractor: The entity extractor; default: one with the default student-number pattern.
        """
        self.model = model
        self._extractor = extractor or EntityExtractor()

    def understand(self, text: str, now: datetime | None = None) -> Understanding:
        """Understand one message.

        A message without any letter, kana or kanji (empty, emoji, punctuation) is out_of_scope at once,
        with no candidates. Otherwise the classifier's best intent is the answer when its probability
        reaches `CONFIDENCE_THRESHOLD`; below it, the answer is out_of_scope and `candidates` holds the
        three best in-scope intents to offer as buttons.

        Args:
            text: The message as the student wrote it.
            now: Reference time for relative dates ("明日", "next Monday"); default: now in Asia/Tokyo.

        Returns:
            The understanding; entity spans index `text`.
        """
        head = text[:MAX_INPUT_CHARS]
        normalized = normalize_with_offsets(head)
        entities = self._extractor.extract_normalized(head, normalized, now)
        lang = detect_language(normalized.text, default=Language.JA)
        if not any(char.isalpha() for char in normalized.text):
            return Understanding(text, Intent.OUT_OF_SCOPE, 1.0, (), entities, lang)
        ranking = self.model.rank(normalized.text)
        candidates = tuple((intent, p) for intent, p in ranking if intent is not Intent.OUT_OF_SCOPE)
        best, confidence = ranking[0]
        if best is not Intent.OUT_OF_SCOPE and confidence < CONFIDENCE_THRESHOLD:
            best = Intent.OUT_OF_SCOPE
        return Understanding(text, best, confidence, candidates[:CANDIDATE_COUNT], entities, lang)


def load_understander(model_path: Path | None = None) -> Understander:
    """Load the trained model, or train one when the file is missing, unreadable or stale.

    A model is stale when the training data's hash, the model format or the scikit-learn version differ
    from the ones it was saved with. A model trained here is saved to `model_path` for the next start
    (a failure to write is logged, not raised).

    Args:
        model_path: The joblib file; default: `core.settings.get_settings().nlu_model_path`.

    Returns:
        An understander ready to serve.

    Raises:
        intents.data.DataError: A model had to be trained and the training data is invalid.
    """
    if model_path is None:
        from core.settings import get_settings

        model_path = get_settings().nlu_model_path
    model = _load_if_fresh(model_path)
    if model is None:
        model = train()
        try:
            model.save(model_path)
        except OSError as error:
            logger.warning("could not save the intent model to %s: %s", model_path, error)
    return Understander(model)


def _load_if_fresh(path: Path) -> IntentModel | None:
    if not path.is_file():
        logger.info("no intent model at %s; training one", path)
        return None
    try:
        model = IntentModel.load(path)
    except Exception as error:  # a truncated or foreign pickle: train instead of failing start-up
        logger.warning("cannot read the intent model at %s (%s); training one", path, error)
        return None
    import sklearn

    if getattr(model, "format_version", None) != MODEL_FORMAT or model.sklearn_version != sklearn.__version__:
        logger.info("intent model at %s was saved by another version; training one", path)
        return None
    if model.data_hash != data_hash():
        logger.info("intent model at %s is older than the training data; training one", path)
        return None
    return model
