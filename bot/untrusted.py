"""Reading what arrives from outside (a chat body, a webhook): JSON of bounded depth, text that can be stored."""

import json
import re
from typing import Any

MAX_DEPTH = 32  # nesting the platforms' payloads never come near (LINE's deepest is about 8)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid ones, so what is left is alone


class BadJson(ValueError):
    """A body that is not JSON, not UTF-8, or nested deeper than allowed; the message says which."""


def load_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a body, refusing nesting deeper than `max_depth` before the parser recurses into it.

    Raises:
        BadJson: not UTF-8, not JSON, or too deep.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise BadJson("body is not UTF-8") from error
    if text.count("[") + text.count("{") > max_depth and _depth(text) > max_depth:
        raise BadJson(f"body is nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise BadJson("body is not valid JSON") from error


def _depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (what json.loads would recurse into)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def storable(text: str) -> str:
    """`text` as every database can store it: lone surrogates become U+FFFD, NUL characters are dropped."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _LONE_SURROGATE.sub("\ufffd", text)


def storable_json(value: Any) -> Any:
    """A parsed JSON value with every string, keys included, made `storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable_json(item) for key, item in value.items()}
    return value
