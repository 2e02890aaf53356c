"""What a signed LINE webhook body must hold: each event checked for what the worker and LINE's SDK read of it."""

from typing import Any

from linebot.v3.webhooks import Event
from pydantic.v1 import ValidationError as PydanticValidationError

# Event types that are stored and answered (or recorded); any other type is logged and acknowledged.
HANDLED_EVENTS = frozenset({"message", "postback", "follow", "unfollow", "accountLink", "unsend"})
# The objects each handled event type must carry, with their string fields the worker reads.
HANDLED_DETAILS: dict[str, dict[str, tuple[str, ...]]] = {
    "message": {"message": ("id", "type")}, "postback": {"postback": ("data",)},
    "accountLink": {"link": ("result",)}, "unsend": {"unsend": ("messageId",)},
}
# LINE's message ids (18 digits or so), bounded like the source ids.
MESSAGE_IDS: dict[str, tuple[tuple[str, str], ...]] = {"message": (("message", "id"),),
                                                       "unsend": (("unsend", "messageId"),)}
# LINE documents no maximum and sends a few at a time; a signed body with more is not LINE's.
MAX_EVENTS = 100
MAX_ID_CHARS = 128  # the inbox keeps event ids of up to 128 characters; LINE's are 26 (a ULID)
MAX_SOURCE_ID_CHARS = 64  # LINE's user, group and room ids are 33, message ids ~18; conversation keys hold 200
EARLIEST_MS, LATEST_MS = 946_684_800_000, 4_102_444_800_000  # 2000-01-01 and 2100-01-01, UTC


class MalformedBody(ValueError):
    """A signed webhook body with a field missing, of the wrong type or out of range (`field` says where)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


def read_events(data: Any) -> list[dict[str, Any]]:
    """The events of a parsed webhook body, each checked for what the worker and LINE's SDK read of it.

    Raises:
        MalformedBody: naming the first field that is missing, of the wrong type or out of range.
    """
    _need(isinstance(data, dict), "body", "is not an object")
    _need(isinstance(data.get("destination"), str), "destination", "is not a string")
    events = data.get("events")
    _need(isinstance(events, list), "events", "is not a list")
    _need(len(events) <= MAX_EVENTS, "events", f"holds more than {MAX_EVENTS} events")
    for index, event in enumerate(events):
        _check_event(event, f"events[{index}]")
    return events


def _check_event(event: Any, where: str) -> None:
    """The fields every event has (LINE's `Event`), then those of the types we handle."""
    _need(isinstance(event, dict), where, "is not an object")
    _need(isinstance(event.get("type"), str), f"{where}.type", "is not a string")
    _need(_short_text(event.get("webhookEventId"), MAX_ID_CHARS), f"{where}.webhookEventId",
          f"is not a string of 1 to {MAX_ID_CHARS} characters")
    timestamp = event.get("timestamp")
    # An integer LINE could have sent: a bool is an int to Python, and far-off times do not fit a datetime.
    _need(type(timestamp) is int and EARLIEST_MS <= timestamp <= LATEST_MS, f"{where}.timestamp",
          "is not milliseconds between 2000 and 2100")
    _need(isinstance(event.get("mode"), str), f"{where}.mode", "is not a string")
    context = event.get("deliveryContext")
    _need(isinstance(context, dict) and isinstance(context.get("isRedelivery"), bool),
          f"{where}.deliveryContext", "is not an object with a boolean isRedelivery")
    _need(isinstance(event.get("replyToken", ""), str), f"{where}.replyToken", "is not a string")
    if "source" in event:
        _check_source(event["source"], f"{where}.source")
    if event["type"] in HANDLED_EVENTS:
        _check_handled(event, where)


def _check_handled(event: dict[str, Any], where: str) -> None:
    """The objects and strings an event of a handled type carries, then what the SDK reads of it."""
    for field, names in HANDLED_DETAILS.get(event["type"], {}).items():
        _need(isinstance(event.get(field), dict), f"{where}.{field}", "is not an object")
        for name in names:
            _need(isinstance(event[field].get(name), str), f"{where}.{field}.{name}", "is not a string")
    for field, name in MESSAGE_IDS.get(event["type"], ()):
        # Searched for among the stored events when the student unsends a message (bot.delivery.inbox).
        _need(_short_text(event[field][name], MAX_SOURCE_ID_CHARS), f"{where}.{field}.{name}",
              f"is not a string of 1 to {MAX_SOURCE_ID_CHARS} characters")
    if event["type"] == "message" and event["message"]["type"] == "text":
        _need(isinstance(event["message"].get("text"), str), f"{where}.message.text", "is not a string")
    _check_with_sdk(event, where)


def _check_source(source: Any, where: str) -> None:
    # The ids become conversation and account keys, which the database holds up to 128 characters.
    _need(isinstance(source, dict) and isinstance(source.get("type"), str), where, "is not an object with a type")
    for name in ("userId", "groupId", "roomId"):
        if name in source:
            _need(_short_text(source[name], MAX_SOURCE_ID_CHARS), f"{where}.{name}",
                  f"is not a string of 1 to {MAX_SOURCE_ID_CHARS} characters")


def _check_with_sdk(event: dict[str, Any], where: str) -> None:
    """Whatever else the worker's `Event.from_dict` would refuse, refused now rather than stored.

    A message or source of a type the SDK does not know yet is not malformed: it is stored, and the worker
    logs it and sends nothing, as for any event it cannot read.
    """
    try:
        Event.from_dict(event)
    except PydanticValidationError as error:
        # The SDK reads nested objects one model at a time, so its path starts at the model it was reading.
        first = error.errors()[0]
        field = ".".join([error.model.__name__, *(str(part) for part in first["loc"] if part != "__root__")])
        raise MalformedBody(f"{where} ({field})", first["msg"]) from None
    except ValueError:  # an unknown discriminator value (a new message or source type)
        return
    except (TypeError, KeyError, AttributeError) as error:  # a list or string where the SDK indexes an object
        raise MalformedBody(where, f"cannot be read by LINE's SDK ({type(error).__name__})") from None


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _need(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise MalformedBody(field, problem)
