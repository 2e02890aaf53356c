"""Slack users known as students: the email of their Slack profile matched to a student's verified email."""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.conversations import chat_account
from core.errors import InvalidEmailAddress
from core.identifiers import normalize_email
from core.masking import mask_email, mask_token
from core.models import ChannelAccount, Conversation, Student
from core.services import Core
from handlers.turn import Channel

log = logging.getLogger(__name__)

CHANNEL = Channel.SLACK.value
RECHECK = timedelta(hours=24)  # a profile email is looked up again at most once a day per user


class LookupFailed(Exception):
    """users.info gave no email to match (an error, a network failure, a profile without email)."""


class SlackIdentity:
    """Keeps each Slack user's `channel_accounts` row linked to the student whose verified email is the one in
    their Slack profile, or to no student.

    The university's workspace signs its members in, so the profile email is proof enough; a typed student
    number is not. A row's `updated_at` is when the profile was last read, `linked_at` when the current link
    began.
    """

    def __init__(self, core: Core, client: WebClient) -> None:
        """Keep the core and the Web API client (the channel's, with the bot token); no call is made here."""
        self.core, self.client = core, client

    def resolve(self, user_id: str) -> None:
        """Bring the user's link up to date before their turn, unless it was checked less than RECHECK ago.

        A failed lookup never fails the turn: if users.info fails or gives no email, the failure is logged
        (masked) and the link stays as it was, to be checked again at the user's next message.

        Args:
            user_id: the Slack user id (`U…` or `W…`), as the pipeline's messages carry it.
        """
        now = self.core.now()
        with self.core.transaction() as session:
            checked_at = session.scalars(select(ChannelAccount.updated_at).where(
                ChannelAccount.channel == CHANNEL, ChannelAccount.external_id == user_id)).first()
        if checked_at is not None and now - checked_at < RECHECK:
            return
        try:
            email = email_to_match(self._user(user_id))
        except LookupFailed as failure:
            log.warning("slack: the profile email of %s could not be read (%s); its link is kept as it was",
                        mask_token(user_id), failure)
            return
        try:
            with self.core.transaction() as session:
                link(session, user_id, email, now)
        except IntegrityError:
            # Another worker created the user's row meanwhile (a second message at the same moment): the row
            # exists now, so storing once more updates it. A second failure is a real one, for the inbox.
            log.info("slack: the account of %s was created by another worker; storing again", mask_token(user_id))
            with self.core.transaction() as session:
                link(session, user_id, email, now)

    def _user(self, user_id: str) -> Mapping[str, Any]:
        """users.info's user object.

        Raises:
            LookupFailed: for any error answer (rate limits included) or a failed request.
        """
        try:
            answer = self.client.users_info(user=user_id)
        except SlackApiError as error:
            data = error.response.data
            code = data.get("error") if isinstance(data, dict) else None
            raise LookupFailed(f"users.info: {code or 'HTTP ' + str(error.response.status_code)}") from error
        except (SlackClientError, OSError, ValueError) as error:  # network, timeout, a body that is not JSON
            raise LookupFailed(f"users.info: {type(error).__name__}") from error
        user = answer.get("user")
        if not isinstance(user, Mapping):
            raise LookupFailed("users.info: an answer without a user")
        return user


def email_to_match(user: Mapping[str, Any]) -> str | None:
    """The profile email of a users.info user object; None for someone who cannot be a student.

    Args:
        user: the `user` object users.info answers.

    Returns:
        The address as Slack gives it, or None for a bot, a deactivated account or an address Slack has
        not confirmed.

    Raises:
        LookupFailed: if the profile has no email: Slack leaves it out when the app lacks users:read.email.
    """
    if user.get("is_bot") or user.get("deleted") or user.get("is_email_confirmed") is False:
        return None
    email = (user.get("profile") or {}).get("email")
    if not isinstance(email, str) or not email.strip():
        raise LookupFailed("no email in the profile: is the users:read.email scope granted?")
    return email


def verified_student_id(session: Session, email: str | None) -> int | None:
    """The one student whose verified email is `email` (compared case-insensitively), or None.

    An address shared by several students' verified emails identifies none of them.
    """
    if email is None:
        return None
    try:
        address = normalize_email(email).lower()
    except InvalidEmailAddress:
        return None
    ids = session.scalars(select(Student.id).where(func.lower(Student.email) == address,
                                                   Student.email_verified_at.is_not(None)).limit(2)).all()
    if len(ids) > 1:
        log.warning("slack: %s is the verified email of several students; it identifies none", mask_email(email))
        return None
    return ids[0] if ids else None


def link(session: Session, user_id: str, email: str | None, now: datetime) -> int | None:
    """Store what the profile email says: the user's row linked to the matching student, or to none.

    A change also reaches the user's open conversations, which remember the student they identified: a
    student whose email no longer matches stops being known at once, not when the conversation expires.

    Args:
        session: the transaction to write in.
        user_id: the Slack user id.
        email: the profile email, or None for someone who cannot be a student.
        now: when the profile was read.

    Returns:
        The linked student's id, or None.
    """
    student_id = verified_student_id(session, email)
    row = chat_account(session, CHANNEL, user_id, now)
    if row.student_id != student_id:
        if student_id is not None:
            log.info("slack: %s linked to a student by the verified email %s", mask_token(user_id),
                     mask_email(email))
        elif row.student_id is not None:
            log.info("slack: %s unlinked: the profile email %s is no longer a student's verified email",
                     mask_token(user_id), mask_email(email))
        row.student_id, row.linked_at = student_id, now if student_id is not None else None
        session.execute(update(Conversation).where(Conversation.channel == CHANNEL, Conversation.user_id == user_id)
                        .values(student_id=student_id))
    row.updated_at = now
    return student_id
