"""JSON log lines: one object per line with the conversation id, and no student number, email or token in any."""

import io
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from bot.delivery.inbox import Call, ChannelProcessor, Inbox, Job, PermanentFailure
from bot.delivery.notices import Delivery, deliver_later
from bot.ops import logs
from core.settings import LogFormat
from handlers.replies import Text
from handlers.turn import Channel, IncomingMessage

NUMBER, EMAIL = "24M1001", "taro.yamada@example.ac.jp"
LINK_TOKEN = secrets.token_urlsafe(32)
BARE_TOKEN = secrets.token_urlsafe(32)
SECRETS = (NUMBER, EMAIL, "taro.yamada@", LINK_TOKEN, BARE_TOKEN)


@contextmanager
def json_lines(*, level: int = logging.INFO, sql: bool = False) -> Iterator[list[dict[str, Any]]]:
    """The JSON lines logged (from any logger) inside the block, parsed after it; every line must parse.

    `sql` turns on SQLAlchemy's statement log, whose parameters carry what the turn stores (the transcript
    keeps student numbers and emails for the agents): real lines full of secrets for the formatter to mask.
    """
    stream = io.StringIO()
    handler = logs.make_handler(LogFormat.JSON, stream)
    root, engine_log = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    old_levels = root.level, engine_log.level
    root.addHandler(handler)
    root.setLevel(level)
    if sql:
        engine_log.setLevel(logging.INFO)
    parsed: list[dict[str, Any]] = []
    try:
        yield parsed
    finally:
        root.removeHandler(handler)
        root.setLevel(old_levels[0])
        engine_log.setLevel(old_levels[1])
    text = stream.getvalue()
    for line in text.splitlines():
        parsed.append(json.loads(line))  # one object per line, or this fails
    assert len(parsed) == len(text.splitlines())


def assert_clean(lines: list[dict[str, Any]]) -> None:
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message", "conversation_id"}, line
        assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0
        flat = json.dumps(line, ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in flat, f"{secret!r} leaked: {flat[:300]}"


def say(pipeline, text: str, user: str = "s1") -> list:
    return pipeline.handle(IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}",
                                           text=text))


def test_every_line_of_a_turn_is_json_with_its_conversation_and_without_secrets(core, pipeline_for):
    pipeline = pipeline_for(core)
    with json_lines(sql=True) as lines:
        say(pipeline, f"学籍番号は{NUMBER}、メールは {EMAIL} です。https://x.example/links/{LINK_TOKEN} と "
                      f"{BARE_TOKEN} が届きました")
    assert len(lines) > 5, "the statement log shows what the turn stored"
    assert any("INSERT INTO transcript_entries" in line["message"] for line in lines)
    assert_clean(lines)
    turn = [line for line in lines if line["logger"].startswith("sqlalchemy")]
    assert turn and all(line["conversation_id"] == "web:s1" for line in turn)
    stored = " ".join(line["message"] for line in turn)
    assert "24*****01" in stored or "24***01" in stored, "a student number shows masked, not dropped"
    assert "t***@example.ac.jp" in stored


def test_a_reset_asked_in_the_chat_logs_masked_with_the_conversation(core, pipeline_for, inbox):
    from bot.delivery.mailing import send_queued_mail
    from core.students import create_student

    with core.transaction() as session:
        create_student(session, student_number=NUMBER, department="medicine", year=3, now=core.now(), email=EMAIL)
    pipeline = pipeline_for(core)
    with json_lines() as lines:
        say(pipeline, "第2パスワードを忘れました", user="r1")
        pipeline.handle(IncomingMessage(channel=Channel.WEB, user_id="r1", conversation_id="web:r1",
                                        text=None, payload="form:start:reset"))
        say(pipeline, NUMBER, user="r1")
        send_queued_mail(core)  # the worker mails the link: its line names the job the turn's line names
    assert inbox.messages, "the reset mail was sent"
    [queued] = [line for line in lines if "queued as job" in line["message"]]
    assert queued["conversation_id"] == "web:r1" and queued["logger"] == "core.links"
    job = queued["message"].rsplit(" ", 1)[1]
    mailed = [line for line in lines if "mailed to" in line["message"]]
    assert mailed and f"(job {job})" in mailed[0]["message"] and mailed[0]["logger"] == "core.links"
    assert_clean(lines)


def test_lines_outside_a_turn_have_a_null_conversation_and_exceptions_are_masked():
    log = logging.getLogger("tests.logs")
    with json_lines() as lines:
        log.info("plain line for %s at /links/%s", EMAIL, LINK_TOKEN)
        try:
            raise ValueError(f"bad number {NUMBER} with {BARE_TOKEN}")
        except ValueError:
            log.exception("it failed for %s", NUMBER)
        with logs.conversation("web:z9"):
            log.warning("inside")
        log.info("after")
    plain, failed, inside, after = lines
    assert plain["conversation_id"] is None and plain["level"] == "INFO" and plain["logger"] == "tests.logs"
    assert "/links/[token]" in plain["message"] and "t***@example.ac.jp" in plain["message"]
    assert "ValueError" in failed["exception"] and "[token]" in failed["exception"]
    assert inside["conversation_id"] == "web:z9" and after["conversation_id"] is None
    assert_clean(lines)


def test_words_and_identifiers_stay_readable():
    text = "order K7PM-3QXA at 2026-11-24T10:00 in second_password_reset_requested_today ticket 12345678901234567890"
    assert logs.mask(text) == text
    assert logs.mask(f"Bearer {BARE_TOKEN}") == "Bearer [token]"
    assert logs.mask("GET /line/link?linkToken=abc123 HTTP/1.1") == "GET /line/link?linkToken=[token] HTTP/1.1"


def test_text_format_is_masked_too():
    stream = io.StringIO()
    handler = logs.make_handler(LogFormat.TEXT, stream)
    record = logging.LogRecord("tests.logs", logging.INFO, __file__, 1, "student %s mail %s", (NUMBER, EMAIL), None)
    with logs.conversation("web:t1"):
        line = handler.format(record)
    assert "tests.logs [web:t1]: student 24***01 mail t***@example.ac.jp" in line
    assert "\n" not in line


def test_an_inbox_job_line_carries_the_conversation_its_payload_names(core):
    inbox = Inbox(core)
    inbox.register(Delivery(core, {}))  # no channel connected: a LINE delivery fails for good, and is logged
    with core.transaction() as session:
        deliver_later(session, key="notice:1", channel="line", user_id="Uabc", conversation_id="line:Uabc",
                      replies=[Text(f"hello {NUMBER}")], now=core.now())
    with json_lines() as lines:
        assert inbox.drain() == 1
    failed = [line for line in lines if line["level"] == "ERROR"]
    assert len(failed) == 2  # the inbox's line and the delivery's own
    assert all(line["conversation_id"] == "line:Uabc" for line in failed)
    assert_clean(lines)


class _TurnThenRefused(ChannelProcessor):
    """A channel whose webhook payload does not name the conversation: the turn finds it, then sending fails."""

    channel = "probe"

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        say(self.pipeline, job.payload["text"], user=job.payload["user"])
        return [{"call": 1}]

    def send(self, call: Call) -> None:
        raise PermanentFailure("the platform refused the call")


def test_a_webhook_job_learns_its_conversation_from_the_turn(core, pipeline_for):
    inbox = Inbox(core)
    inbox.register(_TurnThenRefused(pipeline_for(core)))
    assert inbox.accept("probe", "event-1", {"user": "w7", "text": f"{EMAIL} を登録したい"})
    assert inbox.accept("probe", "event-2", {"user": "w8", "text": "支払い方法"})
    with json_lines() as lines:
        assert inbox.drain() == 2
    refused = [line for line in lines if "failed permanently" in line["message"]]
    assert [line["conversation_id"] for line in refused] == ["web:w7", "web:w8"], "each job its own, none leaks"
    assert_clean(lines)
