"""The agents' inbox under /admin/inbox: the queue, a ticket's page, what an agent does to a ticket (take, reply,
canned reply, internal note, resolve, hand back), and the desk's changes as server-sent events."""

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bot.bodies import read_bounded
from bot.handoff import desk
from bot.handoff.desk import Agent
from bot.web import desk_view
from bot.web.admin import (
    INBOX,
    PAGE_HEADERS,
    SignedIn,
    error_page,
    forbidden,
    render,
    signed_in,
    staff_language,
    to_login,
)
from bot.web.chat import KEEPALIVE_POLLS, POLL_SECONDS, RETRY_MILLISECONDS, STREAM_POLLS
from core import staff
from core.enums import Language
from core.handoffs import ClosedHow, TicketStatus
from core.i18n import t
from core.models import HandoffMessage, HandoffTicket, StaffAccount
from core.services import Core

log = logging.getLogger(__name__)

MAX_TEXT = 2000  # a reply or a note; longer is refused, never cut
MAX_BODY_BYTES = 64 * 1024
KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")  # a form's one-time sending key (secrets.token_urlsafe)


class Action(StrEnum):
    """What an agent does to a ticket: the last part of the form's address."""

    TAKE = "take"
    REPLY = "reply"
    NOTE = "note"
    RESOLVE = "resolve"
    BACK = "back"


class Done(StrEnum):
    """How an action ended, told on the ticket's page (`?done=`)."""

    TAKEN = "taken"
    LOST = "lost"  # another agent took it first
    SENT = "sent"
    NOTED = "noted"
    RESOLVED = "resolved"
    HANDED_BACK = "handed_back"
    CLOSED = "closed"  # the ticket was closed already


def routes() -> list[BaseRoute]:
    """The inbox's pages, forms and live events (the events before `{ticket_id}`, which would match them)."""
    return [
        Route(INBOX, inbox_page, methods=["GET"], name="desk_inbox"),
        Route(f"{INBOX}/events", desk_events, methods=["GET"], name="desk_events"),
        Route(INBOX + "/{ticket_id}", ticket_page, methods=["GET"], name="desk_ticket"),
        Route(INBOX + "/{ticket_id}/{action}", act, methods=["POST"], name="desk_action"),
    ]


# --- pages ------------------------------------------------------------------------------------------------


async def inbox_page(request: Request) -> Response:
    """The queue; `?fragment=queue` is its live part alone, which desk.js swaps in when the desk changes."""
    who = await signed_in(request)
    if who is None:
        return to_login()
    core: Core = request.app.state.core
    lang = staff_language(request)

    def build() -> desk_view.Queue:
        with core.transaction() as session:
            _at_desk(session, who, core)
            return desk_view.queue(session, core, lang, core.now())

    view = await run_in_threadpool(build)
    if request.query_params.get("fragment") == "queue":
        return render(request, "desk_queue_part.html", who=who, view=view)
    return render(request, "desk_queue.html", who=who, view=view, counts=view.counts,
                  waiting=view.counts.waiting, section="inbox")


async def ticket_page(request: Request) -> Response:
    """A ticket's page; `?fragment=timeline` is its live part (status and timeline) alone, so the reply being
    written is never touched."""
    who = await signed_in(request)
    if who is None:
        return to_login()
    ticket_id = _ticket_id(request)
    if ticket_id is None:
        return _not_found(request, who)
    core: Core = request.app.state.core
    lang = staff_language(request)

    def build() -> tuple[desk_view.TicketPage | None, desk_view.DeskCounts]:
        with core.transaction() as session:
            _at_desk(session, who, core)
            return (desk_view.ticket_page(session, core, ticket_id, lang, core.now(), who.name),
                    desk_view.desk_counts(session))

    view, counts = await run_in_threadpool(build)
    if view is None:
        return _not_found(request, who)
    if request.query_params.get("fragment") == "timeline":
        return render(request, "desk_ticket_live.html", who=who, view=view)
    done = request.query_params.get("done", "")
    told = t(f"desk.done.{done}", lang, agent=view.assignee or "?") if done in set(Done) else None
    # Each render gets fresh sending keys: a form sent twice (a double click, a resend) is sent once.
    return render(request, "desk_ticket.html", who=who, view=view, counts=counts, waiting=counts.waiting,
                  section="inbox", done=told, max_text=MAX_TEXT, reply_key=secrets.token_urlsafe(16),
                  canned_key=secrets.token_urlsafe(16), note_key=secrets.token_urlsafe(16))


MAX_ID = 2**31 - 1  # ids are INTEGER on PostgreSQL


def _ticket_id(request: Request) -> int | None:
    """The ticket id of the path, or None: ASCII digits only (str.isdigit takes "²"), within PostgreSQL's
    INTEGER."""
    raw = request.path_params["ticket_id"]
    return int(raw) if re.fullmatch(r"[0-9]{1,10}", raw) and int(raw) <= MAX_ID else None


def _not_found(request: Request, who: SignedIn) -> Response:
    return error_page(request, 404, "error.not_found_title", t("desk.error.not_found", staff_language(request)),
                      INBOX, who=who)


def _at_desk(session: Session, who: SignedIn, core: Core) -> None:
    """The staff member has the inbox open: a handoff may promise a person now."""
    account = session.get(StaffAccount, who.account_id)
    if account is not None:
        staff.at_desk(session, account, core.now())


# --- what an agent does -----------------------------------------------------------------------------------


async def act(request: Request) -> Response:
    """Take, reply, note, resolve or hand back (the session's CSRF token required), then back to the ticket's
    page saying how it went."""
    who = await signed_in(request)
    if who is None:
        return to_login()
    lang = staff_language(request)
    if await read_bounded(request, MAX_BODY_BYTES) is None:
        return error_page(request, 413, "error.bad_request_title", t("desk.error.too_large", lang), INBOX, who=who)
    form = {name: value for name, value in (await request.form()).items() if isinstance(value, str)}
    if not staff.same_secret(who.csrf, form.get("csrf")):
        log.warning("inbox action refused: CSRF token missing or wrong")
        return forbidden(request)
    ticket_id, action = _ticket_id(request), request.path_params["action"]
    if ticket_id is None or action not in set(Action):
        return _not_found(request, who)
    refused = _check(request, who, Action(action), form)
    if refused is not None:
        return refused
    core: Core = request.app.state.core

    def perform() -> Done | None:
        with core.transaction() as session:
            ticket = session.get(HandoffTicket, ticket_id)
            account = session.get(StaffAccount, who.account_id)
            if ticket is None or account is None:
                return None
            return _perform(session, core, ticket, Agent.staff(account), Action(action), form)

    done = await run_in_threadpool(perform)
    if done is None:
        return _not_found(request, who)
    log.info("inbox: ticket %d %s by staff:%d: %s", ticket_id, action, who.account_id, done.value)
    return RedirectResponse(f"{INBOX}/{ticket_id}?done={done.value}", status_code=303, headers=PAGE_HEADERS)


def _check(request: Request, who: SignedIn, action: Action, form: dict[str, str]) -> Response | None:
    """The 400 page naming the first bad field of a reply or a note, or None when the form is fine."""
    if action not in (Action.REPLY, Action.NOTE):
        return None
    text = form.get("text", "").strip()
    if action is Action.REPLY and not text and form.get("canned"):  # the canned reply sent as it is (no script)
        if form["canned"] not in desk_view.CANNED:
            return _bad_field(request, who, "canned", "desk.error.unknown")
    elif not text:
        return _bad_field(request, who, "text", "desk.error.empty")
    elif len(text) > MAX_TEXT:
        return _bad_field(request, who, "text", "desk.error.too_long")
    if not KEY.fullmatch(form.get("key", "")):
        return _bad_field(request, who, "key", "desk.error.unknown")
    return None


def _bad_field(request: Request, who: SignedIn, field: str, problem: str) -> Response:
    lang = staff_language(request)
    message = t(problem, lang, label=t(f"desk.field.{field}", lang), field=field, limit=MAX_TEXT)
    back = request.url.path.rsplit("/", 1)[0]
    return error_page(request, 400, "error.bad_request_title", message, back, who=who)


def _perform(session: Session, core: Core, ticket: HandoffTicket, agent: Agent, action: Action,
             form: dict[str, str]) -> Done:
    now = core.now()
    if action is Action.TAKE:
        result = desk.take_ticket(session, ticket.id, agent, now)
        return Done.CLOSED if result.closed else Done.TAKEN if result.taken else Done.LOST
    if action in (Action.RESOLVE, Action.BACK):
        how = ClosedHow.RESOLVED if action is Action.RESOLVE else ClosedHow.HANDED_BACK
        if not desk.close_ticket(session, ticket.id, how, agent, now):
            return Done.CLOSED
        return Done.RESOLVED if how is ClosedHow.RESOLVED else Done.HANDED_BACK
    # The key is the message's idempotency key, kept per ticket so one form can never collide with another's.
    key = f"inbox:{ticket.id}:{form['key']}"
    pattern = core.profile.student_number_pattern
    if action is Action.NOTE:
        if ticket.status == TicketStatus.RESOLVED.value:
            return Done.CLOSED
        desk.note(session, ticket, agent, form["text"].strip(), key, now, student_number_pattern=pattern)
        return Done.NOTED  # a note sent twice is kept once, and was noted all the same
    text = form.get("text", "").strip() or desk_view.canned_text(core, form["canned"], Language(ticket.lang),
                                                                 agent.shown)
    if desk.reply(session, ticket, agent, text, key, now, student_number_pattern=pattern) is not None:
        return Done.SENT
    if session.scalar(select(HandoffMessage.id).where(HandoffMessage.source_key == key)) is not None:
        return Done.SENT  # the same form sent again: it reached the student once
    return Done.CLOSED if ticket.status == TicketStatus.RESOLVED.value else Done.LOST


# --- live events ------------------------------------------------------------------------------------------


async def desk_events(request: Request) -> Response:
    """The desk's changes as server-sent events, for signed-in staff: `desk` with the revision and the open and
    waiting counts, on start and on every change. Each poll notes the staff member at the desk."""
    who = await signed_in(request)
    if who is None:
        return Response("sign in first", status_code=401, media_type="text/plain", headers=PAGE_HEADERS)
    core: Core = request.app.state.core
    headers = {**PAGE_HEADERS, "X-Accel-Buffering": "no"}  # nginx would otherwise hold the events
    return StreamingResponse(_desk_stream(core, who.token), media_type="text/event-stream", headers=headers)


async def _desk_stream(core: Core, token: str) -> AsyncIterator[str]:
    """Poll the desk about once a second and send its counts when they change; end when the session does, or
    after STREAM_POLLS polls (the browser's EventSource reconnects by itself)."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    last: desk_view.DeskCounts | None = None
    for poll in range(STREAM_POLLS):
        counts = await run_in_threadpool(_poll, core, token)
        if counts is None:
            return  # signed out or expired: the reconnect is refused with a 401
        if counts != last:
            last = counts
            yield f"event: desk\ndata: {json.dumps(asdict(counts))}\n\n"
        elif poll % KEEPALIVE_POLLS == KEEPALIVE_POLLS - 1:
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)


def _poll(core: Core, token: str) -> desk_view.DeskCounts | None:
    with core.transaction() as session:
        account = staff.session_account(session, token, core.now())
        if account is None:
            return None
        staff.at_desk(session, account, core.now())
        return desk_view.desk_counts(session)
