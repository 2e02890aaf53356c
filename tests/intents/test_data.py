"""Training data checks: valid Rasa NLU YAML 3.1, enough varied examples, no duplicates, no dev-set lines."""

import hashlib
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from core.enums import Language
from intents.data import DATA_DIR, ENTITIES_FILE, TRAINING_FILES, DataError, data_hash, load_entity_table, load_examples
from intents.entities import EntityExtractor
from intents.normalize import normalize
from intents.types import Intent

MIN_EXAMPLES = 40
REPO = Path(__file__).resolve().parents[2]
FINGERPRINTS = Path(__file__).with_name("dev_set_fingerprints.txt")


@pytest.fixture(scope="module")
def examples():
    return load_examples()


@pytest.mark.parametrize("name", [*TRAINING_FILES.values(), ENTITIES_FILE])
def test_files_are_rasa_nlu_yaml_3_1(name: str) -> None:
    document = yaml.safe_load((DATA_DIR / name).read_text(encoding="utf-8"))
    assert document["version"] == "3.1"  # a string, as Rasa wants it
    assert isinstance(document["nlu"], list)
    for block in document["nlu"]:
        assert len({"intent", "lookup", "synonym"} & set(block)) == 1, block
        assert set(block) <= {"intent", "lookup", "synonym", "examples", "metadata"}, block
        # Rasa passes a block's metadata on; madoguchi reads only out_of_scope's kind from it.
        assert "metadata" not in block or (block.get("intent") == "out_of_scope" and set(block["metadata"]) == {"kind"})
        assert isinstance(block["examples"], str)
        lines = [line for line in block["examples"].splitlines() if line.strip()]
        assert lines and all(line.startswith("- ") for line in lines), block


@pytest.mark.parametrize("lang", list(Language))
def test_every_intent_has_enough_examples_in_every_language(examples, lang: Language) -> None:
    counts = Counter(example.intent for example in examples if example.lang is lang)
    assert {intent: counts[intent] for intent in Intent if counts[intent] < MIN_EXAMPLES} == {}


@pytest.mark.parametrize("lang", list(Language))
def test_each_file_holds_its_language(examples, lang: Language) -> None:
    from intents.language import detect_language

    # out_of_scope holds junk in any script (code, "ｗｗｗ"), so only the in-scope intents are checked.
    wrong = [
        example.text
        for example in examples
        if example.lang is lang
        and example.intent is not Intent.OUT_OF_SCOPE
        and detect_language(example.text, default=lang) is not lang
    ]
    assert wrong == []


def test_no_duplicates_after_normalization(examples) -> None:
    intents_of = defaultdict(list)
    for example in examples:
        intents_of[normalize(example.text)].append((example.lang.value, example.intent.value))
    assert {text: where for text, where in intents_of.items() if len(where) > 1} == {}


def test_no_empty_or_annotated_examples(examples) -> None:
    assert all(normalize(example.text) for example in examples)
    assert not [example.text for example in examples if "](" in example.text]


def _dev_set_path() -> Path:
    return Path(os.environ.get("MADOGUCHI_DEV_SET", REPO.parent / "shared" / "dev-set" / "utterances.jsonl"))


def _fingerprint(text: str) -> str:
    return hashlib.sha256(normalize(text).encode()).hexdigest()


def test_no_training_example_is_a_dev_set_line(examples) -> None:
    """The development set measures; it never trains. Checked against the file when it is beside the repo,
    and always against the stored fingerprints, so a clean clone checks too."""
    forbidden = {line for line in FINGERPRINTS.read_text().splitlines() if line and not line.startswith("#")}
    assert len(forbidden) >= 50
    dev_set = _dev_set_path()
    if dev_set.is_file():
        rows = [json.loads(line) for line in dev_set.read_text(encoding="utf-8").splitlines() if line.strip()]
        forbidden |= {_fingerprint(row["text"]) for row in rows}
    assert [example.text for example in examples if _fingerprint(example.text) in forbidden] == []


def test_no_training_example_is_a_held_out_line(examples) -> None:
    """The held-out sets of benchmarks/nlu measure; they never train, not even one line."""
    held_out = {normalize(json.loads(line)["text"]) for path in sorted((REPO / "benchmarks" / "nlu").glob("*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert len(held_out) >= 500
    assert [example.text for example in examples if normalize(example.text) in held_out] == []


def test_out_of_scope_has_its_kinds(examples) -> None:
    kinds = Counter((example.lang, example.kind) for example in examples if example.intent is Intent.OUT_OF_SCOPE)
    for lang in Language:
        for kind in ("campus", "abuse", "other", "noise"):
            assert kinds[(lang, kind)] >= 15, (lang, kind)
    assert all(example.kind is None for example in examples if example.intent is not Intent.OUT_OF_SCOPE)


def test_a_block_kind_must_be_a_word(tmp_path: Path) -> None:
    (tmp_path / TRAINING_FILES[Language.JA]).write_text(
        'version: "3.1"\nnlu:\n- intent: out_of_scope\n  metadata:\n    kind: 2\n  examples: |\n    - 天気\n')
    (tmp_path / TRAINING_FILES[Language.EN]).write_text('version: "3.1"\nnlu: []\n')
    with pytest.raises(DataError, match="metadata without a kind"):
        load_examples(tmp_path)


def test_data_hash_follows_the_files(tmp_path: Path) -> None:
    for name in TRAINING_FILES.values():
        (tmp_path / name).write_bytes((DATA_DIR / name).read_bytes())
    assert data_hash(tmp_path) == data_hash()
    with (tmp_path / TRAINING_FILES[Language.EN]).open("a", encoding="utf-8") as file:
        file.write("    - one more example\n")
    assert data_hash(tmp_path) != data_hash()


def test_invalid_training_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / TRAINING_FILES[Language.JA]).write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - やあ\n'
    )
    (tmp_path / TRAINING_FILES[Language.EN]).write_text('version: "2.0"\nnlu: []\n')
    with pytest.raises(DataError, match="version"):
        load_examples(tmp_path)
    (tmp_path / TRAINING_FILES[Language.EN]).write_text(
        'version: "3.1"\nnlu:\n- intent: chitchat\n  examples: |\n    - yo\n'
    )
    with pytest.raises(DataError, match="unknown intent"):
        load_examples(tmp_path)


def test_rasa_annotations_are_read_as_plain_text(tmp_path: Path) -> None:
    (tmp_path / TRAINING_FILES[Language.JA]).write_text(
        'version: "3.1"\nnlu:\n- intent: order_certificate\n  examples: |\n    - [在学証明書](item)を[2](copies)通\n'
    )
    (tmp_path / TRAINING_FILES[Language.EN]).write_text('version: "3.1"\nnlu: []\n')
    assert [example.text for example in load_examples(tmp_path)] == ["在学証明書を2通"]


def test_entity_tables_are_consistent() -> None:
    table = load_entity_table()
    assert {entity_type for entity_type, _ in table.forms.values()} == {"item", "payment_method", "delivery_method"}
    normalized = Counter(normalize(form) for form in table.forms)
    assert [form for form, count in normalized.items() if count > 1] == []
    EntityExtractor()  # every value is a known ItemCode, PaymentMethod or DeliveryMethod


def test_entity_table_form_without_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "entities.yml"
    path.write_text('version: "3.1"\nnlu:\n- lookup: item\n  examples: |\n    - 在学証明書\n')
    with pytest.raises(DataError, match="both a lookup and a synonym"):
        load_entity_table(path)
