"""`action_<intent>` through the rasa-sdk endpoint's own app: catalog answers in both languages, buttons as
Rasa intent triggers, the `lang` slot, fallbacks, masking, and the endpoint's own errors."""

import rasa_sdk

from bot.wiring import build_handlers
from core.conversations import transcript
from core.enums import Language
from handlers.messages import say
from intents.types import Intent
from tests.rasa.conftest import buttons, slot_events, texts


def test_health_and_every_intent_and_form_is_served(server):
    assert server.get("/health").json() == {"status": "ok"}
    served = {item["name"] for item in server.get("/actions").json()}
    registry, _ = build_handlers()
    assert {f"action_{intent.value}" for intent in Intent} <= served
    assert {f"action_{intent.value}" for intent in registry.intents()} <= served
    assert {"validate_order_form", "validate_reset_form", "validate_order_lookup_form"} <= served
    assert served == set(server.domain["actions"])


def test_payment_methods_in_japanese_and_english(server):
    japanese = server.say("ja-student", "支払い方法を教えて", "payment_methods")
    assert "クレジットカード決済" in texts(japanese) and "コンビニ現金払い" in texts(japanese)
    assert slot_events(japanese) == {"lang": "ja"}
    english = server.say("en-student", "how can I pay?", "payment_methods")
    assert "You can pay with" in texts(english) and "Credit card" in texts(english)
    assert slot_events(english) == {"lang": "en"}
    # The price card: readable text for any channel, and the card itself as custom JSON.
    card = next(message for message in english["responses"] if message["custom"])
    assert card["custom"]["type"] == "card" and ["Academic Transcript", "¥200 (example)"] in card["custom"]["fields"]
    assert "Academic Transcript: ¥200 (example)" in card["text"]


def test_menu_buttons_are_rasa_intent_triggers_with_catalog_titles(server):
    result = server.say("menu", "hello", "greet")
    payloads = buttons(result)
    assert "/payment_methods" in payloads and "/order_certificate" in payloads
    titles = [button["title"] for message in result["responses"] for button in message["buttons"]]
    assert say("menu.payment_methods", Language.EN) in titles
    # The language switch keeps madoguchi's payload inside the trigger of its topic.
    assert '/language{"payload": "lang:ja"}' in payloads


def test_a_tapped_intent_trigger_answers_in_the_conversations_language(server):
    server.say("tapper", "hello", "greet")
    tapped = server.tap("tapper", "/contact")
    assert slot_events(tapped)["lang"] == "en"  # "/contact" itself says nothing about the language
    assert "093-691-7211" in texts(tapped)


def test_the_language_button_switches_the_conversation(server):
    server.say("switcher", "こんにちは", "greet")
    switched = server.tap("switcher", '/language{"payload": "lang:en"}')
    assert slot_events(switched)["lang"] == "en"
    later = server.say("switcher", "支払い方法", "payment_methods")
    assert "You can pay with" in texts(later)  # the chosen language holds for Japanese questions too


def test_a_language_in_the_message_metadata_is_the_pages_choice(server):
    """The client's language (as the web page's) answers what says no language; a sentence typed in the other
    language is answered in the language it is written in."""
    result = server.say("meta", "PayPay", "payment_methods", metadata={"lang": "en"})
    assert "You can pay with" in texts(result) and slot_events(result)["lang"] == "en"
    typed = server.say("meta", "支払い方法を教えてください", "payment_methods", metadata={"lang": "en"})
    assert "ご利用いただける支払い方法" in texts(typed)


def test_nlu_fallback_offers_did_you_mean_then_a_person(server):
    # Rasa is unsure, and so is madoguchi: the buttons are Rasa's runners-up.
    server.hear("lost", "あれってどうなってる", "nlu_fallback")
    server.tracker("lost")["latest_message"]["intent_ranking"] = [
        {"name": "nlu_fallback", "confidence": 0.5}, {"name": "order_status", "confidence": 0.3},
        {"name": "pickup_timing", "confidence": 0.2}]
    first = server.run("lost", "action_out_of_scope")
    assert say("fallback.did_you_mean", Language.JA) in texts(first)
    assert buttons(first)[:2] == ["/order_status", "/pickup_timing"]
    # Unsure again (madoguchi's own reading too: an out-of-scope message it can place, such as 「うーん」,
    # gets its own answer, as on the other channels).
    second = server.say("lost", "よくわからない", "nlu_fallback")
    assert say("fallback.offer_person", Language.JA) in texts(second)
    assert '/human_agent{"payload": "handoff:misses"}' in buttons(second)


def test_a_pasted_password_is_checked_never_echoed_and_masked_in_the_transcript(server, core):
    result = server.say("pw", "第2パスワードを Abcd1234x にしたいけど大丈夫？", "second_password_rules")
    assert "Abcd1234x" not in texts(result) and "Abcd1234x" not in str(result["events"])
    assert say("rules.never_share", Language.JA) in texts(result)
    with core.transaction() as session:
        lines = [entry.text for entry in transcript(session, "rasa:pw")]
    assert lines and not any("Abcd1234x" in line for line in lines)
    assert "[password]" in lines[0]


def test_every_intent_action_answers_in_both_languages(server):
    for intent in Intent:
        for lang, text in ((Language.JA, "質問です"), (Language.EN, "a question please")):
            result = server.say(f"all-{intent.value}-{lang.value}", text, intent.value)
            assert result["responses"], intent
            assert slot_events(result)["lang"] == lang.value


def test_the_endpoint_refuses_an_unknown_action_and_a_missing_body(server):
    missing = server.post({"next_action": "action_nothing", "tracker": server.tracker("x"), "domain": server.domain,
                           "version": rasa_sdk.__version__})
    assert missing.status_code == 404 and missing.json()["action_name"] == "action_nothing"
    empty = server.runner.run(server.client.post("/webhook", content=b"null",
                                                 headers={"content-type": "application/json"}))
    assert empty.status_code == 400


def test_where_madoguchi_reads_two_questions_and_rasa_one_of_them_both_are_answered(server):
    result = server.say("two", "支払い方法と、学生支援課の電話番号を教えて", "contact")
    assert "クレジットカード" in texts(result) and "093-691-7211" in texts(result)


def test_where_madoguchi_reads_otherwise_rasas_intent_stands(server):
    result = server.say("rasa-wins", "支払い方法を教えて", "contact")
    assert "093-691-7211" in texts(result) and "クレジットカード" not in texts(result)


def test_an_out_of_scope_message_gets_the_answer_for_its_kind(server):
    result = server.say("weather", "what's the weather in Kitakyushu tomorrow?", "out_of_scope")
    assert "this desk helps only with the" in texts(result)  # scope.unrelated, not "couldn't understand"
