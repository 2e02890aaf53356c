"""Mail: an SMTP sender for production and a local outbox folder of .eml files by default."""

import logging
import smtplib
import ssl
import uuid
from copy import deepcopy
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from core.masking import mask_email

log = logging.getLogger(__name__)


class MailDeliveryError(Exception):
    """The mail server could not be reached or refused the message; the message names the server."""


class Mailer(Protocol):
    """Sends one composed message."""

    def send(self, message: EmailMessage) -> None:
        """Deliver the message or raise."""
        ...


def compose(*, sender: str, to: str, subject: str, body: str, at: datetime) -> EmailMessage:
    """A plain-text UTF-8 mail."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain="madoguchi.invalid")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: do not auto-reply to us
    message.set_content(body, charset="utf-8")
    return message


class SmtpMailer:
    """Sends through an SMTP server, with optional STARTTLS and login."""

    def __init__(self, host: str, port: int = 25, *, starttls: bool = False, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0, tls_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.starttls = host, port, starttls
        self.username, self.password, self.timeout = username, password, timeout
        # Verify the server's certificate and host name: without a context, smtplib would accept any.
        self.tls_context = tls_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> None:
        """Open a connection, send one message, close.

        Raises:
            MailDeliveryError: naming the server, when it cannot be reached or refuses the message.
        """
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.tls_context)
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail to %s via %s:%s failed: %s", mask_email(str(message["To"])), self.host, self.port, exc)
            raise MailDeliveryError(f"could not send mail via {self.host}:{self.port}: {exc}") from exc
        log.info("mail sent to %s via %s:%s", mask_email(str(message["To"])), self.host, self.port)


def _readable(message: EmailMessage) -> EmailMessage:
    """A copy whose text body is plain 8-bit UTF-8, so a person can read the .eml and copy its link."""
    copy = deepcopy(message)
    body = message.get_body(preferencelist=("plain",))
    if body is not None and not message.is_multipart():
        copy.set_content(body.get_content(), charset="utf-8", cte="8bit")
    return copy


class OutboxMailer:
    """Writes each message as an .eml file into a folder, for local use without a mail server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        """Write the message to `<folder>/<time>-<id>.eml` and log where."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(_readable(message)))
        log.info("mail to %s written to %s", mask_email(str(message["To"])), path)

    def messages(self) -> list[Path]:
        """The .eml files in the outbox, oldest first."""
        return sorted(self.folder.glob("*.eml")) if self.folder.exists() else []
