"""The public vocabulary of intents: intent and entity names, entities and the understanding of one message."""

from dataclasses import dataclass
from enum import StrEnum

from core.enums import Language
from intents.controls import Control


class Intent(StrEnum):
    """What a student's message asks for; the names are a public interface shared with the handlers."""

    GREET = "greet"
    GOODBYE = "goodbye"
    THANKS = "thanks"
    LOGIN_HELP = "login_help"
    SECOND_PASSWORD_RESET = "second_password_reset"
    SECOND_PASSWORD_RULES = "second_password_rules"
    EMAIL_REGISTRATION = "email_registration"
    EMAIL_CHANGE = "email_change"
    PAYMENT_METHODS = "payment_methods"
    REFUND = "refund"
    PICKUP_TIMING = "pickup_timing"
    WINDOW_PICKUP_HOWTO = "window_pickup_howto"
    ORDER_CERTIFICATE = "order_certificate"
    FEE_ITEMS = "fee_items"
    DELIVERY_OPTIONS = "delivery_options"
    ORDER_STATUS = "order_status"
    LANGUAGE = "language"
    CONTACT = "contact"
    HUMAN_AGENT = "human_agent"
    OUT_OF_SCOPE = "out_of_scope"


class EntityType(StrEnum):
    """The kinds of entity the extractor finds."""

    ITEM = "item"
    COPIES = "copies"
    PAYMENT_METHOD = "payment_method"
    DELIVERY_METHOD = "delivery_method"
    STUDENT_NUMBER = "student_number"
    EMAIL = "email"
    DATETIME = "datetime"


class ItemCode(StrEnum):
    """Catalog item codes an `item` entity resolves to."""

    ENROLLMENT_CERTIFICATE = "enrollment_certificate"  # 在学証明書
    TRANSCRIPT = "transcript"  # 成績証明書
    EXPECTED_GRADUATION_CERTIFICATE = "expected_graduation_certificate"  # 卒業見込み証明書
    STUDENT_ID_REISSUE = "student_id_reissue"  # 学生証再発行
    PARKING_CARD_REISSUE = "parking_card_reissue"  # 学生駐車場パスカード再発行
    PARKING_FEE = "parking_fee"  # 学生駐車場使用料
    INSURANCE_RENEWAL = "insurance_renewal"  # 傷害・賠償責任保険の継続手続き


class OutOfScopeKind(StrEnum):
    """What kind of message out_of_scope is: each gets its own answer."""

    CAMPUS = "campus"  # a university matter other offices handle (履修登録, scholarships, the cafeteria)
    ABUSE = "abuse"  # insults aimed at the bot
    OTHER = "other"  # small talk, the weather, gibberish


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity found in a message.

    `start` and `end` index the original text (`text == message[start:end]`). `value` is the resolved
    value: an `ItemCode`, `PaymentMethod` or `DeliveryMethod` member, an int for copies, an upper-cased
    student number, a lower-cased email, or an ISO-8601 date or datetime string.
    """

    type: EntityType
    value: str | int
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Topic:
    """One question of a message: its intent and confidence, and the span of the message that asks it (with
    the kind, for a question about another university matter)."""

    intent: Intent
    confidence: float
    start: int
    end: int
    out_of_scope_kind: "OutOfScopeKind | None" = None


@dataclass(frozen=True, slots=True)
class Understanding:
    """What one message means: its intent with a calibrated confidence, the runners-up, entities, language.

    `candidates` holds the top three in-scope intents with their probabilities, best first; it never
    contains out_of_scope and is empty only when the message has no letters at all. When `intent` is
    out_of_scope because the model was unsure, `confidence` is the best candidate's probability.
    `topics` lists each distinct question of a message that asks more than one, in the order asked (the
    first is `intent`); it is empty for a message with one question. `out_of_scope_kind` says what kind
    of out_of_scope message it is. `control` is the steering word the message consists of ("cancel",
    「はい」), if it is one. `asides` are intents a clause seems to ask about that the message as a whole
    does not bear out: worth a button, not an answer.
    """

    text: str
    intent: Intent
    confidence: float
    candidates: tuple[tuple[Intent, float], ...]
    entities: tuple[Entity, ...]
    lang: Language
    topics: tuple[Topic, ...] = ()
    out_of_scope_kind: OutOfScopeKind | None = None
    control: Control | None = None
    asides: tuple[Intent, ...] = ()
