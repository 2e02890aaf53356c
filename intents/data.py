"""Training data and entity tables in Rasa's NLU YAML format, and the hash that tells a model is stale."""

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.enums import Language
from intents.types import Intent

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
RASA_VERSION = "3.1"
TRAINING_FILES = {Language.JA: "nlu_ja.yml", Language.EN: "nlu_en.yml"}
ENTITIES_FILE = "entities.yml"

# Rasa entity annotations: [text](entity), [text]{"entity": ...}; the classifier sees only the text.
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class DataError(ValueError):
    """A training or entity file that is not valid Rasa NLU YAML for madoguchi."""


@dataclass(frozen=True, slots=True)
class Example:
    """One training sentence; `kind` is the block's `metadata: {kind: …}` (out_of_scope's kinds), if any."""

    text: str
    intent: Intent
    lang: Language
    kind: str | None = None

    @property
    def label(self) -> str:
        """What the classifier learns: the intent, or `intent/kind` (as Rasa names retrieval intents)."""
        return f"{self.intent.value}/{self.kind}" if self.kind else self.intent.value


def _read_nlu(path: Path) -> list[dict]:
    """Read one Rasa NLU file and return its `nlu:` blocks."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or str(document.get("version")) != RASA_VERSION:
        raise DataError(f'{path}: expected a mapping with version: "{RASA_VERSION}"')
    blocks = document.get("nlu")
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise DataError(f"{path}: expected a list of blocks under nlu:")
    return blocks


def _example_lines(path: Path, block: dict) -> list[str]:
    """The sentences of one block's `examples: |` string, annotations stripped."""
    examples = block.get("examples")
    if not isinstance(examples, str):
        raise DataError(f"{path}: block {block!r} has no examples: | string")
    lines = []
    for raw in examples.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise DataError(f"{path}: example line does not start with '- ': {line!r}")
        lines.append(_ANNOTATION.sub(r"\1", line[2:].strip()))
    return lines


def _kind(path: Path, block: dict) -> str | None:
    """The block's `metadata: {kind: …}`: which kind of out-of-scope message its examples are."""
    metadata = block.get("metadata")
    if metadata is None:
        return None
    kind = metadata.get("kind") if isinstance(metadata, dict) else None
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z_]+", kind):
        raise DataError(f"{path}: block of {block['intent']!r} has metadata without a kind: {metadata!r}")
    return kind


def load_examples(data_dir: Path | None = None) -> list[Example]:
    """Read the training sentences of every language.

    Args:
        data_dir: Folder holding `nlu_ja.yml` and `nlu_en.yml`; default: the package's data folder.

    Returns:
        Every example, in file order.

    Raises:
        DataError: A file is missing, not Rasa NLU YAML version 3.1, or names an unknown intent.
    """
    folder = data_dir or DATA_DIR
    examples: list[Example] = []
    for lang, name in TRAINING_FILES.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"missing training file {path}")
        for block in _read_nlu(path):
            if "intent" not in block:
                continue
            try:
                intent = Intent(block["intent"])
            except ValueError as error:
                raise DataError(f"{path}: unknown intent {block['intent']!r}") from error
            kind = _kind(path, block)
            examples.extend(Example(text, intent, lang, kind) for text in _example_lines(path, block))
    logger.debug("read %d training examples from %s", len(examples), folder)
    return examples


def data_hash(data_dir: Path | None = None) -> str:
    """Hash the training files, so that a model trained on other data is recognised as stale.

    Args:
        data_dir: Folder holding the training files; default: the package's data folder.

    Returns:
        A SHA-256 hex digest over the files' names and bytes.

    Raises:
        DataError: A training file is missing.
    """
    folder = data_dir or DATA_DIR
    digest = hashlib.sha256()
    for name in sorted(TRAINING_FILES.values()):
        path = folder / name
        if not path.is_file():
            raise DataError(f"missing training file {path}")
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class EntityTable:
    """Surface forms of dictionary entities: for each form, its entity type and its value."""

    forms: dict[str, tuple[str, str]]


def load_entity_table(path: Path | None = None) -> EntityTable:
    """Read the lookup tables and synonyms of `entities.yml`.

    Each `lookup:` names an entity type and lists its surface forms; each `synonym:` names a value and
    lists the forms that mean it. Every form must be in exactly one lookup and one synonym.

    Args:
        path: The file; default: `entities.yml` in the package's data folder.

    Returns:
        The table, keyed by surface form as written.

    Raises:
        DataError: The file is not valid, or a form lacks its type or its value.
    """
    path = path or DATA_DIR / ENTITIES_FILE
    types: dict[str, str] = {}
    values: dict[str, str] = {}
    for block in _read_nlu(path):
        if "lookup" in block:
            target, key = types, str(block["lookup"])
        elif "synonym" in block:
            target, key = values, str(block["synonym"])
        else:
            raise DataError(f"{path}: block {block!r} is neither lookup nor synonym")
        for form in _example_lines(path, block):
            if form in target:
                raise DataError(f"{path}: {form!r} is listed twice ({target[form]!r} and {key!r})")
            target[form] = key
    if set(types) != set(values):
        stray = sorted(set(types) ^ set(values))
        raise DataError(f"{path}: forms without both a lookup and a synonym: {stray}")
    return EntityTable({form: (types[form], values[form]) for form in types})
