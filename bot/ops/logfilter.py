"""A logging filter that keeps one-time tokens out of every log line, access logs included: mailed link
tokens (/links/<token>) and LINE account-linking tokens and nonces (?linkToken=…, &nonce=…), as
core.masking.redact_url_secrets finds them."""

import logging
from collections.abc import Mapping

from core.masking import redact_url_secrets

# Loggers whose own records carry request URLs: uvicorn's access log (the path is in the args tuple),
# uvicorn's error log, and httpx, which logs every URL it requests.
URL_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "httpx", "starlette")


class LinkTokenFilter(logging.Filter):
    """Replaces `/links/<token>` with `/links/[token]` in a record's message and arguments; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place and let it through."""
        if isinstance(record.msg, str):
            record.msg = redact_url_secrets(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _redact_arg(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            # Same length and types where nothing changes: uvicorn's access formatter unpacks the tuple
            # and formats the status code with %d.
            record.args = tuple(_redact_arg(value) for value in record.args)
        return True


def _redact_arg(value: object) -> object:
    if isinstance(value, (int, float)) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    redacted = redact_url_secrets(text)
    return value if redacted == text else redacted  # untouched, a non-string argument keeps its type


_FILTER = LinkTokenFilter()


def install_log_filters() -> LinkTokenFilter:
    """Attach the filter to the loggers that log URLs and to the root logger's handlers; safe to call again.

    Call it after logging is configured (uvicorn's own logging set-up included): a logger-level filter only
    sees records logged on that logger, so the root handlers get it too for records propagated from
    anywhere else. A handler added later needs another call.

    Returns:
        The filter instance, so a caller (or a test) can remove it again.
    """
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER


def uninstall_log_filters() -> None:
    """Remove the filter from everywhere `install_log_filters` put it (for tests)."""
    for name in URL_LOGGERS:
        logging.getLogger(name).removeFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        handler.removeFilter(_FILTER)
