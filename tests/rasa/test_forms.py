"""The order form through Rasa: `action_order_certificate` activates `order_form`, `validate_order_form` answers
each message with madoguchi's form engine, and the events mirror its slots until the order is placed."""

import pytest
from sqlalchemy import select

from bot.delivery.mailing import send_queued_mail
from core.conversations import transcript
from core.enums import Language
from core.models import Order
from core.students import find_student, load_demo_students
from core.web_sessions import start_session
from handlers.messages import say
from tests.rasa.conftest import buttons, loop_events, slot_events, texts

ORDER_SLOTS = ("student", "item", "copies", "delivery", "postal", "street", "recipient", "phone", "payment", "confirm")


@pytest.fixture(autouse=True)
def demo_students(core):
    with core.transaction() as session:
        load_demo_students(session, core.profile, core.now())


def orders(core) -> list[Order]:
    with core.transaction() as session:
        return list(session.scalars(select(Order)))


def tap(server, sender: str, payload: str, **options):
    return server.tap(sender, f'/order_certificate{{"payload": "{payload}"}}', **options)


def signed_in(core, number: str = "24M1001") -> dict:
    """What the site's Rasa front end sends with each message of a signed-in browser: its madoguchi session."""
    with core.transaction() as session:
        token = start_session(session, find_student(session, number), "email", core.now())
    return {"metadata": {"madoguchi_session": token}}


def test_a_japanese_order_across_turns(server, core):
    started = server.say("ja", "成績証明書を申請したい", "order_certificate",
                         [{"entity": "item", "value": "transcript", "start": 0, "end": 5}])
    assert loop_events(started) == ["order_form"]
    assert slot_events(started) == {"lang": "ja", "requested_slot": "student"}
    assert say("order.identify", Language.JA) in texts(started)
    assert buttons(started) == ['/order_certificate{"payload": "form:cancel"}']

    # Rasa runs the active form right after the action that started it: nothing is handled twice.
    again = server.run("ja", "validate_order_form")
    assert again["responses"] == [] and slot_events(again) == {"lang": "ja", "requested_slot": "student"}

    # A typed number identifies no one through Rasa either: it only asks for a sign-in link.
    typed = server.say("ja", "学籍番号は24M1001です", "out_of_scope")
    assert "サインイン用のワンタイムURLをお送りしました" in texts(typed)
    assert slot_events(typed) == {"lang": "ja", "requested_slot": "student"}
    me = signed_in(core)  # the browser signed in with the mailed link; the front end passes its session
    identified = tap(server, "ja", "signin:done", **me)
    # The item named in the first message is taken once the student is known.
    assert slot_events(identified) == {"lang": "ja", "item": "transcript", "requested_slot": "copies"}
    assert say("order.ask_copies", Language.JA, item="成績証明書", max=10) in texts(identified)
    assert "24***01としてサインインしました" in texts(identified) and loop_events(identified) == []

    copies = server.say("ja", "2通", "out_of_scope", **me)
    assert slot_events(copies) == {"lang": "ja", "copies": 2, "requested_slot": "delivery"}
    assert say("order.ask_delivery", Language.JA) in texts(copies)
    assert '/order_certificate{"payload": "form:set:delivery:mail"}' in buttons(copies)

    delivery = tap(server, "ja", "form:set:delivery:mail", **me)
    assert slot_events(delivery) == {"lang": "ja", "delivery": "mail", "requested_slot": "postal"}
    # The address: Rasa's tracker holds that each part is given, never the part itself.
    for said, slot, next_slot in (("807-8555", "postal", "street"), ("1-1 医生ケ丘ハイツ203", "street", "recipient"),
                                  ("山田 太郎", "recipient", "phone"), ("090-1234-5678", "phone", "payment")):
        answered = server.say("ja", said, "out_of_scope", **me)
        assert slot_events(answered) == {"lang": "ja", slot: "[personal]", "requested_slot": next_slot}
    payment = tap(server, "ja", "form:set:payment:credit_card", **me)
    assert slot_events(payment) == {"lang": "ja", "payment": "credit_card", "requested_slot": "confirm"}
    summary = payment["responses"][-1]
    assert summary["custom"]["title"] == say("order.summary.title", Language.JA)
    assert [say("order.summary.total", Language.JA), "400円（例）"] in summary["custom"]["fields"]
    assert say("order.summary.no_refunds", Language.JA) in summary["text"]

    placed = tap(server, "ja", "form:set:confirm:yes", **me)
    [order] = orders(core)
    assert say("order.placed", Language.JA, number=order.number) in texts(placed)
    assert "/sandbox/pay/" in texts(placed)
    # The form is done: Rasa's loop ends and the tracker forgets the answers, as madoguchi does.
    assert loop_events(placed) == [None]
    assert slot_events(placed) == {"lang": "ja", "requested_slot": None, **{name: None for name in ORDER_SLOTS
                                                                            if name not in ("confirm", "student")}}
    assert server.tracker("ja")["active_loop"] == {}


def test_an_english_order_typed_throughout(server, core):
    started = server.say("en", "I would like to apply for an academic transcript", "order_certificate")
    assert loop_events(started) == ["order_form"] and slot_events(started)["lang"] == "en"
    assert say("order.identify", Language.EN) in texts(started)
    assert "one-time sign-in URL" in texts(server.say("en", "My student number is 24M1001", "out_of_scope"))
    me = signed_in(core)
    identified = tap(server, "en", "signin:done", **me)
    assert slot_events(identified)["requested_slot"] == "copies"
    assert "How many copies" in texts(identified)
    assert slot_events(server.say("en", "2 copies", "out_of_scope", **me))["copies"] == 2
    assert slot_events(server.say("en", "on the campus printer", "delivery_options", **me))["delivery"] == \
        "campus_printer"
    summary = server.say("en", "credit card", "payment_methods", **me)
    assert slot_events(summary)["requested_slot"] == "confirm"
    assert "cannot be refunded" in texts(summary) and "¥400 (example)" in texts(summary)
    placed = tap(server, "en", "form:set:confirm:yes", **me)
    [order] = orders(core)
    assert say("order.placed", Language.EN, number=order.number) in texts(placed)
    assert loop_events(placed) == [None] and slot_events(placed)["lang"] == "en"


def test_a_question_mid_form_is_answered_and_the_form_waits(server, core):
    server.say("detour", "証明書を申請したい", "order_certificate")
    me = signed_in(core)
    tap(server, "detour", "signin:done", **me)
    detour = server.say("detour", "支払い方法は？", "payment_methods", **me)
    assert "クレジットカード決済" in texts(detour)
    assert say("forms.resume_question", Language.JA) in texts(detour)
    assert loop_events(detour) == [] and slot_events(detour)["requested_slot"] == "item"
    resumed = tap(server, "detour", "form:resume", **me)
    assert say("order.ask_item.certificate", Language.JA) in texts(resumed)


def test_cancel_ends_the_rasa_form_and_clears_its_slots(server, core):
    server.say("cancel", "成績証明書を申請したい", "order_certificate")
    me = signed_in(core)
    tap(server, "cancel", "signin:done", **me)
    cancelled = tap(server, "cancel", "form:cancel", **me)
    assert texts(cancelled) == say("forms.cancelled", Language.JA)
    assert loop_events(cancelled) == [None]
    assert slot_events(cancelled) == {"lang": "ja", "item": None, "requested_slot": None}


def test_a_form_activated_by_rasa_itself_starts_madoguchis_form(server):
    # A rule `intent: order_certificate → action: order_form` makes Rasa's FormAction call the validation first.
    server.hear("rule", "証明書を申請したい", "order_certificate")
    started = server.run("rule", "validate_order_form")
    assert say("order.identify", Language.JA) in texts(started)
    assert slot_events(started)["requested_slot"] == "student"
    assert server.tracker("rule")["active_loop"] == {"name": "order_form"}  # activated by Rasa, kept by us


def test_madoguchis_expired_form_ends_the_rasa_form(server, clock):
    server.say("late", "証明書を申請したい", "order_certificate")
    clock.advance(minutes=31)
    late = server.say("late", "24M1001", "out_of_scope")
    assert loop_events(late) == [None] and slot_events(late)["requested_slot"] is None


def test_a_slack_sender_cannot_identify_by_typing_a_student_number(server):
    server.say("U123", "証明書を申請したい", "order_certificate", input_channel="slack")
    refused = server.say("U123", "24M1001", "out_of_scope", input_channel="slack")
    assert say("order.typed_number_refused", Language.JA) in texts(refused)
    assert slot_events(refused)["requested_slot"] == "student" and "student" not in slot_events(refused)


def test_the_stored_transcript_keeps_one_line_per_message(server, core):
    server.say("log", "証明書を申請したい", "order_certificate")
    server.run("log", "validate_order_form")  # Rasa's own follow-up call adds nothing
    server.say("log", "24M1001", "out_of_scope")
    with core.transaction() as session:
        said = [entry.text for entry in transcript(session, "rasa:log") if entry.direction == "in"]
    assert said == ["証明書を申請したい", "24M1001"]


def test_the_reset_form_mails_the_link_through_rasa(server, core, inbox):
    started = server.say("reset", "第2パスワードを忘れた", "second_password_reset")
    assert loop_events(started) == []  # the steps first; the form starts on the button
    assert '/second_password_reset{"payload": "form:start:reset"}' in buttons(started)
    asked = server.tap("reset", '/second_password_reset{"payload": "form:start:reset"}')
    assert loop_events(asked) == ["reset_form"] and slot_events(asked)["requested_slot"] == "student_number"
    done = server.say("reset", "24M1001", "out_of_scope")
    assert loop_events(done) == [None]
    assert "24M1001" not in texts(done)
    assert inbox.messages == [] and send_queued_mail(core) == 1  # as the action server's mail worker does
    assert "https://madoguchi.example.ac.jp/" in inbox.body(inbox.only())  # the one-time reset URL
