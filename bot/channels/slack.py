"""The Slack channel: Bolt on POST /slack/events stores each event before acknowledging it, and the inbox
worker answers it through the conversation pipeline with Block Kit messages sent by the Web API
(payloads are read and turned into an `IncomingMessage` in slack_payloads, replies rendered in slack_render,
the Web API called and its errors mapped in slack_api, who the student is comes from their Slack
profile's email in slack_identity, and the app's Home tab is built in slack_home).

Bolt is used in HTTP mode as the synchronous `App` with `process_before_response=True`: a listener stores
the event and then acks, so the 200 leaves only after the event is committed. Bolt's Starlette adapter
calls the synchronous `App.dispatch` inline on the event loop, so the route uses the adapter's two
conversion functions and runs `dispatch` in the thread pool instead. Authorization is a plain `authorize`
function returning the configured bot token: with `App(token=…)` Bolt calls auth.test on the first event
and, if that call fails, answers 200 without running the listener, which would drop the event.
"""

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.internals import build_context
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.bodies import read_bounded
from bot.channels import slack_render
from bot.channels.slack_api import SlackWebApi, post_message_part, web_client
from bot.channels.slack_home import SlackHome
from bot.channels.slack_identity import SlackIdentity
from bot.channels.slack_payloads import (
    EVENT_FILTERS,
    HOME_ACTIONS,
    BadBody,
    Destination,
    HomeRequest,
    SlackTurn,
    normalize,
    parse_body,
    shape_problem,
    stable_id,
)
from bot.delivery.inbox import Call, ChannelProcessor, Inbox, Job, PermanentFailure
from bot.handoff.agents import ACTIONS as AGENT_ACTIONS
from bot.handoff.agents import AgentDesk
from bot.pipeline import Pipeline
from bot.settings import ChannelSettings
from bot.untrusted import storable, storable_json
from core.conversations import load_state
from core.enums import Language
from core.services import Core
from core.settings import secret_value
from handlers import basic
from handlers.messages import say
from handlers.replies import Reply, Text
from handlers.turn import Channel

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # seconds since the epoch, as Slack sends them (ASCII digits only)
SIGNATURE_MAX_AGE_SECONDS = 60 * 5  # Slack's and Bolt's window against replayed requests
DEFAULT_COMMAND = "/madoguchi"


class SlackChannel(ChannelProcessor):
    """The Slack adapter: its webhook route (`routes`) and its side of the inbox worker (`prepare`, `send`)."""

    channel = Channel.SLACK.value

    def __init__(self, core: Core, pipeline: Pipeline, settings: ChannelSettings) -> None:
        """Build the Bolt app and the Web API client; no network call is made here.

        Raises:
            ValueError: if SLACK_BOT_TOKEN or SLACK_SIGNING_SECRET is unset.
        """
        if not (settings.slack_bot_token and settings.slack_signing_secret):
            raise ValueError("the Slack channel needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
        self.core, self.pipeline, self.settings = core, pipeline, settings
        self.client = web_client(settings.slack_api_base_url, secret_value(settings.slack_bot_token))
        self.web_api = SlackWebApi(self.client, core.now)
        self.identity = SlackIdentity(core, self.client)
        self.home = SlackHome(core, self.identity)
        # The agents' side of handoffs, when an agents' channel is set: its messages never reach the bot.
        self.agents = (AgentDesk(core, self, settings.slack_agent_channel, Language(settings.agent_lang))
                       if settings.slack_agent_channel else None)
        self.app = self._build_app()
        self._now = time.time  # what Bolt checks the request timestamp against, in its own check too

    def routes(self) -> list[BaseRoute]:
        """POST /slack/events: Events API, interactivity and the slash command share one request URL."""
        return [Route(EVENTS_PATH, self._endpoint, methods=["POST"])]

    # ----- receiving: verify, store, acknowledge

    def _build_app(self) -> App:
        app = App(
            name="madoguchi",
            signing_secret=secret_value(self.settings.slack_signing_secret),
            # No token on this client (tokens come from `authorize`); Socket Mode opens its connection with it.
            client=web_client(self.settings.slack_api_base_url),
            authorize=single_workspace(secret_value(self.settings.slack_bot_token)),
            process_before_response=True,
        )
        app.event(re.compile(r".+"))(self._on_event)
        app.command(re.compile(r"^/"))(self._on_command)
        app.action(slack_render.REPLY_ACTION)(self._on_reply_button)
        app.action(HOME_ACTIONS)(self._on_reply_button)  # the Home tab's: stored and answered alike
        app.action(slack_render.LINK_ACTION)(self._on_link_button)
        app.action(AGENT_ACTIONS)(self._on_agent_action)
        app.action(re.compile(r".*"))(self._on_other_action)
        return app

    async def _endpoint(self, request: Request) -> Response:
        """Check a Slack request's signature, read and check its body, then hand it to Bolt.

        The timestamp and signature are checked here first, before anything of the body is read (401 for an
        unsigned request, whatever its body). A signed body that cannot be read or has a field of the wrong
        type is answered 400 naming the field: Slack retrying it would send the same bytes again. Bolt checks
        the signature once more; the body it dispatches is ours, parsed with bounded depth and with every
        string made storable (no lone surrogate or NUL reaches the inbox or the agents' desk).
        """
        body = await read_bounded(request, MAX_BODY_BYTES)
        if body is None:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        refusal = self._unsigned(request, body)
        if refusal is not None:
            log.info("slack: a request refused: %s", refusal)
            return JSONResponse({"error": refusal}, status_code=401)
        try:
            parsed = parse_body(body, request.headers.get("content-type"))
        except BadBody as error:
            return _malformed(str(error))
        problem = shape_problem(parsed)
        if problem is not None:
            return _malformed(problem)
        # Bolt is given our parse, never the chance to parse again (its own has no depth bound), and the raw
        # body only for its signature check.
        bolt_request = to_bolt_request(request, b"")
        bolt_request.raw_body, bolt_request.body = body.decode("utf-8"), storable_json(parsed)
        bolt_request.context = build_context(BoltContext({"inbox": request.app.state.inbox}), bolt_request.body)
        return to_starlette_response(await run_in_threadpool(self.app.dispatch, bolt_request))

    def _unsigned(self, request: Request, body: bytes) -> str | None:
        """Why the request is not signed by Slack with our signing secret in the last five minutes, or None."""
        stamp = request.headers.get("x-slack-request-timestamp", "")
        if not TIMESTAMP.fullmatch(stamp):  # Bolt would fail on int("abc") with a 500
            return "no valid X-Slack-Request-Timestamp"
        if abs(self._now() - int(stamp)) > SIGNATURE_MAX_AGE_SECONDS:
            return "X-Slack-Request-Timestamp too far from now"
        secret = secret_value(self.settings.slack_signing_secret).encode()
        expected = hmac.new(secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        # Compared as bytes: compare_digest refuses str with non-ASCII characters (a 500 in Bolt's own check).
        signature = request.headers.get("x-slack-signature", "").encode("latin-1", "replace")
        if not hmac.compare_digest(b"v0=" + expected.encode(), signature):
            return "missing or wrong X-Slack-Signature"
        return None

    def _on_event(self, body: dict[str, Any], ack: Ack, context: BoltContext) -> None:
        event = body.get("event") or {}
        kind, event_id = event.get("type"), body.get("event_id")
        check = EVENT_FILTERS.get(kind) if isinstance(kind, str) else None
        if self.agents is not None and self.agents.is_agent_channel(event.get("channel")):
            if kind == "message":
                # Stored (relayed once per message ts) before the ack; a database error answers 500 and
                # Slack retries the event.
                self.agents.on_thread_reply(event)
        elif check is None:
            log.info("slack: event %s of type %s acknowledged and ignored: madoguchi does not answer it",
                     event_id, kind)
        elif (reason := check(event)) is not None:
            log.debug("slack: event %s acknowledged and ignored: %s", event_id, reason)
        elif not isinstance(event_id, str) or not event_id:
            log.warning("slack: a %s event without an event_id acknowledged and ignored", kind)
        else:
            _store(context, event_id, body)
        ack()

    def _on_command(self, body: dict[str, Any], ack: Ack, context: BoltContext) -> None:
        if self.agents is not None:
            answer = self.agents.on_command(str(body.get("text") or "").split(), body.get("channel_id"),
                                            str(body.get("user_id") or ""))
            if answer is not None:  # an agents' command: answered at once, only to the agent who typed it
                ack(answer)
                return
        stored = _store(context, stable_id("command", body), body)
        if not stored or str(body.get("channel_id", "")).startswith("D"):
            ack()
        else:  # typed in a channel: say where the answer went (only the student sees this line)
            ack("\n".join(say("slack.answered_in_dm", lang) for lang in Language))

    def _on_reply_button(self, body: dict[str, Any], ack: Ack, context: BoltContext) -> None:
        _store(context, stable_id("action", body), body)
        ack()

    def _on_agent_action(self, body: dict[str, Any], ack: Ack) -> None:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        if self.agents is None or not self.agents.is_agent_channel(channel):
            log.warning("slack: a handoff button outside the agents' channel ignored")
            ack()
            return
        agent = str((body.get("user") or {}).get("id") or "")
        for action in body.get("actions") or ():
            self.agents.on_action(str(action.get("action_id")), str(action.get("value") or ""), agent)
        ack()

    def _on_link_button(self, ack: Ack) -> None:
        ack()  # the browser opens the URL; Slack reports the click all the same

    def _on_other_action(self, body: dict[str, Any], ack: Ack) -> None:
        action_ids = [action.get("action_id") for action in body.get("actions") or ()]
        log.info("slack: interaction %s acknowledged and ignored: not a madoguchi button", action_ids)
        ack()

    # ----- answering: the inbox worker's side

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        """Run the conversation turn for one stored payload and return its chat.postMessage calls (and, for
        the Home tab, its views.publish call).

        Before the turn, the user's link to a student is brought up to date from their Slack profile's email
        (at most once a day; a failed lookup keeps the link as it was), so the pipeline finds the student.
        A tap on the Home tab is answered in the user's direct messages, and the Home view is published again
        after it, since the turn may have changed what it shows (the language, an order).

        Raises:
            PermanentFailure: for a stored payload that cannot be answered.
        """
        try:
            request = normalize(job.payload)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise PermanentFailure(f"not an answerable Slack payload: {error!r}") from error
        if isinstance(request, HomeRequest):
            return self.home.calls(request)
        if request.wants_help:
            replies = self._help(request)
        else:
            self.identity.resolve(request.message.user_id)
            replies = self.pipeline.handle(request.message)
        parts = [post_message_part(request.destination, message) for message in slack_render.render(replies)]
        if request.from_home:
            parts.append(self.home.publish_part(request.message.user_id, request.message.conversation_id))
        return parts

    def send(self, call: Call) -> None:
        """Make one stored Web API call, paced to one post per second in each conversation.

        Raises:
            RetryAfter, SlackUnavailable, PermanentFailure: as `SlackWebApi.call`.
        """
        self.call(call.part["method"], call.part["args"])

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One Web API call, paced per conversation, with Slack's errors classified (`SlackWebApi.call`)."""
        return self.web_api.call(method, args)

    # ----- reaching a student outside a turn (bot/delivery/notices.py)

    def render_push(self, user_id: str | list[str], replies: list[Reply]) -> list[dict[str, Any]]:
        """The calls that deliver `replies` to the user's direct messages with the app (to each user's, for a
        list: Slack has no multicast)."""
        users = user_id if isinstance(user_id, list) else [user_id]
        messages = slack_render.render(replies)
        return [post_message_part(Destination(user), message) for user in users for message in messages]

    def send_push(self, part: dict[str, Any], key: str) -> None:
        """Make one of them (Slack has no retry key: a part is recorded as sent right after its call)."""
        self.call(part["method"], part["args"])

    def _help(self, turn: SlackTurn) -> list[Reply]:
        """The slash command's help, in the conversation's language (Japanese for a new one)."""
        message = turn.message
        with self.core.transaction() as session:
            state = load_state(session, message.conversation_id, message.channel.value, message.user_id,
                               self.core.now())
        lang = state.lang or state.last_lang or Language.JA
        command = str(message.raw.get("command") or DEFAULT_COMMAND)
        text = say("slack.help", lang, command=command, service=self.core.profile.service_name(lang))
        return [Text(text, (basic.menu_button(lang), basic.language_button(lang)))]


def single_workspace(bot_token: str) -> Callable[..., AuthorizeResult]:
    """Bolt's `authorize` for one workspace: its bot token, without a Web API call before the ack."""
    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=bot_token)

    return authorize


def _malformed(problem: str) -> Response:
    # The problem names a field, never its value: nothing a student wrote reaches the log.
    log.info("slack: a signed request body refused: %s", problem)
    return JSONResponse({"error": f"body is not a Slack request: {problem}"}, status_code=400)


def _store(context: BoltContext, event_id: str, body: Mapping[str, Any]) -> bool:
    """Commit an answerable payload to the inbox (a duplicate id is dropped there); the deprecated
    verification token is not kept. False, with a log line, for a payload that lacks what an answer needs."""
    try:
        normalize(body)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        log.warning("slack: %s acknowledged and ignored: not answerable (%r)", event_id, error)
        return False
    inbox: Inbox = context["inbox"]
    # Made storable here too: over Socket Mode the body does not come through the endpoint.
    payload = storable_json({key: value for key, value in body.items() if key != "token"})
    inbox.accept(Channel.SLACK.value, storable(event_id), payload)
    return True


def run_socket_mode(slack: SlackChannel, inbox: Inbox) -> None:
    """Serve Slack over Socket Mode for local development (no public URL); blocks until interrupted.

    The same listeners store and acknowledge each event; start the inbox worker (`inbox.start()`) first.

    Raises:
        ValueError: if SLACK_APP_TOKEN (an `xapp-` token with connections:write) is unset.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler  # only local development needs it

    if not slack.settings.slack_app_token:
        raise ValueError("Socket Mode needs SLACK_APP_TOKEN (an app-level xapp- token)")

    def attach_inbox(context: BoltContext, next: Callable[[], None]) -> None:  # Bolt passes arguments by name
        context["inbox"] = inbox
        next()

    slack.app.use(attach_inbox)
    SocketModeHandler(slack.app, secret_value(slack.settings.slack_app_token)).start()
