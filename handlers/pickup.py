"""Receiving what was applied for: when a window pickup is ready, how to apply for it, and every delivery method."""

from datetime import date, datetime, time, timedelta

from core.catalog import CatalogItem
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, Service
from core.errors import UnknownItem
from core.formatting import format_short, join_list
from core.i18n import t
from core.order_texts import delivery_label, delivery_labels
from handlers import basic
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import Card, Reply, Text
from handlers.status import asks_about_done_mail, done_mail_answer
from handlers.turn import TurnContext
from intents.types import EntityType, Intent

# `state.expect` after a pickup answer, which asks when the student applied: a typed day or time answers it.
APPLIED_AT = "pickup.applied_at"
NEW_QUESTION = 0.6  # a message with a date is a new question only when the classifier is this sure of it


def format_day(day: date, lang: Language) -> str:
    """A date without a time: `9月21日（月）` / `Mon, Sep 21`."""
    weekdays = t("format.weekdays", lang).split(",")
    months = t("format.months", lang).split(",")
    return say("pickup.day", lang, month=months[day.month - 1], day=day.day, weekday=weekdays[day.weekday()])


def _named_time(ctx: TurnContext) -> datetime | date | None:
    """The application time named in the message (a datetime, or a date without a time), or None."""
    entity = ctx.entity(EntityType.DATETIME)
    if entity is None:
        return None
    value = str(entity.value)
    try:
        if "T" not in value:
            return date.fromisoformat(value)
        at = datetime.fromisoformat(value)
    except ValueError:
        return None  # not ISO after all: answer for now rather than fail
    return (at if at.tzinfo else at.replace(tzinfo=TOKYO)).astimezone(TOKYO)  # the extractor's times are Tokyo


def _why_later(ctx: TurnContext, first: date, last: date) -> str:
    """Why the days from `first` up to `last` are not all business days: holidays, closures, weekends."""
    calendar, profile = ctx.core.calendar, ctx.core.profile
    holidays, names, closures, weekend = [], [], [], False
    day = first
    while day < last:
        if not calendar.is_business_day(day):
            name = calendar.holiday_name(day)
            if name is not None:
                holidays.append(format_day(day, ctx.lang))
                names.append(name)
            elif profile.is_closure_day(day):
                closures.append(format_day(day, ctx.lang))
            else:
                weekend = True
        day += timedelta(days=1)
    notes = []
    if holidays:
        notes.append(say("pickup.holidays", ctx.lang, days=join_list(holidays, ctx.lang),
                         names=join_list(names, ctx.lang)))
    if closures:
        notes.append(say("pickup.closures", ctx.lang, days=join_list(closures, ctx.lang)))
    if weekend:
        notes.append(say("pickup.weekend", ctx.lang))
    return "\n".join(notes)


def _from(ctx: TurnContext, at: datetime) -> str:
    return say("pickup.from", ctx.lang, when=format_short(at, ctx.lang))


def pickup_card(ctx: TurnContext, applied: datetime | date | None = None) -> Card:
    """When something applied for at `applied` (a time, a whole day, or None for now) can be collected,
    with the reason when weekends, holidays or closure days make it later."""
    is_now = applied is None
    applied = ctx.now.astimezone(TOKYO) if applied is None else applied
    calendar, cutoff = ctx.core.calendar, ctx.core.profile.pickup.cutoff
    title = say("pickup.title", ctx.lang)
    if isinstance(applied, datetime):
        earliest, latest = calendar.pickup_window(applied)
        label = "pickup.applied_now" if is_now else "pickup.applied_at"
        fields = [(say("pickup.applied", ctx.lang), say(label, ctx.lang, when=format_short(applied, ctx.lang))),
                  (say("pickup.earliest", ctx.lang), _from(ctx, earliest))]
        if latest != earliest:
            fields.append((say("pickup.latest", ctx.lang, cutoff=f"{cutoff:%H:%M}"), _from(ctx, latest)))
        first_day = applied.date()
    else:
        earliest, _ = calendar.pickup_window(datetime.combine(applied, time(0), TOKYO))
        _, latest = calendar.pickup_window(datetime.combine(applied, cutoff, TOKYO))
        fields = [(say("pickup.applied_day", ctx.lang), format_day(applied, ctx.lang))]
        if latest == earliest:
            fields.append((say("pickup.earliest", ctx.lang), _from(ctx, earliest)))
        else:
            fields += [(say("pickup.before_cutoff", ctx.lang, cutoff=f"{cutoff:%H:%M}"), _from(ctx, earliest)),
                       (say("pickup.after_cutoff", ctx.lang, cutoff=f"{cutoff:%H:%M}"),
                        say("pickup.maybe", ctx.lang, earliest=format_short(earliest, ctx.lang),
                            latest=format_short(latest, ctx.lang)))]
        first_day = applied
    notes = [_why_later(ctx, first_day, latest.date())]
    if latest <= ctx.now:
        notes.append(say("pickup.already", ctx.lang))
    return Card(title, tuple(fields), "\n".join(note for note in notes if note))


def pickup_timing(ctx: TurnContext) -> list[Reply]:
    """When a window-pickup item can be collected, for now or the time in the message, and what to bring; for
    another way of receiving named in the message (「郵送だと何日」), that the guide gives no time for it."""
    other = _other_delivery(ctx)
    if other is not None:
        text = "\n".join((say("pickup.time_not_stated", ctx.lang, delivery=delivery_label(other, ctx.lang)), "",
                          basic.contact_entry(ctx, Service.STUDENT_SUPPORT)))
        return [Text(text, basic.follow_ups(ctx.lang, Intent.DELIVERY_OPTIONS, Intent.ORDER_STATUS))]
    profile = ctx.core.profile
    values = {"ready_at": f"{profile.pickup.ready_at:%H:%M}", "cutoff": f"{profile.pickup.cutoff:%H:%M}"}
    text = "\n".join((
        t("orders.window_pickup.ready", ctx.lang, **values),
        t("orders.window_pickup.bring_id", ctx.lang),
        t("orders.window_pickup.done_mail", ctx.lang),
        say("pickup.ask_time", ctx.lang),
    ))
    buttons = basic.follow_ups(ctx.lang, Intent.WINDOW_PICKUP_HOWTO, Intent.ORDER_STATUS)
    replies: list[Reply] = [pickup_card(ctx, _named_time(ctx)), Text(text, buttons)]
    ctx.state.expect = APPLIED_AT
    item = _asked_item(ctx)
    if item is not None and DeliveryMethod.WINDOW_PICKUP not in item.deliveries:
        # The window rule is not about certificates printed or mailed: say so before the card.
        note = say("pickup.not_window_item", ctx.lang, item=item.name(ctx.lang),
                   methods=delivery_labels(item.deliveries, ctx.lang))
        replies.insert(0, Text(note))
    return replies


def _other_delivery(ctx: TurnContext) -> DeliveryMethod | None:
    """A way of receiving other than the window that the message names: the guide states how long none takes."""
    entity = ctx.entity(EntityType.DELIVERY_METHOD)
    if entity is None:
        return None
    method = DeliveryMethod(str(entity.value))
    return None if method is DeliveryMethod.WINDOW_PICKUP else method


def _answer_to_when(ctx: TurnContext) -> list[Reply] | None:
    """After "when did you (or will you) apply?": a message naming a day or a time answers it, unless it
    clearly asks something else."""
    understanding = ctx.understanding
    if ctx.entity(EntityType.DATETIME) is None:
        return None
    if understanding.intent not in (Intent.PICKUP_TIMING, Intent.OUT_OF_SCOPE, Intent.GREET) \
            and understanding.confidence >= NEW_QUESTION:
        return None
    return pickup_timing(ctx)


def _window_items(ctx: TurnContext, *, stated: bool = True) -> str:
    """The items collected at the window as the guide (or the university) says, or, with `stated=False`, those
    the profile only assumes are."""
    items = [item.name(ctx.lang) for item in ctx.core.profile.catalog.items
             if DeliveryMethod.WINDOW_PICKUP in item.deliveries and item.stated("deliveries") is stated]
    return join_list(items, ctx.lang)


def window_pickup_howto(ctx: TurnContext) -> list[Reply]:
    """The guide's exact steps to apply for collection at the 学生支援課 window, and when it is ready; a question
    about the 「郵送対応完了」 mail gets what it means (ready to collect) first."""
    if asks_about_done_mail(ctx.message.text or ""):
        return done_mail_answer(ctx)
    profile = ctx.core.profile
    values = {"ready_at": f"{profile.pickup.ready_at:%H:%M}", "cutoff": f"{profile.pickup.cutoff:%H:%M}"}
    steps = [t(f"orders.window_pickup.{step}", ctx.lang) for step in ("choose_mail", "copies", "category", "address")]
    earliest, latest = ctx.core.calendar.pickup_window(ctx.now)
    now_line = say("window.if_now", ctx.lang, when=format_short(earliest, ctx.lang)) if earliest == latest else say(
        "window.if_now_range", ctx.lang, when=format_short(earliest, ctx.lang), latest=format_short(latest, ctx.lang))
    assumed = _window_items(ctx, stated=False)
    to_confirm = [say("window.to_confirm", ctx.lang, items=assumed,
                      phone=profile.contact(Service.STUDENT_SUPPORT).phone or "-")] if assumed else []
    text = "\n".join((
        say("window.answer", ctx.lang, items=_window_items(ctx)), *to_confirm, "",
        t("orders.window_pickup.title", ctx.lang),
        *(f"{number}. {step}" for number, step in enumerate(steps, start=1)),
    ))
    after = "\n".join((
        say("window.after", ctx.lang),
        *(basic.bullet(line, ctx.lang) for line in (
            t("orders.window_pickup.ready", ctx.lang, **values), now_line,
            t("orders.window_pickup.bring_id", ctx.lang), t("orders.window_pickup.done_mail", ctx.lang))),
    ))
    buttons = basic.follow_ups(ctx.lang, Intent.PICKUP_TIMING, Intent.FEE_ITEMS, Intent.REFUND)
    return [Text(text), Text(after, buttons)]


def _asked_item(ctx: TurnContext) -> CatalogItem | None:
    """The catalog item the message names, if the profile has it."""
    entity = ctx.entity(EntityType.ITEM)
    if entity is None:
        return None
    try:
        return ctx.core.profile.catalog.get(str(entity.value))
    except UnknownItem:
        return None


def _item_delivery_answer(ctx: TurnContext) -> str | None:
    """A direct answer when the message names an item (and perhaps a delivery method): can it, and how."""
    item = _asked_item(ctx)
    if item is None:
        return None
    name, methods = item.name(ctx.lang), delivery_labels(item.deliveries, ctx.lang)
    entity = ctx.entity(EntityType.DELIVERY_METHOD)
    if entity is None:
        return say("delivery.item_methods", ctx.lang, item=name, methods=methods)
    method = DeliveryMethod(str(entity.value))
    key = "delivery.item_yes" if method in item.deliveries else "delivery.item_no"
    return say(key, ctx.lang, item=name, delivery=delivery_label(method, ctx.lang), methods=methods)


def delivery_options(ctx: TurnContext) -> list[Reply]:
    """Campus printer, convenience store, mail and window pickup; which items allow which; print numbers."""
    items = ctx.core.profile.catalog.items
    used = [method for method in DeliveryMethod if any(method in item.deliveries for item in items)]
    direct = _item_delivery_answer(ctx)
    lines = ([direct, ""] if direct else []) + [say("delivery.intro", ctx.lang)]
    lines += [say("delivery.method", ctx.lang, label=delivery_label(method, ctx.lang),
                  how=say(f"delivery.how.{method.value}", ctx.lang)) for method in used]
    lines += ["", say("delivery.by_item", ctx.lang)]
    groups: dict[tuple[DeliveryMethod, ...], list[str]] = {}
    for item in items:
        name = item.name(ctx.lang) if item.stated("deliveries") else say("delivery.to_confirm", ctx.lang,
                                                                          item=item.name(ctx.lang))
        groups.setdefault(item.deliveries, []).append(name)
    lines += [say("delivery.group", ctx.lang, items=join_list(names, ctx.lang),
                  methods=delivery_labels(methods, ctx.lang))
              for methods, names in groups.items()]
    lines += ["", say("delivery.other_certificates", ctx.lang)]
    prints = say("delivery.print_number", ctx.lang) + "\n" + basic.contact_entry(ctx, Service.CALL_CENTER)
    buttons = basic.follow_ups(ctx.lang, Intent.WINDOW_PICKUP_HOWTO, Intent.ORDER_CERTIFICATE, Intent.PAYMENT_METHODS)
    return [Text("\n".join(lines)), Text(prints, buttons)]


def register(registry: HandlerRegistry) -> None:
    """Wire pickup_timing (and the answer to its question of when), window_pickup_howto and delivery_options."""
    registry.register(Intent.PICKUP_TIMING, pickup_timing)
    registry.expect(APPLIED_AT, Intent.PICKUP_TIMING, _answer_to_when)
    registry.register(Intent.WINDOW_PICKUP_HOWTO, window_pickup_howto)
    registry.register(Intent.DELIVERY_OPTIONS, delivery_options)
