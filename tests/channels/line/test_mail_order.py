"""A 郵送 order on LINE by a linked student: the address questions, the summary as a Flex bubble (every call
checked against the Messaging API spec by the fake), and the address kept out of the logs and the transcript."""

import logging

from sqlalchemy import select

from core.addresses import MailingAddress
from core.models import ChannelAccount, Order, TranscriptEntry
from core.students import create_student
from tests.channels.line.webhooks import user_id

APP_LOGGERS = ("bot", "core", "handlers", "uvicorn", "starlette")
STREET, RECIPIENT, PHONE = "2-3-4 ライオンズ黒崎505", "佐藤 花子", "080-2345-6789"


def test_a_linked_line_student_orders_by_mail_and_the_address_stays_out_of_logs_and_transcript(line, caplog):
    caplog.set_level(logging.DEBUG)
    user, now = user_id(), line.core.now()
    with line.core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=now)
        session.add(ChannelAccount(channel="line", external_id=user, student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))

    def says(text: str) -> str:
        line.fake.reset()
        line.deliver(line.events.text(user, text))
        return "\n".join(line.fake.delivered_texts())

    assert "郵便番号" in says("成績証明書を1通、郵送でお願いしたいです")
    assert "福岡県北九州市八幡西区" in says("〒806-0021")
    assert "宛名" in says(STREET)
    assert "電話番号" in says(RECIPIENT)
    assert "お支払い方法" in says(PHONE)
    says("PayPayで")
    [card] = [message for message in line.fake.delivered_messages() if message["type"] == "flex"]
    rows = {row["contents"][0]["text"]: row["contents"][1]["text"] for row in card["contents"]["body"]["contents"]}
    assert f"〒806-0021 福岡県北九州市八幡西区黒崎 {STREET}" in rows["郵送先"] and f"{RECIPIENT} 様" in rows["郵送先"]
    items = card["quickReply"]["items"]
    assert "form:change:postal" in [item["action"].get("data") for item in items] and len(items) <= 13

    assert "ご注文番号" in says("はい")
    with line.core.transaction() as session:
        stored = session.scalars(select(Order)).one()
        assert MailingAddress.from_json(stored.mailing_address).lines()[1:] == (RECIPIENT, "08023456789")
        transcript = "\n".join(session.scalars(select(TranscriptEntry.text)))
    app_lines = "\n".join(record.getMessage() for record in caplog.records
                          if record.name.split(".")[0] in APP_LOGGERS)
    for personal in (STREET, RECIPIENT, PHONE, "08023456789", "806-0021"):
        assert personal not in transcript, personal
        assert personal not in app_lines, personal
    assert "[personal]" in transcript and "〒806-**** 福岡県北九州市八幡西区 ***" in app_lines
