"""The Slack app's Home tab: the menu as buttons, who the user is known as, their own open orders and the
reminders switch, published with views.publish when the tab is opened and after a tap on it.

Only the user's own data is shown: the view is published to that user alone, and the orders are read for the
student their Slack account is linked to (slack_identity), never for a number anyone typed. The student
number is shown masked (24***01), as the web chat shows who is signed in: enough for the student to see the
link is theirs, and nothing more on a shared screen or in what Slack keeps of the view.
"""

import logging
from datetime import datetime
from typing import Any

from bot.channels import slack_render
from bot.channels.slack_identity import CHANNEL, SlackIdentity
from bot.channels.slack_payloads import (
    HOME_MENU_ACTION_PREFIX,
    HOME_REMINDERS_ACTION,
    REMINDERS_OFF,
    REMINDERS_ON,
    HomeRequest,
    conversation_id,
    home_metadata,
)
from core.conversations import linked_student_id, load_state
from core.enums import Language
from core.formatting import format_short, join_list
from core.masking import mask_student_number, mask_token
from core.order_texts import item_name, status_label
from core.profile import UniversityProfile
from core.reminders import set_reminders
from core.services import Core
from core.student_overview import OpenOrder, StudentOverview, student_overview
from handlers import basic
from handlers.messages import say
from handlers.replies import QuickReply
from intents.types import Intent

log = logging.getLogger(__name__)

# The Home tab's topics: the chat's main menu, then the order status and a person, then the language switch.
HOME_TOPICS = (*basic.MENU_INTENTS, Intent.ORDER_STATUS, Intent.HUMAN_AGENT)
CALLBACK_ID = "madoguchi.home"


class SlackHome:
    """Publishes a user's Home view, and turns their reminders off or on from its switch."""

    def __init__(self, core: Core, identity: SlackIdentity) -> None:
        """Keep the core and the identity lookup (the channel's); no call is made here."""
        self.core, self.identity = core, identity

    def calls(self, request: HomeRequest) -> list[dict[str, Any]]:
        """The views.publish call for a Home tab opened or its reminders switch tapped.

        The user's link to a student is brought up to date first (at most once a day, as before a turn). The
        switch changes only the linked student's own setting, as 「通知停止」 / 「通知再開」 does in the chat;
        an unlinked user's tap changes nothing (their view has no switch to tap).
        """
        self.identity.resolve(request.user_id)
        return [self.publish_part(request.user_id, conversation_id(request.team_id, request.user_id),
                                  reminders=request.reminders)]

    def publish_part(self, user_id: str, conversation: str, *, reminders: bool | None = None) -> dict[str, Any]:
        """One stored views.publish call with the user's Home view as it is now (after setting `reminders`)."""
        now = self.core.now()
        with self.core.transaction() as session:
            student_id = linked_student_id(session, CHANNEL, user_id)
            if reminders is not None and student_id is not None:
                set_reminders(session, student_id, reminders)
                log.info("slack: reminders turned %s from the Home tab of %s", "on" if reminders else "off",
                         mask_token(user_id))
            elif reminders is not None:
                log.info("slack: a reminders switch of %s ignored: not linked to a student", mask_token(user_id))
            overview = student_overview(session, student_id) if student_id is not None else None
            state = load_state(session, conversation, CHANNEL, user_id, now)
        # The conversation's language while it lasts, else the student's own, else Japanese (the switch is
        # on the view); the view keeps it, so that a tap is answered in the language its label was read in.
        lang = state.lang or state.last_lang or (overview.preferred_language if overview else Language.JA)
        return {"method": "views.publish",
                "args": {"user_id": user_id, "view": home_view(lang, self.core.profile, overview, now)}}


def home_menu(lang: Language) -> tuple[QuickReply, ...]:
    """The Home tab's buttons: the chat's menu, the order status and a person, and the language switch."""
    return (*(basic.topic_button(intent, lang) for intent in HOME_TOPICS), basic.language_button(lang))


def home_view(lang: Language, profile: UniversityProfile, overview: StudentOverview | None,
              now: datetime) -> dict[str, Any]:
    """The Home view (Block Kit, `type: home`) in `lang`, for a student's overview or for a user who is not
    known as a student (`overview` None: no orders, no switch, and how to become known)."""
    service = profile.service_name(lang)
    blocks: list[dict[str, Any]] = [
        slack_render.header(say("slack.home.title", lang, service=service)),
        _section(say("slack.home.intro", lang)),
        *slack_render.actions(home_menu(lang), HOME_MENU_ACTION_PREFIX),
        {"type": "divider"},
        _section(_identity_text(lang, service, overview)),
    ]
    if overview is not None:
        blocks += [_section(_orders_text(lang, profile, overview)), _reminders(lang, overview.reminders_enabled)]
    updated = slack_render.escape(say("slack.home.updated", lang, when=format_short(now, lang)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": updated}]})
    return {"type": "home", "callback_id": CALLBACK_ID, "private_metadata": home_metadata(lang), "blocks": blocks}


def _section(text: str, accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {
        "type": "mrkdwn", "text": slack_render.shorten(text, slack_render.MAX_SECTION_TEXT)}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _heading(key: str, lang: Language) -> str:
    return f"*{slack_render.escape(say(key, lang))}*"


def _identity_text(lang: Language, service: str, overview: StudentOverview | None) -> str:
    if overview is None:
        body = say("slack.home.not_identified", lang, service=service,
                   email_button=say(f"menu.{Intent.EMAIL_REGISTRATION.value}", lang))
    else:
        body = say("slack.home.identified", lang, number=mask_student_number(overview.student_number))
    return f"{_heading('slack.home.identity_heading', lang)}\n{slack_render.escape(body)}"


def _orders_text(lang: Language, profile: UniversityProfile, overview: StudentOverview) -> str:
    lines = [_order_line(lang, profile, order) for order in overview.open_orders] \
        or [say("slack.home.orders_none", lang)]
    if overview.more_open:
        lines.append(say("slack.home.orders_more", lang, count=overview.more_open,
                         status_button=say(f"menu.more.{Intent.ORDER_STATUS.value}", lang)))
    return "\n".join([_heading("slack.home.orders_heading", lang), *map(slack_render.escape, lines)])


def _order_line(lang: Language, profile: UniversityProfile, order: OpenOrder) -> str:
    """One open order as the chat's order status lists them: number, date, items and status."""
    items = join_list([say("status.item_copies", lang, item=item_name(code, profile)(lang), copies=copies)
                       for code, copies in order.items], lang)
    return say("status.recent_line", lang, number=order.number, date=format_short(order.created_at, lang),
               items=items, status=status_label(order.status, lang))


def _reminders(lang: Language, enabled: bool) -> dict[str, Any]:
    """The reminders section, its button asking for the other state (the value is the state it asks for)."""
    text = say("slack.home.reminders_on" if enabled else "slack.home.reminders_off", lang)
    label = say("slack.home.reminders_stop" if enabled else "slack.home.reminders_start", lang)
    button = slack_render.button_element(HOME_REMINDERS_ACTION, label, REMINDERS_OFF if enabled else REMINDERS_ON)
    if not enabled:
        button["style"] = "primary"  # the way back on is the one to find
    return _section(f"{_heading('slack.home.reminders_heading', lang)}\n{slack_render.escape(text)}", button)
