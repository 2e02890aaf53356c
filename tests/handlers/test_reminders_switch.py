"""Turning reminders off and on by typing: what counts as asking, and who may."""

import pytest

from core.models import Student
from core.students import create_student
from handlers.reminders import answer_switch, typed_switch
from handlers.turn import Channel, IncomingMessage
from intents.types import Intent
from tests.handlers.conftest import all_text


@pytest.mark.parametrize(("text", "wanted"), [
    ("通知停止", False), ("通知を停止してください。", False), ("お知らせを止めて", False), ("リマインダー停止", False),
    ("stop reminders", False), ("Stop notifications please", False), ("ＳＴＯＰ　ＲＥＭＩＮＤＥＲＳ", False),
    ("通知再開", True), ("通知を再開してください", True), ("start reminders", True), ("resume notifications", True),
    ("通知が届きません", None), ("支払い方法を教えて", None), ("stop", None), ("", None), (None, None),
])
def test_what_counts_as_a_switch(text, wanted):
    assert typed_switch(text) is wanted


def test_only_a_student_known_by_a_linked_account_can_switch(core, make_ctx):
    with core.transaction() as session:
        student_id = create_student(session, student_number="24M1001", department="medicine", year=2,
                                    now=core.now()).id
    web = make_ctx(Intent.OUT_OF_SCOPE, text="通知停止")
    web.state.student_id = student_id  # identified by a typed number: not enough
    assert "ご本人の確認ができた方" in all_text(answer_switch(web))

    line = make_ctx(Intent.OUT_OF_SCOPE, text="通知停止")
    line = type(line)(message=IncomingMessage(channel=Channel.LINE, user_id="U1", conversation_id="line:U1",
                                              text="通知停止"),
                      understanding=line.understanding, lang=line.lang, state=line.state, core=core, now=line.now)
    line.state.student_id = student_id
    assert "停止しました" in all_text(answer_switch(line))
    with core.transaction() as session:
        assert session.get(Student, student_id).reminders_enabled is False
