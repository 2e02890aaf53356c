"""Names that are types: languages, catalog items, delivery and payment methods, statuses, link purposes."""

from enum import StrEnum


class Language(StrEnum):
    """A language madoguchi speaks."""

    JA = "ja"
    EN = "en"


class ItemKind(StrEnum):
    """Whether a catalog item is a certificate or a fee."""

    CERTIFICATE = "certificate"
    FEE = "fee"


class DeliveryMethod(StrEnum):
    """How an issued item reaches the student."""

    CAMPUS_PRINTER = "campus_printer"  # 学内印刷機
    CONVENIENCE_STORE = "convenience_store"  # コンビニのマルチコピー機
    MAIL = "mail"  # 郵送
    # Applied on the service as 郵送 with 送付先カテゴリ「大学窓口で受取り」 and 住所「窓口受取り」.
    WINDOW_PICKUP = "window_pickup"


# The deliveries printed by the student at a machine, with a number the paid order gets (core.fulfilment).
PRINT_DELIVERIES = frozenset({DeliveryMethod.CONVENIENCE_STORE, DeliveryMethod.CAMPUS_PRINTER})


class PaymentMethod(StrEnum):
    """The payment methods of the guide's list."""

    CREDIT_CARD = "credit_card"  # VISA / Master / JCB / Diners Club / American Express
    CARRIER = "carrier"  # ドコモ / au / ソフトバンク
    PAY_EASY = "pay_easy"
    PAYPAY = "paypay"
    LINE_PAY = "line_pay"
    APPLE_PAY = "apple_pay"
    MERPAY = "merpay"
    CONVENIENCE_STORE = "convenience_store"  # cash only, at Lawson / FamilyMart / Seven-Eleven


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PROCESSING = "processing"
    READY = "ready"  # window pickup: the 「郵送対応完了」 mail means ready to collect
    PRINTED = "printed"
    SHIPPED = "shipped"
    COLLECTED = "collected"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """Where a payment is at the gateway."""

    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class LinkPurpose(StrEnum):
    """What a one-time link does when opened."""

    EMAIL_REGISTRATION = "email_registration"
    EMAIL_CHANGE = "email_change"
    SECOND_PASSWORD_RESET = "second_password_reset"
    WEB_SIGN_IN = "web_sign_in"  # signs the browser that opens it in to the web chat


class Service(StrEnum):
    """An office or channel with opening hours in the university profile."""

    STUDENT_SUPPORT = "student_support"  # 学生支援課
    CALL_CENTER = "call_center"  # 証明書発行サービスコールセンター
    CHAT_SUPPORT = "chat_support"  # the service's own 24-hour chat


class LinkState(StrEnum):
    """What opening a one-time link would find."""

    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    SUPERSEDED = "superseded"  # voided because a newer link of the same purpose was sent
    UNKNOWN = "unknown"
