"""The web inbox (/admin/inbox) with real channels, over real HTTP: a LINE student and a web agent talk through
the fake LINE platform; with Slack's agents' channel also set, a ticket is worked from both desks at once and
each side shows what the other did, every message crossing exactly once (each call checked against its
platform's spec by the fakes)."""

import re
import uuid
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.settings import ChannelSettings
from bot.web.app import create_app
from core import staff
from core.clock import FixedClock
from core.handoffs import ClosedHow, TicketStatus
from core.models import HandoffTicket
from core.services import Core
from tests.channels.conftest import (
    AGENT_CHANNEL,
    LINE_SECRET,
    LINE_TOKEN,
    Desk,
    PollingInbox,
    pushes,
    quick_replies,
    replies,
    served,
    texts,
)
from tests.channels.line.fake_line_api import FakeLineApi
from tests.channels.line.webhooks import Events, user_id
from tests.channels.slack import payloads
from tests.channels.slack.fake_slack_api import Call, running
from tests.channels.slack.payloads import BOT_TOKEN, TEAM

EMAIL = "yamada@example.ac.jp"
PASSWORD = "correct horse battery"
NAME = "山田"
SLACK_AGENT = "U0AGENT0001"
ASK_FOR_PERSON = "担当者と話したい"
_ts = iter(range(1, 10_000))


# --- the web agent ---------------------------------------------------------------------------------------------


class WebAgent:
    """A staff member's browser on the inbox: its own cookies, plain forms, no script."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10, follow_redirects=False)

    def sign_in(self) -> None:
        login = self.http.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        response = self.http.post("/admin/login", data={"csrf": csrf, "email": EMAIL, "password": PASSWORD})
        assert response.status_code == 303, response.text

    def inbox(self) -> str:
        """The queue page (opening it puts the agent at the desk)."""
        page = self.http.get("/admin/inbox")
        assert page.status_code == 200, page.text
        return page.text

    def page(self, ticket_id: int) -> str:
        page = self.http.get(f"/admin/inbox/{ticket_id}")
        assert page.status_code == 200, page.text
        return page.text

    def form(self, ticket_id: int, form_id: str) -> dict[str, str]:
        """A form's hidden fields (csrf, and the one-time key of a reply or a note) as the page renders them."""
        html = self.page(ticket_id)
        form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S)
        assert form is not None, f"no {form_id} on the ticket's page"
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', form.group(0)))

    def send(self, ticket_id: int, action: str, fields: dict[str, str]) -> str:
        """POST one of the ticket's forms; how it went (the `done` of the 303's address)."""
        response = self.http.post(f"/admin/inbox/{ticket_id}/{action}", data=fields)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith(f"/admin/inbox/{ticket_id}?done="), location
        return location.rsplit("=", 1)[1]

    def act(self, ticket_id: int, action: str, text: str | None = None) -> str:
        """Take, resolve or hand back (the page's CSRF token), or reply or note (`text`, with the form's key)."""
        if action in ("reply", "note"):
            fields = self.form(ticket_id, f"{action}-form") | {"text": text or ""}
        else:
            fields = {"csrf": re.search(r'name="csrf" value="([^"]+)"', self.page(ticket_id)).group(1)}
        return self.send(ticket_id, action, fields)

    def timeline(self, ticket_id: int) -> list[tuple[str, str]]:
        """The ticket page's timeline: each line's kind and text."""
        html = re.search(r'<ol class="lines" id="timeline">(.*?)</ol>', self.page(ticket_id), re.S).group(1)
        return [(kind, unescape(text).strip()) for kind, text in
                re.findall(r'<li class="line tl-(\w+)">.*?<p class="line-text">(.*?)</p>', html, re.S)]


@pytest.fixture
def web_agent(core: Core) -> Iterator[Callable[[str], WebAgent]]:
    """An agent account (display name 山田); call with the app's URL for a browser signed in to it."""
    with core.transaction() as session:
        staff.create_account(session, EMAIL, PASSWORD, core.now(), role=staff.Role.AGENT, display_name=NAME)
    agents: list[WebAgent] = []

    def signed_in(url: str) -> WebAgent:
        # The staff cookie is Secure when the public URL is https: this app is served over plain loopback.
        core.base_url = url
        agent = WebAgent(url)
        agent.sign_in()
        agents.append(agent)
        return agent

    yield signed_in
    for agent in agents:
        agent.http.close()


# --- the apps ------------------------------------------------------------------------------------------------


@pytest.fixture
def line_desk(core: Core, clock: FixedClock, pipeline_for: Callable[[Core], object],
              handoff_line_server: FakeLineApi) -> Iterator[Desk]:
    """The app with LINE only: no Slack, so the web inbox is the only desk."""
    handoff_line_server.reset()
    settings = ChannelSettings(  # type: ignore[call-arg]
        _env_file=None, line_channel_secret=LINE_SECRET, line_channel_access_token=LINE_TOKEN,
        line_api_base_url=handoff_line_server.url, line_access_base_url=handoff_line_server.url)
    inbox = PollingInbox(core)
    app = create_app(core, pipeline_for(core), channel_settings=settings, inbox=inbox)  # type: ignore[arg-type]
    assert core.agents_on_slack is False
    with running(BOT_TOKEN) as unused_slack, served(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield Desk(http=http, core=core, clock=clock, inbox=inbox, line=handoff_line_server, slack=unused_slack,
                   events=Events(clock))
    assert unused_slack.calls == [], "Slack is not configured: nothing may call it"
    assert not handoff_line_server.violations, "\n".join(handoff_line_server.violations)


# --- what the platforms saw ------------------------------------------------------------------------------------


def line_says(desk: Desk, student: str, text: str) -> None:
    desk.line_post(desk.events.text(student, text))
    desk.work()


def only_ticket(desk: Desk) -> HandoffTicket:
    with desk.core.transaction() as session:
        [ticket] = session.scalars(select(HandoffTicket)).all()
        session.expunge(ticket)
        return ticket


def agent_posts(desk: Desk) -> list[Call]:
    return [post for post in desk.slack.posts() if post.params.get("channel") == AGENT_CHANNEL]


def thread(desk: Desk, thread_ts: str) -> list[str]:
    return [post.params["text"] for post in agent_posts(desk) if post.params.get("thread_ts") == thread_ts]


def cards(desk: Desk) -> list[Call]:
    return [post for post in agent_posts(desk) if post.blocks and "thread_ts" not in post.params]


def slack_reply(text: str, thread_ts: str, *, user: str = SLACK_AGENT) -> dict[str, Any]:
    """A Slack agent's reply in a ticket's thread, as the Events API sends it."""
    ts = f"{1_797_000_000 + next(_ts)}.000300"
    event = {"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": thread_ts,
             "channel": AGENT_CHANNEL, "channel_type": "channel", "event_ts": ts, "team": TEAM,
             "client_msg_id": f"b9e47000-0000-4000-8000-{next(_ts):012d}"}
    return payloads.event_callback(event, topics=("message.channels",))


def press(action: str, ticket_id: int, *, user: str = SLACK_AGENT) -> str:
    return payloads.button_click(str(ticket_id), action_id=f"madoguchi.handoff.{action}", user=user,
                                 channel=AGENT_CHANNEL)


# --- a. LINE and the web inbox --------------------------------------------------------------------------------


def test_a_line_student_and_a_web_agent_talk_through_the_inbox(line_desk, web_agent):
    desk = line_desk
    agent = web_agent(str(desk.http.base_url))
    assert 'data-ticket="' not in agent.inbox()  # nothing waits yet; the agent is now at the desk

    student = user_id()
    line_says(desk, student, ASK_FOR_PERSON)
    [answer] = replies(desk)
    assert "担当者におつなぎします" in texts([answer])[0] and "順番待ち：1番目です" in texts([answer])[0]
    ticket = only_ticket(desk)
    assert f'data-ticket="{ticket.id}"' in agent.inbox()

    assert agent.act(ticket.id, "take") == "taken"
    assert any(kind == "event" and NAME in text for kind, text in agent.timeline(ticket.id)), "who took it"
    desk.work()
    [taken] = pushes(desk)
    assert texts([taken]) == ["担当者がお問い合わせを確認しました。このトークでお返事いたします。"]

    # The reply form sent twice (a double click): the student gets it once, signed with the display name.
    form = agent.form(ticket.id, "reply-form") | {"text": "ログインの件ですね。確認します。"}
    assert agent.send(ticket.id, "reply", form) == "sent"
    assert agent.send(ticket.id, "reply", form) == "sent"
    desk.work()
    [reply] = [call for call in pushes(desk) if "確認します" in str(call.body)]
    assert reply.body["to"] == student
    assert texts([reply]) == [f"【担当者 {NAME}】ログインの件ですね。確認します。"]
    assert uuid.UUID(reply.headers["x-line-retry-key"])
    assert len(pushes(desk)) == 2
    assert EMAIL not in str([call.body for call in desk.line.calls]), "the agent's email reached LINE"

    # The student answers on LINE: the bot is silent, and the ticket's page shows it.
    before = len(desk.line.deliveries())
    line_says(desk, student, "第2パスワードを忘れてしまいました")
    assert len(desk.line.deliveries()) == before, "the bot answered during the handoff"
    assert ("student", "第2パスワードを忘れてしまいました") in agent.timeline(ticket.id)
    assert ("agent", "ログインの件ですね。確認します。") in agent.timeline(ticket.id)

    # Resolved: one push with the one-tap question; the tap is kept.
    assert agent.act(ticket.id, "resolve") == "resolved"
    desk.work()
    assert len(pushes(desk)) == 3
    closing = pushes(desk)[-1]
    assert "担当者との会話を終了しました" in texts([closing])[0]
    assert quick_replies(closing) == ["handoff:feedback:good", "handoff:feedback:bad"]
    assert agent.act(ticket.id, "resolve") == "closed", "a second resolve changes nothing"
    desk.work()
    assert len(pushes(desk)) == 3

    desk.line_post(desk.events.postback(student, "handoff:feedback:good"))
    desk.work()
    assert "ご回答ありがとうございます" in texts(replies(desk)[-1:])[0]
    closed = only_ticket(desk)
    assert (closed.status, closed.closed_how, closed.satisfaction) == (
        TicketStatus.RESOLVED, ClosedHow.RESOLVED, "good")

    # The next question is the bot's again, and reaches no agent.
    line_says(desk, student, "支払い方法を教えて")
    assert "クレジットカード" in texts(replies(desk)[-1:])[0]
    assert ("student", "支払い方法を教えて") not in agent.timeline(ticket.id)
    assert len(pushes(desk)) == 3
    assert not desk.stored("pending", "processing", "failed")


def test_without_an_agent_at_the_inbox_the_line_student_is_not_promised_a_person(line_desk, web_agent):
    desk = line_desk
    web_agent(str(desk.http.base_url))  # signed in, but the inbox was never opened
    student = user_id()
    line_says(desk, student, ASK_FOR_PERSON)
    [answer] = texts(replies(desk))
    assert "席を外しています" in answer and "082-207-4262" in answer and "おつなぎします" not in answer
    line_says(desk, student, "支払い方法を教えて")
    assert "クレジットカード" in texts(replies(desk)[-1:])[0], "the bot keeps answering"


def test_a_second_reply_is_sent_once_per_form_and_each_form_once(line_desk, web_agent):
    desk = line_desk
    agent = web_agent(str(desk.http.base_url))
    agent.inbox()
    student = user_id()
    line_says(desk, student, ASK_FOR_PERSON)
    ticket = only_ticket(desk)

    first = agent.form(ticket.id, "reply-form")
    second = agent.form(ticket.id, "reply-form")
    assert first["key"] != second["key"], "each rendered form has its own key"
    for form, text in ((first, "一通目です"), (first, "一通目です"), (second, "二通目です")):
        assert agent.send(ticket.id, "reply", form | {"text": text}) == "sent"
    desk.work()
    sent = [text for text in texts(pushes(desk)) if text.startswith("【担当者")]
    assert sent == [f"【担当者 {NAME}】一通目です", f"【担当者 {NAME}】二通目です"]
    assert only_ticket(desk).status == TicketStatus.ASSIGNED, "replying to a waiting ticket takes it"


# --- b. half Slack, half web ----------------------------------------------------------------------------------


def test_a_ticket_worked_from_slack_and_the_web_inbox_at_once(desk, web_agent):
    agent = web_agent(str(desk.http.base_url))
    student = user_id()
    line_says(desk, student, ASK_FOR_PERSON)
    ticket = only_ticket(desk)
    [card] = cards(desk)
    assert ticket.thread_ts == card.answer["ts"]
    assert f'data-ticket="{ticket.id}"' in agent.inbox()

    # The web agent takes it: the Slack card and thread say who, by display name.
    assert agent.act(ticket.id, "take") == "taken"
    desk.work()
    [update] = desk.slack.attempts("chat.update")
    assert update.params["ts"] == ticket.thread_ts and f"*{NAME}* さんが対応中" in str(update.blocks)
    assert "madoguchi.handoff.take" not in str(update.blocks), "a taken card offers no take button"
    assert thread(desk, ticket.thread_ts) == [f"*{NAME}* さんが担当します。このスレッドへの返信は学生に届きます。"]
    assert EMAIL not in str(desk.slack.calls)

    # A Slack agent presses "take" late: told privately who has it; nothing changes.
    assert desk.slack_form(press("take", ticket.id)).status_code == 200
    desk.work()
    [ephemeral] = desk.slack.attempts("chat.postEphemeral")
    assert ephemeral.params["user"] == SLACK_AGENT
    assert ephemeral.params["text"] == f"この引き継ぎはすでに *{NAME}* さんが担当しています。"
    held = only_ticket(desk)
    assert (held.status, held.assignee_name) == (TicketStatus.ASSIGNED, NAME)
    assert len(desk.slack.attempts("chat.update")) == 1 and len(pushes(desk)) == 1  # only "taken"

    # A Slack agent replies in the thread: the student gets it once; the web page shows it.
    assert desk.slack_event(slack_reply("学生支援課にも確認します。", ticket.thread_ts)).status_code == 200
    desk.work()
    from_slack = [text for text in texts(pushes(desk)) if "学生支援課" in text]
    assert from_slack == ["【担当者】学生支援課にも確認します。"]
    assert ("agent", "学生支援課にも確認します。") in agent.timeline(ticket.id)

    # The web agent replies: the student gets it once; the Slack thread gets the mirror.
    assert agent.act(ticket.id, "reply", "本日中にご連絡します。") == "sent"
    desk.work()
    from_web = [text for text in texts(pushes(desk)) if "本日中" in text]
    assert from_web == [f"【担当者 {NAME}】本日中にご連絡します。"]
    assert thread(desk, ticket.thread_ts)[-1] == f"{NAME}（Web受信箱）が学生に返信しました：本日中にご連絡します。"

    # An internal note: in the Slack thread, never to the student.
    pushed = len(pushes(desk))
    assert agent.act(ticket.id, "note", "学生支援課の田中さんに確認中") == "noted"
    desk.work()
    assert thread(desk, ticket.thread_ts)[-1] == (
        f":memo: {NAME}（Web受信箱）の内部メモ（学生には届きません）：学生支援課の田中さんに確認中")
    assert len(pushes(desk)) == pushed and "田中さん" not in str([call.body for call in desk.line.calls])
    assert ("note", "学生支援課の田中さんに確認中") in agent.timeline(ticket.id)

    # The web agent resolves: the card shows it, buttons gone; the student gets the closing question once.
    assert agent.act(ticket.id, "resolve") == "resolved"
    desk.work()
    resolved = desk.slack.attempts("chat.update")[-1]
    assert resolved.params["ts"] == ticket.thread_ts and f"*{NAME}* さんが解決済み" in str(resolved.blocks)
    assert "actions" not in [block["type"] for block in resolved.blocks]
    assert thread(desk, ticket.thread_ts)[-1] == (
        f"*{NAME}* さんが解決済みにしました。学生はボットとの会話に戻りました。")
    closing = [call for call in pushes(desk) if "担当者との会話を終了しました" in str(call.body)]
    assert len(closing) == 1 and quick_replies(closing[0]) == ["handoff:feedback:good", "handoff:feedback:bad"]

    # Every message crossed once: student and agents' posts counted.
    assert len(pushes(desk)) == pushed + 1
    assert EMAIL not in str(desk.slack.calls) and EMAIL not in str([call.body for call in desk.line.calls])
    assert not desk.stored("pending", "processing", "failed")


def test_a_slack_agents_take_shows_on_the_web_page_and_a_web_take_then_loses(desk, web_agent):
    agent = web_agent(str(desk.http.base_url))
    line_says(desk, user_id(), ASK_FOR_PERSON)
    ticket = only_ticket(desk)

    assert desk.slack_form(press("take", ticket.id)).status_code == 200
    desk.work()
    page = agent.page(ticket.id)
    assert 'id="take-form"' not in page, "a taken ticket offers no take"
    assert agent.act(ticket.id, "take") == "lost"
    assert any(kind == "event" and SLACK_AGENT in text for kind, text in agent.timeline(ticket.id)), \
        "the page's timeline says the Slack agent took it"
    assert only_ticket(desk).assignee == SLACK_AGENT
    desk.work()
    assert len(desk.slack.attempts("chat.update")) == 1, "the lost web take changed nothing on the card"

