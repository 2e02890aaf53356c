"""A stored LINE event turned into what to do, and the replies to send.

A message or postback becomes a conversation turn (an `IncomingMessage` for the pipeline) or the account linking
asked for in the chat; a follow or unfollow is recorded; an unsent message is hidden. Replies are neutral `Reply`
values, rendered by bot/channels/line_render.py; a turn that switched the conversation's language also asks for
that language's rich menu (`EventAnswer.menu`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from linebot.v3.webhooks import (
    AccountLinkEvent,
    Event,
    EventMode,
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
    UnsendEvent,
    UserSource,
)

from bot.channels import line_linking as linking
from bot.channels.line.api import LineApi
from bot.channels.line.richmenu import MenuSwitch
from bot.delivery.inbox import rewrite_payloads
from bot.pipeline import Pipeline, Turn
from core.conversations import hide_message, load_state
from core.enums import Language
from core.handoffs import active_ticket
from core.masking import mask_token
from core.services import Core
from handlers import basic
from handlers.forms import resume_offer
from handlers.messages import say
from handlers.payloads import LinkAccount, Namespace, SwitchLanguage, UnlinkAccount, decode, encode, namespace_of
from handlers.replies import Link, QuickReply, Reply, Text, intent_payload
from handlers.turn import Channel, IncomingMessage
from intents.types import Intent

log = logging.getLogger(__name__)

GREET_PAYLOAD = intent_payload(Intent.GREET)


@dataclass(frozen=True)
class EventAnswer:
    """What an event asks for: the replies, and the rich menu the student should see from now on (or None)."""

    replies: list[Reply]
    menu: MenuSwitch | None = None


class LineEvents:
    """What each handled type of LINE event does, and the replies it asks for."""

    channel = Channel.LINE.value

    def __init__(self, core: Core, pipeline: Pipeline, api: LineApi) -> None:
        self.core, self.pipeline, self.api = core, pipeline, api
        self._handlers: dict[type, Callable[[Any, dict[str, Any], bool], list[Reply] | EventAnswer]] = {
            MessageEvent: self._on_message,
            PostbackEvent: self._on_postback,
            FollowEvent: self._on_follow,
            UnfollowEvent: self._on_unfollow,
            AccountLinkEvent: self._on_account_link,
            UnsendEvent: self._on_unsend,
        }

    def answer(self, payload: dict[str, Any]) -> EventAnswer:
        """Do what the stored event asks (a turn, a link, a record) and return what to send (no replies for an
        event that cannot be read, of a type not handled, or in standby mode)."""
        try:
            event = Event.from_dict(payload)
        except ValueError:
            log.exception("LINE event %s could not be read; nothing sent", payload.get("webhookEventId"))
            return EventAnswer([])
        handler = self._handlers.get(type(event))
        if handler is None:
            log.info("LINE %s event %s not handled", payload.get("type"), payload.get("webhookEventId"))
            return EventAnswer([])
        active = event.mode != EventMode.STANDBY
        answer = handler(event, payload, active)
        if not active:
            log.info("LINE %s event %s in standby mode: nothing sent", payload.get("type"),
                     payload.get("webhookEventId"))
            return EventAnswer([])
        return answer if isinstance(answer, EventAnswer) else EventAnswer(answer)

    # --- one handler per event type ------------------------------------------------------------------------

    def _on_message(self, event: MessageEvent, payload: dict[str, Any], active: bool) -> list[Reply] | EventAnswer:
        user_id = _user_of(event)
        if not active:
            return []
        if user_id is None:
            return [_one_to_one_only()]
        if not isinstance(event.message, TextMessageContent):
            lang = self._lang(user_id)
            return [Text(say("line.text_only", lang), basic.main_menu(lang))]
        typed = linking.typed_action(event.message.text)
        if typed is not None:
            return self._linking(typed[0], user_id, typed[1])
        # A person answers in their own time: no bot "typing" while one has the conversation.
        with self.api.loading_while_slow(user_id, payload, unless=lambda: self._with_a_person(user_id)):
            turn = self._turn(user_id, payload, text=event.message.text)
        return EventAnswer(turn.replies, _menu_switch(user_id, turn.switched_language))

    def _on_postback(self, event: PostbackEvent, payload: dict[str, Any], active: bool) -> list[Reply] | EventAnswer:
        user_id = _user_of(event)
        if not active:
            return []
        if user_id is None:
            return [_one_to_one_only()]
        data = event.postback.data
        if namespace_of(data) is Namespace.LINK:
            action = linking.payload_action(data)
            if action is not None:
                return self._linking(action, user_id, self._lang(user_id))
            log.warning("LINE postback with unknown linking payload %r: answered by the pipeline", data[:40])
        with self.api.loading_while_slow(user_id, payload):
            turn = self._turn(user_id, payload, payload_text=data)
        # A tap on a language button (the rich menu's language tile) that the bot answered always shows that
        # language's menu, even when the conversation was in it already: a menu left unswitched (LINE was down)
        # is put right. Not while a person has the conversation (the tap was relayed, nothing switched).
        tapped = decode(data)
        answered = isinstance(tapped, SwitchLanguage) and Intent.LANGUAGE in turn.intents
        return EventAnswer(turn.replies, _menu_switch(
            user_id, tapped.lang if isinstance(tapped, SwitchLanguage) and answered else turn.switched_language))

    def _on_follow(self, event: FollowEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if user_id is None:
            return []
        with self.core.transaction() as session:
            linking.set_following(session, user_id, True, self.core.now())
            linked = linking.linked_student_id(session, user_id) is not None
        if not active:
            return []
        lang = self._lang(user_id)
        welcome = Text(say("line.welcome", lang, service=self.core.profile.service_name(lang)))
        menu = self._turn(user_id, payload, payload_text=GREET_PAYLOAD).replies
        if not linked and menu and isinstance(menu[-1], Text):
            menu[-1] = replace(menu[-1], quick_replies=(*menu[-1].quick_replies, _link_button(lang)))
        return [welcome, *menu]

    def _on_unfollow(self, event: UnfollowEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if user_id is not None:
            with self.core.transaction() as session:
                linking.set_following(session, user_id, False, self.core.now())
        return []  # a blocked account cannot be answered

    def _on_account_link(self, event: AccountLinkEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if user_id is None:
            return []
        student_id = None
        if event.link.result == "ok" and event.link.nonce:
            with self.pipeline.locks.hold(linking.conversation_id(user_id)), self.core.transaction() as session:
                student_id = linking.redeem_nonce(session, event.link.nonce, user_id, self.core.now())
        lang = self._lang(user_id)
        if student_id is None:
            log.info("LINE account link for %s failed (result %s)", mask_token(user_id), event.link.result)
            return [Text(say("line.link.failed", lang), (_link_button(lang), basic.menu_button(lang)))]
        log.info("LINE account %s linked", mask_token(user_id))
        with self.core.transaction() as session:
            form = load_state(session, linking.conversation_id(user_id), linking.CHANNEL, user_id,
                              self.core.now()).form
        if form is not None:  # linking interrupted a form (the order form asks for it): offer to go on
            return [Text(say("line.link.done", lang)), resume_offer(lang)]
        return [Text(say("line.link.done", lang), basic.main_menu(lang))]

    def _on_unsend(self, event: UnsendEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        # The student took a message back: hide it in the transcript and in the stored webhook event, even in
        # standby (another bot answering changes nothing about what we keep). Nothing is sent.
        user_id, message_id = _user_of(event), event.unsend.message_id
        if user_id is None:
            return []

        def hide(stored: dict[str, Any]) -> bool:
            message = stored.get("message")
            if not isinstance(message, dict) or message.get("id") != message_id:
                return False  # LINE message ids are unique; the stored user id is masked, so it cannot be compared
            for key in ("text", "emojis", "mention", "quotedMessageId"):
                message.pop(key, None)
            message["unsent"] = True
            return True

        with self.core.transaction() as session:
            lines = hide_message(session, linking.conversation_id(user_id), message_id)
            events = rewrite_payloads(session, linking.CHANNEL, message_id, hide)
        log.info("LINE user %s unsent a message: %d transcript line(s) and %d stored event(s) hidden",
                 mask_token(user_id), lines, events)
        return []

    def _turn(self, user_id: str, payload: dict[str, Any], *, text: str | None = None,
              payload_text: str | None = None) -> Turn:
        """One pipeline turn for the LINE user (the pipeline itself looks up a linked student)."""
        message = IncomingMessage(channel=Channel.LINE, user_id=user_id,
                                  conversation_id=linking.conversation_id(user_id), text=text, payload=payload_text,
                                  event_id=payload.get("webhookEventId"), message_ref=_message_id(payload),
                                  raw=payload)
        return self.pipeline.answer(message)

    # --- account linking in the chat ----------------------------------------------------------------------

    def _linking(self, action: linking.LinkAction, user_id: str, lang: Language) -> list[Reply]:
        if isinstance(action, UnlinkAccount):
            return self._unlink(user_id, lang)
        with self.core.transaction() as session:
            linked = linking.linked_student_id(session, user_id) is not None
        if linked:
            unlink_button = QuickReply(say("line.link.unlink_button", lang), encode(UnlinkAccount()))
            return [Text(say("line.link.already", lang), (unlink_button, basic.menu_button(lang)))]
        token = self.api.issue_link_token(user_id)
        if token is None:
            return [Text(say("line.link.unavailable", lang), (basic.menu_button(lang),))]
        url = self.core.url("/line/link?" + urlencode({"linkToken": token, "lang": lang.value}))
        return [Link(label=say("line.link.open", lang), url=url, text=say("line.link.start", lang))]

    def _unlink(self, user_id: str, lang: Language) -> list[Reply]:
        now = self.core.now()
        with self.pipeline.locks.hold(linking.conversation_id(user_id)), self.core.transaction() as session:
            was_linked = linking.unlink(session, user_id, now)
        key = "line.link.unlinked" if was_linked else "line.link.not_linked"
        log.info("LINE account %s: unlink asked (%s)", mask_token(user_id), "done" if was_linked else "not linked")
        return [Text(say(key, lang), (_link_button(lang), basic.menu_button(lang)))]

    def _lang(self, user_id: str) -> Language:
        """The conversation's language for texts said outside the pipeline; Japanese by default."""
        with self.core.reading() as session:
            state = load_state(session, linking.conversation_id(user_id), self.channel, user_id, self.core.now())
        return state.lang or state.last_lang or Language.JA

    def _with_a_person(self, user_id: str) -> bool:
        with self.core.reading() as session:
            return active_ticket(session, linking.conversation_id(user_id)) is not None


def _menu_switch(user_id: str, lang: Language | None) -> MenuSwitch | None:
    return MenuSwitch(user_id, lang) if lang is not None else None


def _link_button(lang: Language) -> QuickReply:
    return QuickReply(say("line.link.button", lang), encode(LinkAccount()))


def _one_to_one_only() -> Text:
    # A group has no conversation language of its own: both languages, Japanese first.
    return Text("\n\n".join(say("line.one_to_one_only", lang) for lang in (Language.JA, Language.EN)))


def _message_id(payload: dict[str, Any]) -> str | None:
    """The LINE message id of a message event's payload (kept with the transcript line, for unsend)."""
    message = payload.get("message")
    return str(message["id"]) if isinstance(message, dict) and message.get("id") else None


def _user_of(event: Any) -> str | None:
    source = event.source
    return source.user_id if isinstance(source, UserSource) and source.user_id else None
