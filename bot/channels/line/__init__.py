"""The LINE channel, one module per job, put together in channel.py.

The signed webhook is verified, checked and stored (webhook.py, body.py); each stored event is turned into its
replies (events.py); the answer is sent by the Messaging API (api.py, transport.py).

The webhook only verifies, stores and acknowledges; the inbox worker calls `prepare` (the turn, rendered into API
calls that are stored) and then `send` for each call. See bot/delivery/inbox.py. Replies are rendered in
bot/channels/line_render.py, and accounts linked in bot/channels/line_linking.py. The rich menu under the chat is
defined in richmenu.py, drawn in richmenu_image.py and deployed by richmenu_api.py (`madoguchi line richmenu`).
"""

from bot.channels.line.api import DEFAULT_RETRY_AFTER, LineApi, LineApiError, event_time, retry_key
from bot.channels.line.body import MalformedBody, read_events
from bot.channels.line.channel import LineChannel

__all__ = ["DEFAULT_RETRY_AFTER", "LineApi", "LineApiError", "LineChannel", "MalformedBody", "event_time",
           "read_events", "retry_key"]
