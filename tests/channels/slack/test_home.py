"""The app's Home tab, end to end: a signed app_home_opened in, the inbox worker, a spec-valid views.publish
out (read back from the fake Slack Web API); clicks on the published view's buttons answered in the user's
direct messages, and the reminders switch. Students are known by their Slack profile's email (demo data)."""

import json
from urllib.parse import parse_qs, urlencode

import pytest
from sqlalchemy import select

from bot.channels.slack_payloads import home_metadata, view_language
from core.conversations import transcript
from core.enums import DeliveryMethod, Language, PaymentMethod
from core.models import Student
from core.orders import OrderLine, cancel_order, create_order, find_order
from core.students import load_demo_students
from handlers import basic
from handlers.messages import say
from handlers.replies import intent_payload
from intents.types import Intent
from tests.channels.slack import payloads
from tests.channels.slack.fake_slack_api import FORM
from tests.channels.slack.payloads import OTHER_DM, OTHER_STUDENT, STUDENT, TEAM, signed_headers
from tests.channels.slack.shown import texts

TARO, TARO_EMAIL = "24M1001", "taro.yamada@students.example.ac.jp"
ICHIRO, ICHIRO_EMAIL = "21M1003", "ichiro.suzuki@students.example.ac.jp"
EMILY_EMAIL = "emily.tanaka@students.example.ac.jp"  # 22N2002, whose preferred language is English
NOT_IDENTIFIED = "まだご本人の確認ができていません"


@pytest.fixture
def students(slack_server) -> dict[str, int]:
    """The demo students, by student number → id."""
    with slack_server.core.transaction() as session:
        load_demo_students(session, slack_server.core.profile, slack_server.core.now())
        return {student.student_number: student.id for student in session.scalars(select(Student))}


def place_order(slack_server, student_id: int, item: str = "transcript", copies: int = 1) -> str:
    """An order awaiting payment, printed on campus; its number."""
    core = slack_server.core
    with core.transaction() as session:
        placed = create_order(session, student=session.get(Student, student_id), lines=[OrderLine(item, copies)],
                              delivery=DeliveryMethod.CAMPUS_PRINTER, payment=PaymentMethod.CREDIT_CARD,
                              profile=core.profile, gateway=core.payments, now=core.now())
        return placed.order.number


def open_home(slack_server, user: str = STUDENT, channel: str = payloads.DM) -> dict:
    """Open the Home tab as Slack reports it and run the worker; the view the user sees now."""
    response = slack_server.send_event(payloads.app_home_opened(user=user, channel=channel,
                                                                view=slack_server.fake.home(user)))
    assert response.status_code == 200
    assert slack_server.deliver() == []  # nothing is posted: the Home tab is a view
    view = slack_server.fake.home(user)
    assert view is not None and view["type"] == "home"
    return view


def shown(view: dict) -> str:
    """Everything a Home view shows: header, section and context texts, and button labels."""
    lines = []
    for block in view["blocks"]:
        lines.append(block.get("text", {}).get("text", ""))
        lines += [element["text"]["text"] if element["type"] == "button" else element.get("text", "")
                  for element in block.get("elements", [])]
        lines.append(block.get("accessory", {}).get("text", {}).get("text", ""))
    return "\n".join(line for line in lines if line)


def buttons(view: dict) -> dict[str, str]:
    """A Home view's buttons: label → value."""
    found = {}
    for block in view["blocks"]:
        elements = block.get("elements", []) if block["type"] == "actions" else [block.get("accessory") or {}]
        found.update({element["text"]["text"]: element["value"] for element in elements
                      if element.get("type") == "button"})
    return found


def click(slack_server, view: dict, label: str, user: str = STUDENT) -> list:
    """Click a button of the Home view and run the worker; the messages posted meanwhile."""
    assert slack_server.send_form(payloads.home_click(view, label, user=user)).status_code == 200
    return slack_server.deliver()


def reminders_enabled(slack_server, student_id: int) -> bool:
    with slack_server.core.transaction() as session:
        return session.get(Student, student_id).reminders_enabled


# --- what the Home tab shows ------------------------------------------------------------------------------


def test_opening_the_home_tab_publishes_the_menu_of_the_chat(slack_server):
    view = open_home(slack_server)

    [publish] = slack_server.fake.publishes()
    assert publish.params["user_id"] == STUDENT
    offered = buttons(view)
    for intent in (*basic.MENU_INTENTS, Intent.ORDER_STATUS, Intent.HUMAN_AGENT):
        assert intent_payload(intent) in offered.values(), intent
    assert offered[say("menu.payment_methods", Language.JA)] == "intent:payment_methods"
    assert offered["English"] == "lang:en"  # the language switch, labelled in the other language
    assert say("slack.home.title", Language.JA, service="証明書発行サービス") in shown(view)
    assert json.loads(view["private_metadata"]) == {"lang": "ja"}


def test_an_unidentified_user_sees_no_orders_and_how_to_be_identified(slack_server, students):
    number = place_order(slack_server, students[TARO])  # someone's order exists; this user is nobody known

    view = open_home(slack_server)

    text = shown(view)
    assert NOT_IDENTIFIED in text and "メールアドレスの登録" in text
    assert say("slack.home.orders_heading", Language.JA) not in text
    assert not {"on", "off"} & set(buttons(view).values())  # no reminders switch without a student
    assert number not in text and "24***01" not in text and TARO not in text


def test_an_identified_student_sees_their_own_open_orders_and_no_one_elses(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    slack_server.fake.set_profile(OTHER_STUDENT, ICHIRO_EMAIL)
    taros = [place_order(slack_server, students[TARO]), place_order(slack_server, students[TARO], "transcript", 2)]
    ichiros = place_order(slack_server, students[ICHIRO], "enrollment_certificate")
    cancelled = place_order(slack_server, students[TARO], "enrollment_certificate")
    with slack_server.core.transaction() as session:
        cancel_order(session, find_order(session, cancelled), slack_server.core.now())

    taro_sees, ichiro_sees = shown(open_home(slack_server)), shown(open_home(slack_server, OTHER_STUDENT, OTHER_DM))

    assert all(number in taro_sees for number in taros) and ichiros not in taro_sees
    assert cancelled not in taro_sees  # finished orders are not open
    assert "成績証明書 ×2" in taro_sees and "お支払い待ち" in taro_sees
    assert "24***01" in taro_sees and TARO not in taro_sees  # their own number, masked as the web chat shows it
    assert ichiros in ichiro_sees and not any(number in ichiro_sees for number in taros)
    assert "21***03" in ichiro_sees


def test_a_student_without_open_orders_is_told_so_and_more_than_five_are_counted(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    assert say("slack.home.orders_none", Language.JA) in shown(open_home(slack_server))

    numbers = [place_order(slack_server, students[TARO]) for _ in range(7)]
    text = shown(open_home(slack_server))

    assert sum(number in text for number in numbers) == 5
    assert "ほかに2件あります" in text and "申請の状況" in text


def test_the_home_tab_is_in_the_students_language_and_in_the_conversations(slack_server, students):
    slack_server.fake.set_profile(OTHER_STUDENT, EMILY_EMAIL)
    assert "Your open orders" in shown(open_home(slack_server, OTHER_STUDENT, OTHER_DM))  # her preferred language

    slack_server.send_event(payloads.im_message("How can I pay?"))  # someone unknown, writing in English
    slack_server.deliver()
    view = open_home(slack_server)
    assert "Tap a topic below" in shown(view) and buttons(view)["日本語"] == "lang:ja"


# --- the buttons work ---------------------------------------------------------------------------------------


def test_a_home_menu_button_is_answered_in_the_dm_and_the_home_tab_published_again(slack_server):
    view = open_home(slack_server)

    posts = click(slack_server, view, say("menu.payment_methods", Language.JA))

    assert posts and {post.params["channel"] for post in posts} == {STUDENT}  # the app's DM with that user
    assert "クレジットカード" in texts(posts[0])
    with slack_server.core.transaction() as session:  # the same conversation a DM to the bot is
        said = [entry.text for entry in transcript(session, f"slack:{TEAM}:{STUDENT}")]
    assert said[0] == "[intent:payment_methods]" and "クレジットカード" in said[1]
    assert len(slack_server.fake.publishes()) == 2
    [event] = [event for event in slack_server.events() if event.event_id.startswith("action:")]
    assert event.status == "done"


def test_a_home_click_is_answered_once_even_when_slack_sends_it_twice(slack_server):
    view = open_home(slack_server)
    form = payloads.home_click(view, say("menu.contact", Language.JA))
    assert slack_server.send_form(form).status_code == 200 and slack_server.send_form(form).status_code == 200
    first = slack_server.deliver()
    assert first and slack_server.deliver() == []


def test_a_failed_publish_is_retried_by_the_inbox(slack_server):
    slack_server.fake.fail_next(1, status=500, method="views.publish")
    view = open_home(slack_server)
    assert [call.status for call in slack_server.fake.attempts("views.publish")] == [500, 200]
    assert view["blocks"]


def test_the_language_switch_answers_in_english_and_turns_the_home_tab_english(slack_server):
    view = open_home(slack_server)

    posts = click(slack_server, view, "English")

    assert posts and say("language.switched", Language.EN) in texts(posts[0])
    english = slack_server.fake.home(STUDENT)
    assert json.loads(english["private_metadata"]) == {"lang": "en"}
    assert buttons(english)["日本語"] == "lang:ja"
    posts = click(slack_server, english, say("menu.payment_methods", Language.EN))
    assert "credit card" in texts(posts[0]).lower()  # a tap is answered in the language it was read in


def test_the_reminders_switch_flips_the_students_setting_and_publishes_again(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    view = open_home(slack_server)
    stop, start = say("slack.home.reminders_stop", Language.JA), say("slack.home.reminders_start", Language.JA)
    assert buttons(view)[stop] == "off" and reminders_enabled(slack_server, students[TARO])

    assert click(slack_server, view, stop) == []  # nothing is posted: the view says it

    off = slack_server.fake.home(STUDENT)
    assert not reminders_enabled(slack_server, students[TARO])
    assert buttons(off)[start] == "on" and say("slack.home.reminders_off", Language.JA) in shown(off)
    assert len(slack_server.fake.publishes()) == 2

    click(slack_server, off, start)
    assert reminders_enabled(slack_server, students[TARO])
    assert buttons(slack_server.fake.home(STUDENT))[stop] == "off"


def test_a_switch_tapped_after_the_user_is_no_longer_a_student_changes_nobody(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    view = open_home(slack_server)
    slack_server.fake.set_profile(STUDENT, "taro@gmail.example.com")  # read again after a day: unlinked
    slack_server.clock.advance(hours=25)

    click(slack_server, view, say("slack.home.reminders_stop", Language.JA))  # on the view still shown

    assert all(reminders_enabled(slack_server, student_id) for student_id in students.values())
    assert NOT_IDENTIFIED in shown(slack_server.fake.home(STUDENT))


def test_slacks_retries_of_one_opening_publish_once(slack_server):
    body = payloads.app_home_opened()
    for retry in (None, 1, 2):
        assert slack_server.send_event(body, retry_num=retry).status_code == 200
    slack_server.deliver()
    assert len(slack_server.events()) == 1 and len(slack_server.fake.publishes()) == 1


@pytest.mark.parametrize("lang", list(Language))
def test_the_views_language_round_trips_through_its_metadata(lang):
    assert view_language({"private_metadata": home_metadata(lang)}) is lang
    for metadata in ("", "not json", "[1]", '{"lang": "fr"}', '{"lang": ["en"]}'):
        assert view_language({"private_metadata": metadata}) is None


def test_opening_the_messages_tab_publishes_nothing(slack_server):
    assert slack_server.send_event(payloads.app_home_opened(tab="messages")).status_code == 200
    assert slack_server.events() == [] and slack_server.fake.calls == []


# --- bad requests: a 4xx, never a 5xx, and nothing stored --------------------------------------------------


def _home_form(slack_server, change) -> str:
    view = open_home(slack_server)
    payload = json.loads(parse_qs(payloads.home_click(view, say("menu.contact", Language.JA)))["payload"][0])
    change(payload)
    return urlencode({"payload": json.dumps(payload)})


@pytest.mark.parametrize("wrong_secret", [False, True], ids=["unsigned", "wrong-secret"])
def test_an_unsigned_home_event_or_click_is_a_401(slack_server, wrong_secret):
    raw = json.dumps(payloads.app_home_opened()).encode()
    headers = signed_headers(raw, secret="not-our-secret") if wrong_secret else {"content-type": "application/json"}
    assert slack_server.post(raw, headers).status_code == 401
    form = _home_form(slack_server, lambda payload: None).encode()
    headers = signed_headers(form, secret="not-our-secret", content_type=FORM) if wrong_secret \
        else {"content-type": FORM}
    assert slack_server.post(form, headers).status_code == 401
    assert len(slack_server.events()) == 1  # only the signed app_home_opened that showed the view


@pytest.mark.parametrize(("event", "field"), [
    ({"user": ["U0STUDENT01"]}, "event.user is not a string"),
    ({"user": "u1"}, "event.user is not a Slack id"),
    ({"tab": {"home": True}}, "event.tab is not a string"),
    ({"channel": 42}, "event.channel is not a string"),
], ids=["user-list", "user-not-an-id", "tab-object", "channel-number"])
def test_a_malformed_app_home_opened_is_a_400_naming_the_field(slack_server, event, field):
    body = payloads.app_home_opened()
    body["event"].update(event)
    response = slack_server.send_event(body)
    assert response.status_code == 400 and field in response.text, response.text
    assert slack_server.events() == []


@pytest.mark.parametrize(("change", "field"), [
    (lambda payload: payload.update(view="not a view"), "view is not an object"),
    (lambda payload: payload["view"].update(private_metadata={"lang": "en"}), "view.private_metadata"),
    (lambda payload: payload["actions"][0].update(value=["intent:contact"]), "actions[0].value"),
    (lambda payload: payload["user"].update(id="not-a-user"), "user.id is not a Slack id"),
], ids=["view-string", "metadata-object", "value-list", "user-not-an-id"])
def test_a_malformed_home_click_is_a_400_naming_the_field(slack_server, change, field):
    response = slack_server.send_form(_home_form(slack_server, change))
    assert response.status_code == 400 and field in response.text, response.text
    assert not [event for event in slack_server.events() if event.event_id.startswith("action:")]


@pytest.mark.parametrize(("change", "answered"), [
    (lambda payload: payload["actions"][0].update(action_id="madoguchi.home.reminders", value="maybe"), False),
    (lambda payload: payload.pop("user"), False),
    (lambda payload: payload["view"].update(private_metadata="not json"), True),
], ids=["switch-neither-on-nor-off", "no-user", "metadata-not-ours"])
def test_a_home_click_lacking_what_an_answer_needs_is_acknowledged_and_dropped(slack_server, change, answered):
    response = slack_server.send_form(_home_form(slack_server, change))

    assert response.status_code == 200
    clicks = [event for event in slack_server.events() if event.event_id.startswith("action:")]
    assert len(clicks) == answered
    posts = slack_server.deliver()
    assert bool(posts) == answered  # a view whose metadata is not ours is answered in Japanese
    assert all(event.status == "done" for event in slack_server.events())
