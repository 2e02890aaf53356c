"""Reset and sign-in links mailed from the job queue (SQLite and PostgreSQL): the request does the same work for
any number and mails nothing; the inbox worker looks the student up, keeps the rate limits and mails the link,
once per job even when the job runs again."""

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, update

from bot.delivery.inbox import LEASE, Call, Inbox, Job
from bot.delivery.mailing import Mailing, mail_worker, send_queued_mail
from bot.wiring import job_processors
from core.enums import Language, LinkPurpose
from core.jobs import DELIVER, MAIL, enqueue
from core.links import (
    LinkNudge,
    inspect_link,
    request_second_password_reset,
    request_web_sign_in,
    sign_in_reply,
)
from core.models import InboundEvent, OneTimeLink, Reminder
from core.students import create_student

NUMBER, EMAIL = "24M1001", "taro.yamada@students.example.ac.jp"
TOKEN = re.compile(r"/links/([A-Za-z0-9_-]+)\?lang=")


@pytest.fixture
def student(core) -> int:
    with core.transaction() as session:
        return create_student(session, student_number=NUMBER, department="medicine", year=3, now=core.now(),
                              email=EMAIL).id


def drain(core) -> int:
    """The web app's inbox worker, with the processors the app registers for the core's own jobs."""
    return Inbox(core, {processor.channel: processor for processor in job_processors(core)}).drain()


@contextmanager
def statements(core) -> Iterator[list[str]]:
    """The statements sent to the database inside the block, as SQLAlchemy sent them."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(" ".join(statement.split()))

    event.listen(core.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(core.engine, "before_cursor_execute", note)


def mail_jobs(core) -> list[InboundEvent]:
    with core.transaction() as session:
        found = list(session.scalars(select(InboundEvent).where(InboundEvent.channel == MAIL)
                                     .order_by(InboundEvent.id)))
        session.expunge_all()
        return found


def links(core) -> list[OneTimeLink]:
    with core.transaction() as session:
        found = list(session.scalars(select(OneTimeLink).order_by(OneTimeLink.id)))
        session.expunge_all()
        return found


def reset_text(core, number: str, lang: Language) -> str:
    return request_second_password_reset(core, number, lang).text


def sign_in_text(core, number: str, lang: Language) -> str:
    request_web_sign_in(core, number, lang)
    return sign_in_reply(core, lang)


@pytest.mark.parametrize("request_link", [reset_text, sign_in_text], ids=["reset", "sign-in"])
@pytest.mark.parametrize("lang", [Language.JA, Language.EN])
def test_a_known_and_an_unknown_number_get_the_same_reply_and_the_same_statements(
        core, inbox, student, request_link: Callable[..., str], lang):
    with statements(core) as known_statements:
        known = request_link(core, NUMBER, lang)
    with statements(core) as unknown_statements:
        unknown = request_link(core, "99Z9999", lang)

    assert known == unknown
    assert known_statements == unknown_statements
    assert all("inbound_events" in statement for statement in known_statements), known_statements
    assert not any(table in statement for statement in known_statements
                   for table in ("students", "one_time_links")), "the request looks no one up"
    assert inbox.messages == [] and links(core) == [], "nothing is issued or mailed inside the request"

    assert drain(core) == 2
    assert [mail["To"] for mail in inbox.messages] == [EMAIL]
    assert [job.status for job in mail_jobs(core)] == ["done", "done"]


def test_the_job_holds_the_normalized_number_the_purpose_and_the_language_only(core, inbox, student):
    request_second_password_reset(core, "２４ｍ－１００１", "en")  # full-width with a hyphen, as typed on phones
    request_web_sign_in(core, "x" * 500, "ja")
    first, second = (json.loads(job.payload) for job in mail_jobs(core))
    assert first == {"purpose": "second_password_reset", "number": NUMBER, "lang": "en", "job": first["job"]}
    assert second["number"] == "X" * 33, "a long text is kept only as far as it could ever match"
    drain(core)
    [mail] = inbox.messages
    token = TOKEN.search(inbox.body(mail)).group(1)
    with core.engine.connect() as connection:
        rows = connection.execute(select(InboundEvent)).all()
    assert rows and all(token not in repr(tuple(row)) for row in rows), "the link's token is never stored"


def test_a_job_run_again_after_its_mail_went_out_sends_no_second_link(core, inbox, clock, student):
    """The worker died after the link and the mail, before recording the job's end: the lease runs out and the
    job is taken again, but its part is recorded as sent with the link, so no second link goes out."""
    request_second_password_reset(core, NUMBER, "ja")
    [job] = mail_jobs(core)
    with core.transaction() as session:  # claimed by the worker that will die
        session.execute(update(InboundEvent).where(InboundEvent.id == job.id)
                        .values(status="processing", lease_until=clock.now() + LEASE))
    payload = json.loads(job.payload)
    mailing = Mailing(core)
    [part] = mailing.prepare(Job(payload, job.received_at))
    mailing.send(Call(Job(payload, job.received_at), part, 0))  # the link and its mail; then the process dies
    assert len(inbox.messages) == 1

    assert drain(core) == 0, "leased: no other worker takes it yet"
    clock.advance(seconds=LEASE.total_seconds())
    assert drain(core) == 1
    [job] = mail_jobs(core)
    assert (job.status, job.sent_parts) == ("done", 1)
    assert len(inbox.messages) == 1 and len(links(core)) == 1
    token = TOKEN.search(inbox.body(inbox.messages[0])).group(1)
    assert inspect_link(core, token).purpose is LinkPurpose.SECOND_PASSWORD_RESET


def test_a_drained_job_is_not_run_again(core, inbox, student):
    request_web_sign_in(core, NUMBER, "ja")
    assert drain(core) == 1 and drain(core) == 0 and send_queued_mail(core) == 0
    assert len(inbox.messages) == 1 and len(links(core)) == 1


def test_the_rate_limits_hold_in_the_worker(core, inbox, clock, student):
    replies = {request_second_password_reset(core, NUMBER, "ja") for _ in range(2)}  # within the minute
    assert len(replies) == 1, "a rate limit does not show in the reply"
    drain(core)
    assert len(inbox.messages) == 1
    for _ in range(3):
        clock.advance(minutes=1)
        request_second_password_reset(core, NUMBER, "ja")
        drain(core)
    assert len(inbox.messages) == 3, "three an hour"
    request_web_sign_in(core, NUMBER, "ja")  # another purpose has limits of its own
    drain(core)
    assert len(inbox.messages) == 4
    assert {job.status for job in mail_jobs(core)} == {"done"}


def test_a_nudge_is_scheduled_with_the_link_the_worker_issues(core, inbox, clock, student):
    nudge = LinkNudge(channel="line", recipient="U1234", conversation_id="line:U1234", lang="ja")
    request_second_password_reset(core, NUMBER, "ja", nudge=nudge)
    request_second_password_reset(core, NUMBER, "ja", nudge=nudge)  # rate-limited: no link, no second nudge
    drain(core)
    with core.transaction() as session:
        [reminder] = session.scalars(select(Reminder)).all()
        [link] = session.scalars(select(OneTimeLink)).all()
        assert (reminder.channel, reminder.recipient, reminder.subject) == ("line", "U1234", str(link.id))


def test_the_mail_only_drain_leaves_other_jobs_to_the_web_apps_worker(core, inbox, student):
    with core.transaction() as session:
        enqueue(session, DELIVER, "notice:1", {"kind": "replies", "channel": "line", "user": "U1",
                                               "conversation": "line:U1", "replies": []}, core.now())
    request_second_password_reset(core, NUMBER, "ja")
    assert send_queued_mail(core) == 1 and len(inbox.messages) == 1
    with core.transaction() as session:
        other = session.scalars(select(InboundEvent).where(InboundEvent.channel == DELIVER)).one()
        assert (other.status, other.attempts, other.lease_until) == ("pending", 0, None)


def test_the_mail_only_drain_retries_a_failed_send_once_the_mail_server_is_back(core, inbox, clock, student):
    class Down:
        def send(self, message):
            raise ConnectionRefusedError("smtp down")

    working, core.mailer = core.mailer, Down()
    request_web_sign_in(core, NUMBER, "en")
    assert send_queued_mail(core) == 1 and inbox.messages == [] and links(core) == []
    [job] = mail_jobs(core)
    assert (job.status, job.attempts) == ("pending", 1) and "smtp down" in job.last_error
    core.mailer = working
    assert send_queued_mail(core) == 0, "not before its backoff"
    clock.advance(seconds=2)
    assert send_queued_mail(core) == 1 and len(inbox.messages) == 1
    assert mail_jobs(core)[0].status == "done"


def test_the_action_servers_mail_worker_sends_what_was_queued(core, inbox, student):
    request_second_password_reset(core, NUMBER, "ja")
    worker = mail_worker(core)
    worker.start()
    try:
        arrived = threading.Event()
        for _ in range(100):  # its first round comes at once; bounded, in case it never does
            if inbox.messages or arrived.wait(0.1):
                break
    finally:
        worker.stop()
    assert [mail["To"] for mail in inbox.messages] == [EMAIL]
