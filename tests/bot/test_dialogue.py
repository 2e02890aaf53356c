"""`madoguchi dialogue eval` and the story format it shares with tests/stories (bot.stories), and how one turn
answers several questions (bot.pipeline.compose)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.commands import main
from bot.pipeline import MAX_TURN_MESSAGES, compose, turn_label
from bot.stories import StoryError, load_stories, reply_language
from core.enums import Language
from handlers.replies import Card, Link, QuickReply, Text
from intents.types import Intent, OutOfScopeKind, Understanding

CONVERSATIONS = """
- name: passes
  steps:
    - say: 支払い方法と、学生支援課の電話番号を教えて
      expect:
        intents: [payment_methods, contact]
        contains: [PayPay, 093-691-7211]
        reply_lang: ja
    - press: メニューに戻る
      expect:
        offers: [intent:payment_methods]
- name: fails
  now: "2026-11-28T10:00:00+09:00"
  steps:
    - say: 成績証明書を申請したい
      expect:
        form: order
    - say: キャンセルで
      expect:
        form: order
        contains: [this text is not in the answer]
"""


@pytest.fixture
def conversations(tmp_path: Path) -> Path:
    path = tmp_path / "conversations.yaml"
    path.write_text(CONVERSATIONS, encoding="utf-8")
    return path


def test_dialogue_eval_reports_conversations_and_turns(conversations, nlu_model_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(conversations.parent / "var"))
    result = CliRunner().invoke(main, ["dialogue", "eval", str(conversations), "--model", str(nlu_model_path)])
    assert result.exit_code == 1, result.output  # one conversation failed
    assert "conversations passed 1/2, turns passed 3/4" in result.output
    assert "FAILED conversations.yaml: fails" in result.output
    assert "form in progress: None, expected order" in result.output
    assert "missing: this text is not in the answer" in result.output


def test_dialogue_eval_json(conversations, nlu_model_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(conversations.parent / "var"))
    result = CliRunner().invoke(main, ["dialogue", "eval", "--json", str(conversations), "--model",
                                       str(nlu_model_path)])
    report = json.loads(result.output)
    assert (report["conversations"], report["conversations_passed"], report["turns"], report["turns_passed"]) == (
        2, 1, 4, 3)
    assert report["failed"][0]["name"] == "fails"


@pytest.mark.parametrize(("text", "problem"), [
    ("- name: a\n  steps:\n    - say: x\n      tap: y\n", "exactly one of say, press, tap"),
    ("- name: a\n  steps:\n    - say: yes\n", "must be a string"),
    ("- name: a\n  steps:\n    - say: x\n      expect:\n        contains: [13:00]\n", "list of strings"),
    ("- name: a\n  steps:\n    - say: x\n      expect:\n        intents: [weather]\n", "unknown intent"),
    ("- name: a\n  steps:\n    - say: x\n      expect:\n        contain: [y]\n", "expect keys"),
    ("- name: a\n  steps:\n    - say: x\n- name: a\n  steps:\n    - say: y\n", "used twice"),
])
def test_a_story_file_with_a_mistake_is_refused(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StoryError, match=problem):
        load_stories(path)


def test_the_reply_language_is_read_from_its_sentences():
    english = "For the Department of Nursing: e-learning → 看護学科 (Nursing) → ログイン ID・PW"
    assert reply_language(english) is Language.EN
    assert reply_language("お支払いページを開く http://127.0.0.1:8000/sandbox/pay/abcdefABCDEF") is Language.JA


def card(title: str) -> Card:
    return Card(title, (("a", "b"),), "", (QuickReply("card button", "intent:contact"),))


def test_several_answers_keep_one_card_five_messages_and_the_last_buttons():
    first = [Text("one"), Text("two", (QuickReply("x", "intent:contact"),)), card("first card")]
    second = [Text("three"), card("second card"), Text("four"), Link("pay", "https://example.invalid/pay"),
              Text("five", (QuickReply("last", "intent:refund"), QuickReply("menu", "intent:greet")))]
    replies = compose([first, second], (QuickReply("extra", "intent:order_status"),))
    assert len(replies) <= MAX_TURN_MESSAGES
    assert sum(isinstance(reply, Card) for reply in replies) == 1
    assert any("second card" in reply.text for reply in replies if isinstance(reply, Text))
    with_buttons = [reply for reply in replies if getattr(reply, "quick_replies", ())]
    assert len(with_buttons) == 1 and with_buttons[0] is replies[-1]
    # The last answer's buttons first, then the earlier answers', once each, then the extra ones, menu last.
    assert [button.label for button in replies[-1].quick_replies] == ["last", "card button", "extra", "menu"]
    assert "one" in replies[0].text and "two" in replies[0].text  # joined, nothing dropped


def test_the_buttons_of_a_turn_ending_with_a_link_go_on_the_message_before_it():
    replies = compose([[Text("a", (QuickReply("b", "intent:greet"),)), Link("pay", "https://example.invalid")]])
    assert replies[0].quick_replies and isinstance(replies[1], Link)


def understanding(intent: Intent, kind: OutOfScopeKind | None = None) -> Understanding:
    return Understanding("x", intent, 0.9, (), (), Language.JA, out_of_scope_kind=kind)


@pytest.mark.parametrize(("intents", "kind", "missed", "label"), [
    ((Intent.PAYMENT_METHODS, Intent.CONTACT), None, False, "payment_methods"),
    ((Intent.OUT_OF_SCOPE,), OutOfScopeKind.CAMPUS, False, "out_of_scope/campus"),
    ((Intent.OUT_OF_SCOPE,), None, False, "out_of_scope/other"),
    ((Intent.OUT_OF_SCOPE,), None, True, "out_of_scope"),
    ((), None, False, "other"),
])
def test_what_a_message_is_kept_as(intents, kind, missed, label):
    assert turn_label(intents, understanding(Intent.OUT_OF_SCOPE, kind), missed) == label
