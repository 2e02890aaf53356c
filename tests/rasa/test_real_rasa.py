"""End to end with a real Rasa Open Source 3.6.21: the model trained with the README's recipe (cached by the
hash of what it reads), `rasa run` with the REST channel, and `madoguchi actions` on loopback, on the test
database and the test SMTP server. Orders and reset requests finish in Japanese and English; a question
and a cancel inside a form work. Skipped, saying why, where Rasa is not installed (`make rasa`)."""

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.models import Order
from core.students import find_student, load_demo_students
from core.web_sessions import start_session
from tests.bot.test_cli import clean_env
from tests.conftest import free_port
from tests.rasa.live import RestClient, button_payloads, rasa_missing, rasa_with_actions, texts, trained_model
from tests.rasa.scenarios import SIGN_IN, tap

pytestmark = pytest.mark.skipif(rasa_missing() is not None, reason=f"REAL RASA NOT RUN: {rasa_missing()}")


@pytest.fixture
def rasa(core, smtp_server, nlu_model_path, tmp_path) -> Iterator[str]:
    """Rasa's base URL, with madoguchi's action server behind it; both stopped after the test."""
    shutil.copy(nlu_model_path, tmp_path / "nlu-model.joblib")  # madoguchi's own model, as `make run` leaves it
    with core.transaction() as session:
        load_demo_students(session, core.profile, core.now())
    model = trained_model()
    env = clean_env(tmp_path, DATABASE_URL=core.engine.url.render_as_string(hide_password=False), DEMO_DATA="false",
                    SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_server[0].port),
                    BASE_URL="https://madoguchi.example.ac.jp")
    with rasa_with_actions(model, env, tmp_path, free_port(), free_port()) as url:
        yield url
    log = (tmp_path / "actions.log").read_text()
    assert "Traceback" not in log and "might not be compatible" not in log, log[-3000:]


def orders(core) -> list[tuple[str, str, str, list[tuple[str, int]]]]:
    with core.transaction() as session:
        return [(order.number, order.delivery_method, order.payment_method,
                 [(item.item_code, item.copies) for item in order.items])
                for order in session.scalars(select(Order).order_by(Order.id))]


def reset_mails(inbox, count: int, timeout: float = 20) -> list:
    """The reset mails (not the sign-in ones typed for above), once `count` have come from the other process's
    mail worker (it sends about once a second), waiting `timeout` seconds at most."""
    deadline = time.monotonic() + timeout
    while True:
        resets = [message for message in inbox.messages if "sign in" not in message["Subject"].lower()
                  and "サインイン" not in message["Subject"]]
        if len(resets) >= count or time.monotonic() > deadline:
            return resets
        threading.Event().wait(0.1)  # another process's thread: nothing here to be woken by


class SignedIn:
    """A student of the site's Rasa front end whose browser signed in with the mailed link: every message carries
    the madoguchi session, as the front end passes it."""

    def __init__(self, client: RestClient, core, number: str) -> None:
        with core.transaction() as session:
            self.token = start_session(session, find_student(session, number), "email", datetime.now(UTC))
        self.client = client

    def say(self, text: str) -> list:
        return self.client.say(text, madoguchi_session=self.token)


def test_orders_resets_cancel_and_a_question_mid_form_through_a_real_rasa(rasa, core, inbox):
    started = time.perf_counter()
    anonymous = RestClient(rasa, "e2e-ja")
    assert "受取開始" in texts(anonymous.say("証明書っていつ受け取れますか？"))  # a pickup question starts no order
    assert "学籍番号" in texts(anonymous.say("成績証明書を申し込みたいです"))
    # A typed number identifies no one: it asks for a sign-in link, the same for any number.
    assert "サインイン用のワンタイムURLをお送りしました" in texts(anonymous.say("24M1001"))
    ja = SignedIn(anonymous, core, "24M1001")
    assert "何通" in texts(ja.say(SIGN_IN))  # signed in: the item named first is taken
    asked = ja.say("支払い方法は何がありますか？")  # a question inside the form: answered, the form waits
    assert "クレジットカード" in texts(asked) and tap("order_certificate", "form:resume") in button_payloads(asked)
    assert "何通" in texts(ja.say(tap("order_certificate", "form:resume")))
    assert "受取方法" in texts(ja.say("2通"))
    assert "郵便番号" in texts(ja.say("郵送でお願いします"))
    assert "福岡県北九州市八幡西区医生ケ丘" in texts(ja.say("８０７－８５５５"))  # looked up, full-width typed
    assert "宛名" in texts(ja.say("1-1 医生ケ丘ハイツ203"))
    assert "電話番号" in texts(ja.say("山田 太郎"))
    assert "お支払い方法" in texts(ja.say("090-1234-5678"))
    summary = ja.say("PayPayで")
    assert "お申し込み内容の確認" in texts(summary) and "医生ケ丘 1-1 医生ケ丘ハイツ203" in texts(summary)
    assert "郵便番号" in texts(ja.say(tap("order_certificate", "form:change:postal")))  # a change at the summary
    assert "東京都千代田区千代田" in texts(ja.say("100-0001"))
    assert "千代田 1-1-1" in texts(ja.say("1-1-1"))  # the street again, for the new code; the summary follows
    placed = ja.say(tap("order_certificate", "form:set:confirm:yes"))
    [(number, delivery, payment, items)] = orders(core)
    assert number in texts(placed) and (delivery, payment, items) == ("mail", "paypay", [("transcript", 2)])
    with core.transaction() as session:
        assert "千代田" in session.scalars(select(Order.mailing_address)).one()

    en = RestClient(rasa, "e2e-en")
    assert "student number" in texts(en.say("I'd like to apply for a certificate of enrollment"))
    assert "sign-in URL" in texts(en.say("24M1001"))
    en = SignedIn(en, core, "24M1001")
    assert "How many copies" in texts(en.say(SIGN_IN))
    assert "cancel" in texts(en.say("cancel")).lower()  # typed cancel inside the form
    assert "payment" in texts(en.say("what payment methods do you accept?")).lower()  # no form takes it
    en.say("I want to order a transcript")
    en.say("1 copy")
    en.say("on the campus printer")
    assert "Please check your application" in texts(en.say("credit card"))
    placed = en.say("yes")
    assert len(orders(core)) == 2 and orders(core)[1][0] in texts(placed)

    reset_ja = RestClient(rasa, "e2e-reset-ja")
    offered = reset_ja.say("第2パスワードを忘れてしまいました")
    assert tap("second_password_reset", "form:start:reset") in button_payloads(offered)
    assert "学籍番号" in texts(reset_ja.say(tap("second_password_reset", "form:start:reset")))
    assert "受け付けました" in texts(reset_ja.say("24M1001"))
    reset_en = RestClient(rasa, "e2e-reset-en")
    reset_en.say("I forgot my second password")
    assert "student number" in texts(reset_en.say("yes please send me the link"))
    assert "received" in texts(reset_en.say("22N2002"))  # another student: one student's links are rate-limited
    resets = reset_mails(inbox, 2)  # the action server's mail worker sends them after the answers
    assert sorted(message["To"] for message in resets) == ["emily.tanaka@students.example.ac.jp",
                                                           "taro.yamada@students.example.ac.jp"]
    assert all("https://madoguchi.example.ac.jp/" in inbox.body(message) for message in inbox.messages)
    print(f"\nreal Rasa conversation: {time.perf_counter() - started:.1f} s")
