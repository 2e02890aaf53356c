"""Log lines as JSON (or text), each masked and carrying the id of the conversation it belongs to.

The conversation id lives in a context variable: the pipeline sets it around each turn and the inbox worker
around each job, so every line logged meanwhile, by any module, carries it. Masking happens in the formatter,
the last step before a line leaves the process: student numbers (the profile's pattern), emails, one-time
link tokens and long random tokens never reach stderr, whoever logged them.
"""

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from bot.ops.logfilter import install_log_filters
from core.masking import TOKEN_MASK, mask_text, redact_url_secrets
from core.profile import UniversityProfile
from core.settings import LogFormat

# Lines are masked by the shipped profile's student-number pattern until the deployment's profile is known.
SHIPPED_STUDENT_NUMBER_PATTERN: str | None = UniversityProfile.model_fields["student_number_pattern"].default
# A run of URL-safe characters long enough to be a secret (secrets.token_urlsafe, hex digests, platform
# tokens): 24+ mixing letters and digits, or 32+ mixing cases (a token that happens to hold no digit).
# Words, snake_case names and plain numbers stay readable.
_URLSAFE_RUN = re.compile(r"[A-Za-z0-9_-]{24,}")
_DIGIT, _LETTER, _LOWER, _UPPER = (re.compile(p) for p in ("[0-9]", "[A-Za-z]", "[a-z]", "[A-Z]"))


def _token_or_word(match: re.Match[str]) -> str:
    run = match.group(0)
    if (_DIGIT.search(run) and _LETTER.search(run)) or (len(run) >= 32 and _LOWER.search(run) and _UPPER.search(run)):
        return TOKEN_MASK
    return run


@dataclass
class _Scope:
    conversation_id: str | None


_scope: ContextVar[_Scope | None] = ContextVar("madoguchi_log_scope", default=None)


def current_conversation() -> str | None:
    """The id of the conversation being handled in this context, or None."""
    scope = _scope.get()
    return scope.conversation_id if scope is not None else None


@contextmanager
def conversation(conversation_id: str | None) -> Iterator[None]:
    """Lines logged inside carry `conversation_id`; an enclosing scope that has no id yet (an inbox job whose
    payload did not name its conversation) takes it too, so the job's later lines (sending) carry it."""
    note_conversation(conversation_id)
    token = _scope.set(_Scope(conversation_id))
    try:
        yield
    finally:
        _scope.reset(token)


def note_conversation(conversation_id: object) -> None:
    """Tell the current scope (a job) which conversation it is about, if it does not know yet (a value that
    is not a non-empty string, such as a payload's missing key, is ignored)."""
    scope = _scope.get()
    if scope is not None and scope.conversation_id is None and isinstance(conversation_id, str) and conversation_id:
        scope.conversation_id = conversation_id


def mask(text: str, student_number_pattern: str | None = SHIPPED_STUDENT_NUMBER_PATTERN) -> str:
    """`text` fit for a log line: link tokens, emails, student numbers and long random tokens masked."""
    text = mask_text(redact_url_secrets(text), student_number_pattern)
    return _URLSAFE_RUN.sub(_token_or_word, text)


class MaskingFormatter(logging.Formatter):
    """A formatter whose lines are masked; `student_number_pattern` is the one student numbers are found by."""

    def __init__(self, fmt: str | None = None,
                 student_number_pattern: str | None = SHIPPED_STUDENT_NUMBER_PATTERN) -> None:
        super().__init__(fmt)
        self.student_number_pattern = student_number_pattern

    def mask(self, text: str) -> str:
        """`text` masked for a line of this formatter (see `mask`)."""
        return mask(text, self.student_number_pattern)

    def conversation_of(self, record: logging.LogRecord) -> str | None:
        """The record's own conversation_id (logged with `extra=`), else the context's.

        Emails, student numbers and link tokens are masked in it (a web chat's user id is whatever the page
        sent), long ids are not: a LINE user id is what ties the lines of one conversation together.
        """
        conversation_id = getattr(record, "conversation_id", None) or current_conversation()
        if not conversation_id:
            return None
        return mask_text(redact_url_secrets(str(conversation_id)), self.student_number_pattern)


class JsonFormatter(MaskingFormatter):
    """One JSON object per line: time (ISO 8601 UTC), level, logger, message, conversation_id, process id,
    and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one masked JSON line."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.mask(record.getMessage()),
            "conversation_id": self.conversation_of(record),
            "process": record.process,  # which worker of `serve --workers N` wrote it
        }
        if record.exc_info:
            line["exception"] = self.mask(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = self.mask(record.exc_text)
        if record.stack_info:
            line["stack"] = self.mask(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(MaskingFormatter):
    """A readable line (`time LEVEL logger [conversation]: message`), masked like the JSON one."""

    def __init__(self, student_number_pattern: str | None = SHIPPED_STUDENT_NUMBER_PATTERN) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(conversation)s: %(message)s", student_number_pattern)

    def format(self, record: logging.LogRecord) -> str:
        """The record as masked text (a traceback follows on its own lines)."""
        conversation_id = self.conversation_of(record)
        record.conversation = f" [{conversation_id}]" if conversation_id else ""
        return self.mask(super().format(record))


def make_handler(log_format: LogFormat = LogFormat.JSON, stream: TextIO | None = None,
                 student_number_pattern: str | None = SHIPPED_STUDENT_NUMBER_PATTERN) -> logging.Handler:
    """A stream handler (stderr by default) writing lines in `log_format` (AUTO: JSON unless a terminal),
    masking student numbers by `student_number_pattern`."""
    stream = stream or sys.stderr
    if log_format is LogFormat.AUTO:
        log_format = LogFormat.TEXT if stream.isatty() else LogFormat.JSON
    handler = logging.StreamHandler(stream)
    formatter = JsonFormatter(student_number_pattern=student_number_pattern) if log_format is LogFormat.JSON \
        else TextFormatter(student_number_pattern)
    handler.setFormatter(formatter)
    return handler


def use_student_number_pattern(pattern: str | None) -> None:
    """Mask student numbers by the university profile's pattern in the lines of the root logger's masking
    handlers (those `configure` installed), once the profile is known; until then they use the shipped one."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, MaskingFormatter):
            handler.formatter.student_number_pattern = pattern


def configure(level: str, log_format: LogFormat = LogFormat.AUTO) -> None:
    """Configure the process's logging once (a no-op where logging is configured already, as under pytest).

    Args:
        level: The root level's name (INFO, DEBUG …).
        log_format: json, text, or auto (json unless stderr is a terminal).
    """
    logging.basicConfig(level=level.upper(), handlers=[make_handler(log_format)])
    # At INFO, Bolt logs the whole body of a request whose signature fails: keep it quieter.
    logging.getLogger("slack_bolt").setLevel(max(logging.WARNING, logging.getLogger().level))
    install_log_filters()
