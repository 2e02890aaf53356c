"""The chat's answer to a student number given for signing in: the same for every number, and nothing looked up,
written or mailed before it (the link goes out after the answer)."""

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import select

from bot.delivery.mailing import send_queued_mail
from core.enums import Language
from core.links import sign_in_reply
from core.models import OneTimeLink
from core.students import create_student
from handlers.forms import SlotRejected
from handlers.identity import SIGN_IN_SENT, ask_for_sign_in_link
from intents.types import Intent

EMAIL = "taro.yamada@students.example.ac.jp"


class Gate:
    """A background pool that holds every job until released: what the chat did before answering is visible."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def submit(self, job) -> Future:
        def later():
            self.open.wait(30)
            job()
        return ThreadPoolExecutor(max_workers=1).submit(later)


def test_the_chat_answers_any_number_alike_and_mails_only_after_answering(make_ctx, core, inbox):
    with core.transaction() as session:
        create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now(), email=EMAIL)
    gate = Gate()
    core.background = gate  # type: ignore[assignment]
    answers = {}
    for number in ("24M1001", "99Z9999"):
        ctx = make_ctx(Intent.OUT_OF_SCOPE, text=number)
        with pytest.raises(SlotRejected) as answered:
            ask_for_sign_in_link(ctx, number, "order")
        assert answered.value.key == "order.sign_in_sent" and ctx.state.slots[SIGN_IN_SENT] is True
        answers[number] = answered.value.values["text"]
        with core.transaction() as session:
            assert session.scalars(select(OneTimeLink)).all() == [], "nothing is written before the answer"
        assert inbox.messages == [], "nothing is sent before the answer"
    assert answers["24M1001"] == answers["99Z9999"] == sign_in_reply(core, Language.JA)
    gate.open.set()
    core.settle()
    assert inbox.messages == [], "the answer's background work only queues the mail"
    send_queued_mail(core)
    assert [mail["To"] for mail in inbox.messages] == [EMAIL]
