"""The web chat page and its live updates over real HTTP (no browser): HTML, language, headers, limits, the stream."""

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from bot.web import chat
from bot.web.app import WEB
from core.conversations import record

STRICT_CSP = ("default-src 'self'", "script-src 'self'", "style-src 'self'")


def test_the_page_opens_in_japanese_with_a_labelled_input_and_no_inline_script(live_server):
    response = live_server.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="ja">' in html
    assert "<title>証明書発行サービス チャットサポート</title>" in html
    assert '<label class="composer-label" for="message">メッセージ</label>' in html and 'id="message"' in html
    assert 'aria-live="polite"' in html
    # Every script is the one file or a JSON data block; no style attribute or block; nothing from another host.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/chat.js" defer>',
                                                  '<script type="application/json" id="chat-strings">']
    assert " style=" not in html and "<style" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    csp = response.headers["content-security-policy"]
    assert all(part in csp for part in STRICT_CSP) and "unsafe-inline" not in csp


def test_the_page_follows_accept_language_and_a_chosen_language_is_remembered(live_server):
    english = live_server.client.get("/", headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"})
    assert '<html lang="en">' in english.text and "Certificate Issuance Service chat support" in english.text
    assert '<label class="composer-label" for="message">Message</label>' in english.text
    assert "set-cookie" not in english.headers  # following the browser is not a choice to remember

    chosen = live_server.client.get("/?lang=ja", headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in chosen.text
    assert "chat_lang=ja" in chosen.headers["set-cookie"]
    later = live_server.client.get("/", headers={"Accept-Language": "en"})  # the client keeps the cookie
    assert '<html lang="ja">' in later.text
    live_server.client.cookies.clear()


def test_the_scripts_texts_come_escaped_in_a_json_block(live_server):
    html = live_server.client.get("/?lang=en").text
    block = re.search(r'<script type="application/json" id="chat-strings">(.*?)</script>', html, re.S)
    assert block is not None
    strings = json.loads(block.group(1))
    assert strings["typing"] == "Typing a reply…" and strings["agent"] == "Staff"
    assert "2000" in strings["too_long"]


def test_the_static_files_are_served_and_the_script_never_parses_html(live_server):
    script = live_server.client.get("/static/chat.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert live_server.client.get("/static/chat.css").status_code == 200
    source = (WEB / "static" / "chat.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    for asset in ("static/chat.js", "static/chat.css", "templates/chat.html"):
        assert not re.search(r"https?://", (WEB / asset).read_text(encoding="utf-8")), asset


def test_the_chat_api_refuses_a_body_over_the_limit_with_413(live_server):
    big = json.dumps({"user": "u1", "text": "あ" * 10_000})  # 30 kB of UTF-8
    response = live_server.client.post("/api/chat", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_the_answer_carries_the_students_words_as_the_transcript_keeps_them(chat_server):
    reply = chat_server.client.post("/api/chat", json={"user": "said1", "text": "パスワード Abcdef12 が使えません"})
    assert reply.status_code == 200
    assert reply.json()["said"] == "パスワード [password] が使えません"  # masked, so the page never stores it
    tapped = chat_server.client.post("/api/chat", json={"user": "said1", "payload": "intent:greet"}).json()
    assert "said" not in tapped and tapped["replies"][0]["quick_replies"]


def events_of(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Server-sent events as dicts of their fields (comments dropped), as a browser's EventSource reads them."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def add_line(core, conversation_id: str, direction: str, text: str) -> int:
    """Write a transcript line as the app does; the id of the conversation's newest later message."""
    with core.transaction() as session:
        record(session, conversation_id, direction, text, core.now())
    return max([int(m["id"]) for m in chat.later_messages(core, conversation_id, 0)], default=0)


def test_the_stream_sends_an_agents_message_written_while_it_is_open(live_server):
    core = live_server.core
    add_line(core, "web:s1", "in", "担当者と話したい")  # the student's own line is not a later message
    add_line(core, "web:s1", "agent", "担当の山田です。")
    with live_server.client.stream("GET", "/api/chat/events", params={"user": "s1"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert "content-security-policy" in response.headers  # the security headers do not stop the stream
        stream = events_of(response)
        assert next(stream) == {"retry": str(chat.RETRY_MILLISECONDS)}
        first = next(stream)
        assert first["event"] == "message"
        assert json.loads(first["data"])["text"] == "担当の山田です。"
        # Written while the stream is open: the next poll picks it up (waiting is bounded by the read timeout).
        later = add_line(core, "web:s1", "note", "証明書の準備ができました。")
        second = next(stream)
        assert second["id"] == str(later)
        assert json.loads(second["data"]) | {"at": None} == {"id": later, "kind": "note",
                                                             "text": "証明書の準備ができました。", "at": None,
                                                             "author": None, "quick_replies": []}


def test_a_reconnecting_stream_starts_after_the_last_event_id(live_server):
    core = live_server.core
    seen = add_line(core, "web:s2", "agent", "一通目です。")
    add_line(core, "web:s2", "agent", "二通目です。")
    add_line(core, "web:other", "agent", "ほかの会話です。")
    headers = {"Last-Event-ID": str(seen)}
    with live_server.client.stream("GET", "/api/chat/events?user=s2&after=0", headers=headers) as response:
        stream = events_of(response)
        next(stream)  # retry
        assert json.loads(next(stream)["data"])["text"] == "二通目です。"


def test_the_stream_ends_by_itself_after_its_polls(live_server, monkeypatch):
    monkeypatch.setattr(chat, "STREAM_POLLS", 3)
    monkeypatch.setattr(chat, "POLL_SECONDS", 0.01)
    with live_server.client.stream("GET", "/api/chat/events", params={"user": "s3"}) as response:
        assert list(events_of(response)) == [{"retry": str(chat.RETRY_MILLISECONDS)}]  # then the response ends


@pytest.mark.parametrize(("query", "field"), [("", "user"), ("?user=" + "x" * 200, "user"),
                                               ("?user=u&after=-1", "after")])
def test_a_bad_stream_request_is_refused_naming_the_parameter(live_server, query, field):
    response = live_server.client.get("/api/chat/events" + query)
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_a_bad_last_event_id_is_refused(live_server):
    response = live_server.client.get("/api/chat/events?user=u", headers={"Last-Event-ID": "abc"})
    assert response.status_code == 422 and response.json()["field"] == "after"

