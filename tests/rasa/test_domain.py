"""The generated Rasa domain and rules: current with the code, and consistent with intents/, the handlers'
forms and catalogs, and the action server."""

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from bot.cli.commands import main
from bot.rasa.actions import build_executor
from bot.rasa.bridge import build_bridge
from bot.rasa.domain import (
    DOMAIN_FILE,
    PATTERNS_FILE,
    RASA_DIR,
    RULES_FILE,
    RasaForms,
    build_domain,
    build_entity_patterns,
    build_rules,
    dump,
)
from bot.wiring import build_handlers
from intents.data import DATA_DIR, TRAINING_FILES
from intents.types import EntityType, Intent


def test_the_committed_domain_and_rules_are_current():
    assert DOMAIN_FILE.read_text(encoding="utf-8") == dump(build_domain()), \
        "run `madoguchi actions --write-domain` and commit bot/rasa/domain.yml"
    assert RULES_FILE.read_text(encoding="utf-8") == dump(build_rules())
    assert PATTERNS_FILE.read_text(encoding="utf-8") == dump(build_entity_patterns())


def test_write_domain_writes_what_is_committed(tmp_path):
    result = CliRunner().invoke(main, ["actions", "--write-domain", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "domain.yml").read_text(encoding="utf-8") == DOMAIN_FILE.read_text(encoding="utf-8")
    assert (tmp_path / "data" / "rules.yml").read_text(encoding="utf-8") == RULES_FILE.read_text(encoding="utf-8")
    written = (tmp_path / "data" / PATTERNS_FILE.name).read_text(encoding="utf-8")
    assert written == PATTERNS_FILE.read_text(encoding="utf-8")


def test_the_domain_names_every_intent_of_the_training_data_and_every_entity():
    domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
    trained = set()
    for name in TRAINING_FILES.values():
        trained |= {block["intent"] for block in yaml.safe_load((DATA_DIR / name).read_text("utf-8"))["nlu"]
                    if "intent" in block}
    assert trained == set(domain["intents"]) == {intent.value for intent in Intent}
    tables = yaml.safe_load((DATA_DIR / "entities.yml").read_text(encoding="utf-8"))["nlu"]
    assert {block["lookup"] for block in tables if "lookup" in block} <= set(domain["entities"])
    assert {kind.value for kind in EntityType} | {"payload"} == set(domain["entities"])


def test_the_domain_actions_are_exactly_what_the_server_serves(core):
    domain = build_domain()
    served = {item.name for item in build_executor(build_bridge(core)).list_actions()}
    assert served == set(domain["actions"])


def test_forms_and_slots_match_madoguchis_forms():
    _, engine = build_handlers()
    forms = RasaForms.of(engine)
    domain = build_domain(forms)
    assert set(domain["forms"]) == {f"{name}_form" for name in engine.names()}
    assert domain["forms"]["order_form"]["required_slots"] == ["student", "item", "copies", "delivery", "postal",
                                                              "street", "recipient", "phone", "payment", "confirm"]
    for form in domain["forms"].values():
        for slot in form["required_slots"]:
            assert domain["slots"][slot]["mappings"] == [{"type": "custom"}]  # filled by the validation only
    assert not any(name.startswith(("utter_ask_", "action_ask_")) for name in domain["actions"])


def test_the_domain_has_no_responses_and_replaces_restart_and_session_start():
    # Every text comes from the action server: responses would be 'utterance not used' warnings.
    domain = build_domain()
    assert "responses" not in domain
    assert {"action_restart", "action_session_start"} <= set(domain["actions"])


def test_entity_patterns_find_japanese_forms_inside_a_sentence_and_latin_forms_as_words():
    patterns = {block["regex"]: [line[2:] for line in block["examples"].splitlines()]
                for block in build_entity_patterns()["nlu"] if "regex" in block}

    def found(entity: str, text: str) -> list[str]:
        return [match.group(0) for pattern in patterns[entity] for match in re.finditer(pattern, text, re.I)]

    assert found("item", "成績証明書を郵送でお願いしたいです") == ["成績証明書"]
    assert found("delivery_method", "成績証明書を郵送でお願いしたいです") == ["郵送"]
    assert found("delivery_method", "can you send the transcript by mail") == ["by mail"]
    assert found("delivery_method", "I did not get the email") == []  # "mail" inside "email" is no delivery
    assert found("payment_method", "can I pay with PayPay?") == ["PayPay"]
    assert found("student_number", "学籍番号は24M1001です") == ["24M1001"]
    assert found("student_number", "x24M10011") == []
    assert found("email", "my email is taro@example.com") == ["taro@example.com"]
    synonyms = {str(block["synonym"]) for block in build_entity_patterns()["nlu"] if "synonym" in block}
    assert {"transcript", "mail", "paypay"} <= synonyms


def test_every_entity_pattern_is_switched_on_by_a_marked_message():
    # Rasa's RegexEntityExtractor uses a regex only for an entity some training message marks.
    marked = set(re.findall(r"\]\((\w+)\)", (RASA_DIR / "data" / "entity_examples.yml").read_text("utf-8")))
    regexes = {block["regex"] for block in build_entity_patterns()["nlu"] if "regex" in block}
    assert regexes == marked == {"item", "payment_method", "delivery_method", "student_number", "email"}


def test_every_intent_has_a_rule_to_its_action_and_every_form_a_done_rule():
    rules = build_rules()["rules"]
    routed = {rule["steps"][0]["intent"]: rule["steps"][1]["action"] for rule in rules if "intent" in rule["steps"][0]}
    assert routed == {**{intent.value: f"action_{intent.value}" for intent in Intent},
                      "nlu_fallback": "action_out_of_scope"}
    done = [rule for rule in rules if rule["rule"].endswith("_form done")]
    assert len(done) == 3


def test_config_and_endpoints_point_rasa_at_the_action_server():
    config = yaml.safe_load((RASA_DIR / "config.yml").read_text(encoding="utf-8"))
    names = [component["name"] for component in config["pipeline"]]
    assert {"FallbackClassifier", "RegexEntityExtractor", "EntitySynonymMapper"} <= set(names)
    assert config["policies"][0]["core_fallback_action_name"] == "action_out_of_scope"
    endpoints = yaml.safe_load((RASA_DIR / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["action_endpoint"]["url"] == "http://localhost:5055/webhook"


def test_rasa_sdk_is_imported_by_one_module_only():
    root = Path(__file__).resolve().parents[2]
    importers = sorted(str(path.relative_to(root)) for folder in ("bot", "core", "handlers", "intents")
                       for path in (root / folder).rglob("*.py")
                       if "import rasa_sdk" in (text := path.read_text(encoding="utf-8")) or "from rasa_sdk" in text)
    assert importers == ["bot/rasa/actions.py"]
