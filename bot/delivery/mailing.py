"""The worker's `mail` jobs: one-time links (second-password reset, web sign-in) mailed outside the request, and
a mail-only drain for the processes that run no inbox worker (the terminal chat, the Rasa action server)."""

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.delivery.inbox import Call, ChannelProcessor, Inbox, Job
from core.jobs import MAIL
from core.links import send_link_mail
from core.models import InboundEvent
from core.services import Core

log = logging.getLogger(__name__)


class Mailing(ChannelProcessor):
    """The worker's `mail` processor: the lookup, the rate limits, the link and its mail, once per job."""

    channel = MAIL

    def __init__(self, core: Core) -> None:
        self.core = core

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        """One part, the mail; nothing personal, since the inbox stores the parts (the link is made in `send`)."""
        return [{"mail": job.payload["purpose"]}]

    def send(self, call: Call) -> None:
        """Issue the link and mail it (`core.links.send_link_mail`), the job marked sent in the same transaction
        as the link: a retry after that commit (the process died before the worker recorded the finish) finds
        its one part sent and mails nothing more."""
        payload = call.payload
        send_link_mail(self.core, payload, record=lambda session: mark_sent(session, payload["job"]))


def mark_sent(session: Session, key: str) -> None:
    """Record the `mail` job's one part as sent, in the caller's transaction (the inbox's own record of it)."""
    session.execute(update(InboundEvent).where(InboundEvent.channel == MAIL, InboundEvent.event_id == key)
                    .values(sent_parts=1).execution_options(synchronize_session=False))


def send_queued_mail(core: Core, mailing: Mailing | None = None) -> int:
    """Send the `mail` jobs that are due now, under the inbox's rules (a lease, a retry with backoff, each part
    sent once); the number handled. Only `mail` jobs are taken: a process without the channels' processors must
    leave their events to the web app's worker.

    For processes that run no inbox worker: the terminal chat calls it after each turn, the Rasa action server
    runs a `mail_worker`. A sign-in link is queued just after the answer (`Core.later`), so that is waited for.
    """
    core.settle()
    return mail_worker(core, mailing).drain()


def mail_worker(core: Core, mailing: Mailing | None = None) -> Inbox:
    """An inbox that handles only `mail` jobs (start it to send them about once a second in a thread of its
    own): the Rasa action's answer never waits for a mail, so it takes as long whoever asked."""
    return Inbox(core, {MAIL: mailing or Mailing(core)}, only_registered=True)
