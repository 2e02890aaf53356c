"""The LINE channel put together: its routes and its processor for the inbox worker.

The routes are the webhook edge (webhook.py) and the account-link page (bot/channels/line_linking.py). The
processor turns each stored event into its replies (events.py), renders them as API calls (line_render.py), adds
the rich menu switch a change of language asks for (richmenu.py), and sends each call (api.py).
"""

from typing import Any

from starlette.routing import BaseRoute, Route

from bot.channels import line_linking as linking
from bot.channels import line_render
from bot.channels.line.api import LineApi
from bot.channels.line.events import LineEvents
from bot.channels.line.richmenu import MenuSwitch
from bot.channels.line.webhook import LineWebhook
from bot.delivery.inbox import Call, ChannelProcessor, Job
from bot.pipeline import Pipeline
from bot.settings import ChannelSettings
from core.services import Core
from core.settings import secret_value
from handlers.replies import Reply
from handlers.turn import Channel


class LineChannel(ChannelProcessor):
    """LINE's webhook, its processor for the inbox, its way to reach a student outside a turn, and the
    account-link page."""

    channel = Channel.LINE.value

    def __init__(self, core: Core, pipeline: Pipeline, settings: ChannelSettings) -> None:
        """Build the channel; no call is made to LINE until an event needs one.

        Raises:
            ValueError: if the LINE credentials are not set.
        """
        if not (settings.line_channel_secret and settings.line_channel_access_token):
            raise ValueError("LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN must both be set")
        self.core, self.pipeline, self.settings = core, pipeline, settings
        self.api = LineApi(settings, core.now)
        self.webhook = LineWebhook(secret_value(settings.line_channel_secret))
        self.events = LineEvents(core, pipeline, self.api)
        self.link_page = linking.LinkPage(core, settings)

    def routes(self) -> list[BaseRoute]:
        """The webhook and the account-link page."""
        return [Route("/line/webhook", self.webhook.endpoint, methods=["POST"], name="line_webhook"),
                Route("/line/link", self.link_page.endpoint, methods=["GET", "POST"], name="line_link")]

    # --- the inbox worker's side ---------------------------------------------------------------------------

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        """Run the event's turn and render the answer as API calls ([] when nothing is to be sent); the rich menu
        switch, if any, goes last, so that the first call can use the reply token and a failed switch, retried
        by the inbox, never sends the answer again."""
        answer = self.events.answer(job.payload)
        parts = line_render.to_parts(answer.replies)
        return [*parts, answer.menu.part()] if answer.menu is not None else parts

    def send(self, call: Call) -> None:
        """Send one part of the answer: by the reply token while fresh, else by push (`LineApi.answer`); or
        switch the student's rich menu."""
        switch = MenuSwitch.from_part(call.part)
        if switch is not None:
            self.api.switch_menu(switch)
            return
        self.api.answer(call)

    # --- reaching a student outside a turn (bot/delivery/notices.py) -----------------------------------------------

    def render_push(self, user_id: str | list[str], replies: list[Reply]) -> list[dict[str, Any]]:
        """The calls that deliver `replies` to a LINE user (push) or to up to 500 users (multicast)."""
        return [{"to": user_id, **part} for part in line_render.to_parts(replies)]

    def send_push(self, part: dict[str, Any], key: str) -> None:
        """Make one of them; the retry key derives from `key`, so every attempt carries the same one."""
        self.api.deliver(part, key)
