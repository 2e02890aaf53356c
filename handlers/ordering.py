"""The order form: a certificate or fee item, copies, delivery and payment, a no-refunds confirmation, the order.

One form, `order`, serves both the order_certificate and fee_items intents; `slots["kind"]` (certificate or
fee) decides which items the first question offers. Answers the first message already gives (「成績証明書を
2通、コンビニ払いで」) are kept as pending answers and taken once they can be checked: an item needs the
identified student (eligibility), copies and delivery need the item.
"""

import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any, NoReturn

from core.catalog import CatalogItem
from core.enums import DeliveryMethod, PaymentMethod, Service
from core.errors import (
    DeliveryNotAllowed,
    DomainError,
    InvalidOrderLine,
    NotEligible,
    PaymentMethodNotOffered,
    UnknownItem,
)
from core.formatting import format_datetime, format_yen, join_list
from core.i18n import t
from core.models import Student
from core.order_texts import delivery_label, delivery_labels, explain, payment_label, pickup_window_text
from core.orders import OrderLine, check_eligible, create_order, unconfirmed_rules
from core.reminders import schedule_payment_deadline
from handlers import basic, mailing
from handlers.forms import (
    Form,
    FormEngine,
    Slot,
    SlotRejected,
    cancel_button,
    change_payload,
    set_payload,
    start_payload,
    tapped,
)
from handlers.identity import (
    LINK_ACCOUNT_PAYLOAD,
    ask_for_sign_in_link,
    current_student,
    identified_by_account_only,
    sign_in_link_sent,
    typed_student_number,
)
from handlers.messages import handler_messages, say
from handlers.registry import HandlerRegistry
from handlers.replies import Card, Link, QuickReply, Reply, Text, intent_payload
from handlers.turn import Channel, TurnContext
from intents.clauses import split_clauses
from intents.controls import Control
from intents.normalize import normalize
from intents.speech_acts import is_question, is_request
from intents.types import EntityType, Intent

log = logging.getLogger(__name__)

ORDER = "order"
STUDENT, ITEM, COPIES, DELIVERY, PAYMENT, CONFIRM = "student", "item", "copies", "delivery", "payment", "confirm"
KIND = "kind"  # certificate or fee: which items the item question offers
NOTICE = "notice"  # a refusal of a pending answer, shown before the next question
PENDING = "pending_"  # prefix of answers given early, waiting until they can be checked
CONFIRMED = "yes"

MAX_BUTTON_CHARS = 20
MAX_BUTTONS = 13
MAX_COPY_BUTTONS = 10
# The entity that answers each slot when a message carries it.
ORDER_INTENTS = frozenset({Intent.ORDER_CERTIFICATE, Intent.FEE_ITEMS})
ENTITY_SLOTS = {EntityType.ITEM: ITEM, EntityType.COPIES: COPIES, EntityType.DELIVERY_METHOD: DELIVERY,
                EntityType.PAYMENT_METHOD: PAYMENT}
_BARE_COPIES = re.compile(
    r"^(?:just |only |maybe |えっと|じゃあ)?\s*([0-9]{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|"
    r"ひとつ|ふたつ|みっつ|よっつ|いつつ|一|二|三|四|五)\s*(?:通|部|枚|つ|まい|つう|copies|copy)?"
    r"\s*(?:で|お願いします|ください|please|pls)?[。.!！]?$", re.IGNORECASE)
_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "ひとつ": 1, "ふたつ": 2, "みっつ": 3, "よっつ": 4, "いつつ": 5, "一": 1, "二": 2, "三": 3,
                "四": 4, "五": 5}
# Asking to answer a question again by its name (「受け取り方法選び直したい」, "can I change the payment method?"):
# the slot, and the words that say "change".
_SLOT_NAMES = ((mailing.POSTAL, re.compile(r"住所|郵送先|送付先|送り先|address")),
               (mailing.RECIPIENT, re.compile(r"宛名|受取人|recipient|addressee")),
               (mailing.PHONE, re.compile(r"電話|phone")),
               (DELIVERY, re.compile(r"受け?取り?方法|受取|delivery|how (?:i|to) (?:receive|get)|pick ?up|mail|print")),
               (PAYMENT, re.compile(r"支払い?方法|支払|払い方|決済|payment|pay")),
               (COPIES, re.compile(r"部数|通数|枚数|何通|copies|how many")),
               (ITEM, re.compile(r"証明書の種類|項目|certificate|item")))
_RECHOOSE = re.compile(r"変更|変え|かえ|選び直|選びなお|やり直|直し|直す|別の|ちが(?:う|います)|違(?:う|います)|"
                       r"change|switch|different|another|re-?choose|redo|instead", re.IGNORECASE)
# A question rather than an answer: a question mark, a Japanese question ending, or an English question's start.
_QUESTION = re.compile(r"[?？]|(?:か|かな|かね|っけ|でしょう)[。.!！\s]*$|^(?:can|could|is|are|do|does|will|would)\b",
                       re.IGNORECASE)
# A card named alone, which the entity table leaves unread (a card may be a student ID card): at the payment
# question it is the credit card.
_CARD = re.compile(r"^\s*(?:クレジット)?(?:カード|card)(?:\s?(?:で|払い|決済|please|payment|pls))*\s*[。.!！]?$",
                   re.IGNORECASE)
# A question about what something costs (also the price named alone, as one of two things asked: 「再発行の料金と、
# …を教えて」).
_ASKS_PRICE = re.compile(r"いくら|幾ら|値段|(?:料金|費用|手数料|金額)(?:は|って|を教え|知りたい|\s*と?[、,]?\s*$)|"
                         r"how much|what does it cost|\bprice\b|(?:what|how much) is the fee")
# Certificates students ask for that the service does not issue (the guide: 各学部窓口 handles them).
_OTHER_CERTIFICATE = re.compile(
    r"学割|学生旅客運賃|がくわり|健康診断|診断書|けんこうしんだん|卒業証明(?!.{0,3}見込)|修了証明|単位修得|在籍期間|"
    r"推薦書|調査書|student discount|gakuwari|health (?:check|certificate|exam)|kenko shindan|"
    r"(?<!expected )graduation certificate|certificate of graduation|diploma|completion certificate")
# Words that make a message naming an answer a change to the order, not a question about it.
_CHANGE_WORDS = re.compile(r"変更|変え|にして|にしたい|にします|に直|でお願い|instead|change|switch|make it|rather",
                           re.IGNORECASE)
# Words that name a way of receiving only at the delivery question ("mail please": "mail" alone may be an email).
_BARE_DELIVERIES = (
    (DeliveryMethod.MAIL, re.compile(r"\b(?:mail(?:ed)?|post(?:ed|al)?|snail ?mail)\b|郵便|ゆうびん|ゆうそう")),
    (DeliveryMethod.CAMPUS_PRINTER, re.compile(r"\bcampus\b|\buniversity\b|学内|がくない|大学で")),
)
# A store named without a cue word: at the delivery question it means printing there, at payment paying there.
_KONBINI = re.compile(r"コンビニ|こんびに|ローソン|ろーそん|ファミマ|ふぁみま|ファミリーマート|セブン|せぶん|セブイレ|"
                      r"konbini|conbini|convenience|lawson|family ?mart|famima|7-?11|7-?eleven|seven|cvs")


# --- labels -----------------------------------------------------------------------------------------------


def _button_label(key: str, fallback: str, ctx: TurnContext) -> str:
    """A short catalog label if there is one, else the profile's name cut to a button's length."""
    if handler_messages().has(key):
        return say(key, ctx.lang)
    return fallback if len(fallback) <= MAX_BUTTON_CHARS else fallback[:MAX_BUTTON_CHARS - 1] + "…"


def _item_button(item: CatalogItem, ctx: TurnContext) -> QuickReply:
    return QuickReply(_button_label(f"order.item_button.{item.code}", item.name(ctx.lang), ctx),
                      set_payload(ITEM, item.code))


def _price(amount: int, example: bool, ctx: TurnContext) -> str:
    price = format_yen(amount, ctx.lang)
    return say("order.example_price", ctx.lang, price=price) if example else price


def _item(ctx: TurnContext, code: str | None) -> CatalogItem | None:
    if code is None:
        return None
    try:
        return ctx.core.profile.catalog.get(code)
    except UnknownItem:
        return None


def _chosen_item(ctx: TurnContext) -> CatalogItem | None:
    return _item(ctx, ctx.state.slots.get(ITEM))


# --- checking answers -------------------------------------------------------------------------------------


def _refused(error: DomainError, ctx: TurnContext) -> SlotRejected:
    return SlotRejected("order.refused", reason=explain(error, ctx.lang, ctx.core.profile))


def _check_item(ctx: TurnContext, code: str) -> CatalogItem:
    """The item, if the catalog has it and the identified student may order it."""
    try:
        item = ctx.core.profile.catalog.get(code)
    except UnknownItem as unknown:
        raise _refused(unknown, ctx) from None
    student = current_student(ctx)
    if student is not None:
        try:
            check_eligible(item, student, ctx.core.profile)
        except NotEligible as refused:
            raise _refused(refused, ctx) from None
        _ask_to_confirm(ctx, item, unconfirmed_rules(item, student, ctx.core.profile))
    return item


def _ask_to_confirm(ctx: TurnContext, item: CatalogItem, rules: list[NotEligible]) -> None:
    """A condition the guide does not state that the student does not meet is no refusal: the next question
    comes after a request to confirm with 学生支援課 (「通常は最終学年の方が…ご確認ください」)."""
    if not rules:
        return
    phone = ctx.core.profile.contact(Service.STUDENT_SUPPORT).phone or "-"
    notes = [say(f"order.confirm_rule.{rule.reason}", ctx.lang, item=item.name(ctx.lang), phone=phone,
                 required_year=rule.required_year, student_year=rule.student_year) for rule in rules]
    slots = ctx.state.slots
    slots[NOTICE] = "\n".join([*([slots[NOTICE]] if slots.get(NOTICE) else []), *notes])


def _set_item(ctx: TurnContext, item: CatalogItem) -> None:
    """Take the item and drop earlier answers it does not allow (copies above its maximum, a delivery it lacks)."""
    slots = ctx.state.slots
    slots[ITEM], slots[KIND] = item.code, item.kind.value
    if item.max_copies == 1 or slots.get(COPIES, 1) > item.max_copies:
        slots.pop(COPIES, None)
    if slots.get(DELIVERY) is not None and DeliveryMethod(slots[DELIVERY]) not in item.deliveries:
        slots.pop(DELIVERY, None)


def _check_copies(ctx: TurnContext, item: CatalogItem, copies: int) -> int:
    if item.max_copies == 1 and copies != 1:
        raise SlotRejected("order.one_copy_only", item=item.name(ctx.lang))
    if not 1 <= copies <= item.max_copies:
        raise _refused(InvalidOrderLine("copies_out_of_range", item_code=item.code, copies=copies,
                                        max_copies=item.max_copies), ctx)
    return copies


def _check_delivery(ctx: TurnContext, item: CatalogItem, value: str) -> str:
    allowed = tuple(method.value for method in item.deliveries)
    if value not in allowed:
        raise _refused(DeliveryNotAllowed(item.code, value, allowed), ctx)
    return value


def _check_payment(ctx: TurnContext, value: str) -> str:
    profile = ctx.core.profile
    try:
        method = PaymentMethod(value)
    except ValueError:
        method = None
    if method is None or profile.payment_option(method) is None:
        offered = tuple(option.method.value for option in profile.payment_methods)
        raise _refused(PaymentMethodNotOffered(value, offered), ctx)
    return method.value


# --- answers given before their question --------------------------------------------------------------------


def _remember(ctx: TurnContext, skip: str | None = None) -> None:
    """Keep what this message says about other questions (the first entity of each kind) as pending answers."""
    seen: set[str] = set()
    for entity in ctx.entities:
        slot = ENTITY_SLOTS.get(entity.type)
        if slot is None or slot == skip or slot in seen:
            continue
        seen.add(slot)
        ctx.state.slots[PENDING + slot] = entity.value if isinstance(entity.value, int) else str(entity.value)


def _adopt(ctx: TurnContext) -> None:
    """Take the pending answers that can be checked now; a refused one becomes a notice for the next question."""
    slots = ctx.state.slots
    notices: list[str] = [slots.pop(NOTICE)] if slots.get(NOTICE) else []

    def attempt(slot: str, check: Callable[[Any], Any]) -> None:
        value = slots.pop(PENDING + slot)
        try:
            slots[slot] = check(value)
        except SlotRejected as refused:
            notices.append(say(refused.key, ctx.lang, **refused.values))

    if PENDING + ITEM in slots and ctx.state.student_id is not None:
        code = slots.pop(PENDING + ITEM)
        try:
            _set_item(ctx, _check_item(ctx, code))
        except SlotRejected as refused:
            notices.append(say(refused.key, ctx.lang, **refused.values))
        if slots.get(NOTICE):  # a condition to confirm, from the check
            notices.append(slots.pop(NOTICE))
    item = _chosen_item(ctx)
    if item is not None and PENDING + COPIES in slots:
        attempt(COPIES, lambda copies: _check_copies(ctx, item, int(copies)))
        if item.max_copies == 1:
            slots.pop(COPIES, None)  # nothing to ask or show: one is the only choice
    if item is not None and PENDING + DELIVERY in slots:
        attempt(DELIVERY, lambda value: _check_delivery(ctx, item, str(value)))
    if PENDING + PAYMENT in slots:
        attempt(PAYMENT, lambda value: _check_payment(ctx, str(value)))
    mailing.refresh(ctx)
    if notices:
        slots[NOTICE] = "\n".join(notices)


def _prefill(ctx: TurnContext) -> dict[str, object]:
    """The kind of item asked about and what the first message already answers."""
    slots = ctx.state.slots
    intent = ctx.understanding.intent
    if intent is Intent.FEE_ITEMS:
        slots[KIND] = "fee"
    elif intent is Intent.ORDER_CERTIFICATE:
        slots[KIND] = "certificate"
    entity = ctx.entity(EntityType.ITEM)
    item = _item(ctx, str(entity.value)) if entity else None
    if item is not None:
        slots[KIND] = item.kind.value
        # Say what is being applied for before the first question (「学生証なくした」 → the reissue fee).
        methods = delivery_labels(item.deliveries, ctx.lang)
        starting = say("order.starting", ctx.lang, item=item.name(ctx.lang), methods=methods,
                       price=_price(item.price_yen, item.price_is_example, ctx))
        slots[NOTICE] = starting + ("\n" + item.note(ctx.lang) if item.note is not None else "")
    _remember(ctx)
    return dict(slots)


# --- the questions ----------------------------------------------------------------------------------------


def _question(ctx: TurnContext, text: str, buttons: tuple[QuickReply, ...]) -> list[Reply]:
    """One question with its buttons and a cancel button, after any notice about an earlier answer."""
    notice = ctx.state.slots.pop(NOTICE, None)
    body = f"{notice}\n\n{text}" if notice else text
    return [Text(body, (*buttons[:MAX_BUTTONS - 1], cancel_button(ctx)))]


def _ask_student(ctx: TurnContext) -> list[Reply]:
    if ctx.message.channel is Channel.LINE:
        return _question(ctx, say("order.identify_line", ctx.lang),
                         (QuickReply(say("line.link.button", ctx.lang), LINK_ACCOUNT_PAYLOAD),))
    if identified_by_account_only(ctx):
        return _question(ctx, say("order.identify_slack", ctx.lang), ())
    key = "order.sign_in_waiting" if sign_in_link_sent(ctx) else "order.identify"
    return _question(ctx, say(key, ctx.lang), ())


def _parse_student(ctx: TurnContext) -> str | None:
    """A typed student number identifies no one: on the web it asks for a sign-in link (mailed to the number's
    registered address, the same answer for any number); the student is known once the browser is signed in.

    Raises:
        SlotRejected: always for a number: the sign-in answer, or on LINE and Slack the refusal.
    """
    number = typed_student_number(ctx, "order")
    if number is None:
        return None
    if identified_by_account_only(ctx):
        raise SlotRejected("order.typed_number_refused")
    _remember(ctx)  # what else the message says is kept for after the sign-in
    ask_for_sign_in_link(ctx, number, "order")


def _offered_items(ctx: TurnContext) -> list[CatalogItem]:
    """The items of the kind asked about that the student may order (all of them if none would be left)."""
    catalog, kind = ctx.core.profile.catalog, ctx.state.slots.get(KIND)
    items = [item for item in catalog.items if kind is None or item.kind.value == kind] or list(catalog.items)
    student = current_student(ctx)
    if student is None:
        return items
    eligible = []
    for item in items:
        try:
            check_eligible(item, student, ctx.core.profile)
        except NotEligible:
            continue
        eligible.append(item)
    return eligible or items


def _ask_item(ctx: TurnContext) -> list[Reply]:
    kind = ctx.state.slots.get(KIND) or "any"
    items = _offered_items(ctx)
    lines = [say(f"order.ask_item.{kind}", ctx.lang)]
    for item in items:
        line = say("order.item_line", ctx.lang, item=item.name(ctx.lang),
                   price=_price(item.price_yen, item.price_is_example, ctx))
        if item.note is not None:
            line += say("order.item_note", ctx.lang, note=item.note(ctx.lang))
        lines.append(line)
    if any(item.price_is_example for item in items):
        lines.append(say("order.prices_are_examples", ctx.lang))
    buttons = tuple(_item_button(item, ctx) for item in items[:MAX_BUTTONS - 1])
    return _question(ctx, "\n".join(lines), buttons)


def _ask_item_again(ctx: TurnContext) -> list[Reply]:
    """The questions after the item's need it, and it is asked first: one missing means the catalog no longer
    has the chosen code (a new profile since it was chosen). Forget it and ask for the item again."""
    log.info("order form: item %r is no longer in the catalog, asked again", ctx.state.slots.pop(ITEM, None))
    return _ask_item(ctx)


def _parse_item(ctx: TurnContext) -> str | None:
    code = tapped(ctx, ITEM)
    if code is None:
        entity = ctx.entity(EntityType.ITEM)
        code = str(entity.value) if entity else None
    if code is None:
        return None
    item = _check_item(ctx, code)
    _set_item(ctx, item)
    _remember(ctx, skip=ITEM)
    return item.code


def _copies_needed(ctx: TurnContext) -> bool:
    item = _chosen_item(ctx)
    return item is None or item.max_copies > 1


def _ask_copies(ctx: TurnContext) -> list[Reply]:
    item = _chosen_item(ctx)
    if item is None:
        return _ask_item_again(ctx)
    buttons = tuple(QuickReply(say("order.copies_button", ctx.lang, copies=n), set_payload(COPIES, str(n)))
                    for n in range(1, min(item.max_copies, MAX_COPY_BUTTONS) + 1))
    return _question(ctx, say("order.ask_copies", ctx.lang, item=item.name(ctx.lang), max=item.max_copies), buttons)


def _bare_copies(text: str) -> int | None:
    match = _BARE_COPIES.match(unicodedata.normalize("NFKC", text).strip())
    if match is None:
        return None
    word = match.group(1).lower()
    return int(word) if word.isdigit() else _COUNT_WORDS[word]


def _parse_copies(ctx: TurnContext) -> int | None:
    item = _chosen_item(ctx)
    if item is None:
        return None
    value: str | int | None = tapped(ctx, COPIES)
    if value is None:
        entity = ctx.entity(EntityType.COPIES)
        value = entity.value if entity else _bare_copies(ctx.message.text or "")
    if value is None or not str(value).isdigit():
        return None
    copies = _check_copies(ctx, item, int(value))
    ctx.state.slots[COPIES] = copies
    _remember(ctx, skip=COPIES)
    return copies


def _delivery_needed(ctx: TurnContext) -> bool:
    item = _chosen_item(ctx)
    return item is None or len(item.deliveries) > 1


def _ask_delivery(ctx: TurnContext) -> list[Reply]:
    item = _chosen_item(ctx)
    if item is None:
        return _ask_item_again(ctx)
    lines = [say("order.ask_delivery", ctx.lang)]
    lines += [say("order.delivery_line", ctx.lang, delivery=delivery_label(method, ctx.lang))
              for method in item.deliveries]
    buttons = tuple(QuickReply(_button_label(f"order.delivery_button.{method.value}", delivery_label(method, ctx.lang),
                                             ctx), set_payload(DELIVERY, method.value))
                    for method in item.deliveries)
    return _question(ctx, "\n".join(lines), buttons)


def _only_konbini(ctx: TurnContext) -> bool:
    """True if the message names a convenience store and nothing that says paying or printing there."""
    has_method = any(entity.type in (EntityType.DELIVERY_METHOD, EntityType.PAYMENT_METHOD)
                     for entity in ctx.entities)
    return not has_method and bool(_KONBINI.search(unicodedata.normalize("NFKC", ctx.message.text or "").lower()))


def _method_answer(ctx: TurnContext, slot: str, kind: EntityType, konbini: str) -> str | None:
    """The delivery or payment method a message gives: a tapped button, a named method, or a bare
    「コンビニ」 (which answers both questions); None if it gives none. A question that names methods
    (「コンビニ払いってクレカ使えますか？」, "can I pay with PayPay at a 7-Eleven?") is a question about them,
    answered as one, not a choice."""
    value = tapped(ctx, slot)
    if value is None:
        named = {str(entity.value) for entity in ctx.entities if entity.type is kind}
        if len(named) > 1 or (named and _QUESTION.search(unicodedata.normalize("NFKC", ctx.message.text or ""))):
            return None
        entity = ctx.entity(kind)
        value = str(entity.value) if entity else None
    if value is None and _only_konbini(ctx):
        value = konbini
    return value


def _parse_delivery(ctx: TurnContext) -> str | None:
    item = _chosen_item(ctx)
    if item is None:
        return None
    value = _method_answer(ctx, DELIVERY, EntityType.DELIVERY_METHOD, DeliveryMethod.CONVENIENCE_STORE.value)
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if value is None and not _QUESTION.search(text):
        value = next((method.value for method, words in _BARE_DELIVERIES if words.search(text)), None)
    if value is None:
        return None
    delivery = _check_delivery(ctx, item, value)
    ctx.state.slots[DELIVERY] = delivery
    _remember(ctx, skip=DELIVERY)
    return delivery


def _ask_payment(ctx: TurnContext) -> list[Reply]:
    lines = [say("order.ask_payment", ctx.lang)]
    cash_only = False
    for option in ctx.core.profile.payment_methods:
        name = option.name(ctx.lang)
        if option.brands is not None:
            lines.append(say("order.payment_brands", ctx.lang, payment=name, brands=option.brands(ctx.lang)))
        else:
            lines.append(say("order.payment_line", ctx.lang, payment=name))
        cash_only = cash_only or option.cash_only
    if cash_only:
        lines.append(say("order.cash_only", ctx.lang))
    buttons = tuple(QuickReply(_button_label(f"order.payment_button.{option.method.value}", option.name(ctx.lang), ctx),
                               set_payload(PAYMENT, option.method.value))
                    for option in ctx.core.profile.payment_methods)
    return _question(ctx, "\n".join(lines), buttons[:MAX_BUTTONS - 1])


def _parse_payment(ctx: TurnContext) -> str | None:
    value = _method_answer(ctx, PAYMENT, EntityType.PAYMENT_METHOD, PaymentMethod.CONVENIENCE_STORE.value)
    if value is None and _CARD.search(unicodedata.normalize("NFKC", ctx.message.text or "")) \
            and not _QUESTION.search(ctx.message.text or ""):
        value = PaymentMethod.CREDIT_CARD.value  # 「カードで」 when the payment is asked: the card
    if value is None:
        return None
    payment = _check_payment(ctx, value)
    ctx.state.slots[PAYMENT] = payment
    _remember(ctx, skip=PAYMENT)
    return payment


# --- the summary and the order ----------------------------------------------------------------------------


def _copies(item: CatalogItem, ctx: TurnContext) -> int:
    return int(ctx.state.slots.get(COPIES, 1)) if item.max_copies > 1 else 1


def _delivery(item: CatalogItem, ctx: TurnContext) -> DeliveryMethod:
    value = ctx.state.slots.get(DELIVERY)
    return DeliveryMethod(value) if value else item.deliveries[0]


def _ask_confirm(ctx: TurnContext) -> list[Reply]:
    item = _chosen_item(ctx)
    if item is None:
        return _ask_item_again(ctx)
    profile, lang = ctx.core.profile, ctx.lang
    copies, delivery = _copies(item, ctx), _delivery(item, ctx)
    method = PaymentMethod(ctx.state.slots[PAYMENT])
    option = profile.payment_option(method)

    def label(key: str) -> str:
        return say(f"order.summary.{key}", lang)

    fields: list[tuple[str, str]] = [(label("item"), item.name(lang))]
    if item.max_copies > 1:
        fields.append((label("copies"), say("order.copies_value", lang, copies=copies)))
    fields += [
        (label("unit_price"), _price(item.price_yen, item.price_is_example, ctx)),
        (label("total"), _price(item.price_yen * copies, item.price_is_example, ctx)),
        (label("delivery"), delivery_label(delivery, lang)),
        (label("payment"), payment_label(method, lang, profile)),
    ]
    if delivery is DeliveryMethod.WINDOW_PICKUP:
        fields.append((label("pickup"), pickup_window_text(ctx.core.calendar.pickup_window(ctx.now), lang, profile)))
    if delivery is DeliveryMethod.MAIL:
        fields += mailing.summary_fields(ctx)
    if option is not None and option.cash_only:
        fields.append((label("note"), label("cash_only")))
    footer = [label("no_refunds")]
    if item.price_is_example:
        footer.append(say("order.prices_are_examples", lang))
    footer.append(label("prompt"))
    buttons = [QuickReply(say("order.confirm_button", lang), set_payload(CONFIRM, CONFIRMED)),
               QuickReply(say("order.change_button.item", lang), change_payload(ITEM))]
    if item.max_copies > 1:
        buttons.append(QuickReply(say("order.change_button.copies", lang), change_payload(COPIES)))
    if len(item.deliveries) > 1:
        buttons.append(QuickReply(say("order.change_button.delivery", lang), change_payload(DELIVERY)))
    if delivery is DeliveryMethod.MAIL:
        buttons.append(QuickReply(say("order.change_button.address", lang), change_payload(mailing.POSTAL)))
    buttons += [QuickReply(say("order.change_button.payment", lang), change_payload(PAYMENT)), cancel_button(ctx)]
    notice = ctx.state.slots.pop(NOTICE, None)
    card = Card(label("title"), tuple(fields), "\n".join(footer), tuple(buttons))
    return [Text(notice), card] if notice else [card]


def _parse_confirm(ctx: TurnContext) -> str | None:
    # A typed yes to the summary, which states that paid fees are not refunded, confirms as the button does.
    if tapped(ctx, CONFIRM) == CONFIRMED or (ctx.message.payload is None and ctx.understanding.control is Control.YES):
        return CONFIRMED
    restated = ctx.understanding.intent in ORDER_INTENTS or _CHANGE_WORDS.search(ctx.message.text or "")
    if restated and any(entity.type in ENTITY_SLOTS for entity in ctx.entities):
        _absorb(ctx, "order.updated")  # a change typed at the summary (「3通にしたい」), not a question about it
    _rechoose(ctx)
    return None


def _finish(ctx: TurnContext) -> list[Reply]:
    """Place the order and say how to pay; the form ends either way."""
    profile, lang = ctx.core.profile, ctx.lang
    item = _chosen_item(ctx)
    slots = dict(ctx.state.slots)
    ctx.state.end_form()
    if item is None or ctx.state.student_id is None:
        return [Text(say("order.not_identified", lang), (_start_button(ctx),))]
    copies = int(slots.get(COPIES, 1)) if item.max_copies > 1 else 1
    delivery = DeliveryMethod(slots[DELIVERY]) if slots.get(DELIVERY) else item.deliveries[0]
    method = PaymentMethod(slots[PAYMENT])
    address = mailing.mailing_address(slots) if delivery is DeliveryMethod.MAIL else None
    try:
        with ctx.core.transaction() as session:
            student = session.get(Student, ctx.state.student_id)
            if student is None:
                ctx.state.student_id = None
                return [Text(say("order.not_identified", lang), (_start_button(ctx),))]
            placed = create_order(session, student=student, lines=[OrderLine(item.code, copies)], delivery=delivery,
                                  payment=method, profile=profile, gateway=ctx.core.payments, now=ctx.now,
                                  address=address)
            number, url = placed.order.number, placed.payment_url
            konbini_number, deadline = placed.konbini_number, placed.deadline
            if konbini_number:  # the day before the deadline, while unpaid (to the linked chat accounts)
                schedule_payment_deadline(session, placed.payment, placed.order, ctx.now)
    except DomainError as refused:
        log.info("order refused at placing: %s", refused)
        return [Text(say("order.failed", lang, reason=explain(refused, lang, profile)), (_start_button(ctx),))]

    placed_text = [say("order.placed", lang, number=number)]
    if delivery is DeliveryMethod.WINDOW_PICKUP:
        window = pickup_window_text(ctx.core.calendar.pickup_window(ctx.now), lang, profile)
        placed_text.append(say("order.pickup_estimate", lang, window=window))
        placed_text += [t("orders.window_pickup.bring_id", lang), t("orders.window_pickup.done_mail", lang)]
    elif delivery is DeliveryMethod.MAIL:
        placed_text.append(t("orders.mail.not_shipped", lang))
    else:
        placed_text.append(t("orders.print.after_payment", lang))
    replies: list[Reply] = [Text("\n".join(placed_text))]
    option = profile.payment_option(method)
    if konbini_number:
        brands = option.brands(lang) if option is not None and option.brands is not None else ""
        konbini = say("order.konbini", lang, brands=brands, konbini_number=konbini_number,
                      deadline=format_datetime(deadline, lang) if deadline else "-")
        if option is not None and option.cash_only:
            konbini += "\n" + say("order.cash_only", lang)
        replies.append(Text(konbini))
        if url:
            replies.append(Link(say("order.konbini_link", lang), url))
    elif url:
        replies.append(Link(say("order.pay_link", lang), url,
                            say("order.pay_online", lang, payment=payment_label(method, lang, profile))))
    follow = (QuickReply(say("status.check_button", lang), intent_payload(Intent.ORDER_STATUS)),
              basic.menu_button(lang))
    replies.append(Text(say("order.after", lang), follow))
    return replies


def _start_button(ctx: TurnContext) -> QuickReply:
    return QuickReply(say("order.start_button", ctx.lang), start_payload(ORDER))


def _absorb(ctx: TurnContext, key: str) -> NoReturn:
    """Take what a message about the order says for any question, then ask the open question again.

    Raises:
        SlotRejected: always: `key` (noted or updated), or the refusal of what was said.
    """
    before = {name: ctx.state.slots.get(name) for name in (ITEM, COPIES, DELIVERY, PAYMENT)}
    _remember(ctx)
    _adopt(ctx)
    after = {name: ctx.state.slots.get(name) for name in (ITEM, COPIES, DELIVERY, PAYMENT)}
    if after == before and ctx.state.slots.get(NOTICE):
        raise SlotRejected("order.refused", reason=ctx.state.slots.pop(NOTICE))
    raise SlotRejected(key)


def _or_absorbed(parse: Callable[[TurnContext], Any]) -> Callable[[TurnContext], Any]:
    """A parse that, when the message does not answer its question but restates the order with other answers
    (「やっぱり成績証明書を3通で」), takes those instead of treating the message as a question about the order."""
    def parse_or_absorb(ctx: TurnContext) -> Any:
        value = parse(ctx)
        if value is None:
            _tell_price(ctx)
        text = unicodedata.normalize("NFKC", ctx.message.text or "")
        # An answer to another question ("PayPayで" while the copies are asked) is an answer, kept for later;
        # a question about it (「PayPayって使えますか？」) is answered as a question.
        # A question about an item (「保険の継続手続きもこれで払うの？」) is a question too, unless it wants it.
        folded = normalize(text)
        answers = _CHANGE_WORDS.search(text) or not _QUESTION.search(text) \
            or (ctx.understanding.intent in ORDER_INTENTS and (is_request(folded) or not is_question(folded)))
        if value is None and answers and any(entity.type in ENTITY_SLOTS for entity in ctx.entities):
            _absorb(ctx, "order.noted")
        if value is None:
            _rechoose(ctx)
        return value
    return parse_or_absorb


def _tell_price(ctx: TurnContext) -> None:
    """A price question about the item being applied for ("wait, how much is it?"): answered, then the open
    question asked again. Nothing happens for another question, or one that names another item.

    Raises:
        SlotRejected: the item's price (`order.price_of`), when the message asks it.
    """
    item = _chosen_item(ctx)
    named = ctx.entity(EntityType.ITEM)
    if item is None or (named is not None and str(named.value) != item.code) \
            or not _ASKS_PRICE.search(normalize(ctx.message.text or "")):
        return
    methods = delivery_labels(item.deliveries, ctx.lang)
    raise SlotRejected("order.price_of", item=item.name(ctx.lang), methods=methods,
                       price=_price(item.price_yen, item.price_is_example, ctx))


def _rechoose(ctx: TurnContext) -> None:
    """A wish to answer an earlier question again, named (「受け取り方法選び直したい」, "can I change the payment
    method?"): drop that answer, so that its question is asked again.

    Raises:
        SlotRejected: `order.rechoose`, when the message names an answered question and a change.
    """
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if not _RECHOOSE.search(text):
        return
    for slot, names in _SLOT_NAMES:
        if names.search(text) and slot in ctx.state.slots:
            ctx.state.slots.pop(slot)
            ctx.state.slots.pop(CONFIRM, None)
            raise SlotRejected("order.rechoose")


def _named_slot(ctx: TurnContext) -> str | None:
    """The question a message names by its name (「受取方法」, "the payment", 「住所」), if any."""
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    return next((slot for slot, names in _SLOT_NAMES if names.search(text)), None)


def _needs_student(ctx: TurnContext) -> bool:
    return ctx.state.student_id is None


def _mail_needed(ctx: TurnContext) -> bool:
    """The address is asked for a 郵送 order, once its item and delivery are known."""
    item = _chosen_item(ctx)
    return item is not None and (DELIVERY in ctx.state.slots or len(item.deliveries) == 1) \
        and _delivery(item, ctx) is DeliveryMethod.MAIL


def _always(ctx: TurnContext) -> bool:
    return True


# The questions in order: name, ask, parse, needed.
_STEPS: tuple[tuple[str, Callable[[TurnContext], list[Reply]], Callable[[TurnContext], Any],
                    Callable[[TurnContext], bool]], ...] = (
    (STUDENT, _ask_student, _or_absorbed(_parse_student), _needs_student),
    (ITEM, _ask_item, _or_absorbed(_parse_item), _always),
    (COPIES, _ask_copies, _or_absorbed(_parse_copies), _copies_needed),
    (DELIVERY, _ask_delivery, _or_absorbed(_parse_delivery), _delivery_needed),
    (mailing.POSTAL, mailing.ask_postal(_question), _or_absorbed(mailing.parse_postal), _mail_needed),
    (mailing.STREET, mailing.ask_street(_question), _or_absorbed(mailing.parse_street), _mail_needed),
    (mailing.RECIPIENT, mailing.ask_recipient(_question), _or_absorbed(mailing.parse_recipient), _mail_needed),
    (mailing.PHONE, mailing.ask_phone(_question), _or_absorbed(mailing.parse_phone), _mail_needed),
    (PAYMENT, _ask_payment, _or_absorbed(_parse_payment), _always),
    (CONFIRM, _ask_confirm, _parse_confirm, _always),
)


def _ask_open(name: str) -> Callable[[TurnContext], list[Reply]]:
    """The ask of slot `name`, which asks the first open question instead when an answer taken meanwhile
    (a change at the summary, an item that allows other deliveries) has moved it; the engine re-asks the slot
    it was on after a refusal or a detour."""
    def ask(ctx: TurnContext) -> list[Reply]:
        step = next((step for step in _STEPS if step[0] not in ctx.state.slots and step[3](ctx)), None)
        if step is None:
            step = next(step for step in _STEPS if step[0] == name)
        return step[1](ctx)
    return ask


_SLOTS = tuple(Slot(name, _ask_open(name), parse, needed, yes_no=name == CONFIRM) for name, _, parse, needed in _STEPS)


def _topic(ctx: TurnContext) -> Intent:
    """What a turn of the order form answers: a certificate order, or a fee's."""
    return Intent.FEE_ITEMS if ctx.state.slots.get(KIND) == "fee" else Intent.ORDER_CERTIFICATE


def _aside(ctx: TurnContext) -> list[Reply] | None:
    """A refund question inside the order: nothing has been paid yet, so there is nothing to refund."""
    if ctx.understanding.intent is Intent.REFUND:
        return [Text(say("order.not_paid_yet", ctx.lang))]
    return None


def order_form() -> Form:
    """The `order` form: student (unless identified), item, copies, delivery, the address for mail, payment,
    confirmation."""
    return Form(name=ORDER, slots=_SLOTS, finish=_finish, prefill=_prefill, refresh=_adopt, topic=_topic,
                aside=_aside, named=_named_slot)


def not_in_catalog(ctx: TurnContext) -> list[Reply] | None:
    """A certificate the service does not issue (学割証明書, 健康診断証明書, 卒業証明書) named without one it
    does: the guide sends the student to the faculty office (各学部窓口), and whether it can be issued is a
    question for the 学生支援課. None when the message names none such, or names an item of the catalog."""
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if ctx.entity(EntityType.ITEM) is not None or not _OTHER_CERTIFICATE.search(text):
        return None
    items = join_list([item.name(ctx.lang) for item in ctx.core.profile.catalog.items
                       if item.kind.value == "certificate"], ctx.lang)
    text = "\n".join((say("order.not_in_catalog", ctx.lang, items=items), "",
                      basic.contact_entry(ctx, Service.STUDENT_SUPPORT)))
    return [Text(text, (_start_button(ctx), *basic.follow_ups(ctx.lang, Intent.DELIVERY_OPTIONS)))]


def _item_answer(ctx: TurnContext) -> list[Reply] | None:
    """A question about items rather than a wish to apply (「学生証の再発行っていくら？」, 「駐車場使用料と保険の
    継続手続きも、このサービスで払うんですか？」): each one's price, how it is received and its note, and a
    button to apply. None when the message names no item, or wants one (「…したい」, "I need…")."""
    items: list[CatalogItem] = []
    for entity in ctx.entities:
        item = _item(ctx, str(entity.value)) if entity.type is EntityType.ITEM else None
        if item is not None and item not in items:
            items.append(item)
    text = normalize(ctx.message.text or "")
    asks_price = bool(_ASKS_PRICE.search(text))
    if not items or not (asks_price or (is_question(text) and not is_request(_naming_items(ctx, text)))):
        return None
    lines = []
    for item in items:
        methods = delivery_labels(item.deliveries, ctx.lang)
        lines.append(say("order.price_of" if asks_price else "order.item_info", ctx.lang, item=item.name(ctx.lang),
                         methods=methods, price=_price(item.price_yen, item.price_is_example, ctx)))
        if item.note is not None:
            lines.append(item.note(ctx.lang))
    if any(item.price_is_example for item in items):
        lines.append(say("order.prices_are_examples", ctx.lang))
    buttons = (_start_button(ctx), *basic.follow_ups(ctx.lang, Intent.PAYMENT_METHODS))
    return [Text("\n".join(lines), buttons)]


def _naming_items(ctx: TurnContext, text: str) -> str:
    """A normalized message from its first clause that names an item: what is wanted before it (「車で通学
    したいんですけど、駐車場使用料ってここで払うんですか？」) is not a wish for the item; what follows it
    (「…払うんですか？払いたいです」) is."""
    named = [normalize(entity.text) for entity in ctx.entities if entity.type is EntityType.ITEM and entity.text]
    clauses = split_clauses(text)
    first = next((clause for clause in clauses if any(name in clause.text for name in named)), None)
    return text[first.start:] if first is not None else text


def start_order(forms: FormEngine, ctx: TurnContext) -> list[Reply]:
    """Begin the order form, unless the message asks for a certificate the service does not issue or asks
    about an item rather than for it (answered, with a button to apply), or a form is in progress (then this
    is a detour: offer it instead)."""
    answer = not_in_catalog(ctx) or _item_answer(ctx)
    if answer is not None:
        return answer
    if ctx.state.form == ORDER:
        return [Text(say("order.in_progress", ctx.lang))]
    if ctx.state.form is not None:
        return [Text(say("order.start_after", ctx.lang), (_start_button(ctx),))]
    return forms.start(ORDER, ctx)


def register(registry: HandlerRegistry, forms: FormEngine) -> None:
    """Wire the order form and the two intents that start it: order_certificate and fee_items."""
    forms.register(order_form())

    def order_certificate(ctx: TurnContext) -> list[Reply]:
        """Apply for a certificate: the order form, offering certificates first."""
        return start_order(forms, ctx)

    def fee_items(ctx: TurnContext) -> list[Reply]:
        """Pay a fee (student ID reissue, parking, insurance): the order form, offering fee items first."""
        return start_order(forms, ctx)

    registry.register(Intent.ORDER_CERTIFICATE, order_certificate)
    registry.register(Intent.FEE_ITEMS, fee_items)
