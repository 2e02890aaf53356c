"""Account linking end to end: link token → our sign-in page → LINE's dialog → accountLink event →
linked (the order form knows the student); failures, single use, expiry, rate limits, and unlinking."""

import hashlib
import logging
import re
from functools import partial
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from core.conversations import load_state
from core.models import AccountLinkNonce, ChannelAccount, SignInFailure
from core.students import create_student, set_second_password
from tests.channels.line.fake_line_api import LINK_DIALOG, PUSH
from tests.channels.line.webhooks import user_id
from tests.conftest import at_once

NUMBER, PASSWORD = "22M3456", "Kx7mQp2z"
APP_LOGGERS = ("bot", "core", "handlers", "uvicorn", "starlette")  # not the test client's httpx


@pytest.fixture
def student(line):
    with line.core.transaction() as session:
        row = create_student(session, student_number=NUMBER, department="medicine", year=3, now=line.core.now())
        set_second_password(session, row, PASSWORD, line.core.now())
        return row.id


def link_url(line):
    """The sign-in page URL the bot sent in its last message (a Flex bubble with a URI button)."""
    message = line.fake.delivered_messages()[-1]
    assert message["type"] == "flex", message
    uri = message["contents"]["footer"]["contents"][0]["action"]["uri"]
    assert uri.startswith(f"{line.url}/line/link?linkToken=")
    return uri


def start_linking(line, user, how=None):
    line.deliver(how or line.events.postback(user, "link:start"))
    return link_url(line)


def submit(line, url, number, password):
    return line.client.post(url[len(line.url):], data={"student_number": number, "password": password})


def error_of(page):
    found = re.search(r'<p class="errors" role="alert">(.*?)</p>', page.text)
    return found.group(1) if found else None


def sign_in_to_nonce(line, url):
    response = submit(line, url, NUMBER, PASSWORD)
    assert response.status_code == 303
    target = response.headers["location"]
    assert target.startswith(f"{line.fake.url}{LINK_DIALOG}?")
    query = parse_qs(urlsplit(target).query)
    assert query["linkToken"] == parse_qs(urlsplit(url).query)["linkToken"]
    return target, query["nonce"][0]


def linked_student(line, user):
    with line.core.transaction() as session:
        return session.scalar(select(ChannelAccount.student_id).where(ChannelAccount.external_id == user))


def test_linking_end_to_end_then_the_order_form_no_longer_asks_the_student_number(line, student, caplog):
    caplog.set_level(logging.DEBUG)
    user = user_id()
    line.deliver(line.events.follow(user))
    line.fake.reset()

    # 1. The student taps "link my account": the bot issues a link token and sends our page.
    url = start_linking(line, user)
    [issue] = [call for call in line.fake.calls if call.path.endswith("/linkToken")]
    assert issue.path == f"/v2/bot/user/{user}/linkToken" and issue.method == "POST"
    token = parse_qs(urlsplit(url).query)["linkToken"][0]
    assert line.fake.link_tokens[token] == user
    assert "第2パスワードは、このトークには入力しないでください" in line.fake.delivered_texts()[-1]

    # 2. Our page asks for the student number and the second password.
    page = line.client.get(url[len(line.url):])
    assert page.status_code == 200
    assert 'name="student_number"' in page.text and 'type="password"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert f"form-action 'self' {line.fake.url}" in page.headers["content-security-policy"]

    # 3. A wrong password and an unknown student get the same refusal.
    wrong = submit(line, url, NUMBER, "Wrong1234")
    unknown = submit(line, url, "99Z9999", PASSWORD)
    assert wrong.status_code == unknown.status_code == 200
    refusal = "学籍番号または第2パスワードが正しくありません。もう一度ご確認ください。"
    assert error_of(wrong) == error_of(unknown) == refusal
    assert wrong.text.replace(NUMBER, "X") == unknown.text.replace("99Z9999", "X")
    assert "Wrong1234" not in wrong.text

    # 4. The right one sends the browser to LINE's dialog with the link token and a nonce.
    target, nonce = sign_in_to_nonce(line, url)
    assert len(nonce) >= 22  # at least 128 bits, URL-safe
    assert line.client.get(target).status_code == 200
    assert line.fake.dialog_visits == [{"linkToken": token, "nonce": nonce}]
    with line.core.transaction() as session:
        stored = session.scalars(select(AccountLinkNonce)).one()
        assert stored.nonce_hash == hashlib.sha256(nonce.encode()).hexdigest() and stored.used_at is None

    # 5. LINE sends the accountLink event: linked, confirmed.
    line.fake.reset()
    line.deliver(line.events.account_link(user, nonce))
    assert "アカウント連携が完了しました" in line.fake.delivered_texts()[0]
    assert linked_student(line, user) == student
    with line.core.transaction() as session:
        assert load_state(session, f"line:{user}", "line", user, line.core.now()).student_id == student

    # 6. The order form knows who is asking.
    line.fake.reset()
    line.deliver(line.events.text(user, "成績証明書を申請したい"))
    said = "\n".join(line.fake.delivered_texts())
    assert "何通" in said and "学籍番号" not in said

    # Neither the password nor the nonce nor the link token reached a log line of the app.
    app_lines = "\n".join(record.getMessage() for record in caplog.records
                          if record.name.split(".")[0] in APP_LOGGERS)
    assert "LINE link page" in app_lines
    for secret in (PASSWORD, "Wrong1234", nonce, token, NUMBER):
        assert secret not in app_lines


def test_an_unlinked_student_is_asked_to_link_not_to_type_a_number_and_the_order_goes_on_after(line, student):
    user = user_id()
    line.deliver(line.events.text(user, "成績証明書を申請したい"))
    [question] = line.fake.delivered_messages()
    assert "（アカウント連携）が必要です" in question["text"]
    assert "link:start" in [item["action"]["data"] for item in question["quickReply"]["items"]]

    # A typed student number identifies no one on LINE: anyone could type anyone's number.
    line.fake.reset()
    line.deliver(line.events.text(user, NUMBER))
    said = "\n".join(line.fake.delivered_texts())
    assert "学籍番号の入力だけではご本人の確認ができません" in said and "（アカウント連携）が必要です" in said
    with line.core.transaction() as session:
        assert load_state(session, f"line:{user}", "line", user, line.core.now()).student_id is None

    # Linking from the button, then the application resumes where it stopped.
    line.fake.reset()
    _, nonce = sign_in_to_nonce(line, start_linking(line, user))
    line.fake.reset()
    line.deliver(line.events.account_link(user, nonce))
    done, offer = line.fake.delivered_messages()
    assert "アカウント連携が完了しました" in done["text"]
    assert [item["action"]["data"] for item in offer["quickReply"]["items"]] == ["form:resume", "form:cancel"]
    line.fake.reset()
    line.deliver(line.events.postback(user, "form:resume"))
    said = "\n".join(line.fake.delivered_texts())
    assert "何通" in said and "アカウント連携" not in said


def test_a_linked_student_stays_known_after_the_conversation_expires(line, student):
    user = user_id()
    _, nonce = sign_in_to_nonce(line, start_linking(line, user))
    line.deliver(line.events.account_link(user, nonce))
    line.clock.advance(hours=5)
    line.fake.reset()
    line.deliver(line.events.text(user, "成績証明書を申請したい"))
    said = "\n".join(line.fake.delivered_texts())
    assert "何通" in said and "学籍番号" not in said


def test_a_nonce_links_once_only(line, student):
    user, intruder = user_id(), user_id()
    _, nonce = sign_in_to_nonce(line, start_linking(line, user))
    line.deliver(line.events.account_link(user, nonce))
    line.fake.reset()
    line.deliver(line.events.account_link(intruder, nonce))
    assert "完了できませんでした" in line.fake.delivered_texts()[0]
    assert linked_student(line, intruder) is None and linked_student(line, user) == student


def test_an_expired_nonce_does_not_link(line, student):
    user = user_id()
    _, nonce = sign_in_to_nonce(line, start_linking(line, user))
    line.clock.advance(minutes=10, seconds=1)
    line.fake.reset()
    line.deliver(line.events.account_link(user, nonce))
    assert "完了できませんでした" in line.fake.delivered_texts()[0]
    assert linked_student(line, user) is None


def test_a_failed_link_result_gets_a_polite_push_and_an_offer_to_retry(line, student):
    user = user_id()
    line.deliver(line.events.account_link(user, "whatever-nonce-1234", ok=False))
    [push] = line.fake.calls_to(PUSH)  # LINE gives no reply token when linking failed
    assert "完了できませんでした" in push.messages[0]["text"]
    assert "link:start" in [item["action"]["data"] for item in push.messages[0]["quickReply"]["items"]]
    assert linked_student(line, user) is None


def test_failed_sign_ins_are_limited_per_student_number(line, student):
    url = start_linking(line, user_id())
    for _ in range(5):
        assert error_of(submit(line, url, NUMBER, "Wrong1234")).startswith("学籍番号または")
    locked = submit(line, url, NUMBER, PASSWORD)
    assert locked.status_code == 429 and "15分ほど" in error_of(locked)
    assert submit(line, url, "24M1002", "Wrong1234").status_code == 200, "other numbers are not affected"
    line.clock.advance(minutes=14, seconds=59)
    assert submit(line, url, NUMBER, PASSWORD).status_code == 429
    line.clock.advance(seconds=1)
    assert submit(line, url, NUMBER, PASSWORD).status_code == 303


@pytest.mark.parametrize("number", [NUMBER, "99Z9999"], ids=["known", "unknown"])
def test_the_limit_holds_across_two_workers_and_after_a_restart(line, make_line, student, number):
    """Two app processes on one database share the count, and a restarted one still knows it: failures are
    rows, not process memory. A known and an unknown student number are locked alike."""
    other = make_line()
    url = start_linking(line, user_id())
    answers = [submit(worker, url, number, "Wrong1234").status_code for worker in [line, other] * 4]
    assert answers == [200] * 5 + [429] * 3
    restarted = make_line()
    locked = submit(restarted, url, number, PASSWORD)
    assert locked.status_code == 429 and "15分ほど" in error_of(locked)
    with line.core.transaction() as session:  # one row per failure, only hashed
        assert list(session.scalars(select(SignInFailure.key_hash))) == \
            [hashlib.sha256(f"line-link:{number}".encode()).hexdigest()] * 5
    restarted.clock.advance(minutes=15)
    assert submit(restarted, url, number, PASSWORD).status_code == (303 if number == NUMBER else 200)


def test_concurrent_wrong_passwords_on_two_workers_are_checked_five_times_only(line, make_line, student):
    other = make_line()
    url = start_linking(line, user_id())

    def attempt(worker):
        with httpx.Client(base_url=worker.url, timeout=30) as client:  # a browser of its own
            return client.post(url[len(line.url):], data={"student_number": NUMBER, "password": "Wrong1234"})

    answers = [response.status_code for response in at_once(*(partial(attempt, worker)
                                                              for worker in [line, other] * 6))]
    assert sorted(answers) == [200] * 5 + [429] * 7, "checked one after another: five, then locked"
    assert submit(other, url, NUMBER, PASSWORD).status_code == 429


def test_a_successful_sign_in_forgives_the_earlier_failures(line, make_line, student):
    other = make_line()
    url = start_linking(line, user_id())
    for _ in range(4):
        assert submit(line, url, NUMBER, "Wrong1234").status_code == 200
    assert submit(other, url, NUMBER, PASSWORD).status_code == 303
    for _ in range(5):
        assert submit(line, url, NUMBER, "Wrong1234").status_code == 200
    assert submit(other, url, NUMBER, PASSWORD).status_code == 429


def test_a_page_without_a_valid_link_token_is_refused(line):
    for query in ("", "?linkToken=", "?linkToken=%3Cscript%3E", "?linkToken=short"):
        page = line.client.get("/line/link" + query)
        assert page.status_code == 400 and "このリンクは使えません" in page.text
    assert line.client.post("/line/link?linkToken=", data={"student_number": NUMBER}).status_code == 400


def test_the_page_speaks_english_and_its_language_switch_keeps_the_link_token(line, student):
    url = start_linking(line, user_id())
    page = line.client.get(url[len(line.url):] + "&lang=en")
    assert "Link your LINE account" in page.text and "Second password" in page.text
    token = parse_qs(urlsplit(url).query)["linkToken"][0]
    assert f'href="?linkToken={token}&amp;lang=ja"' in page.text


@pytest.mark.parametrize("typed", ["アカウント連携", "アカウント連携したい", "LINE連携", "連携してください"])
def test_a_typed_request_starts_linking(line, student, typed):
    user = user_id()
    start_linking(line, user, line.events.text(user, typed))


def test_an_english_request_gets_english_texts(line, student):
    user = user_id()
    line.deliver(line.events.text(user, "Link my account please"))
    message = line.fake.delivered_messages()[-1]
    assert "lang=en" in message["contents"]["footer"]["contents"][0]["action"]["uri"]
    assert "Linking your account" in message["altText"]


def test_an_already_linked_student_is_offered_unlinking(line, student):
    user = user_id()
    _, nonce = sign_in_to_nonce(line, start_linking(line, user))
    line.deliver(line.events.account_link(user, nonce))
    line.fake.reset()
    line.deliver(line.events.postback(user, "link:start"))
    [message] = line.fake.delivered_messages()
    assert "すでに学籍番号と連携されています" in message["text"]
    assert "link:unlink" in [item["action"]["data"] for item in message["quickReply"]["items"]]
    assert not [call for call in line.fake.calls if call.path.endswith("/linkToken")]


@pytest.mark.parametrize("how", ["payload", "typed"])
def test_unlinking_forgets_the_student(line, student, how):
    user = user_id()
    _, nonce = sign_in_to_nonce(line, start_linking(line, user))
    line.deliver(line.events.account_link(user, nonce))
    line.fake.reset()
    request = line.events.postback(user, "link:unlink") if how == "payload" else line.events.text(user, "連携解除")
    line.deliver(request)
    assert "アカウント連携を解除しました" in line.fake.delivered_texts()[0]
    assert linked_student(line, user) is None
    with line.core.transaction() as session:
        assert load_state(session, f"line:{user}", "line", user, line.core.now()).student_id is None
    line.fake.reset()
    line.deliver(line.events.text(user, "成績証明書を申請したい"))
    assert "学籍番号" in "\n".join(line.fake.delivered_texts())


def test_unlinking_when_not_linked_says_so(line):
    user = user_id()
    line.deliver(line.events.text(user, "連携解除"))
    assert "まだ学籍番号と連携されていません" in line.fake.delivered_texts()[0]


def test_a_refused_link_token_gets_a_polite_answer(line):
    user = user_id()
    line.fake.fail_next(f"/v2/bot/user/{user}/linkToken", 400, message="Invalid user")
    line.deliver(line.events.postback(user, "link:start"))
    assert "連携の準備ができませんでした" in line.fake.delivered_texts()[0]
