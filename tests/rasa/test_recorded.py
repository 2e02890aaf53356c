"""The action server on what a real Rasa 3.6.21 sent it (tests/rasa/recordings, made by tests/rasa/record.py): each
recorded request replayed in order is answered (or not) as Rasa was answered, with buttons of the same intents
and the same tracker events, and the conversation ends as it did (an order placed, a reset mail sent, a form
cancelled, a person called, a restart)."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.delivery.mailing import send_queued_mail
from bot.rasa.bridge import SESSION_METADATA
from core.models import HandoffTicket, Order, WebSession
from core.students import find_student, load_demo_students
from core.web_sessions import ABSOLUTE
from tests.rasa.live import RASA_VERSION
from tests.rasa.record import RECORDINGS, domain_hash
from tests.rasa.scenarios import SCENARIOS


def recording(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))


def button_intents(result: dict[str, Any]) -> set[str]:
    """The Rasa intents an action's buttons send (`/intent` of `/intent{"payload": …}`)."""
    return {button["payload"][1:].split("{", 1)[0] for message in result["responses"]
            for button in message.get("buttons") or ()}


def tracker_events(result: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The slot and loop events of an action's result (what keeps Rasa's tracker in step)."""
    return [(event["event"], event.get("name"), event.get("value")) for event in result["events"]]


@pytest.fixture(autouse=True)
def demo_students(core):
    with core.transaction() as session:  # the students the recording's action server loaded on first start
        load_demo_students(session, core.profile, core.now())
        # The sessions the recorder started (the mailed link opened), under the tokens its requests carry.
        for name in SCENARIOS:
            document = recording(name)
            for token, at in recorded_sessions(document).items():
                student = find_student(session, document["signed_in"])
                session.add(WebSession(token_hash=hashlib.sha256(token.encode()).hexdigest(), student_id=student.id,
                                       via="email", created_at=at, last_seen_at=at, expires_at=at + ABSOLUTE))


def recorded_sessions(document: dict[str, Any]) -> dict[str, datetime]:
    """Each session token a recording's requests carry in their metadata, with when it was first sent."""
    found: dict[str, datetime] = {}
    for turn in document["turns"]:
        for call in turn["calls"]:
            token = (call["request"]["tracker"]["latest_message"].get("metadata") or {}).get(SESSION_METADATA)
            if token and token not in found:
                found[token] = sent_at(call["request"]) or datetime.now(UTC)
    return found


def sent_at(request: dict[str, Any]) -> datetime | None:
    """When the student sent the message a call answers: its `user` event's time (Rasa's clock); None before
    the first message (a session's start)."""
    stamps = [event["timestamp"] for event in request["tracker"]["events"] if event["event"] == "user"]
    return datetime.fromtimestamp(stamps[-1], UTC) if stamps else None


def replay(server, clock, name: str) -> list[list[dict[str, Any]]]:
    """Post every recorded request of a scenario in order, each at the moment it was made (pickup dates and
    silence timers depend on it); each turn's results, checked against the recording."""
    turns = []
    for turn in recording(name)["turns"]:
        results = []
        for call in turn["calls"]:
            assert call["status"] == 200
            if (at := sent_at(call["request"])) is not None:
                clock.set(at)
            response = server.post(call["request"])
            assert response.status_code == 200, response.text
            result = response.json()
            # Texts change with the catalogs (each test below checks the ones that matter); what Rasa relies on
            # must not: whether the call answers, its buttons' intents, and the slot and loop events.
            said = call["request"]["next_action"]
            assert bool(result["responses"]) == bool(call["response"]["responses"]), (name, turn["say"], said)
            assert button_intents(result) == button_intents(call["response"]), (name, turn["say"], said)
            assert tracker_events(result) == tracker_events(call["response"]), (name, turn["say"], said)
            results.append(result)
        turns.append(results)
    return turns


def test_the_recordings_are_of_rasa_3_6_with_the_current_domain_and_scenarios():
    for name, messages in SCENARIOS.items():
        document = recording(name)
        assert document["rasa"] == RASA_VERSION
        assert document["domain"] == domain_hash(), \
            "the domain changed since the recording: run `python -m tests.rasa.record` (needs `make rasa`)"
        assert [turn["say"] for turn in document["turns"]] == messages
    assert {path.stem for path in Path(RECORDINGS).glob("*.json")} == set(SCENARIOS)


def test_every_message_gets_an_answer_even_inside_a_form():
    # Rasa's form validation arrives with the form itself as the latest action, never action_listen.
    for name in SCENARIOS:
        for turn in recording(name)["turns"]:
            validations = [call for call in turn["calls"] if call["request"]["next_action"].startswith("validate_")]
            for call in validations:
                assert call["request"]["tracker"]["latest_action_name"].endswith("_form")
            assert any(call["response"]["responses"] for call in turn["calls"]), (name, turn["say"])


@pytest.mark.parametrize("name", ["order_ja", "order_en"])
def test_an_order_finishes_through_rasa(server, clock, core, name):
    turns = replay(server, clock, name)
    with core.transaction() as session:
        [order] = session.scalars(select(Order))
        items = [(item.item_code, item.copies) for item in order.items]
    assert order.delivery_method == "mail" and order.payment_method == "credit_card"
    assert items == ([("transcript", 2)] if name == "order_ja" else [("transcript", 1)])
    last = turns[-1][-1]
    assert order.number in "\n".join(message["text"] or "" for message in last["responses"])
    assert ("active_loop", None, None) in [(event["event"], event.get("name"), None) for event in last["events"]]


@pytest.mark.parametrize("name", ["reset_ja", "reset_en"])
def test_a_reset_request_mails_the_link_through_rasa(server, clock, core, inbox, name):
    replay(server, clock, name)
    send_queued_mail(core)  # as the action server's mail worker does
    assert "https://madoguchi.example.ac.jp/" in inbox.body(inbox.only())


def test_a_typed_cancel_ends_the_form_and_the_next_question_is_answered(server, clock, core):
    turns = replay(server, clock, "cancel_typed_ja")
    cancelled = turns[3][-1]
    assert {"event": "active_loop", "name": None} in [{k: e.get(k) for k in ("event", "name")}
                                                      for e in cancelled["events"]]
    assert turns[4][-1]["responses"] and "クレジットカード" in turns[4][-1]["responses"][0]["text"]
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_question_mid_form_is_answered_and_the_form_resumes(server, clock):
    turns = replay(server, clock, "question_mid_form_ja")
    detour = turns[3][-1]
    assert "クレジットカード" in detour["responses"][0]["text"]
    assert not any(event["event"] == "active_loop" for event in detour["events"])  # the form waits
    assert "何通" in turns[5][-1]["responses"][0]["text"]  # resumed: the item was taken, copies asked


def test_a_person_asked_for_mid_form_opens_a_ticket_and_ends_the_form(server, clock, core):
    turns = replay(server, clock, "person_mid_form_ja")
    assert ("active_loop", None, None) in tracker_events(turns[1][-1])
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(HandoffTicket)) == 1


def test_restart_forgets_madoguchis_form(server, clock):
    turns = replay(server, clock, "restart_mid_form_ja")
    restart, after = turns[3], turns[4]
    assert [call["request"]["next_action"] for call in recording("restart_mid_form_ja")["turns"][3]["calls"]] \
        == ["action_restart", "action_session_start"]
    assert restart[0]["events"][-1]["event"] == "restart"
    # Without madoguchi's own restart, the form would take this question as its answer.
    assert after[-1]["responses"][0]["text"].startswith("ご利用いただける支払い方法")


def test_the_fallback_and_an_out_of_scope_question_get_answers(server, clock):
    turns = replay(server, clock, "fallback_en")
    assert all(results[-1]["responses"] for results in turns)


def test_gibberish_in_a_form_asks_again_and_a_person_ends_it(server, clock):
    turns = replay(server, clock, "odd_inputs_mid_form_en")
    assert "couldn't read that" in turns[1][-1]["responses"][0]["text"]
    assert ("active_loop", None, None) in tracker_events(turns[2][-1])


@pytest.mark.parametrize("name", ["questions_ja", "questions_en"])
def test_a_pickup_question_is_no_order_and_two_questions_get_two_answers(server, clock, name):
    turns = replay(server, clock, name)
    assert not any(event["event"] == "active_loop" for results in turns for result in results
                   for event in result["events"])
    both = "\n".join(message["text"] or "" for message in turns[1][-1]["responses"])
    assert ("クレジットカード" in both and "093-691-7211" in both) if name == "questions_ja" else \
        ("Credit card" in both and "082-207-4262" in both)


def test_an_order_lookup_asks_for_a_sign_in_and_shows_the_students_own_orders_after_it(server, clock):
    said = ["\n".join(message["text"] or "" for result in results for message in result["responses"])
            for results in replay(server, clock, "lookup_en")]
    assert "shown only to the student who applied" in said[0]
    assert "one-time sign-in URL" in said[1]  # a typed number: a link, nothing else
    assert "You are signed in as 21***03" in said[2] and "no orders yet" in said[2]
