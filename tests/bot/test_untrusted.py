"""Untrusted input: JSON nested deeper than allowed is refused before the parser recurses; text that a
database cannot store (lone surrogates, NUL) is made storable, and nothing else changes."""

import json

import pytest

from bot.untrusted import BadJson, load_json, storable, storable_json


def test_deep_nesting_is_refused_without_recursing():
    with pytest.raises(BadJson, match="deeper"):
        load_json(b"[" * 5000 + b"]" * 5000)
    with pytest.raises(BadJson, match="deeper"):
        load_json('{"a":' * 40 + "1" + "}" * 40)


def test_brackets_inside_strings_do_not_count():
    body = json.dumps({"text": "[" * 100 + "{" * 100})
    assert load_json(body) == {"text": "[" * 100 + "{" * 100}
    assert load_json(json.dumps({"text": '\\"[' * 50})) == {"text": '\\"[' * 50}


def test_nesting_within_the_bound_is_parsed():
    assert load_json("[" * 32 + "]" * 32, max_depth=32) is not None
    with pytest.raises(BadJson):
        load_json("[" * 33 + "]" * 33, max_depth=32)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{", b"", b"{'a': 1}"])
def test_what_is_not_json_is_refused(raw):
    with pytest.raises(BadJson):
        load_json(raw)


def test_lone_surrogates_and_nul_are_made_storable():
    parsed = load_json('{"text": "a\\ud800b\\u0000c\\ud83d\\ude00", "\\udfff": ["\\u0000"]}')
    cleaned = storable_json(parsed)
    assert cleaned == {"text": "a\ufffdbc\U0001f600", "\ufffd": [""]}
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")  # would raise for a lone surrogate
    assert storable("証明書 order K7PM-3QXA") == "証明書 order K7PM-3QXA"
