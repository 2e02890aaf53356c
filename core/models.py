"""The tables: students, one-time links, orders with their items, events and payments."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, UTCDateTime
from core.enums import DeliveryMethod, Language, LinkPurpose, OrderStatus, PaymentMethod, PaymentStatus


def enum_column(enum: type[StrEnum]) -> Enum:
    """A portable string column for a StrEnum: stores the value, no native database enum to migrate."""
    return Enum(enum, native_enum=False, length=32, values_callable=lambda members: [m.value for m in members])


class Student(Base):
    """A student of the university, as the certificate service knows them."""

    __tablename__ = "students"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_number: Mapped[str] = mapped_column(String(32), unique=True)  # 学籍番号, the service's user ID
    name: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(64))  # a department code of the university profile
    year: Mapped[int] = mapped_column(Integer)
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    second_password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id, never the password
    preferred_language: Mapped[Language] = mapped_column(enum_column(Language), default=Language.JA)
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())  # 「通知停止」
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    orders: Mapped[list["Order"]] = relationship(back_populates="student")


class OneTimeLink(Base):
    """A mailed one-time URL; only the SHA-256 of its token is stored."""

    __tablename__ = "one_time_links"
    __table_args__ = (Index("ix_one_time_links_student_purpose", "student_id", "purpose", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    purpose: Mapped[LinkPurpose] = mapped_column(enum_column(LinkPurpose))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))  # the address the link was mailed to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    student: Mapped[Student] = relationship()


class Order(Base):
    """An application on the certificate service: items, delivery, payment and status."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)  # short and readable, e.g. "K7PM-3QXA"
    # NULL once the student is forgotten (`madoguchi students forget`): the order stays for accounting.
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id"), index=True)
    delivery_method: Mapped[DeliveryMethod] = mapped_column(enum_column(DeliveryMethod))
    payment_method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod))
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus), index=True)
    total_yen: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # 郵送 only: the address as JSON (core.addresses.MailingAddress); cleared when the student is forgotten.
    mailing_address: Mapped[str | None] = mapped_column(Text)

    student: Mapped[Student | None] = relationship(back_populates="orders")
    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )
    events: Mapped[list["OrderEvent"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id"
    )
    payments: Mapped[list["Payment"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Payment.id"
    )
    fulfilment: Mapped["Fulfilment | None"] = relationship(back_populates="order", cascade="all, delete-orphan")


class OrderItem(Base):
    """One catalog item of an order, with its copies and the price when ordered."""

    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    item_code: Mapped[str] = mapped_column(String(64))
    copies: Mapped[int] = mapped_column(Integer)
    unit_price_yen: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="items")


class OrderEvent(Base):
    """One status change of an order, kept for the student's and the agents' history."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[OrderStatus | None] = mapped_column(enum_column(OrderStatus))
    to_status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))  # "student", "gateway", "staff:<name>", "system"

    order: Mapped[Order] = relationship(back_populates="events")


class Payment(Base):
    """A payment attempt at the gateway for one order."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64), unique=True)  # random; names the payment page
    method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod))
    amount_yen: Mapped[int] = mapped_column(Integer)
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus))
    konbini_number: Mapped[str | None] = mapped_column(String(32))  # 払込票番号 for convenience-store cash
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    order: Mapped[Order] = relationship(back_populates="payments")


class Fulfilment(Base):
    """How a paid order reaches the student, created when its payment completes (core.fulfilment).

    A print at a convenience store or on the campus printer has the number to enter at the machine and its
    expiry; a window pickup the time it is ready from; a mail order is marked sent by staff.
    """

    __tablename__ = "fulfilments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    delivery_method: Mapped[DeliveryMethod] = mapped_column(enum_column(DeliveryMethod))
    provider: Mapped[str] = mapped_column(String(32))  # the port's adapter: "sandbox", or the real service's
    print_number: Mapped[str | None] = mapped_column(String(32))  # プリント予約番号 or the campus printer's code
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # window pickup: from the payment
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    order: Mapped[Order] = relationship(back_populates="fulfilment")


class WebSession(Base):
    """A browser signed in to the web chat (by a mailed sign-in link); the cookie holds the token, the table its
    SHA-256. Ends on sign-out, after `IDLE` without a message, or at `expires_at` whatever happens."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    via: Mapped[str] = mapped_column(String(16))  # "email" (a mailed link) or "oidc" (the university's sign-on)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Conversation(Base):
    """One chat conversation's state: language, identified student and the form in progress (as JSON)."""

    __tablename__ = "conversations"
    # A chat account's conversations (the latest one's language is the one a reminder or a notice is written in).
    __table_args__ = (Index("ix_conversations_user", "user_id", "channel"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<channel>:<user or thread>"
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    lang: Mapped[str | None] = mapped_column(String(2))
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="SET NULL"))
    state_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class TranscriptEntry(Base):
    """One message of a conversation, as stored: secrets masked before they are written."""

    __tablename__ = "transcript_entries"
    __table_args__ = (Index("ix_transcript_entries_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(200))
    # "in" from the student, "out" the bot's answer, "agent" a person's relayed reply, "note" a later notice
    direction: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # The channel's id of the student's message (a LINE message id), so an unsent message can be hidden.
    message_ref: Mapped[str | None] = mapped_column(String(128))
    # A not-understood student message: the intent the bot thought likeliest (its best guess), else NULL.
    guess: Mapped[str | None] = mapped_column(String(32))
    # Who wrote an "agent" line: the staff account's display name (never its email), or `slack:<user ID>`.
    author: Mapped[str | None] = mapped_column(String(64))
    # A later notice's buttons (the satisfaction question after an agent closes a ticket), as [[label, payload]].
    buttons: Mapped[str | None] = mapped_column(Text)


class InboundEvent(Base):
    """A webhook event stored before it is acknowledged, so it is never lost and is handled once.

    `parts` holds the rendered API calls of the answer (JSON) once the conversation has handled the event,
    and `sent_parts` how many of them were delivered: a retry resends only the rest and never re-runs the
    conversation turn.
    """

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "event_id", name="uq_inbound_events_channel_event"),
                      Index("ix_inbound_events_due", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, processing, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    parts: Mapped[str | None] = mapped_column(Text)
    sent_parts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChannelAccount(Base):
    """A chat user on LINE or Slack, and the student linked to them once they have proved who they are."""

    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_channel_accounts_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))  # LINE userId or Slack user ID
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="SET NULL"), index=True)
    following: Mapped[bool] = mapped_column(Boolean, default=True)  # False after a LINE unfollow
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountLinkNonce(Base):
    """A single-use nonce of LINE's account-link flow: issued after the student signs in on our page."""

    __tablename__ = "account_link_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HandoffTicket(Base):
    """A conversation handed to a person: who, why, what the bot already said, and who has it now.

    `status` goes waiting → assigned → resolved; `closed_how` says whether an agent resolved it, handed it
    back to the bot, or the student stopped waiting. `thread_ts` is the agents' Slack thread of the ticket.
    """

    __tablename__ = "handoff_tickets"
    __table_args__ = (Index("ix_handoff_tickets_conversation_status", "conversation_id", "status"),
                      Index("ix_handoff_tickets_status_opened", "status", "opened_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(200))  # the student's id on their channel, to reach them
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="SET NULL"))
    lang: Mapped[str] = mapped_column(String(2))
    reason: Mapped[str] = mapped_column(String(32))  # asked, misses, refund_dispute, account, complaint, agent
    topic: Mapped[str | None] = mapped_column(String(32))  # the bot's best guess: an intent name
    bot_said: Mapped[str | None] = mapped_column(Text)  # the bot's last answers, masked
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    assignee: Mapped[str | None] = mapped_column(String(64))  # a Slack user ID, or staff:<id> for the web inbox
    # The staff account's display name when the web inbox's agent has it (never an email); NULL for Slack.
    assignee_name: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_how: Mapped[str | None] = mapped_column(String(16))  # resolved, handed_back, withdrawn
    agent_channel: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32), index=True)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the card or the last digest listing it
    satisfaction: Mapped[str | None] = mapped_column(String(8))  # the student's one-tap answer: good or bad


class HandoffMessage(Base):
    """One message relayed between the student and the agents during a handoff, delivered exactly once.

    `source_key` is unique: the Slack event or transcript line it came from, so a retried event adds nothing.
    """

    __tablename__ = "handoff_messages"
    __table_args__ = (UniqueConstraint("source_key", name="uq_handoff_messages_source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("handoff_tickets.id", ondelete="CASCADE"), index=True)
    # "student" (to the agents), "agent" (to the student), "note" (among agents only, never sent to the student)
    # or "event" (what happened to the ticket: opened, taken, resolved…, its kind in `text`)
    direction: Mapped[str] = mapped_column(String(8))
    author: Mapped[str | None] = mapped_column(String(64))  # a Slack user ID or a staff display name, never an email
    text: Mapped[str] = mapped_column(Text)  # masked like the transcript
    source_key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivery: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed


class Reminder(Base):
    """A reminder to send once: what, to whom, when, and what became of it.

    `key` is unique (its idempotency key: the same reminder is never scheduled twice). The recipient is the
    student's linked chat accounts, or, when `channel` is set, that one conversation (a link requested in
    the web chat). `status`: scheduled → sent, or cancelled (no longer relevant), skipped (opted out, not
    reachable), missed (due while the scheduler was down, past its grace).
    """

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("key", name="uq_reminders_key"),
                      Index("ix_reminders_status_due", "status", "due_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(200))
    conversation_id: Mapped[str | None] = mapped_column(String(200))
    lang: Mapped[str | None] = mapped_column(String(2))
    subject: Mapped[str | None] = mapped_column(String(64))  # an order number, a link id, a catalog item
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    grace: Mapped[int] = mapped_column(Integer)  # seconds after due_at it may still be sent
    deferred: Mapped[bool] = mapped_column(Boolean, default=False)  # moved out of the quiet hours
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    outcome: Mapped[str | None] = mapped_column(String(200))  # why cancelled, skipped or missed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffAccount(Base):
    """A university staff member who may sign in to the /admin pages (never a student)."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id of the staff password, never the password
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")  # admin or agent
    display_name: Mapped[str | None] = mapped_column(String(64))  # what students and transcripts show
    desk_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the inbox open in a browser, last seen


class StaffSession(Base):
    """A signed-in staff member's session: only the SHA-256 of its cookie token is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the absolute lifetime counts from here
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the idle timeout counts from here


class SignInFailure(Base):
    """One failed sign-in of any lockout (staff sign-in, LINE account linking), counted under scoped keys of
    which only the SHA-256 is stored; core.lockouts reads and writes these rows."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key_at", "key_hash", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 of a scoped key, e.g. "line-link:<student number>"
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class MetricTally(Base):
    """What deleted rows had added to one /metrics counter's label set, so the counter never goes down.

    `labels` is the label values as canonical JSON (see core.tallies, which writes and reads these rows).
    """

    __tablename__ = "metric_tallies"
    __table_args__ = (UniqueConstraint("series", "labels", name="uq_metric_tallies_series_labels"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(String(64))
    labels: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
